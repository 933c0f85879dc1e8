//! When a slice's worker tries a call again, and when it gives up: failures in a row
//! against `--max-attempts`, 429s against `--throttle-patience`.

use crate::format::backoff::Backoff;
use tokio::time::Instant;

/// Failures in a row that count against `--max-attempts` (429s aside: those are counted
/// in time, [`Throttled`]). A failed call counts, and so does a call the function ended on
/// an error that sent nothing and left the cursor where it was; a call that moved the
/// slice on starts the count again. The `max_attempts`-th failure in a row gives up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempts {
    /// Failures in a row.
    pub(crate) failed: u32,
    backoff: Backoff,
}

impl Attempts {
    pub(crate) fn new(backoff: Backoff) -> Self {
        Self { failed: 0, backoff }
    }

    /// Counts a failure: the wait before the next attempt, or `None` when that was the
    /// last one allowed.
    pub(crate) fn fail(&mut self) -> Option<std::time::Duration> {
        self.failed += 1;
        (self.failed < self.backoff.max_attempts).then(|| self.backoff.delay(self.failed))
    }

    /// A call that moved the slice on: the count starts again.
    pub(crate) fn reset(&mut self) {
        self.failed = 0;
    }
}

/// The 429s in a row: when the first came (moved on by the time queued for a place
/// since), and how many.
#[derive(Debug, Default)]
pub(crate) struct Throttled {
    pub(crate) since: Option<Instant>,
    pub(crate) in_a_row: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The failures in a row after which a slice gives up, by the two rules `calls` had
    /// before [`Attempts`]: after an error trailer that moved nothing, `attempt += 1; if
    /// attempt > max`; after a failed call, `if attempt >= max {give up}; attempt += 1`.
    fn old_rules(max: u32) -> (u32, u32) {
        let (mut attempt, mut failures) = (1, 0);
        let error_trailer = loop {
            failures += 1;
            attempt += 1;
            if attempt > max {
                break failures;
            }
        };
        let (mut attempt, mut failures) = (1, 0);
        let failed_call = loop {
            failures += 1;
            if attempt >= max {
                break failures;
            }
            attempt += 1;
        };
        (error_trailer, failed_call)
    }

    #[test]
    fn both_kinds_of_failure_give_up_at_the_same_count() {
        for max in 1..=10 {
            let backoff = Backoff {
                base: std::time::Duration::from_millis(1),
                cap: std::time::Duration::from_millis(2),
                max_attempts: max,
            };
            let mut attempts = Attempts::new(backoff);
            let mut failures = 0;
            while attempts.fail().is_some() {
                failures += 1;
            }
            failures += 1;
            assert_eq!(failures, max, "the max-th failure in a row gives up");
            assert_eq!(attempts.failed, max, "what `gave up after N attempts` says");
            assert_eq!(
                old_rules(max),
                (max, max),
                "both old rules, with --max-attempts {max}"
            );
            // A call that moved the slice on starts the count again, whichever kind of
            // failure came before (a failed call and an error trailer mixed).
            attempts.reset();
            for _ in 1..max {
                assert!(attempts.fail().is_some());
            }
            assert!(attempts.fail().is_none());
        }
    }
}
