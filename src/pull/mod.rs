//! The `scanstream` client: one table spread over many invocations of the streamer.
//!
//! The table is split into `invocations x segments` segments; slice `k` is segments
//! `k*S..(k+1)*S`, read by one worker that calls the function again from the slice's last
//! cursor until the slice is complete. Lambda is the distributed engine: each invocation
//! is a worker with its own bandwidth. A Query (`--pk`, `--pk-file`) is sliced by its
//! keys instead, a call's worth a slice, `invocations` slices at once ([`partitions`]).
//!
//! Every item reaches the output exactly once:
//! - a call's items are spooled to disk beside the output ([`spool`]) and committed to the
//!   output only when its trailer arrives ([`call`]); a call cut off mid-stream is
//!   discarded and made again from the slice's last committed cursor;
//! - failed calls (5xx, transport errors, credentials that did not load, a trailer whose
//!   `items` differ from the lines counted) are retried with capped exponential backoff
//!   and full jitter, a bounded number of times; a call cut off is made again smaller
//!   ([`size`]);
//! - throttled calls (429) are waited out for `--throttle-patience`, with fewer calls at
//!   once ([`throttle`]);
//! - the [`checkpoint`] records each slice's cursor and the output's committed length
//!   after every commit, so a client killed and started again cuts the output back to
//!   that length and goes on; a checkpoint is for one read: another `--format`,
//!   `--fields`, `--index`, `--consistent`, key set, sort-key condition, order, filter or
//!   `--count` is refused before any call;
//! - the first failed write to the output stops every worker (no further call) and cuts
//!   the output back to the committed length; a closed standard output ends the run
//!   quietly, as `| head` expects.
//!
//! - [`call`]: one signed request and its body, spooled.
//! - [`checkpoint`]: the committer: the committed output, the checkpoint's saves, locks.
//! - [`state`]: what a checkpoint records (slices, committed totals, the output's shape).
//! - [`stored`]: the checkpoint on disk, long cursors kept apart from it.
//! - [`paths`]: the names of the files kept beside the output, and file identity.
//! - [`export`]: `--layout export`, the committed output as DynamoDB's export layout.
//! - [`spool`]: a call's items on disk until its trailer arrives.
//! - [`pace`]: a slice's read rate across its calls (`--max-rcu`).
//! - [`progress`]: the bar, or plain lines, while a pull or a seeding run goes on.
//! - [`forecast`]: `scanstream plan`: what a full read will take and cost, before it starts.
//! - [`partitions`]: a Query's `--pk` keys, cut into slices of calls (`--pk-file`).
//! - [`size`]: a slice's call size, smaller after a cut-off.
//! - [`throttle`]: calls at once over all slices, fewer after a 429.
//! - [`sign`]: SigV4 for Function URLs.
//! - [`seed`]: `scanstream seed`, the seeder function over many invocations.
//! - [`cli`]: the command line.

pub mod call;
pub mod checkpoint;
pub mod cli;
pub mod export;
pub mod forecast;
pub mod pace;
pub mod partitions;
pub mod paths;
pub mod progress;
pub mod seed;
pub mod sign;
pub mod size;
pub mod spool;
pub mod state;
pub mod stored;
pub mod throttle;

use crate::format::backoff::Backoff;
use crate::scan::trailer::Trailer;
use checkpoint::Committer;
use serde::Serialize;
use state::{Checkpoint, OutputShape, SliceState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What to read and how.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The streamer's Function URL.
    pub url: String,
    /// Concurrent invocations (slices).
    pub invocations: u32,
    /// Segments per invocation.
    pub segments: u32,
    /// Parameters every call carries, cursor or not (`limit`, `compress`, `format`,
    /// `max_rcu`).
    pub delivery: Vec<(String, String)>,
    /// Parameters only a first call carries (a cursor fixes them: `fields`,
    /// `consistent`, `index`).
    pub shape: Vec<(String, String)>,
    /// Calls per request before the slice counts as failed.
    pub backoff: Backoff,
    /// Each slice's share of `--max-rcu`, in units per second: also sent as `max_rcu`.
    pub rcu_share: Option<f64>,
    /// `--max-items-per-call`: the most a call asks for (after a cut-off, less).
    pub max_items_per_call: Option<u64>,
    /// How long a slice is throttled (429s, nothing else in between) before it fails.
    pub throttle_patience: Duration,
    /// `--idle-timeout`: how long a call may wait for its response, or its body for the
    /// next chunk, before it counts as cut off.
    pub idle_timeout: Duration,
    /// `--trailer`: end a complete output with a trailer line.
    pub trailer: bool,
    /// `--pk`/`--pk-file`: a Query of these partitions, a slice of them per call, instead
    /// of a Scan.
    pub partitions: Option<Arc<partitions::Partitions>>,
    /// `--count` (`select=count`): calls send no items, their trailers the counts.
    pub count: bool,
}

