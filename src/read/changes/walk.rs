//! The shard walk: every shard of the stream read in order, a child only once its parent
//! is read to its end, up to [`SHARDS_AT_ONCE`] independent shards at a time, their
//! pages merged into one body as they arrive, then the trailer with a sealed cursor.
//!
//! One task a shard reserves its slot in the merge before each `GetRecords`, so memory is
//! bounded by the shards at once times a page (at most 1,000 records, 1 MB). The merge
//! owns the positions: a shard's position moves only when its page is sent, so a cut
//! call's cursor covers exactly the records the client got. A child is started by the
//! merge once its parent's end has been taken, after every page of the parent was sent.
//!
//! Shards take turns: a task reads at most `shard::PAGES_A_TURN` pages, then gives its place
//! to the shard that has waited longest, so a busy shard cannot keep a quiet one from
//! being read until its records age out.
//!
//! A closed shard is done when it has no next iterator. An open shard is caught up when
//! it returns a record created after the call began (less a second: DynamoDB rounds), or
//! `shard::EMPTY_PAGES_CAUGHT_UP` empty pages in a row (`shard::EMPTY_PAGES_FROM_START` for
//! a shard with no record read yet) (DynamoDB may return an empty page
//! before records further on, and DynamoDB Local rounds times to the minute). When every
//! shard is caught up or done, the stream is described once more if a shard ended during
//! the call (its children may be new), and the call ends `caught_up`. A shard's iterator
//! that expires (15 minutes) is renewed after its last record.

use super::ShardPlan;
use super::shard::{Event, ShardPage, ShardReader};
use crate::dynamo::streams::{StreamError, Streams};
use crate::format::compress::{Compression, Compressor};
use crate::format::cursor::CursorSeal;
use crate::format::cursor::changes::{ChangeCursor, MAX_CHANGE_CURSOR_BYTES, ShardPosition};
use crate::format::error::ErrorKind;
use crate::format::trailer::{StopReason, Trailer, TrailerError};
use bytes::Bytes;
use futures::stream::BoxStream;
use std::collections::{BTreeMap, HashMap};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::warn;

/// Shards read at once.
pub const SHARDS_AT_ONCE: usize = 16;
/// How long an iterator kept from a turn is used for the next (they expire at 15 minutes).
const ITERATOR_REUSE: std::time::Duration = std::time::Duration::from_secs(600);
/// `DescribeStream` calls a walk makes at most, the first included (its limit is 10 a
/// second per account).
const MAX_DESCRIBES: u32 = 10;

/// What a walk reads and how it stops.
#[derive(Debug, Clone)]
pub struct Walk {
    /// The stream.
    pub arn: String,
    /// The seal of the cursor.
    pub seal: CursorSeal,
    /// Records created before this are read but not sent.
    pub since_ms: Option<u64>,
    /// The oldest record the read needs from a shard it has not started: what the cursor
    /// says while some shard is unstarted.
    pub needed_ms: Option<u64>,
    /// Records a `GetRecords` asks for.
    pub limit: u32,
    /// Records sent at most.
    pub max_items: Option<u64>,
    /// The body's compression.
    pub compression: Compression,
    /// Bytes on the wire at most (the first page always goes).
    pub max_bytes: u64,
    /// When to stop.
    pub deadline: Option<Instant>,
    /// When the call began (milliseconds since the epoch), before the stream was listed:
    /// an open shard that reaches records made since is caught up, and a shard made since
    /// is new to this call.
    pub started_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Waiting,
    Reading,
    CaughtUp,
    Done,
}

#[derive(Debug)]
struct Shard {
    parent: Option<String>,
    state: State,
    after: Option<String>,
    closed: bool,
    /// When it last started a turn (0: never): the longest waiting goes first.
    turn: u64,
    /// Whether it passed `since`: every later record of it is sent.
    passed: bool,
    /// The iterator its last turn stopped at, and when: the next turn goes on from it, so
    /// progress through empty pages is kept within a call.
    iterator: Option<(String, std::time::Instant)>,
}

