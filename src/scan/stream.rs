//! The fan-out and the merge: one task per segment, one NDJSON stream out.
//!
//! Each segment task fetches a page, encodes it into one buffer of whole lines (so lines
//! of different segments never interleave mid-line), and hands it to a channel shared by
//! all segments. The channel holds one slot per segment and a task reserves its slot
//! *before* fetching, so at most one page per segment is in flight or waiting: a slow
//! client slows the scan, and memory is bounded by segments x page size, never by the
//! table. Dropping the stream (the client went away) aborts every segment task.

use super::trailer::{SegmentSummary, Trailer, TrailerError};
use super::{PageRequest, PageSource};
use crate::encode::{Item, write_line};
use crate::error::{ErrorKind, UpstreamError};
use bytes::Bytes;
use futures::Stream;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info_span, warn};

/// What one invocation scans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPlan {
    /// The table is split into this many segments (DynamoDB's `TotalSegments`).
    pub total_segments: u32,
    /// The segments this invocation reads, concurrently.
    pub segments: Range<u32>,
    /// Items per page (DynamoDB's `Limit`).
    pub limit: u32,
}

/// A page a segment task hands to the merge.
#[derive(Debug)]
struct EncodedPage {
    segment: u32,
    lines: Bytes,
    items: u64,
    scanned: u64,
    consumed_capacity: f64,
    /// The segment is finished: this page had no `LastEvaluatedKey`.
    done: bool,
    /// Where this segment continues; kept for resumable cursors.
    #[allow(dead_code)]
    next_key: Option<Item>,
}

#[derive(Debug)]
enum Event {
    Page(EncodedPage),
    Failed { segment: u32, error: UpstreamError },
}

/// The merged stream: NDJSON buffers in arrival order, then exactly one trailer line.
#[derive(Debug)]
pub struct ScanStream {
    rx: mpsc::Receiver<Event>,
    /// Owning the tasks means dropping the stream aborts them: a client that disconnects
    /// stops the scan instead of leaving it to run (and bill) to the end.
    tasks: JoinSet<()>,
    /// Indexed by `segment - plan.segments.start`.
    segments: Vec<SegmentSummary>,
    scanned: u64,
    consumed_capacity: f64,
    started: Instant,
    ttfb: Duration,
    error: Option<TrailerError>,
    /// The first page, awaited by [`start`] and sent first.
    first: Option<Bytes>,
    finished: bool,
}

/// Starts scanning `plan` from `source` and waits for the first page.
///
/// Returns the error instead of a stream when the first thing to arrive is a failure
/// (a missing table, say), so the caller can answer with a real status code.
pub async fn start<S: PageSource>(
    source: Arc<S>,
    plan: ScanPlan,
) -> Result<ScanStream, UpstreamError> {
    let started = Instant::now();
    let width = plan.segments.len().max(1);
    let (tx, rx) = mpsc::channel(width);
    let mut tasks = JoinSet::new();
    for segment in plan.segments.clone() {
        let span = info_span!("segment", segment, total_segments = plan.total_segments);
        let task = run_segment(source.clone(), segment, plan.clone(), tx.clone());
        tasks.spawn(task.instrument(span));
    }
    drop(tx);
    let mut stream = ScanStream {
        rx,
        tasks,
        segments: plan
            .segments
            .clone()
            .map(|segment| SegmentSummary {
                segment,
                items: 0,
                pages: 0,
                done: false,
            })
            .collect(),
        scanned: 0,
        consumed_capacity: 0.0,
        started,
        ttfb: Duration::ZERO,
        error: None,
        first: None,
        finished: false,
    };
    match stream.rx.recv().await {
        Some(Event::Page(page)) => {
            stream.ttfb = started.elapsed();
            stream.first = Some(stream.record(page));
            Ok(stream)
        }
        Some(Event::Failed { error, .. }) => Err(error),
        None => Err(UpstreamError::new(
            ErrorKind::Internal,
            "every segment task ended without a page",
        )),
    }
}

