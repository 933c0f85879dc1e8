//! One shard's reader: its records in order, a page at a time, each page encoded and
//! handed to the merge (`walk`) through a slot reserved before the `GetRecords`, until the
//! shard ends, is caught up, has read its turn, or fails; then its last event.

use crate::dynamo::streams::{StreamError, Streams};
use tokio::sync::mpsc;

/// Empty pages in a row after which an open shard with a position counts as caught up.
pub const EMPTY_PAGES_CAUGHT_UP: u32 = 3;
/// The same for an open shard read from its start (no record yet): DynamoDB may answer
/// empty pages before the first records it keeps, and such a shard has no position to
/// come back to, so it is given more before it counts as empty.
pub const EMPTY_PAGES_FROM_START: u32 = 10;

/// The pause before asking an open shard again after an empty page.
const EMPTY_PAGE_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// Pages a shard reads in a turn before it gives its place to a waiting shard.
pub const PAGES_A_TURN: u32 = 20;

/// Renewals of an expired iterator in a row before the shard fails.
const MAX_RENEWALS: u32 = 3;

/// One page of a shard, encoded.
#[derive(Debug)]
pub(super) struct ShardPage {
    /// The lines of the records sent.
    pub(super) lines: Vec<u8>,
    /// Each record's line end in `lines` and its sequence number, in order.
    pub(super) records: Vec<(usize, String)>,
    /// The last sequence number read (sent or skipped as older than `since`).
    pub(super) last: Option<String>,
    /// Records read, those skipped included.
    pub(super) read: u64,
    /// Whether the shard has passed `since` with this page: every later record is sent.
    pub(super) passed: bool,
}

#[derive(Debug)]
pub(super) enum Event {
    Page(String, ShardPage),
    /// The shard read its turn's pages and gives its place to another: the iterator to
    /// go on with (progress through empty pages kept), and when `GetRecords` gave it.
    Yielded(String, Option<(String, std::time::Instant)>),
    /// The shard is closed and read to its end.
    Done(String),
    /// The open shard returned nothing new.
    CaughtUp(String),
    /// An iterator was renewed.
    Renewed,
    Failed(String, StreamError),
}

/// Reads one shard in order, a page at a time, each after a slot in the merge is free.
pub(super) struct ShardReader {
    pub(super) streams: Streams,
    pub(super) arn: String,
    pub(super) id: String,
    pub(super) after: Option<String>,
    pub(super) since_ms: Option<u64>,
    /// Whether the shard already passed `since` (in an earlier turn or call).
    pub(super) passed: bool,
    pub(super) limit: u32,
    pub(super) closed: bool,
    /// When the call began: an open shard that reaches records made since is caught up.
    pub(super) started_ms: u64,
    pub(super) events: mpsc::Sender<Event>,
}

impl ShardReader {
    pub(super) async fn run(mut self, first: Option<String>) {
        let event = self.read(first).await;
        // The merge gone (the call ended) is not this task's failure.
        let _ = self.events.send(event).await;
    }

    /// Reads to the shard's end, or until it is caught up, has read its turn, or fails:
    /// the last event.
    async fn read(&mut self, first: Option<String>) -> Event {
        let Some(mut iterator) = first else {
            return Event::Done(self.id.clone());
        };
        let (mut empty, mut renewals, mut pages) = (0, 0, 0);
        // When the iterator in hand was given: a kept one is judged by it (15 minutes).
        let mut given = std::time::Instant::now();
        // Once a record at or after `since` is seen, every later one of the shard is sent:
        // creation times are approximate, and a later record must never be dropped for a
        // time that reads earlier.
        let mut passed = self.passed || self.since_ms.is_none();
        loop {
            if pages >= PAGES_A_TURN {
                return Event::Yielded(self.id.clone(), Some((iterator, given)));
            }
            let Ok(slot) = self.events.reserve().await else {
                return Event::Yielded(self.id.clone(), None);
            };
            let page = match self.streams.records(&iterator, self.limit as i32).await {
                Ok(page) => page,
                Err(StreamError::IteratorExpired) if renewals < MAX_RENEWALS => {
                    renewals += 1;
                    slot.send(Event::Renewed);
                    match self
                        .streams
                        .iterator(&self.arn, &self.id, self.after.as_deref())
                        .await
                    {
                        Ok(Some(renewed)) => {
                            iterator = renewed;
                            continue;
                        }
                        Ok(None) => return Event::Done(self.id.clone()),
                        Err(err) => return Event::Failed(self.id.clone(), err),
                    }
                }
                Err(err) => return Event::Failed(self.id.clone(), err),
            };
            renewals = 0;
            pages += 1;
            let mut encoded = ShardPage {
                lines: Vec::new(),
                records: Vec::with_capacity(page.records.len()),
                last: None,
                read: page.records.len() as u64,
                passed,
            };
            let mut recent = false;
            for record in &page.records {
                if !passed {
                    passed = match (self.since_ms, record.created_ms) {
                        (Some(since), Some(created)) => created >= since,
                        _ => true,
                    };
                }
                if passed {
                    record.write_line(&mut encoded.lines, &self.arn);
                    encoded
                        .records
                        .push((encoded.lines.len(), record.sequence.clone()));
                }
                recent |= record
                    .created_ms
                    .is_some_and(|created| created + 1000 >= self.started_ms);
                encoded.last = Some(record.sequence.clone());
            }
            encoded.passed = passed;
            if let Some(last) = &encoded.last {
                self.after = Some(last.clone());
            }
            empty = if page.records.is_empty() {
                empty + 1
            } else {
                0
            };
            slot.send(Event::Page(self.id.clone(), encoded));
            let enough = if self.after.is_some() {
                EMPTY_PAGES_CAUGHT_UP
            } else {
                EMPTY_PAGES_FROM_START
            };
            match page.next {
                None => return Event::Done(self.id.clone()),
                Some(_) if !self.closed && (recent || empty >= enough) => {
                    return Event::CaughtUp(self.id.clone());
                }
                Some(next) => {
                    iterator = next;
                    given = std::time::Instant::now();
                    // A shard with a position asks again at once: at the end of a busy
                    // shard a pause would let records in and keep the call (whose records
                    // the client commits at its end) going. One read from its start waits
                    // between its empty pages, which DynamoDB may answer before its first
                    // records.
                    if empty > 0 && !self.closed && self.after.is_none() {
                        tokio::time::sleep(EMPTY_PAGE_PAUSE).await;
                    }
                }
            }
        }
    }
}
