//! The fan-out and the merge: one task per segment, one NDJSON stream out.
//!
//! Each segment task fetches a page, encodes it into one buffer of whole lines (so lines
//! of different segments never interleave mid-line), and hands it to a channel shared by
//! all segments. The channel holds one slot per segment and a task reserves its slot
//! *before* fetching, so at most one page per segment is in flight or waiting: a slow
//! client slows the scan, and memory is bounded by segments x page size, never by the
//! table. Dropping the stream (the client went away) aborts every segment task.
//!
//! The merge records each segment's position as its pages are *sent*, so when the stream
//! stops early (an error, `max_items`, the time or byte budget) the trailer's cursor
//! resumes exactly after the last item sent: pages fetched but not sent are read again.

use super::budget::Budget;
use super::filtered::FullPages;
use super::segment::{EncodedPage, Event, Segment};
use crate::dynamo::source::PageSource;
use crate::format::compress::{Compression, Compressor};
use crate::format::cursor::{CursorSeal, Position};
use crate::format::error::{ErrorKind, UpstreamError};
use crate::format::json::Format;
use crate::format::rate::RateLimit;
use crate::format::shape::ReadShape;
use crate::format::trailer::{StopReason, Trailer, TrailerError};
use crate::read::tally::{SentPage, Tally};
use bytes::Bytes;
use futures::Stream;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::{Id, JoinSet};
use tokio::time::{Instant, Sleep};
use tracing::{Instrument, info, info_span, warn};

/// What one invocation reads, and when it stops.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    /// The table is split into this many segments (DynamoDB's `TotalSegments`).
    pub total_segments: u32,
    /// The first segment this invocation reads.
    pub segment_offset: u32,
    /// Where each segment of this invocation starts: `positions[i]` is segment
    /// `segment_offset + i`. Segments already done are not read.
    pub positions: Vec<Position>,
    /// Items per page (DynamoDB's `Limit`).
    pub limit: u32,
    /// Projection, consistency, index, partition.
    pub shape: Arc<ReadShape>,
    /// Send at most this many items.
    pub max_items: Option<u64>,
    /// Send at most about this many bytes (at least one page is always sent, so every
    /// resumed stream makes progress).
    pub max_bytes: Option<u64>,
    /// Stop when this instant passes.
    pub deadline: Option<Instant>,
    /// What cursors are made with; without it an incomplete trailer has no cursor.
    pub seal: Option<CursorSeal>,
    /// How items are written.
    pub format: Format,
    /// How the body is compressed.
    pub compression: Compression,
    /// Read at most this many capacity units a second, over all segments.
    pub max_rcu: Option<f64>,
    /// The attributes of an item's position ([`super::filtered::position_key`]). Given, a
    /// filtered read under `max_items` reads whole pages and cuts them after the last item
    /// the budget allows; empty, each page's `Limit` is what the budget has left.
    pub position_key: Vec<String>,
}

impl ScanPlan {
    /// A plain scan of segments `0..segments` from their start, no budgets, no cursor.
    pub fn segments(segments: u32, limit: u32) -> Self {
        Self {
            total_segments: segments,
            segment_offset: 0,
            positions: vec![Position::Start; segments as usize],
            limit,
            shape: Arc::default(),
            max_items: None,
            max_bytes: None,
            deadline: None,
            seal: None,
            format: Format::Json,
            compression: Compression::None,
            max_rcu: None,
            position_key: Vec::new(),
        }
    }
}

/// What a [`ScanStream`] hands out, read as [`ScanStream::poll_chunk`] gives it: pages of
/// lines, then the trailer.
#[derive(Debug)]
pub enum Chunk {
    /// A page's lines (never compressed here), counted as sent.
    Page {
        /// Whole lines.
        lines: Bytes,
        /// Items in them.
        items: u64,
    },
    /// The end: the trailer of everything handed out (boxed: a trailer is large, and
    /// pages are most of what passes).
    End(Box<Trailer>),
}

/// The merged stream: NDJSON buffers in arrival order, then exactly one trailer line.
#[derive(Debug)]
pub struct ScanStream {
    rx: mpsc::Receiver<Event>,
    /// Owning the tasks means dropping the stream aborts them: a client that disconnects
    /// stops the scan instead of leaving it to run (and bill) to the end.
    tasks: JoinSet<()>,
    /// Which slot each task reads, to name the segment of a task that panicked.
    slots: HashMap<Id, usize>,
    /// Where each segment stands and what was sent: the trailer's numbers.
    tally: Tally,
    /// Send at most about this many bytes, counted on the wire (compressed).
    max_bytes: Option<u64>,
    /// Bytes handed to the client so far, compressed if the body is.
    wire_bytes: u64,
    /// The body's encoder, when it is compressed; taken when the trailer ends the stream.
    compressor: Option<Compressor>,
    /// Items the segment tasks may still fetch under `max_items`.
    budget: Arc<Budget>,
    /// The read-rate cap the segment tasks share, when there is one.
    rate: Option<Arc<RateLimit>>,
    started: Instant,
    ttfb: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    reason: Option<StopReason>,
    error: Option<TrailerError>,
    /// The first page, awaited by [`start`] and sent first: recorded only when it is
    /// handed out, so until then the tally is the read's start.
    first: Option<EncodedPage>,
    finished: bool,
}