/// Starts the walk over `plan` (every listed shard's place): the iterators of the first
/// shards are taken before this returns, so a trimmed position is a refusal, not a line.
pub async fn start(
    streams: Streams,
    walk: Walk,
    plan: BTreeMap<String, ShardPlan>,
) -> Result<BoxStream<'static, Bytes>, StreamError> {
    let mut shards: BTreeMap<String, Shard> = plan
        .into_iter()
        .map(|(id, plan)| {
            let (state, after) = match plan.position {
                Some(ShardPosition::Done) => (State::Done, None),
                Some(ShardPosition::After(sequence)) => (State::Waiting, Some(sequence)),
                None => (State::Waiting, None),
            };
            let shard = Shard {
                parent: plan.parent,
                state,
                after,
                closed: plan.closed,
                turn: 0,
                passed: plan.passed,
                iterator: None,
            };
            (id, shard)
        })
        .collect();
    let first: Vec<String> = ready(&shards).into_iter().take(SHARDS_AT_ONCE).collect();
    let iterators = futures::future::try_join_all(first.iter().map(|id| {
        let shard = &shards[id];
        streams.iterator(&walk.arn, id, shard.after.as_deref())
    }))
    .await?;
    let (out, body) = mpsc::channel::<Bytes>(2);
    let (events, inbox) = mpsc::channel::<Event>(SHARDS_AT_ONCE);
    let mut tasks = JoinSet::new();
    let started_ms = walk.started_ms;
    let mut turns = 0;
    for (id, iterator) in first.into_iter().zip(iterators) {
        let Some(shard) = shards.get_mut(&id) else {
            continue;
        };
        turns += 1;
        shard.state = State::Reading;
        shard.turn = turns;
        let reader = reader(&streams, &walk, &id, shard, started_ms, events.clone());
        tasks.spawn(reader.run(iterator));
    }
    let merge = Merge {
        streams,
        compressor: Compressor::new(walk.compression),
        walk,
        shards,
        tasks,
        events,
        inbox,
        out,
        started: std::time::Instant::now(),
        ttfb_ms: None,
        items: 0,
        read: 0,
        pages: 0,
        renewals: 0,
        wire: 0,
        ended_shards: false,
        describes: 1,
        started_ms,
        turns,
    };
    tokio::spawn(merge.run());
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(body)))
}

/// The shards that may start: waiting, with no parent left to read; the one that has
/// waited longest first.
fn ready(shards: &BTreeMap<String, Shard>) -> Vec<String> {
    let mut ready: Vec<(u64, &String)> = shards
        .iter()
        .filter(|(_, shard)| shard.state == State::Waiting)
        .filter(|(_, shard)| {
            shard
                .parent
                .as_ref()
                .and_then(|parent| shards.get(parent))
                .is_none_or(|parent| parent.state == State::Done)
        })
        .map(|(id, shard)| (shard.turn, id))
        .collect();
    ready.sort();
    ready.into_iter().map(|(_, id)| id.clone()).collect()
}

/// The reader of shard `id` for this walk, from where `shard` stands.
fn reader(
    streams: &Streams,
    walk: &Walk,
    id: &str,
    shard: &Shard,
    started_ms: u64,
    events: mpsc::Sender<Event>,
) -> ShardReader {
    ShardReader {
        streams: streams.clone(),
        arn: walk.arn.clone(),
        id: id.to_string(),
        after: shard.after.clone(),
        since_ms: walk.since_ms,
        passed: shard.passed,
        limit: walk.limit,
        closed: shard.closed,
        started_ms,
        events,
    }
}

/// The clock, in milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// The merge: takes the shards' events in arrival order, sends their pages, starts
/// children as parents end, and ends with the trailer.
struct Merge {
    streams: Streams,
    walk: Walk,
    compressor: Option<Compressor>,
    shards: BTreeMap<String, Shard>,
    tasks: JoinSet<()>,
    events: mpsc::Sender<Event>,
    inbox: mpsc::Receiver<Event>,
    out: mpsc::Sender<Bytes>,
    started: std::time::Instant,
    ttfb_ms: Option<u64>,
    items: u64,
    read: u64,
    pages: u64,
    renewals: u64,
    wire: u64,
    ended_shards: bool,
    describes: u32,
    /// When the call began (milliseconds since the epoch).
    started_ms: u64,
    /// Turns handed out so far.
    turns: u64,
}

impl Merge {
    async fn run(mut self) {
        let (reason, error) = self.walk_shards().await;
        self.tasks.abort_all();
        let trailer = self.trailer(reason, error);
        let line = trailer.to_line();
        let last = match self.compressor.take() {
            Some(compressor) => compressor.finish(&line),
            None => Bytes::from(line),
        };
        let _ = self.out.send(last).await;
    }