/// Running totals, shared by the workers.
#[derive(Debug, Default)]
pub struct Counters {
    /// Items committed to the output.
    pub items: AtomicU64,
    /// Requests made.
    pub calls: AtomicU64,
    /// Requests made again (failed, throttled, or cut off).
    pub retries: AtomicU64,
    /// Body bytes received, as on the wire.
    pub wire_bytes: AtomicU64,
    /// Read capacity the committed calls' trailers reported, in thousandths of a unit.
    pub consumed_milli_units: AtomicU64,
    /// Committed calls whose trailer reported consumed capacity (none when the streamer
    /// does not ask DynamoDB for it).
    pub consumed_reports: AtomicU64,
    /// Requests Lambda throttled (429).
    pub throttled: AtomicU64,
    /// Items that arrived in calls not yet committed, nor given up on: with `items`,
    /// what the progress shows as arrived.
    pub in_flight: AtomicU64,
    /// Calls whose request or body is under way.
    pub running: AtomicU64,
    /// Body bytes after decoding.
    pub decoded_bytes: AtomicU64,
    /// The table's approximate size, as the streamer's headers report it.
    pub estimate: progress::Estimate,
}

impl Counters {
    /// Adds a trailer's consumed capacity. The number came over the network: one that is
    /// not a finite count of units is left out, and the sum saturates instead of wrapping.
    pub fn add_consumed(&self, units: f64) {
        let milli = (units * 1000.0).round();
        if !(milli.is_finite() && milli >= 0.0) {
            return;
        }
        self.consumed_reports.fetch_add(1, Ordering::Relaxed);
        // `as` saturates at u64::MAX for a finite value too large.
        let milli = milli as u64;
        let _ =
            self.consumed_milli_units
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |sum| {
                    Some(sum.saturating_add(milli))
                });
    }
}

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
}

impl PullSummary {
    /// The summary line: what the read brought and what it cost.
    pub fn line(&self) -> String {
        let mb = |bytes: u64| bytes as f64 / 1e6;
        let mut line = format!(
            "{} items in {:.2} s ({:.0} items/s); {} calls, {} retries, {} throttled",
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
            _ => line.push_str("; read units not reported"),
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

/// Reads every slice not yet done in `committer`'s checkpoint into its output.
pub async fn run(
    options: Arc<PullOptions>,
    signer: Arc<sign::Signer>,
    committer: Committer,
    counters: Arc<Counters>,
) -> PullSummary {
    let started = Instant::now();
    let slices: Vec<(usize, SliceState)> = committer
        .checkpoint()
        .slices
        .iter()
        .cloned()
        .enumerate()
        .filter(|(_, slice)| !slice.done)
        .collect();
    let total_segments = committer.checkpoint().total_segments;
    let halt = committer.halt();
    let spool_paths: Vec<_> = (0..committer.checkpoint().slices.len())
        .map(|k| committer.spool_path(k))
        .collect();
    let committer = Arc::new(Mutex::new(committer));
    let concurrency = Arc::new(throttle::Concurrency::new(options.invocations));
    let http = call::http_client(Duration::from_secs(10));
    let mut workers = tokio::task::JoinSet::new();
    // A Query may have more slices than invocations: `invocations` of them are read at
    // once, each to its end (or until it gives up) before another starts, so at most that
    // many cursors move at a time; a slice that gave up keeps its cursor in the checkpoint
    // for the next run. A Scan has one slice per invocation.
    let slices_at_once = Arc::new(tokio::sync::Semaphore::new(options.invocations as usize));
    for (index, slice) in slices {
        let slices_at_once = slices_at_once.clone();
        let worker = call::Worker {
            options: options.clone(),
            signer: signer.clone(),
            http: http.clone(),
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
    let mut committer = committer.lock().unwrap_or_else(PoisonError::into_inner);
    let mut output_error = committer.failure().map(str::to_string);
    let mut broken_pipe = committer.broken_pipe();
    if failed.is_empty() && output_error.is_none() {
        let line = options.trailer.then(|| {
            let first = committer.first_commit().unwrap_or_default();
            trailer(committer.checkpoint(), &counters, first, started.elapsed()).to_line()
        });
        if let Err(err) = committer.finish(line.as_deref()) {
            broken_pipe = err.is_broken_pipe();
            output_error = Some(err.to_string());
        }
    }
    drop(committer);
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
        version: state::VERSION,
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
    }
}

/// A fresh checkpoint for a Query of `partitions`: a slice per call's keys, none
/// started. `total_segments` counts the partitions, each slice's `segment_offset` is its
/// first key's place in the sorted keys, and `segments` the partitions a call reads at
/// once.
pub fn plan_partitions(
    url: &str,
    partitions: &partitions::Partitions,
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
        let partitions = partitions::Partitions::read(&keys, None, 2, 10).expect("keys");
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
