//! Seeding: deterministic fake records and the batch writer that stores them.
//!
//! - [`generate`]: the record for (seed, index), the same bytes on every run and machine.
//! - [`writer`]: `BatchWriteItem` in batches of 25, several in flight, `UnprocessedItems`
//!   and throttling retried with capped exponential backoff and full jitter.
//! - [`table`]: creates the table (key `id`, type S, on demand), idempotently.

pub mod generate;
pub mod table;
pub mod writer;

use crate::encode::Item;
use writer::MAX_BATCH;

/// Records `start..start + count` of `seed`, in batches of at most 25, generated lazily so
/// a large run never holds more than the batches in flight.
pub fn generated_batches(seed: u64, start: u64, count: u64) -> impl Iterator<Item = Vec<Item>> {
    let end = start.saturating_add(count);
    (start..end).step_by(MAX_BATCH).map(move |first| {
        (first..end.min(first + MAX_BATCH as u64))
            .map(|i| generate::record(seed, i))
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