    /// Runs until the call stops: why, and the failure if one stopped it.
    async fn walk_shards(&mut self) -> (StopReason, Option<TrailerError>) {
        let deadline = self.walk.deadline;
        loop {
            self.start_ready();
            // A shard leaves `Reading` only by its last event, which its task sends before
            // it ends: a task's end says nothing of the events still in the inbox.
            if !self
                .shards
                .values()
                .any(|shard| shard.state == State::Reading)
            {
                if self.ended_shards && self.describes < MAX_DESCRIBES {
                    self.ended_shards = false;
                    self.describes += 1;
                    if let Err(err) = self.describe_again().await {
                        return (StopReason::Error, Some(stream_failure(&err)));
                    }
                    continue;
                }
                return (StopReason::CaughtUp, None);
            }
            let event = tokio::select! {
                () = sleep_until(deadline) => return (StopReason::TimeBudget, None),
                event = self.inbox.recv() => event,
                joined = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Some(Err(err)) = joined && err.is_panic() {
                        warn!("a shard task panicked");
                        return (StopReason::Error, Some(TrailerError::of(ErrorKind::Internal, None)));
                    }
                    continue;
                }
            };
            let Some(event) = event else {
                return (
                    StopReason::Error,
                    Some(TrailerError::of(ErrorKind::Internal, None)),
                );
            };
            match event {
                Event::Page(id, page) => {
                    if let Some(stop) = self.send_page(&id, page).await {
                        return (stop, None);
                    }
                }
                Event::Done(id) => {
                    self.set_state(&id, State::Done);
                    self.ended_shards = true;
                }
                Event::CaughtUp(id) => self.set_state(&id, State::CaughtUp),
                Event::Yielded(id, iterator) => {
                    self.set_state(&id, State::Waiting);
                    if let Some(shard) = self.shards.get_mut(&id) {
                        shard.iterator = iterator;
                    }
                }
                Event::Renewed => self.renewals += 1,
                Event::Failed(id, err) => {
                    warn!(shard = %id, error = %err, "a shard failed");
                    return (StopReason::Error, Some(stream_failure(&err)));
                }
            }
        }
    }

    fn set_state(&mut self, id: &str, state: State) {
        if let Some(shard) = self.shards.get_mut(id) {
            shard.state = state;
        }
    }

    /// Starts the shards that may start, up to [`SHARDS_AT_ONCE`] reading.
    fn start_ready(&mut self) {
        let reading = self
            .shards
            .values()
            .filter(|shard| shard.state == State::Reading)
            .count();
        for id in ready(&self.shards)
            .into_iter()
            .take(SHARDS_AT_ONCE.saturating_sub(reading))
        {
            let parent_passed = self
                .shards
                .get(&id)
                .and_then(|shard| shard.parent.as_ref())
                .and_then(|parent| self.shards.get(parent))
                .is_some_and(|parent| parent.passed);
            let Some(shard) = self.shards.get_mut(&id) else {
                continue;
            };
            self.turns += 1;
            shard.state = State::Reading;
            shard.turn = self.turns;
            // A key's records move from a parent to its children: once the parent passed
            // `since`, its children's records are all after it.
            shard.passed |= parent_passed;
            let reader = reader(
                &self.streams,
                &self.walk,
                &id,
                shard,
                self.started_ms,
                self.events.clone(),
            );
            // An iterator lasts 15 minutes: one kept from the last turn is used well before.
            if let Some((iterator, _)) = shard
                .iterator
                .take()
                .filter(|(_, at)| at.elapsed() < ITERATOR_REUSE)
            {
                self.tasks.spawn(reader.run(Some(iterator)));
                continue;
            }
            let streams = self.streams.clone();
            let arn = self.walk.arn.clone();
            let after = shard.after.clone();
            self.tasks.spawn(async move {
                match streams.iterator(&arn, &id, after.as_deref()).await {
                    Ok(first) => reader.run(first).await,
                    Err(err) => {
                        let _ = reader.events.send(Event::Failed(id, err)).await;
                    }
                }
            });
        }
    }

    /// Lists the stream again for the children of shards that ended.
    async fn describe_again(&mut self) -> Result<(), StreamError> {
        let listed = self.streams.describe(&self.walk.arn).await?;
        let known: std::collections::HashSet<&str> =
            listed.shards.iter().map(|s| s.id.as_str()).collect();
        let mut new = Vec::new();
        for shard in &listed.shards {
            if !self.shards.contains_key(&shard.id) {
                let parent = shard.parent.clone().filter(|parent| {
                    known.contains(parent.as_str()) || self.shards.contains_key(parent)
                });
                new.push((shard.id.clone(), parent, shard.closed));
            }
        }
        for (id, parent, closed) in new {
            self.shards.insert(
                id,
                Shard {
                    parent,
                    state: State::Waiting,
                    after: None,
                    closed,
                    turn: 0,
                    passed: false,
                    iterator: None,
                },
            );
        }
        Ok(())
    }

    /// Sends a page (cut to `max_items`), moving its shard's position: the reason to stop
    /// when the call must stop here.
    async fn send_page(&mut self, id: &str, mut page: ShardPage) -> Option<StopReason> {
        let mut stop = None;
        if let Some(max) = self.walk.max_items {
            let left = usize::try_from(max.saturating_sub(self.items)).unwrap_or(usize::MAX);
            if page.records.len() >= left {
                stop = Some(StopReason::MaxItems);
                if page.records.len() > left {
                    page.records.truncate(left);
                    let end = page.records.last().map_or(0, |(end, _)| *end);
                    page.lines.truncate(end);
                    page.last = page.records.last().map(|(_, sequence)| sequence.clone());
                }
            }
        }
        if self.wire > 0 && self.wire + page.lines.len() as u64 > self.walk.max_bytes {
            return Some(StopReason::ByteBudget);
        }
        self.pages += 1;
        self.read += page.read;
        if !page.lines.is_empty() {
            let wire = match self.compressor.as_mut() {
                Some(compressor) => compressor.page(&page.lines),
                None => Bytes::from(page.lines),
            };
            self.wire += wire.len() as u64;
            if self.out.send(wire).await.is_err() {
                // The client went away: nothing more is sent, and nothing is owed.
                return Some(StopReason::Error);
            }
            self.ttfb_ms
                .get_or_insert_with(|| self.started.elapsed().as_millis() as u64);
            self.items += page.records.len() as u64;
        }
        if let Some(shard) = self.shards.get_mut(id) {
            shard.passed |= page.passed;
            if let Some(last) = page.last {
                shard.after = Some(last);
            }
        }
        stop
    }

    fn trailer(&self, mut reason: StopReason, mut error: Option<TrailerError>) -> Trailer {
        let elapsed_ms = self.started.elapsed().as_millis() as u64;
        let mut cursor = Some(self.cursor().encode(&self.walk.seal.secret));
        if cursor
            .as_ref()
            .is_some_and(|token| token.len() > MAX_CHANGE_CURSOR_BYTES)
        {
            // Never a cursor this server would refuse: the read cannot go on, and says so.
            cursor = None;
            reason = StopReason::Error;
            error = Some(TrailerError {
                code: "TooManyShards".into(),
                message: format!(
                    "the stream has more open shards than a cursor of {MAX_CHANGE_CURSOR_BYTES} bytes holds"
                ),
                segment: None,
            });
        }
        Trailer {
            changes_since: None,
            complete: reason == StopReason::CaughtUp,
            items: self.items,
            scanned: self.read,
            pages: self.pages,
            consumed_capacity: None,
            rcu_per_s: None,
            rcu_wait_ms: None,
            retries: self.renewals,
            segments: Vec::new(),
            partitions: None,
            elapsed_ms,
            ttfb_ms: self.ttfb_ms.unwrap_or(elapsed_ms),
            reason: Some(reason),
            cursor,
            error,
        }
    }

    /// Every shard's position: a done shard is left out once a child of it is held.
    fn cursor(&self) -> ChangeCursor {
        let mut positions: BTreeMap<String, ShardPosition> = self
            .shards
            .iter()
            .filter_map(|(id, shard)| {
                let position = match (&shard.state, &shard.after) {
                    (State::Done, _) => ShardPosition::Done,
                    (_, Some(after)) => ShardPosition::After(after.clone()),
                    (_, None) => return None,
                };
                Some((id.clone(), position))
            })
            .collect();
        let implied: Vec<String> = positions
            .keys()
            .filter_map(|id| self.shards.get(id).and_then(|shard| shard.parent.clone()))
            .collect();
        let parents: HashMap<&str, ()> = implied.iter().map(|p| (p.as_str(), ())).collect();
        positions.retain(|id, position| {
            !(*position == ShardPosition::Done && parents.contains_key(id.as_str()))
        });
        // Records a shard not started holds may be as old as the read's start; once every
        // listed shard is held, only shards made after this call began are new.
        // A shard read to nothing new this call (caught up) needs nothing older than the
        // call; a minute's slack for DynamoDB's rounded times.
        let unstarted = self.shards.values().any(|shard| {
            matches!(shard.state, State::Waiting | State::Reading) && shard.after.is_none()
        });
        let needed_ms = if unstarted {
            self.walk.needed_ms
        } else {
            Some(self.started_ms.saturating_sub(60_000))
        };
        // Shards with a position that have not reached `since` yet: the next call must
        // not send their records from before it.
        let skipping = self
            .shards
            .iter()
            .filter(|(_, shard)| {
                self.walk.since_ms.is_some()
                    && !shard.passed
                    && shard.state != State::Done
                    && shard.after.is_some()
            })
            .map(|(id, _)| id.clone())
            .collect();
        ChangeCursor {
            table: self.walk.seal.table.clone(),
            stream: self.walk.arn.clone(),
            since_ms: self.walk.since_ms,
            needed_ms,
            skipping,
            shards: positions,
        }
    }
}

/// The trailer's error for a stream call that failed mid-read.
fn stream_failure(err: &StreamError) -> TrailerError {
    match err {
        StreamError::Trimmed | StreamError::NotFound => TrailerError {
            code: "ChangesGone".into(),
            message: err.to_string(),
            segment: None,
        },
        StreamError::IteratorExpired => TrailerError::of(ErrorKind::Internal, None),
        StreamError::Upstream(err) => TrailerError::of(err.kind, None),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
