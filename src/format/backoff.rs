//! When and how often to try again: a capped exponential backoff with full jitter (AWS's
//! recommended scheme: a uniform delay in `0..=min(cap, base * 2^attempt)`, which spreads
//! retrying callers apart). A value, so tests can give their own.

use rand::RngExt;
use std::time::Duration;

/// When and how often to re-send what a batch did not write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay bound before the first re-send; doubled for each one after.
    pub base: Duration,
    /// No delay bound grows past this.
    pub cap: Duration,
    /// Calls per batch, the first included, before its remaining items count as failed.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(5),
            max_attempts: 10,
        }
    }
}

impl Backoff {
    /// The bound of the delay before re-send number `retry` (from 1): `min(cap, base * 2^(retry-1))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A delay drawn uniformly from `0..=ceiling(retry)` (full jitter).
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}
