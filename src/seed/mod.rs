//! Seeding: deterministic fake records, and the seeder's command line, which also loads
//! files, streams and exports through [`crate::load`].
//!
//! - [`generate`]: the record for (seed, index), the same bytes on every run and machine.
//! - [`table`]: creates the table (the shared definition, or any key schema), idempotently.
//! - [`summary`]: what a run wrote, one type for the CLI and the function.
//! - [`progress`]: a progress bar or progress lines for the CLI.
//! - [`cli`]: the seeder's command line.

pub mod cli;
pub mod generate;
pub mod progress;
pub mod summary;

use crate::format::limits::MAX_BATCH_WRITE_ITEMS;
use crate::scan::Item;
use aws_sdk_dynamodb::types::AttributeValue;

/// An item's size as DynamoDB counts it (close enough to check the 400 KB limit): names
/// and string/binary values by their bytes, numbers by about half their digits, one byte
/// for booleans and nulls, three bytes of overhead per list or map.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    let number = |n: &String| n.trim_start_matches('-').len().div_ceil(2) + 1;
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(number).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

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
                .map(|i| generate::record_sized(seed, i, size))
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
            .filter_map(|item| item.get(generate::KEY)?.as_s().ok().cloned())
            .collect();
        assert_eq!(ids.len(), 60);
        assert!(
            ids.contains(&generate::record_id(1, 10)) && ids.contains(&generate::record_id(1, 69))
        );
    }
}