/// Starts reading `plan` from `source` and waits for the first page.
///
/// Returns the error instead of a stream when the first thing to arrive is a failure
/// (a missing table, say), or when the plan's deadline passes first, so the caller can
/// answer with a real status code.
pub async fn start<S: PageSource>(
    source: Arc<S>,
    plan: ScanPlan,
) -> Result<ScanStream, UpstreamError> {
    let started = Instant::now();
    // Where each unfinished position starts: segments of a Scan, partitions of a Query.
    let pending: VecDeque<(usize, Option<crate::format::item::Item>)> = plan
        .positions
        .iter()
        .enumerate()
        .filter_map(|(slot, position)| match position {
            Position::Done => None,
            Position::Start => Some((slot, None)),
            Position::After(key) => Some((slot, Some(key.clone()))),
        })
        .collect();
    // A Scan runs one task per segment; a Query, `concurrency` workers that take the
    // partitions one after another, so memory stays bounded by workers x page size
    // however many partitions there are.
    let partitions = plan.shape.query.as_ref().map(|query| {
        (
            Arc::new(query.partitions.clone()),
            (query.concurrency.max(1) as usize).min(pending.len()),
        )
    });
    let width = match &partitions {
        Some((_, workers)) => *workers,
        None => plan.positions.len(),
    }
    .max(1);
    let (tx, rx) = mpsc::channel(width);
    let budget = Budget::new(plan.max_items);
    let rate = plan
        .max_rcu
        .map(|rcu| Arc::new(RateLimit::new(rcu, width as u32)));
    let full = plan
        .max_items
        .and_then(|_| FullPages::new(&plan.shape, plan.position_key.clone()))
        .map(Arc::new);
    let mut tasks = JoinSet::new();
    let mut slots = HashMap::new();
    let template = Segment {
        source: source.clone(),
        slot: 0,
        segment: 0,
        total_segments: plan.total_segments,
        partition: None,
        limit: plan.limit,
        shape: plan.shape.clone(),
        format: plan.format,
        tx: tx.clone(),
        budget: budget.clone(),
        rate: rate.clone(),
        full,
    };
    match partitions {
        None => {
            for (slot, start_key) in pending {
                let segment = plan.segment_offset + slot as u32;
                let span = info_span!("segment", segment, total_segments = plan.total_segments);
                let task = Segment {
                    slot,
                    segment,
                    ..template.clone()
                };
                let handle = tasks.spawn(
                    async move {
                        task.run(start_key).await;
                    }
                    .instrument(span),
                );
                slots.insert(handle.id(), slot);
            }
        }
        Some((values, workers)) => {
            let queue = Arc::new(std::sync::Mutex::new(pending));
            for worker in 0..workers {
                let queue = queue.clone();
                let values = values.clone();
                let template = template.clone();
                let span = info_span!("worker", worker, partitions = values.len());
                tasks.spawn(
                    async move {
                        loop {
                            // Poisoned only by a panic elsewhere, which ends the stream.
                            let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                            let Some((slot, start_key)) = next else {
                                return;
                            };
                            let task = Segment {
                                slot,
                                segment: slot as u32,
                                partition: values.get(slot).cloned(),
                                ..template.clone()
                            };
                            if !task
                                .run(start_key)
                                .instrument(info_span!("partition", slot))
                                .await
                            {
                                return;
                            }
                        }
                    }
                    .instrument(span),
                );
            }
        }
    }
    drop(template);
    drop(tx);
    let plan_deadline = plan.deadline;
    let mut stream = ScanStream {
        rx,
        tasks,
        slots,
        tally: Tally::new(
            plan.total_segments,
            plan.segment_offset,
            plan.positions,
            plan.shape,
            plan.seal,
        ),
        max_bytes: plan.max_bytes,
        wire_bytes: 0,
        compressor: Compressor::new(plan.compression),
        budget,
        rate,
        started,
        ttfb: Duration::ZERO,
        deadline: plan
            .deadline
            .map(|at| Box::pin(tokio::time::sleep_until(at))),
        reason: None,
        error: None,
        first: None,
        finished: false,
    };
    if stream.tasks.is_empty() {
        // A cursor whose segments are all done: nothing to read, a complete trailer.
        return Ok(stream);
    }
    let first = std::future::poll_fn(|cx| stream.rx.poll_recv(cx));
    let first = match plan_deadline {
        Some(at) => tokio::time::timeout_at(at, first).await.map_err(|_| {
            UpstreamError::new(
                ErrorKind::TimedOut,
                "the deadline passed before the first page arrived",
            )
        })?,
        None => first.await,
    };
    match first {
        Some(Event::Page(page)) => {
            stream.ttfb = started.elapsed();
            stream.first = Some(page);
            Ok(stream)
        }
        Some(Event::Failed { error, .. }) => Err(error),
        // Every task stopped without a page: only `max_items` spent before any fetch
        // (impossible, it is at least 1) or a panic of every task gets here.
        None => Err(UpstreamError::new(
            ErrorKind::Internal,
            "every segment task ended without a page",
        )),
    }
}

impl ScanStream {
    /// Counts a page as sent and returns its lines.
    fn record(&mut self, page: EncodedPage) -> Bytes {
        self.tally.record(
            page.slot,
            SentPage {
                items: page.items,
                scanned: page.scanned,
                consumed_capacity: page.consumed_capacity,
                retries: page.retries,
                next: page.next,
            },
        );
        page.lines
    }

