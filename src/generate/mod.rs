//! Generating: deterministic fake records, in batches of 25 generated lazily, and the
//! summary of a seeding run. Items of files, streams and exports are [`crate::load`]'s.
//!
//! - [`record`]: the record for (seed, index), the same bytes on every run and machine.
//! - [`summary`]: what a run wrote, one type for the CLI and the function.

pub mod record;
pub mod summary;

use crate::format::item::Item;
use crate::format::limits::MAX_BATCH_WRITE_ITEMS;

/// What a seeding run writes: generated records (items of files, streams and exports go
/// through [`crate::load`], which streams them).
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Records `start..start + count` of `seed`, each padded to about `item_size` bytes.
    Generated {
        /// The data set.
        seed: u64,
        /// The first record's index.
        start: u64,
        /// Records to write.
        count: u64,
        /// Pad each record to about this many bytes.
        item_size: Option<usize>,
    },
}

impl Input {
    /// How many items the run writes.
    pub fn len(&self) -> u64 {
        match self {
            Self::Generated { count, .. } => *count,
        }
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index of the first generated record: where `next_start` counts from.
    pub fn start(&self) -> Option<u64> {
        match self {
            Self::Generated { start, .. } => Some(*start),
        }
    }

    /// The items in batches of at most [`MAX_BATCH_WRITE_ITEMS`], generated lazily.
    pub fn batches(self) -> Box<dyn Iterator<Item = Vec<Item>> + Send> {
        match self {
            Self::Generated {
                seed,
                start,
                count,
                item_size,
            } => Box::new(sized_batches(seed, start, count, item_size)),
        }
    }
}

/// Records `start..start + count` of `seed`, in batches of at most 25, generated lazily so
/// a large run never holds more than the batches in flight.
pub fn generated_batches(seed: u64, start: u64, count: u64) -> impl Iterator<Item = Vec<Item>> {
    sized_batches(seed, start, count, None)
}

/// As [`generated_batches`], each record padded to about `size` bytes.
pub fn sized_batches(
    seed: u64,
    start: u64,
    count: u64,
    size: Option<usize>,
) -> impl Iterator<Item = Vec<Item>> {
    let end = start.saturating_add(count);
    (start..end)
        .step_by(MAX_BATCH_WRITE_ITEMS)
        .map(move |first| {
            (first..end.min(first + MAX_BATCH_WRITE_ITEMS as u64))
                .map(|i| record::record_sized(seed, i, size))
                .collect()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_the_range_once_in_25s() {
        let batches: Vec<Vec<Item>> = generated_batches(1, 10, 60).collect();
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [25, 25, 10]
        );
        let ids: std::collections::HashSet<String> = batches
            .iter()
            .flatten()
            .filter_map(|item| match item.get(record::KEY)? {
                crate::format::item::Value::S(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(ids.len(), 60);
        assert!(ids.contains(&record::record_id(1, 10)) && ids.contains(&record::record_id(1, 69)));
    }
}