async fn run_segment<S: PageSource>(
    source: Arc<S>,
    segment: u32,
    plan: ScanPlan,
    tx: mpsc::Sender<Event>,
) {
    let mut start_key = None;
    loop {
        // Reserve before fetching: this is what bounds pages in flight per segment.
        let Ok(permit) = tx.reserve().await else {
            debug!("client gone, segment stops");
            return;
        };
        let request = PageRequest {
            segment,
            total_segments: plan.total_segments,
            limit: plan.limit,
            exclusive_start_key: start_key.take(),
        };
        match source.page(request).await {
            Ok(page) => {
                let mut lines = Vec::with_capacity(page.items.len() * 256);
                for item in &page.items {
                    write_line(&mut lines, item);
                }
                let done = page.last_evaluated_key.is_none();
                start_key = page.last_evaluated_key;
                permit.send(Event::Page(EncodedPage {
                    segment,
                    lines: Bytes::from(lines),
                    items: page.items.len() as u64,
                    scanned: page.scanned_count,
                    consumed_capacity: page.consumed_capacity,
                    done,
                    next_key: start_key.clone(),
                }));
                if done {
                    return;
                }
            }
            Err(error) => {
                warn!(cause = %error, source = ?error.source, "segment failed");
                permit.send(Event::Failed { segment, error });
                return;
            }
        }
    }
}

impl ScanStream {
    /// Counts a page in and returns its lines.
    fn record(&mut self, page: EncodedPage) -> Bytes {
        let index = self.segments.iter().position(|s| s.segment == page.segment);
        if let Some(summary) = index.and_then(|i| self.segments.get_mut(i)) {
            summary.items += page.items;
            summary.pages += 1;
            summary.done = page.done;
        }
        self.scanned += page.scanned;
        self.consumed_capacity += page.consumed_capacity;
        page.lines
    }

    /// The trailer for what has been sent so far.
    pub fn trailer(&self) -> Trailer {
        let all_done = self.segments.iter().all(|s| s.done);
        let error = self.error.clone().or_else(|| {
            // Only a panicked task ends a segment without a last page or an error.
            (!all_done).then(|| TrailerError {
                code: ErrorKind::Internal.code().into(),
                message: ErrorKind::Internal.message().into(),
                segment: self.segments.iter().find(|s| !s.done).map(|s| s.segment),
            })
        });
        Trailer {
            complete: all_done && error.is_none(),
            items: self.segments.iter().map(|s| s.items).sum(),
            scanned: self.scanned,
            pages: self.segments.iter().map(|s| s.pages).sum(),
            consumed_capacity: self.consumed_capacity,
            segments: self.segments.clone(),
            elapsed_ms: millis(self.started.elapsed()),
            ttfb_ms: millis(self.ttfb),
            error,
        }
    }

    fn finish(&mut self) -> Bytes {
        self.finished = true;
        self.tasks.abort_all();
        self.rx.close();
        Bytes::from(self.trailer().to_line())
    }
}

impl Stream for ScanStream {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take()
            && !first.is_empty()
        {
            return Poll::Ready(Some(first));
        }
        while !this.finished {
            match ready!(this.rx.poll_recv(cx)) {
                Some(Event::Page(page)) => {
                    let lines = this.record(page);
                    if !lines.is_empty() {
                        return Poll::Ready(Some(lines));
                    }
                }
                Some(Event::Failed { segment, error }) => {
                    this.error = Some(TrailerError {
                        code: error.kind.code().into(),
                        message: error.kind.message().into(),
                        segment: Some(segment),
                    });
                    return Poll::Ready(Some(this.finish()));
                }
                None => return Poll::Ready(Some(this.finish())),
            }
        }
        Poll::Ready(None)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::memory::MemorySource;
    use crate::scan::trailer::Trailer;
    use aws_sdk_dynamodb::types::AttributeValue;
    use futures::StreamExt;

    fn table(count: usize) -> Vec<Item> {
        (0..count)
            .map(|i| Item::from([("id".to_string(), AttributeValue::S(format!("item-{i:05}")))]))
            .collect()
    }

    fn plan(segments: u32, limit: u32) -> ScanPlan {
        ScanPlan {
            total_segments: segments,
            segments: 0..segments,
            limit,
        }
    }

    async fn collect(stream: ScanStream) -> (Vec<String>, Trailer) {
        let chunks: Vec<Bytes> = stream.collect().await;
        let body: Vec<u8> = chunks.concat();
        let mut lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
        assert_eq!(lines.pop(), Some(&b""[..]), "body ends with a newline");
        let trailer = lines
            .pop()
            .and_then(Trailer::parse_line)
            .expect("last line is the trailer");
        let mut ids: Vec<String> = lines
            .iter()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_slice(line).expect("JSON line");
                value["id"].as_str().expect("id").to_string()
            })
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
