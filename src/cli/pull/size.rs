//! How many items a slice asks of its next call (`max_items`): less after a cut-off.
//!
//! A proxy or appliance that caps a response's size or duration cuts every attempt of the
//! same request at the same point, so making the same call again re-reads (and pays for)
//! the same bytes and is cut again. After a cut-off the slice asks for half of what the
//! cut call delivered, which fits under the same cap; after [`GROW_AFTER`] whole calls in
//! a row it asks for twice as much again, up to the user's `--max-items-per-call` (or
//! without a bound, as before the first cut).

/// Whole calls in a row before a smaller call size is doubled.
pub const GROW_AFTER: u32 = 4;

/// One slice's call size.
#[derive(Debug, Clone)]
pub struct CallSize {
    /// `--max-items-per-call`, if given: never asked for more.
    user: Option<u64>,
    /// Smaller than `user` since a cut-off; `None` asks for `user`.
    reduced: Option<u64>,
    /// Whole calls since the last change.
    whole: u32,
}

impl CallSize {
    /// Calls of `user` items at most (no bound when `None`).
    pub fn new(user: Option<u64>) -> Self {
        Self {
            user,
            reduced: None,
            whole: 0,
        }
    }

    /// `max_items` for the next call.
    pub fn max_items(&self) -> Option<u64> {
        self.reduced.or(self.user)
    }

    /// A call was cut off after `delivered` whole item lines: ask for half of them (at
    /// least one) next.
    pub fn cut(&mut self, delivered: u64) {
        let half = (delivered / 2).max(1);
        self.reduced = Some(self.max_items().map_or(half, |asked| asked.min(half)));
        self.whole = 0;
    }

    /// A call arrived whole.
    pub fn whole(&mut self) {
        let Some(reduced) = self.reduced else {
            return;
        };
        self.whole += 1;
        if self.whole < GROW_AFTER {
            return;
        }
        self.whole = 0;
        let doubled = reduced.saturating_mul(2);
        self.reduced = match self.user {
            Some(user) if doubled >= user => None,
            _ => Some(doubled),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_halves_what_was_delivered_and_whole_calls_double_it_back() {
        let mut size = CallSize::new(Some(1000));
        assert_eq!(size.max_items(), Some(1000));
        size.cut(700);
        assert_eq!(size.max_items(), Some(350));
        size.cut(0);
        assert_eq!(size.max_items(), Some(1), "at least one item");
        for _ in 0..GROW_AFTER - 1 {
            size.whole();
        }
        assert_eq!(
            size.max_items(),
            Some(1),
            "not before GROW_AFTER whole calls"
        );
        size.whole();
        assert_eq!(size.max_items(), Some(2));
        for _ in 0..GROW_AFTER * 20 {
            size.whole();
        }
        assert_eq!(size.max_items(), Some(1000), "never above the user's size");
    }

    #[test]
    fn without_a_user_size_the_first_cut_sets_one() {
        let mut size = CallSize::new(None);
        assert_eq!(size.max_items(), None);
        size.whole();
        assert_eq!(size.max_items(), None);
        size.cut(5000);
        assert_eq!(size.max_items(), Some(2500));
        size.cut(3000);
        assert_eq!(
            size.max_items(),
            Some(1500),
            "half of what the cut call delivered"
        );
        size.cut(100);
        assert_eq!(size.max_items(), Some(50));
        for _ in 0..GROW_AFTER {
            size.whole();
        }
        assert_eq!(size.max_items(), Some(100));
    }
}
