//! What a pull's workers share: the options of the read, and its running totals, which
//! the progress bar samples.

use crate::cli::output::export::s3::layout::S3Export;
use crate::cli::progress::{Estimate, Sample, Total};
use crate::cli::pull::partitions::Partitions;
use crate::format::backoff::Backoff;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
    pub partitions: Option<Arc<Partitions>>,
    /// `--count` (`select=count`): calls send no items, their trailers the counts.
    pub count: bool,
    /// `-o s3://...`: the export every call writes into (`to=`).
    pub export: Option<S3Export>,
    /// A read of the table's changes (`scanstream changes`): one slice, no segments, and
    /// `changes=true` on every call.
    pub changes: bool,
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
    pub estimate: Estimate,
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

/// A pull's figures: arrived are the committed items (this run's and, on a resume, the
/// checkpoint's `already`) and those in calls still under way. DynamoDB's count is the
/// total when the streamer sent one; an `ItemCount` of 0 (a table too new for DynamoDB
/// to have counted it) is no total.
pub fn progress(counters: &Counters, already: u64) -> Sample {
    // `items` first, with Acquire, then `in_flight`: it pairs with the Release add of a
    // commit (`Arriving::committed` takes the items out of `in_flight` before), so
    // committed items seen here are no longer seen in flight.
    let committed = already + counters.items.load(Ordering::Acquire);
    let in_flight = counters.in_flight.load(Ordering::Relaxed);
    Sample {
        done: committed + in_flight,
        committed: Some(committed),
        total: counters
            .estimate
            .get()
            .filter(|&(items, _)| items > 0)
            .map(|(items, _)| Total {
                items,
                exact: false,
            }),
        wire_bytes: Some(counters.wire_bytes.load(Ordering::Relaxed)),
        running: Some(counters.running.load(Ordering::Relaxed)),
        retries: counters.retries.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_counts_arrived_and_committed_and_a_zero_count_is_no_total() {
        let counters = Counters::default();
        counters.items.store(1_000, Ordering::Relaxed);
        counters.in_flight.store(250, Ordering::Relaxed);
        counters.running.store(3, Ordering::Relaxed);
        let sample = progress(&counters, 500);
        assert_eq!(
            sample.done, 1_750,
            "the checkpoint's, committed and in flight"
        );
        assert_eq!(sample.committed, Some(1_500));
        assert_eq!(sample.running, Some(3));
        assert_eq!(sample.total, None, "no header yet");
        counters.estimate.set(0, 0);
        assert_eq!(
            progress(&counters, 500).total,
            None,
            "not counted yet: no total"
        );
        counters.estimate.set(2_000, 1);
        assert_eq!(
            progress(&counters, 500).total,
            Some(Total {
                items: 2_000,
                exact: false
            })
        );
    }
}