    /// The tally of what has been handed out so far.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// The trailer of `tally` (this stream's, as of some page) stopped for `reason`, with
    /// this stream's times and rate waits.
    pub fn trailer_of(
        &self,
        tally: &Tally,
        reason: StopReason,
        error: Option<TrailerError>,
    ) -> Trailer {
        let mut trailer = tally.trailer(Some(reason), error, self.started.elapsed(), self.ttfb);
        trailer.rcu_wait_ms = self.rcu_wait_ms();
        trailer
    }

    fn rcu_wait_ms(&self) -> Option<u64> {
        self.rate
            .as_ref()
            .map(|rate| u64::try_from(rate.waited().as_millis()).unwrap_or(u64::MAX))
    }

    /// The trailer for what has been sent so far.
    pub fn trailer(&self) -> Trailer {
        let mut reason = self.reason;
        let mut error = self.error.clone();
        if !self.tally.all_done() && reason.is_none() {
            if self.budget.is_spent() {
                reason = Some(StopReason::MaxItems);
            } else {
                // Only a panicked task ends a segment without a page, an error or a budget.
                reason = Some(StopReason::Error);
                error = Some(TrailerError::of(
                    ErrorKind::Internal,
                    self.tally.first_unfinished_segment(),
                ));
            }
        }
        let mut trailer = self
            .tally
            .trailer(reason, error, self.started.elapsed(), self.ttfb);
        trailer.rcu_wait_ms = self.rcu_wait_ms();
        trailer
    }

    fn finish(&mut self) -> Trailer {
        self.finished = true;
        self.tasks.abort_all();
        self.rx.close();
        let trailer = self.trailer();
        info!(
            complete = trailer.complete,
            items = trailer.items,
            pages = trailer.pages,
            retries = trailer.retries,
            elapsed_ms = trailer.elapsed_ms,
            reason = ?trailer.reason,
            "scan finished"
        );
        trailer
    }

    /// The trailer's line, compressed (ending the body's stream) if the body is.
    fn end(&mut self, trailer: &Trailer) -> Bytes {
        let line = trailer.to_line();
        match self.compressor.take() {
            Some(compressor) => compressor.finish(&line),
            None => Bytes::from(line),
        }
    }

    /// What goes on the wire for `lines`: compressed (and flushed) if the body is.
    fn emit(&mut self, lines: Bytes) -> Bytes {
        let wire = match self.compressor.as_mut() {
            Some(compressor) => compressor.page(&lines),
            None => lines,
        };
        self.wire_bytes += wire.len() as u64;
        wire
    }

    fn stop(&mut self, reason: StopReason) -> Trailer {
        self.reason = Some(reason);
        self.finish()
    }

    /// The slot of a segment task that panicked, if one did. Tasks that ended normally
    /// are reaped on the way.
    /// A Query worker reads many partitions, so its panic names none.
    fn poll_panicked(&mut self, cx: &mut Context<'_>) -> Option<Option<usize>> {
        while let Poll::Ready(Some(joined)) = self.tasks.poll_join_next_with_id(cx) {
            if let Err(err) = joined
                && err.is_panic()
            {
                warn!(task = %err.id(), "segment task panicked");
                return Some(self.slots.get(&err.id()).copied());
            }
        }
        None
    }

    /// Whether sending `page` would overrun the byte budget. The first page always goes,
    /// so a resumed stream always makes progress.
    fn over_byte_budget(&self, page: &EncodedPage) -> bool {
        // A page's plain size bounds what it adds compressed, give or take a few bytes.
        let sent = self.wire_bytes;
        match self.max_bytes {
            Some(max) if sent > 0 => sent + page.lines.len() as u64 > max,
            _ => false,
        }
    }
}

impl ScanStream {
    /// The next page, counted as sent, or the end. A page with no items (a filter that
    /// matched nothing) is counted and skipped.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        if let Some(first) = self.first.take() {
            let items = first.items;
            let lines = self.record(first);
            if !lines.is_empty() {
                return Poll::Ready(Some(Chunk::Page { lines, items }));
            }
        }
        while !self.finished {
            if let Some(deadline) = self.deadline.as_mut()
                && deadline.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Some(Chunk::End(Box::new(
                    self.stop(StopReason::TimeBudget),
                ))));
            }
            if let Some(slot) = self.poll_panicked(cx) {
                // A bug of ours: its pages sent so far stand, and the cursor resumes the
                // segment after them.
                self.error = Some(TrailerError::of(
                    ErrorKind::Internal,
                    slot.and_then(|slot| self.tally.error_segment(slot)),
                ));
                return Poll::Ready(Some(Chunk::End(Box::new(self.stop(StopReason::Error)))));
            }
            let event = match self.rx.poll_recv(cx) {
                Poll::Ready(event) => event,
                Poll::Pending => return Poll::Pending,
            };
            match event {
                Some(Event::Page(page)) => {
                    if self.over_byte_budget(&page) {
                        return Poll::Ready(Some(Chunk::End(Box::new(
                            self.stop(StopReason::ByteBudget),
                        ))));
                    }
                    let items = page.items;
                    let lines = self.record(page);
                    if !lines.is_empty() {
                        return Poll::Ready(Some(Chunk::Page { lines, items }));
                    }
                }
                Some(Event::Failed { slot, error }) => {
                    self.tally.add_retries(error.retries);
                    self.error = Some(TrailerError::of(error.kind, self.tally.error_segment(slot)));
                    return Poll::Ready(Some(Chunk::End(Box::new(self.stop(StopReason::Error)))));
                }
                None => return Poll::Ready(Some(Chunk::End(Box::new(self.finish())))),
            }
        }
        Poll::Ready(None)
    }
}

