//! The engine of a pull: the read cut into slices (a Scan's segments, or a Query's keys),
//! one [`Worker`] each, `invocations` of them at once; the fresh checkpoint of a read
//! ([`plan`], [`plan_partitions`]), and the summary at the end.

use crate::cli::output::checkpoint::{self, Checkpoint, OutputShape, SliceState};
use crate::cli::output::commit::Committer;
use crate::cli::pace::concurrency::Concurrency;
use crate::cli::pull::options::{Counters, PullOptions};
use crate::cli::pull::partitions::Partitions;
use crate::cli::pull::worker::Worker;
use crate::cli::transport::Transport;
use crate::cli::transport::sign::Signer;
use crate::format::trailer::Trailer;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The summary printed at the end (and written with `--summary-json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PullSummary {
    /// Every slice was read to its end.
    pub complete: bool,
    /// Items written by this run.
    pub items: u64,
    /// Requests made.
    pub calls: u64,
    /// Requests made again.
    pub retries: u64,
    /// Body bytes received.
    pub wire_bytes: u64,
    /// Wall-clock time of this run.
    pub elapsed_ms: u64,
    /// Items per second.
    pub items_per_s: f64,
    /// Read capacity units the committed calls' trailers reported (`None` when none
    /// reported any; calls cut off report nothing).
    pub consumed_capacity: Option<f64>,
    /// `consumed_capacity` per second of the run.
    pub rcu_per_s: Option<f64>,
    /// Slices that could not be completed, with why.
    pub failed_slices: Vec<FailedSlice>,
    /// Requests Lambda throttled (429).
    pub throttled: u64,
    /// The fewest calls allowed at once during the run (the invocations when nothing was
    /// throttled).
    pub lowest_concurrency: u32,
    /// The write to the output that failed and stopped every worker, if one did.
    pub output_error: Option<String>,
    /// That failure was a closed standard output (`| head`): a quiet end.
    #[serde(skip)]
    pub broken_pipe: bool,
    /// Body bytes after decoding (`wire_bytes` before), cut-off calls' included.
    pub decoded_bytes: u64,
    /// `decoded_bytes / wire_bytes` (`None` before any byte).
    pub compression_ratio: Option<f64>,
    /// The table's approximate item count the streamer reported (DynamoDB's
    /// `ItemCount`; none under a filter or a Query).
    pub estimated_items: Option<u64>,
    /// The read's `T0` (RFC 3339): the table's changes from then on bring the output up to
    /// date (`scanstream changes --since-snapshot`).
    pub changes_since: Option<String>,
}

impl PullSummary {
    /// The summary line: what the read brought and what it cost.
    pub fn line(&self) -> String {
        self.line_of("items")
    }

    /// The summary line of a read of `what` (`items`, or `changes`, whose calls read no
    /// capacity units).
    pub fn line_of(&self, what: &str) -> String {
        let mb = |bytes: u64| bytes as f64 / 1e6;
        let mut line = format!(
            "{} {what} in {:.2} s ({:.0} {what}/s); {} calls, {} retries, {} throttled",
            self.items,
            self.elapsed_ms as f64 / 1000.0,
            self.items_per_s,
            self.calls,
            self.retries,
            self.throttled,
        );
        if self.throttled > 0 {
            line.push_str(&format!(
                " (429; down to {} calls at once)",
                self.lowest_concurrency
            ));
        }
        line.push_str(&format!(
            "; {:.1} MB on the wire, {:.1} MB decoded",
            mb(self.wire_bytes),
            mb(self.decoded_bytes)
        ));
        if let Some(ratio) = self.compression_ratio {
            line.push_str(&format!(" ({ratio:.2}x)"));
        }
        match (self.consumed_capacity, self.rcu_per_s) {
            (Some(units), Some(per_s)) => {
                line.push_str(&format!("; {units:.1} read units ({per_s:.1}/s)"));
            }
            _ if what == "changes" => {}
            _ => line.push_str("; read units not reported"),
        }
        if let Some(since) = &self.changes_since {
            line.push_str(&format!("; changes since {since}"));
        }
        if !self.complete {
            line.push_str("; INCOMPLETE");
        }
        line
    }
}

/// A slice given up on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedSlice {
    /// Its first segment.
    pub segment_offset: u32,
    /// Why.
    pub error: String,
}

/// Reads every slice not yet done in `committer`'s checkpoint into its output, and ends
/// a complete output (its trailer, its checkpoint removed).
pub async fn run(
    options: Arc<PullOptions>,
    signer: Arc<Signer>,
    committer: Committer,
    counters: Arc<Counters>,
) -> PullSummary {
    let committer = Arc::new(Mutex::new(committer));
    run_shared(options, signer, committer, counters, Finish::End).await
}

/// What a run does with a complete output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Ends it: the trailer if asked for, the checkpoint removed.
    End,
    /// Keeps it open, and its checkpoint with the slices' cursors: a read of changes goes
    /// on from there later.
    Keep,
}

/// [`run`] on a committer the caller keeps, which a read of changes runs again.
pub async fn run_shared(
    options: Arc<PullOptions>,
    signer: Arc<Signer>,
    committer: Arc<Mutex<Committer>>,
    counters: Arc<Counters>,
    finish: Finish,
) -> PullSummary {
    let started = Instant::now();
    let (slices, total_segments, halt, spool_paths, started_ms) = {
        let committer = committer.lock().unwrap_or_else(PoisonError::into_inner);
        let slices: Vec<(usize, SliceState)> = committer
            .checkpoint()
            .slices
            .iter()
            .cloned()
            .enumerate()
            .filter(|(_, slice)| !slice.done)
            .collect();
        let spool_paths: Vec<_> = (0..committer.checkpoint().slices.len())
            .map(|k| committer.spool_path(k))
            .collect();
        let total = committer.checkpoint().total_segments;
        let started_ms = committer.checkpoint().started_ms;
        (slices, total, committer.halt(), spool_paths, started_ms)
    };
    let concurrency = Arc::new(Concurrency::new(options.invocations));
    let transport = Transport::new(signer, Duration::from_secs(10));
    let mut workers = tokio::task::JoinSet::new();
    // A Query may have more slices than invocations: `invocations` of them are read at
    // once, each to its end (or until it gives up) before another starts, so at most that
    // many cursors move at a time; a slice that gave up keeps its cursor in the checkpoint
    // for the next run. A Scan has one slice per invocation.
    let slices_at_once = Arc::new(tokio::sync::Semaphore::new(options.invocations as usize));
    for (index, slice) in slices {
        let slices_at_once = slices_at_once.clone();
        let worker = Worker {
            options: options.clone(),
            transport: transport.clone(),
            committer: committer.clone(),
            counters: counters.clone(),
            concurrency: concurrency.clone(),
            index,
            total_segments,
            spool_path: spool_paths[index].clone(),
            halt: halt.clone(),
        };
        workers.spawn(async move {
            let _turn = slices_at_once.acquire_owned().await;
            (slice.segment_offset, worker.run(slice).await)
        });
    }
    let mut failed = Vec::new();
    while let Some(joined) = workers.join_next().await {
        // The output failed: every other worker stops now, mid-call if need be (what it
        // spooled is not committed, and read again by the next run).
        if halt.load(Ordering::SeqCst) {
            workers.abort_all();
        }
        match joined {
            Ok((_, Ok(()))) => {}
            _ if halt.load(Ordering::SeqCst) => {}
            Ok((segment_offset, Err(error))) => failed.push(FailedSlice {
                segment_offset,
                error,
            }),
            Err(err) => failed.push(FailedSlice {
                segment_offset: u32::MAX,
                error: format!("worker failed: {err}"),
            }),
        }
    }
    failed.sort_by_key(|f| f.segment_offset);
    // Aborted workers left their spools.
    for path in &spool_paths {
        let _ = std::fs::remove_file(path);
    }
    // Blocking file work, and an export to S3 makes its S3 calls from here: off the
    // runtime's threads.
    let (output_error, broken_pipe) = {
        let (committer, counters, trailer_wanted) =
            (committer.clone(), counters.clone(), options.trailer);
        let no_failed_slice = failed.is_empty();
        let elapsed = started.elapsed();
        tokio::task::spawn_blocking(move || {
            let mut committer = committer.lock().unwrap_or_else(PoisonError::into_inner);
            let mut output_error = committer.failure().map(str::to_string);
            let mut broken_pipe = committer.broken_pipe();
            if no_failed_slice && output_error.is_none() && finish == Finish::End {
                let line = trailer_wanted.then(|| {
                    let first = committer.first_commit().unwrap_or_default();
                    trailer(committer.checkpoint(), &counters, first, elapsed).to_line()
                });
                if let Err(err) = committer.finish(line.as_deref()) {
                    broken_pipe = err.is_broken_pipe();
                    output_error = Some(err.to_string());
                }
            }
            (output_error, broken_pipe)
        })
        .await
        .unwrap_or_else(|err| (Some(format!("finishing the output: {err}")), false))
    };
    let items = counters.items.load(Ordering::SeqCst);
    let elapsed = started.elapsed();
    // What the committed calls' trailers reported, whenever they reported any.
    let consumed = (counters.consumed_reports.load(Ordering::SeqCst) > 0)
        .then(|| counters.consumed_milli_units.load(Ordering::SeqCst) as f64 / 1000.0);
    PullSummary {
        complete: failed.is_empty() && output_error.is_none(),
        items,
        calls: counters.calls.load(Ordering::SeqCst),
        retries: counters.retries.load(Ordering::SeqCst),
        wire_bytes: counters.wire_bytes.load(Ordering::SeqCst),
        elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        items_per_s: (items as f64 / elapsed.as_secs_f64().max(0.001)).round(),
        consumed_capacity: consumed,
        rcu_per_s: consumed.map(|units| units / elapsed.as_secs_f64().max(0.001)),
        failed_slices: failed,
        throttled: counters.throttled.load(Ordering::SeqCst),
        lowest_concurrency: concurrency.lowest(),
        output_error,
        broken_pipe,
        decoded_bytes: counters.decoded_bytes.load(Ordering::SeqCst),
        compression_ratio: ratio(
            counters.decoded_bytes.load(Ordering::SeqCst),
            counters.wire_bytes.load(Ordering::SeqCst),
        ),
        estimated_items: counters.estimate.get().map(|(items, _)| items),
        // A read of changes has no T0 of its own to report.
        changes_since: started_ms
            .filter(|_| !options.changes)
            .map(crate::format::time::iso8601),
    }
}

/// `decoded / wire`, two decimals; `None` when nothing came over the wire.
fn ratio(decoded: u64, wire: u64) -> Option<f64> {
    (wire > 0).then(|| (decoded as f64 / wire as f64 * 100.0).round() / 100.0)
}

/// The trailer `--trailer` ends a complete output with, in the streamer's reserved shape:
/// the output's totals across every run that wrote it (the checkpoint's), this run's
/// retries and time (`ttfb_ms`: to this run's first commit).
fn trailer(
    checkpoint: &Checkpoint,
    counters: &Counters,
    first_commit: Duration,
    elapsed: Duration,
) -> Trailer {
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Trailer {
        changes_since: checkpoint.started_ms.map(crate::format::time::iso8601),
        complete: true,
        items: checkpoint.committed_items,
        scanned: checkpoint.committed_scanned,
        pages: checkpoint.committed_pages,
        consumed_capacity: checkpoint.committed_capacity,
        // The runs that wrote the output may be hours apart: no rate over them.
        rcu_per_s: None,
        rcu_wait_ms: None,
        retries: counters.retries.load(Ordering::SeqCst),
        segments: Vec::new(),
        partitions: None,
        elapsed_ms: millis(elapsed),
        ttfb_ms: millis(first_commit.min(elapsed)),
        reason: None,
        cursor: None,
        error: None,
    }
}

/// A fresh checkpoint: `invocations` slices of `segments` segments, none started.
pub fn plan(url: &str, invocations: u32, segments: u32, shape: OutputShape) -> Checkpoint {
    Checkpoint {
        version: checkpoint::VERSION,
        url: url.to_string(),
        total_segments: invocations * segments,
        segments,
        shape,
        slices: (0..invocations)
            .map(|k| SliceState {
                segment_offset: k * segments,
                cursor: None,
                done: false,
            })
            .collect(),
        committed_bytes: 0,
        committed_items: 0,
        committed_scanned: 0,
        committed_pages: 0,
        committed_capacity: None,
        output_tail_sha256: None,
        first_call: None,
        started_ms: Some(crate::cli::output::export::files::now_millis()),
    }
}

/// A fresh checkpoint for a Query of `partitions`: a slice per call's keys, none
/// started. `total_segments` counts the partitions, each slice's `segment_offset` is its
/// first key's place in the sorted keys, and `segments` the partitions a call reads at
/// once.
pub fn plan_partitions(
    url: &str,
    partitions: &Partitions,
    segments: u32,
    shape: OutputShape,
) -> Checkpoint {
    let mut checkpoint = plan(url, 0, segments, shape);
    checkpoint.total_segments = u32::try_from(partitions.len()).unwrap_or(u32::MAX);
    checkpoint.slices = partitions
        .offsets()
        .map(|segment_offset| SliceState {
            segment_offset,
            cursor: None,
            done: false,
        })
        .collect();
    checkpoint
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumed_capacity_adds_up_and_ignores_nonsense() {
        let counters = Counters::default();
        counters.add_consumed(12.5);
        counters.add_consumed(0.5);
        for nonsense in [f64::NAN, f64::INFINITY, -3.0] {
            counters.add_consumed(nonsense);
        }
        assert_eq!(counters.consumed_milli_units.load(Ordering::SeqCst), 13_000);
        counters.add_consumed(1e300);
        counters.add_consumed(1e300);
        assert_eq!(
            counters.consumed_milli_units.load(Ordering::SeqCst),
            u64::MAX,
            "saturates, never wraps"
        );
    }

    #[test]
    fn a_query_plan_has_a_slice_per_call_of_keys() {
        let keys: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
        let partitions = Partitions::read(&keys, None, 2, 10).expect("keys");
        let plan = plan_partitions("http://x/", &partitions, 4, OutputShape::default());
        assert_eq!(plan.total_segments, 25, "the partitions");
        let offsets: Vec<u32> = plan.slices.iter().map(|s| s.segment_offset).collect();
        assert_eq!(offsets, [0, 10, 20], "more slices than invocations");
        assert_eq!(partitions.slice(20), &keys[20..]);
    }

    #[test]
    fn slices_cover_the_table_once() {
        let plan = plan("http://x/", 4, 3, OutputShape::default());
        assert_eq!(plan.total_segments, 12);
        let offsets: Vec<u32> = plan.slices.iter().map(|s| s.segment_offset).collect();
        assert_eq!(offsets, [0, 3, 6, 9]);
    }
}
