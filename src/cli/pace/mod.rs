//! A slice's read rate over the whole run, across its calls (`--max-rcu`).
//!
//! Each call's function holds the slice's share with its own token bucket, but a bucket
//! lives for one invocation: what its last pages owe is forgotten when the call ends, and
//! a call cut off mid-stream reports nothing at all. So the worker keeps a ledger: the
//! capacity the slice's calls consumed (from their trailers), and before each call it
//! waits until that is paid off at the share since the slice started. A call whose cost
//! is unknown (no trailer) is charged what the function's bucket lets through while it
//! runs: the share for the time it ran, plus a quarter second saved up and a quarter
//! second of pages in flight ([`crate::format::rate`]; the pages in flight are sized from
//! what items cost so far, so a page of dearer items than those before it can cost more).
//! Retries and cut-offs then cost time, not capacity: over the run a slice reads its
//! share plus one call's burst, within that estimate (a unit test below plays it out).

pub mod concurrency;

use std::time::Duration;
use tokio::time::Instant;

/// What a call whose cost is unknown may have spent beyond the share for the time it ran,
/// in seconds of the share: a quarter second saved up, a quarter second in flight.
const UNKNOWN_CALL_EXTRA_S: f64 = 0.5;

/// One slice's ledger.
#[derive(Debug)]
pub struct Pace {
    /// Units per second for this slice.
    share: f64,
    started: Instant,
    /// Units the slice's calls spent, known or assumed.
    spent: f64,
}

impl Pace {
    /// A ledger for a slice reading `share` units per second, starting now.
    pub fn new(share: f64) -> Self {
        Self {
            share,
            started: Instant::now(),
            spent: 0.0,
        }
    }

    /// How long the next call must wait: until what was spent is paid off at the share.
    pub fn wait(&self) -> Duration {
        let paid_off_at = self.spent / self.share;
        let owed = paid_off_at - self.started.elapsed().as_secs_f64();
        // A tiny share with a large charge can owe more than a Duration holds.
        Duration::try_from_secs_f64(owed.max(0.0)).unwrap_or(Duration::MAX)
    }

    /// A call's trailer reported what it consumed; `None` counts as unknown.
    pub fn reported(&mut self, units: Option<f64>, ran: Duration) {
        match units {
            Some(units) if units.is_finite() && units >= 0.0 => self.spent += units,
            _ => self.unknown(ran),
        }
    }

    /// A call ended without saying what it consumed (cut off, failed, no report): it ran
    /// for `ran`.
    pub fn unknown(&mut self, ran: Duration) {
        self.spent += self.share * (ran.as_secs_f64() + UNKNOWN_CALL_EXTRA_S);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn what_a_call_reported_is_paid_off_before_the_next() {
        let mut pace = Pace::new(100.0);
        assert_eq!(pace.wait(), Duration::ZERO, "nothing spent yet");
        tokio::time::sleep(Duration::from_secs(2)).await;
        // The call's bucket ended 50 units in debt: 250 in 2 s, half a second owed.
        pace.reported(Some(250.0), Duration::from_secs(2));
        assert_eq!(pace.wait(), Duration::from_millis(500));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(pace.wait(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_reported_nothing_is_charged_the_most_it_could_have_spent() {
        let mut pace = Pace::new(40.0);
        tokio::time::sleep(Duration::from_secs(3)).await;
        pace.unknown(Duration::from_secs(3));
        // 3 s of share plus half a second: the retry waits half a second.
        assert_eq!(pace.wait(), Duration::from_millis(500));
        pace.reported(None, Duration::from_millis(100));
        assert_eq!(pace.wait(), Duration::from_millis(1100));
        pace.reported(Some(f64::NAN), Duration::ZERO);
        assert_eq!(pace.wait(), Duration::from_millis(1600));
    }

    #[test]
    fn a_debt_too_long_for_a_duration_is_the_longest_wait() {
        let mut pace = Pace::new(1e-300);
        pace.reported(Some(1e10), Duration::ZERO);
        assert_eq!(pace.wait(), Duration::MAX);
    }

    /// Many short calls, each ending in debt, with cut-offs between them: over the run the
    /// slice spends no more than its share for the time plus one call's burst, where
    /// without the ledger every call's burst would add up.
    #[tokio::test(start_paused = true)]
    async fn over_a_run_of_short_calls_and_cut_offs_a_slice_keeps_to_its_share() {
        let share = 60.0;
        let mut pace = Pace::new(share);
        let start = Instant::now();
        let mut consumed = 0.0;
        for call in 0..200 {
            tokio::time::sleep(pace.wait()).await;
            // Each call runs 100 ms; its fresh bucket lets through 100 ms of share and its
            // first pages, 15 units more than it earned.
            let ran = Duration::from_millis(100);
            tokio::time::sleep(ran).await;
            let spent = share * 0.1 + 15.0;
            consumed += spent;
            if call % 7 == 3 {
                pace.unknown(ran); // cut off: spent, but nothing reported
            } else {
                pace.reported(Some(spent), ran);
            }
        }
        let allowed = share * start.elapsed().as_secs_f64() + 15.0;
        assert!(consumed <= allowed, "{consumed} units, {allowed} allowed");
    }
}