impl Stream for ScanStream {
    type Item = Bytes;

    /// The body: each page's lines (compressed, and counted against the byte budget, as
    /// they go), then the trailer's line.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = self.get_mut();
        match this.poll_chunk(cx) {
            Poll::Ready(Some(Chunk::Page { lines, .. })) => Poll::Ready(Some(this.emit(lines))),
            Poll::Ready(Some(Chunk::End(trailer))) => Poll::Ready(Some(this.end(&trailer))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::memory::MemorySource;
    use crate::format::item::Item;
    use crate::format::item::Value;
    use crate::format::trailer::{Trailer, split_body};
    use futures::StreamExt;

    fn table(count: usize) -> Vec<Item> {
        (0..count)
            .map(|i| Item::from([("id".to_string(), Value::S(format!("item-{i:05}")))]))
            .collect()
    }

    fn plan(segments: u32, limit: u32) -> ScanPlan {
        ScanPlan::segments(segments, limit)
    }

    async fn collect(stream: ScanStream) -> (Vec<String>, Trailer) {
        let chunks: Vec<Bytes> = stream.collect().await;
        let (items, trailer) = split_body(&chunks.concat()).expect("items, then the trailer");
        let mut ids: Vec<String> = items
            .iter()
            .map(|item| item["id"].as_str().expect("id").to_string())
            .collect();
        ids.sort();
        (ids, trailer)
    }

    #[tokio::test]
    async fn pages_of_all_segments_merge_into_every_item_once() {
        let source = Arc::new(MemorySource::new(table(257), "id"));
        let (ids, trailer) = collect(start(source, plan(5, 7)).await.expect("starts")).await;
        let mut expected: Vec<String> = (0..257).map(|i| format!("item-{i:05}")).collect();
        expected.sort();
        assert_eq!(ids, expected);
        assert!(trailer.complete);
        assert_eq!((trailer.items, trailer.scanned), (257, 257));
        assert_eq!(trailer.segments.iter().map(|s| s.items).sum::<u64>(), 257);
    }

    #[tokio::test]
    async fn a_failure_before_any_page_is_returned_not_streamed() {
        let source =
            Arc::new(MemorySource::new(table(10), "id").failing_at(0, ErrorKind::NotFound));
        let err = start(source, plan(1, 5)).await.expect_err("fails");
        assert_eq!(err.kind, ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn a_failure_mid_scan_ends_the_stream_with_an_incomplete_trailer() {
        let source =
            Arc::new(MemorySource::new(table(100), "id").failing_at(3, ErrorKind::Throttled));
        let (ids, trailer) = collect(start(source, plan(1, 10)).await.expect("starts")).await;
        assert_eq!(ids.len(), 30, "three pages made it");
        assert!(!trailer.complete);
        let error = trailer.error.expect("error in trailer");
        assert_eq!((error.code.as_str(), error.segment), ("Throttled", Some(0)));
        assert_eq!(trailer.items, 30);
    }

    #[tokio::test]
    async fn a_reader_that_stops_stops_the_scan_at_one_page_per_segment() {
        let segments = 4;
        let source = Arc::new(MemorySource::new(table(4000), "id"));
        let mut stream = start(source.clone(), plan(segments, 10))
            .await
            .expect("starts");
        let _first = stream.next().await.expect("a page");
        // Let every task run as far as it can while nobody reads.
        for _ in 0..50 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let stalled = source.calls();
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(
            source.calls(),
            stalled,
            "no Scan calls while the reader stalls"
        );
        // The page read, plus at most one page per segment (a channel slot each).
        assert_eq!(stalled, 1 + segments as usize, "calls while stalled");
        drop(stream);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            source.calls(),
            stalled,
            "no Scan call after the reader went away"
        );
    }
}

/// Plans for tests that stop a read and resume it: sealed with a fixed secret, and
/// resumed from such a cursor.
#[cfg(test)]
pub(crate) mod testing {
    use super::ScanPlan;
    use crate::format::cursor::{Cursor, CursorSeal};
    use std::sync::Arc;

    /// The secret the plans seal with.
    pub(crate) const SECRET: &[u8] = b"test";

    /// Segments `0..segments` from their start, sealed.
    pub(crate) fn sealed(segments: u32, limit: u32) -> ScanPlan {
        ScanPlan {
            seal: Some(CursorSeal {
                table: "mem".into(),
                secret: Arc::from(SECRET),
            }),
            ..ScanPlan::segments(segments, limit)
        }
    }

    /// The read a cursor of [`sealed`]'s resumes, `limit` a page.
    pub(crate) fn resumed(token: &str, limit: u32) -> ScanPlan {
        let cursor = Cursor::decode(token, SECRET, 1 << 20).expect("our own cursor decodes");
        ScanPlan {
            total_segments: cursor.total_segments,
            segment_offset: cursor.segment_offset,
            positions: cursor.positions,
            shape: Arc::new(cursor.shape),
            ..sealed(1, limit)
        }
    }
}

#[cfg(test)]
mod budget_tests {
    //! Stopping early and resuming: whatever stops a stream, following its cursor
    //! delivers exactly the items not yet sent.

    use super::testing::{resumed, sealed};
    use super::*;
    use crate::dynamo::memory::MemorySource;
    use crate::dynamo::source::PageRequest;
    use crate::format::item::Item;
    use crate::format::item::Value;
    use crate::format::trailer::{Trailer, split_body};
    use futures::StreamExt;

    fn table(count: usize) -> Vec<Item> {
        (0..count)
            .map(|i| {
                Item::from([
                    ("id".to_string(), Value::S(format!("item-{i:05}"))),
                    ("n".to_string(), Value::N(i.to_string())),
                ])
            })
            .collect()
    }

    async fn run(source: Arc<MemorySource>, plan: ScanPlan) -> (Vec<String>, Trailer) {
        let stream = start(source, plan).await.expect("starts");
        let body: Vec<u8> = stream.collect::<Vec<Bytes>>().await.concat();
        let (items, trailer) = split_body(&body).expect("items, then the trailer");
        let ids = items.iter().map(|item| item["id"].to_string()).collect();
        (ids, trailer)
    }

    /// Follows cursors until the stream is complete; returns every id and the number of
    /// invocations it took.
    async fn follow(
        source: Arc<MemorySource>,
        first: ScanPlan,
        next: impl Fn(&str) -> ScanPlan,
    ) -> (Vec<String>, usize) {
        let (mut all, mut trailer) = run(source.clone(), first).await;
        let mut rounds = 1;
        while !trailer.complete {
            let cursor = trailer
                .cursor
                .clone()
                .expect("an incomplete trailer carries a cursor");
            let (ids, t) = run(source.clone(), next(&cursor)).await;
            assert!(
                !ids.is_empty() || t.complete,
                "every resumed stream makes progress"
            );
            all.extend(ids);
            trailer = t;
            rounds += 1;
            assert!(rounds < 10_000, "cursor loop does not end");
        }
        assert!(
            trailer.cursor.is_none() && trailer.reason.is_none(),
            "{trailer:?}"
        );
        all.sort();
        (all, rounds)
    }

    fn all_ids(count: usize) -> Vec<String> {
        let mut ids: Vec<String> = table(count)
            .iter()
            .map(|item| match &item["id"] {
                Value::S(s) => format!("{s:?}"),
                _ => unreachable!(),
            })
            .collect();
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn max_items_stops_with_a_cursor_and_resuming_gets_the_rest() {
        let source = Arc::new(MemorySource::new(table(500), "id"));
        let first = ScanPlan {
            max_items: Some(120),
            ..sealed(4, 25)
        };
        let (ids, trailer) = run(source.clone(), first.clone()).await;
        assert_eq!(ids.len(), 120);
        assert_eq!(
            (trailer.complete, trailer.reason),
            (false, Some(StopReason::MaxItems))
        );
        let (all, rounds) = follow(source, first, |c| ScanPlan {
            max_items: Some(120),
            ..resumed(c, 25)
        })
        .await;
        assert_eq!(all, all_ids(500));
        assert_eq!(rounds, 5);
    }

    #[tokio::test]
    async fn a_failed_segment_resumes_exactly_where_it_stopped() {
        // Call 6 fails; the healthy source then serves the resumed read.
        let failing =
            Arc::new(MemorySource::new(table(300), "id").failing_at(6, ErrorKind::Throttled));
        let (first_ids, trailer) = run(failing, sealed(3, 10)).await;
        assert_eq!(trailer.reason, Some(StopReason::Error));
        assert_eq!(
            trailer.error.as_ref().map(|e| e.code.as_str()),
            Some("Throttled")
        );
        let cursor = trailer.cursor.expect("cursor");
        let healthy = Arc::new(MemorySource::new(table(300), "id"));
        let (rest, trailer) = run(healthy, resumed(&cursor, 10)).await;
        assert!(trailer.complete);
        let mut all: Vec<String> = first_ids.into_iter().chain(rest).collect();
        all.sort();
        assert_eq!(all, all_ids(300), "none lost, none twice");
    }

    #[tokio::test]
    async fn the_byte_budget_stops_between_pages() {
        let source = Arc::new(MemorySource::new(table(400), "id"));
        let first = ScanPlan {
            max_bytes: Some(3000),
            ..sealed(2, 20)
        };
        let (ids, trailer) = run(source.clone(), first.clone()).await;
        assert_eq!(trailer.reason, Some(StopReason::ByteBudget));
        assert!(!ids.is_empty() && ids.len() < 400);
        let (all, _) = follow(source, first, |c| ScanPlan {
            max_bytes: Some(3000),
            ..resumed(c, 20)
        })
        .await;
        assert_eq!(all, all_ids(400));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_stops_the_stream_with_a_cursor() {
        let source =
            Arc::new(MemorySource::new(table(200), "id").with_delay(Duration::from_millis(100)));
        let first = ScanPlan {
            deadline: Some(Instant::now() + Duration::from_millis(450)),
            ..sealed(2, 10)
        };
        let (ids, trailer) = run(source.clone(), first).await;
        assert_eq!(trailer.reason, Some(StopReason::TimeBudget));
        assert!(!ids.is_empty() && ids.len() < 200, "{}", ids.len());
        let (all, _) = follow(source, sealed(2, 10), |c| resumed(c, 10)).await;
        assert_eq!(all.len(), 200);
    }

    #[tokio::test]
    async fn a_cursor_with_every_segment_done_is_a_complete_empty_stream() {
        let source = Arc::new(MemorySource::new(table(10), "id"));
        let plan = ScanPlan {
            positions: vec![Position::Done, Position::Done],
            ..sealed(2, 10)
        };
        let (ids, trailer) = run(source.clone(), plan).await;
        assert!(ids.is_empty() && trailer.complete);
        assert_eq!(source.calls(), 0);
    }

    #[tokio::test]
    async fn a_panicking_segment_ends_the_stream_promptly_with_an_internal_error_and_a_cursor() {
        // Call 3 panics holding a reservation of the max_items budget.
        let panicking = Arc::new(MemorySource::new(table(400), "id").panicking_at(3));
        let plan = ScanPlan {
            max_items: Some(300),
            ..sealed(4, 20)
        };
        let (first_ids, trailer) =
            tokio::time::timeout(Duration::from_secs(5), run(panicking, plan))
                .await
                .expect("the stream ends promptly");
        assert_eq!(trailer.reason, Some(StopReason::Error), "{trailer:?}");
        let error = trailer.error.expect("an error");
        assert_eq!(error.code, "Internal");
        let cursor = trailer.cursor.expect("a cursor");
        let healthy = Arc::new(MemorySource::new(table(400), "id"));
        let (rest, _) = follow(healthy, resumed(&cursor, 20), |c| resumed(c, 20)).await;
        let mut all: Vec<String> = first_ids.into_iter().chain(rest).collect();
        all.sort();
        assert_eq!(all, all_ids(400), "none lost, none twice");
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_before_the_first_page_is_a_timeout_not_a_hang() {
        let slow =
            Arc::new(MemorySource::new(table(10), "id").with_delay(Duration::from_secs(3600)));
        let plan = ScanPlan {
            deadline: Some(Instant::now() + Duration::from_secs(5)),
            ..sealed(2, 10)
        };
        let err = start(slow, plan).await.expect_err("no page in time");
        assert_eq!(err.kind, ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn short_last_pages_never_end_a_stream_short_of_max_items() {
        // Segments of a few items each: most pages are a segment's short last page.
        for (count, segments, limit, max) in [(97, 13, 4, 30), (50, 16, 3, 49), (200, 7, 9, 101)] {
            let source = Arc::new(MemorySource::new(table(count), "id"));
            let plan = ScanPlan {
                max_items: Some(max),
                ..sealed(segments, limit)
            };
            let mut all = Vec::new();
            let mut plan = plan;
            loop {
                let (ids, trailer) = run(source.clone(), plan).await;
                let got = ids.len() as u64;
                all.extend(ids);
                if trailer.complete {
                    break;
                }
                assert_eq!(trailer.reason, Some(StopReason::MaxItems), "{trailer:?}");
                assert_eq!(got, max, "an incomplete stream carries exactly max_items");
                let cursor = trailer.cursor.expect("a cursor");
                plan = ScanPlan {
                    max_items: Some(max),
                    ..resumed(&cursor, limit)
                };
            }
            all.sort();
            assert_eq!(all, all_ids(count));
        }
    }

    fn gunzip(chunks: &[Bytes]) -> Vec<Vec<u8>> {
        use std::io::Write;
        let mut decoder = flate2::write::GzDecoder::new(Vec::new());
        chunks
            .iter()
            .map(|chunk| {
                decoder.write_all(chunk).expect("gzip");
                decoder.flush().expect("flush");
                decoder.get_ref().clone()
            })
            .collect()
    }

    #[tokio::test]
    async fn a_compressed_stream_decodes_page_by_page_to_the_plain_one() {
        let source = Arc::new(MemorySource::new(table(300), "id"));
        let plan = |compression| ScanPlan {
            compression,
            format: Format::Dynamodb,
            ..sealed(3, 20)
        };
        let chunks: Vec<Bytes> = start(source.clone(), plan(Compression::Gzip))
            .await
            .expect("starts")
            .collect()
            .await;
        let decoded = gunzip(&chunks);
        for (i, so_far) in decoded.iter().enumerate() {
            assert_eq!(
                so_far.last(),
                Some(&b'\n'),
                "chunk {i} decodes to whole lines"
            );
        }
        let body = decoded.last().expect("chunks");
        let (items, trailer) = split_body(body).expect("items, then the trailer");
        assert!(trailer.complete);
        assert_eq!(items.len(), 300);
        assert!(
            items.iter().all(|item| item["Item"]["id"]["S"].is_string()),
            "typed lines"
        );
        let plain: Vec<Bytes> = start(source, plan(Compression::None))
            .await
            .expect("starts")
            .collect()
            .await;
        let plain = plain.concat();
        let (plain_items, _) = split_body(&plain).expect("plain");
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(
            sorted(items.iter().map(|i| i.to_string()).collect()),
            sorted(plain_items.iter().map(|i| i.to_string()).collect())
        );
        let wire: usize = chunks.iter().map(Bytes::len).sum();
        assert!(
            wire < plain.len(),
            "{wire} bytes compressed, {} plain",
            plain.len()
        );
    }

    #[tokio::test]
    async fn the_byte_budget_counts_compressed_bytes() {
        let source = Arc::new(MemorySource::new(table(20_000), "id"));
        let items_under = |compression| {
            let source = source.clone();
            async move {
                let plan = ScanPlan {
                    compression,
                    max_bytes: Some(50_000),
                    ..sealed(1, 500)
                };
                let chunks: Vec<Bytes> = start(source, plan).await.expect("starts").collect().await;
                let wire: usize = chunks.iter().map(Bytes::len).sum();
                let body = match compression {
                    Compression::Gzip => gunzip(&chunks).pop().expect("chunks"),
                    _ => chunks.concat(),
                };
                let (items, trailer) = split_body(&body).expect("whole");
                assert_eq!(trailer.reason, Some(StopReason::ByteBudget));
                assert!(
                    wire <= 50_000 + 200,
                    "{compression:?}: {wire} bytes on the wire"
                );
                items.len()
            }
        };
        let plain = items_under(Compression::None).await;
        let gzip = items_under(Compression::Gzip).await;
        assert!(gzip > 2 * plain, "{gzip} items compressed vs {plain} plain");
    }

    /// Records when each page was started and what it cost.
    struct Recording {
        inner: MemorySource,
        log: std::sync::Mutex<Vec<(Instant, f64)>>,
    }

    impl PageSource for Recording {
        async fn page(
            &self,
            request: PageRequest,
        ) -> Result<crate::dynamo::source::Page, UpstreamError> {
            let at = Instant::now();
            assert!(
                request.report_capacity,
                "a capped read asks for its capacity"
            );
            let page = self.inner.page(request).await?;
            let cost = page.consumed_capacity.unwrap_or_default();
            self.log.lock().expect("log").push((at, cost));
            Ok(page)
        }

        async fn partition_key(
            &self,
            index: Option<&str>,
        ) -> Result<crate::format::key::KeyAttribute, UpstreamError> {
            self.inner.partition_key(index).await
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Over any window of length t, the pages started in it cost at most R x t plus
        /// the burst: a quarter second saved up and one page per segment.
        #[test]
        fn the_rate_cap_holds_over_every_window(
            rate in 5.0f64..400.0,
            segments in 1u32..8,
            limit in 1u32..40,
            count in 50usize..500,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("runtime");
            let source = Arc::new(Recording {
                inner: MemorySource::new(table(count), "id"),
                log: std::sync::Mutex::new(Vec::new()),
            });
            let plan = ScanPlan { max_rcu: Some(rate), ..ScanPlan::segments(segments, limit) };
            let trailer = runtime.block_on(async {
                let chunks: Vec<Bytes> = start(source.clone(), plan).await.expect("starts").collect().await;
                split_body(&chunks.concat()).expect("whole").1
            });
            proptest::prop_assert!(trailer.complete);
            let log = source.log.lock().expect("log").clone();
            let largest = log.iter().map(|(_, cost)| *cost).fold(0.0, f64::max);
            let burst = rate / 4.0 + f64::from(segments) * largest;
            for (i, (from, _)) in log.iter().enumerate() {
                let mut spent = 0.0;
                for (at, cost) in &log[i..] {
                    spent += cost;
                    let window = at.duration_since(*from).as_secs_f64();
                    proptest::prop_assert!(
                        spent <= rate * window + burst + 1e-6,
                        "{spent} units in {window} s at {rate}/s, burst {burst}"
                    );
                }
            }
            let wait = trailer.rcu_wait_ms.expect("capped reads report their wait");
            let total: f64 = log.iter().map(|(_, cost)| cost).sum();
            if total > 2.0 * burst {
                proptest::prop_assert!(wait > 0, "a read of {total} units at {rate}/s waited");
            }
        }
    }
}

#[cfg(test)]
mod fan_out_tests {
    //! The Query fan-out on an in-memory table: partitions read by a few workers, each
    //! partition in its own order, bounded memory, and cursors that record every
    //! partition's position.

    use super::*;
    use crate::dynamo::memory::MemorySource;
    use crate::format::cursor::Cursor;
    use crate::format::item::Item;
    use crate::format::item::Value;
    use crate::format::key::KeyValue;
    use crate::format::shape::QueryShape;
    use crate::format::trailer::{Trailer, split_body};
    use futures::StreamExt;

    const SECRET: &[u8] = b"fan";

    /// `tenants` partitions (`t00`..) of `per` items each, ids in partition order.
    fn table(tenants: usize, per: usize) -> Vec<Item> {
        (0..tenants * per)
            .map(|i| {
                Item::from([
                    ("id".to_string(), Value::S(format!("i{i:05}"))),
                    ("tenant".to_string(), Value::S(format!("t{:02}", i / per))),
                ])
            })
            .collect()
    }

    fn query_plan(tenants: &[usize], workers: u32, limit: u32) -> ScanPlan {
        let partitions: Vec<KeyValue> = tenants
            .iter()
            .map(|t| KeyValue::S(format!("t{t:02}")))
            .collect();
        ScanPlan {
            total_segments: partitions.len() as u32,
            positions: vec![Position::Start; partitions.len()],
            shape: Arc::new(ReadShape {
                query: Some(QueryShape {
                    key: "tenant".into(),
                    partitions,
                    concurrency: workers,
                    sort: None,
                    descending: false,
                }),
                ..ReadShape::default()
            }),
            seal: Some(CursorSeal {
                table: "mem".into(),
                secret: Arc::from(SECRET),
            }),
            ..ScanPlan::segments(1, limit)
        }
    }

    fn resumed(token: &str, base: &ScanPlan) -> ScanPlan {
        let cursor = Cursor::decode(token, SECRET, 1 << 22).expect("our own cursor decodes");
        ScanPlan {
            total_segments: cursor.total_segments,
            segment_offset: cursor.segment_offset,
            positions: cursor.positions,
            shape: Arc::new(cursor.shape),
            ..base.clone()
        }
    }

    async fn run(source: Arc<MemorySource>, plan: ScanPlan) -> (Vec<(String, String)>, Trailer) {
        let body: Vec<u8> = start(source, plan)
            .await
            .expect("starts")
            .collect::<Vec<Bytes>>()
            .await
            .concat();
        let (items, trailer) = split_body(&body).expect("items, then the trailer");
        let pairs = items
            .iter()
            .map(|item| {
                (
                    item["tenant"].as_str().expect("tenant").to_string(),
                    item["id"].as_str().expect("id").to_string(),
                )
            })
            .collect();
        (pairs, trailer)
    }

    #[tokio::test]
    async fn fifty_partitions_by_eight_workers_each_in_order_resume_exactly() {
        let source = Arc::new(MemorySource::new(table(60, 23), "id"));
        let tenants: Vec<usize> = (5..55).collect();
        let first = ScanPlan {
            max_items: Some(97),
            ..query_plan(&tenants, 8, 4)
        };
        let mut plan = first.clone();
        let mut got = Vec::new();
        let mut rounds = 0;
        loop {
            rounds += 1;
            let (pairs, trailer) = run(source.clone(), plan.clone()).await;
            assert!(trailer.segments.is_empty(), "a Query counts partitions");
            assert_eq!(trailer.partitions().len(), 50, "{trailer:?}");
            assert_eq!(
                trailer.partitions().iter().map(|p| p.items).sum::<u64>(),
                pairs.len() as u64
            );
            got.extend(pairs);
            if trailer.complete {
                assert!(trailer.partitions().iter().all(|p| p.done));
                break;
            }
            assert_eq!(trailer.reason, Some(StopReason::MaxItems));
            plan = resumed(&trailer.cursor.expect("a cursor"), &first);
            assert!(rounds < 100);
        }
        assert!(rounds >= 12, "{rounds} rounds of 97 for 1150 items");
        // Every item of the 50 partitions, once; each partition in its own order.
        let mut expected: Vec<(String, String)> = table(60, 23)
            .iter()
            .filter_map(|item| {
                let (Value::S(tenant), Value::S(id)) = (&item["tenant"], &item["id"]) else {
                    return None;
                };
                let (tenant, id) = (tenant.clone(), id.clone());
                tenants
                    .contains(&tenant[1..].parse().ok()?)
                    .then_some((tenant, id))
            })
            .collect();
        for tenant in &tenants {
            let name = format!("t{tenant:02}");
            let of = |pairs: &[(String, String)]| -> Vec<String> {
                pairs
                    .iter()
                    .filter(|(t, _)| *t == name)
                    .map(|(_, id)| id.clone())
                    .collect()
            };
            assert_eq!(of(&got), of(&expected), "partition {name} in order");
        }
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "none lost, none twice");
    }

    #[tokio::test]
    async fn a_stalled_reader_holds_at_most_one_page_per_worker() {
        let source = Arc::new(MemorySource::new(table(40, 50), "id"));
        let tenants: Vec<usize> = (0..40).collect();
        let mut stream = start(source.clone(), query_plan(&tenants, 3, 5))
            .await
            .expect("starts");
        let _first = stream.next().await.expect("a page");
        for _ in 0..50 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(source.calls(), 1 + 3, "the page read, and one per worker");
        drop(stream);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(source.calls(), 4, "no call after the reader went away");
    }

    #[tokio::test]
    async fn a_failed_partition_and_a_cut_count_resume_from_the_cursor() {
        // Items: call 9 fails, mid-way through the partitions.
        let failing =
            Arc::new(MemorySource::new(table(12, 10), "id").failing_at(9, ErrorKind::Throttled));
        let tenants: Vec<usize> = (0..12).collect();
        let plan = query_plan(&tenants, 2, 3);
        let (first, trailer) = run(failing, plan.clone()).await;
        assert_eq!(trailer.reason, Some(StopReason::Error));
        let error = trailer.error.expect("an error");
        assert_eq!((error.code.as_str(), error.segment), ("Throttled", None));
        let healthy = Arc::new(MemorySource::new(table(12, 10), "id"));
        let (rest, trailer) = run(healthy, resumed(&trailer.cursor.expect("cursor"), &plan)).await;
        assert!(trailer.complete, "{trailer:?}");
        let mut all: Vec<_> = first.into_iter().chain(rest).collect();
        all.sort();
        assert_eq!(all.len(), 120, "none lost");
        assert!(all.windows(2).all(|w| w[0] != w[1]), "none twice");

        // select=count: no items, one trailer; cut by a failure, resumed, the same total.
        let count_plan = ScanPlan {
            shape: Arc::new(ReadShape {
                count: true,
                ..(*plan.shape).clone()
            }),
            ..plan.clone()
        };
        let failing =
            Arc::new(MemorySource::new(table(12, 10), "id").failing_at(7, ErrorKind::Throttled));
        let (items, cut) = run(failing, count_plan.clone()).await;
        assert!(items.is_empty() && !cut.complete, "{cut:?}");
        assert!(cut.items > 0 && cut.items < 120, "{cut:?}");
        let healthy = Arc::new(MemorySource::new(table(12, 10), "id"));
        let (items, rest) = run(healthy, resumed(&cut.cursor.expect("cursor"), &count_plan)).await;
        assert!(items.is_empty() && rest.complete, "{rest:?}");
        assert_eq!(cut.items + rest.items, 120);
    }
}
