//! The capacity caps, `max_rcu` for reads and `max_wcu` for writes: a token bucket
//! charged with the capacity DynamoDB reports for each page read or batch written.
//!
//! The bucket saves up at most a quarter second of the rate and may go into debt: a
//! segment fetches a page (a writer sends a batch) only when the bucket is out of debt,
//! and what DynamoDB reports consumed is charged when the answer arrives. So over any
//! window of length `t` the requests started in it cost at most `rate x t`, plus what was
//! saved up (a quarter second), plus the requests in flight (one per segment, or per batch
//! the writer has in flight). For reads, pages are kept to about a quarter second of a
//! segment's share of the rate (see [`RateLimit::page_limit`]), so the whole burst is
//! about one page per segment and a quarter second, as the EMR DynamoDB connector derives
//! its `Limit` from its tokens and the average item size. (A bucket that saved nothing
//! lost the time when every segment was busy fetching: measured, 84% of the asked rate.)
//! A write batch holds at most 25 items, so its burst is bounded by the batch.
//!
//! A bucket lives for one invocation and forgets what its last requests owe. The
//! `scanstream` client carries a slice's read rate from call to call
//! ([`crate::cli::pace`]), and splits a write rate between its invocations.
//!
//! Waiting for tokens is a sleep inside one task: it holds up no other, and dropping the
//! stream (a client that went away) aborts it like any other wait.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// What the largest item (400 KB) costs in a strongly consistent read: 100 units of
/// 4 KB. No page of `n` items costs more than `n` times this.
pub const LARGEST_ITEM_UNITS: f64 = 100.0;

/// One invocation's read rate, in read capacity units per second.
#[derive(Debug)]
pub struct RateLimit {
    /// Units per second.
    rate: f64,
    /// Segments sharing the rate: a page should cost about a quarter second of the rate
    /// split between them.
    segments: u32,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// At most [`RateLimit::saved`]; below zero, what the pages charged so far still owe.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
    /// Time segments spent waiting for the bucket, added over segments.
    waited: Duration,
    /// Capacity charged so far.
    charged: f64,
}

impl RateLimit {
    /// A cap of `rate` units a second shared by `segments` segments.
    pub fn new(rate: f64, segments: u32) -> Self {
        Self {
            rate,
            segments: segments.max(1),
            state: Mutex::new(State {
                tokens: 0.0,
                at: Instant::now(),
                waited: Duration::ZERO,
                charged: 0.0,
            }),
        }
    }

    /// The rate, in units per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The most the bucket saves up while no page is fetched: a quarter second of rate.
    pub fn saved(&self) -> f64 {
        self.rate / 4.0
    }

    /// Waits until the bucket is out of debt.
    pub async fn admit(&self) {
        loop {
            let owed = {
                let mut state = self.lock();
                self.refill(&mut state);
                if state.tokens >= 0.0 {
                    return;
                }
                -state.tokens
            };
            let wait = Duration::from_secs_f64(owed / self.rate);
            tokio::time::sleep(wait).await;
            self.lock().waited += wait;
        }
    }

    /// As [`Self::admit`], but gives up (`false`) rather than wait until `deadline` or
    /// past it: a request that can start only after it is not started.
    pub async fn admit_before(&self, deadline: Option<Instant>) -> bool {
        loop {
            let owed = {
                let mut state = self.lock();
                self.refill(&mut state);
                if state.tokens >= 0.0 {
                    return true;
                }
                -state.tokens
            };
            let wait = Duration::from_secs_f64(owed / self.rate);
            if deadline.is_some_and(|at| Instant::now() + wait >= at) {
                return false;
            }
            tokio::time::sleep(wait).await;
            self.lock().waited += wait;
        }
    }

    /// Capacity charged so far.
    pub fn charged(&self) -> f64 {
        self.lock().charged
    }

    /// Charges what a page cost.
    pub fn charge(&self, units: f64) {
        let mut state = self.lock();
        self.refill(&mut state);
        state.tokens -= units.max(0.0);
        state.charged += units.max(0.0);
    }

    /// The page size that keeps one page of a segment near a quarter second of its share
    /// of the rate, given what an item has cost so far, within `1..=limit`. Before anything
    /// is read (`None`), every item is assumed to be as dear as DynamoDB allows
    /// ([`LARGEST_ITEM_UNITS`]): usually one item, so a call's first pages (every call
    /// starts a fresh bucket) cannot overshoot by a whole `limit` of large items.
    pub fn page_limit(&self, limit: u32, units_per_item: Option<f64>) -> u32 {
        let per_item = units_per_item
            .filter(|u| *u > 0.0)
            .unwrap_or(LARGEST_ITEM_UNITS);
        let target = self.rate / f64::from(self.segments) / 4.0;
        let items = (target / per_item).floor();
        if items >= f64::from(limit) {
            limit
        } else {
            // At least one item, or the scan could not move at all.
            (items as u32).max(1)
        }
    }

    /// Time segments spent waiting for the bucket, added over segments.
    pub fn waited(&self) -> Duration {
        self.lock().waited
    }

    fn refill(&self, state: &mut State) {
        let now = Instant::now();
        let earned = self.rate * now.duration_since(state.at).as_secs_f64();
        state.tokens = (state.tokens + earned).min(self.saved());
        state.at = now;
    }

    /// Held for a few arithmetic steps, never across an await.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_charge_is_paid_off_at_the_rate() {
        let limit = RateLimit::new(100.0, 1);
        limit.admit().await; // nothing owed yet
        let start = Instant::now();
        limit.charge(50.0);
        limit.admit().await;
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(499) && waited <= Duration::from_millis(501),
            "{waited:?}"
        );
        assert_eq!(limit.waited(), waited);
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_a_quarter_second_is_saved_up_while_idle() {
        let limit = RateLimit::new(10.0, 1);
        tokio::time::sleep(Duration::from_secs(100)).await;
        // 2.5 units were saved up: a charge of 12.5 owes 10, a second's worth.
        limit.charge(12.5);
        let start = Instant::now();
        limit.admit().await;
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(999) && waited <= Duration::from_millis(1001),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_deadline_is_refused_without_waiting() {
        let limit = RateLimit::new(10.0, 1);
        limit.charge(20.0); // two seconds owed
        let start = Instant::now();
        let at = start + Duration::from_secs(1);
        assert!(
            !limit.admit_before(Some(at)).await,
            "the wait would pass it"
        );
        assert_eq!(start.elapsed(), Duration::ZERO, "and it did not wait");
        assert!(
            limit
                .admit_before(Some(start + Duration::from_secs(3)))
                .await
        );
        assert!(start.elapsed() >= Duration::from_millis(1999));
        assert_eq!(limit.charged(), 20.0);
    }

    #[test]
    fn pages_shrink_when_items_are_expensive() {
        let limit = RateLimit::new(120.0, 4);
        // Nothing read yet: items as large as DynamoDB allows, 7.5 units buy one.
        assert_eq!(limit.page_limit(100, None), 1);
        assert_eq!(RateLimit::new(40_000.0, 1).page_limit(1000, None), 100);
        // 0.08 units an item (650 bytes): 7.5 units a page is 93 items.
        assert_eq!(limit.page_limit(100, Some(0.08)), 93);
        // A 400 KB item costs 50 units: one item a page.
        assert_eq!(limit.page_limit(100, Some(50.0)), 1);
        assert_eq!(limit.page_limit(100, Some(0.0001)), 100);
    }
}
