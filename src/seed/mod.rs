//! Seeding: deterministic fake records and the batch writer that stores them.
//!
//! - [`generate`]: the record for (seed, index), the same bytes on every run and machine.
//! - [`writer`]: `BatchWriteItem` in batches of 25, several in flight, `UnprocessedItems`
//!   and throttling retried with capped exponential backoff and full jitter.
//! - [`ndjson`]: items from files in DynamoDB's typed JSON, each line validated.
//! - [`table`]: creates the table (key `id`, type S, on demand), idempotently.
//! - [`summary`]: what a run wrote, one type for the CLI and the function.
//! - [`progress`]: a progress bar or progress lines for the CLI.
//! - [`cli`]: the seeder's command line.

pub mod cli;
pub mod generate;
pub mod ndjson;
pub mod progress;
pub mod summary;
pub mod table;
pub mod writer;

pub use summary::Summary;

use crate::scan::Item;
use aws_sdk_dynamodb::types::AttributeValue;
use writer::MAX_BATCH;

/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

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

/// What a run writes: generated records, or the items of a file.
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
    /// Items read (and validated) from NDJSON.
    Items(Vec<Item>),
}

impl Input {
    /// How many items the run writes.
    pub fn len(&self) -> u64 {
        match self {
            Self::Generated { count, .. } => *count,
            Self::Items(items) => items.len() as u64,
        }
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index of the first generated record: where `next_start` counts from. `None`
    /// for file input, which has no indexes to continue from.
    pub fn start(&self) -> Option<u64> {
        match self {
            Self::Generated { start, .. } => Some(*start),
            Self::Items(_) => None,
        }
    }

    /// The items in batches of at most [`MAX_BATCH`], generated lazily.
    pub fn batches(self) -> Box<dyn Iterator<Item = Vec<Item>> + Send> {
        match self {
            Self::Generated {
                seed,
                start,
                count,
                item_size,
            } => Box::new(sized_batches(seed, start, count, item_size)),
            Self::Items(items) => {
                let mut items = items.into_iter().peekable();
                Box::new(std::iter::from_fn(move || {
                    items.peek()?;
                    Some(items.by_ref().take(MAX_BATCH).collect())
                }))
            }
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
    (start..end).step_by(MAX_BATCH).map(move |first| {
        (first..end.min(first + MAX_BATCH as u64))
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
