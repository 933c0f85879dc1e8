//! Valid items into batches for the writer: at most 25, no key twice in one batch, and
//! at most [`MAX_BATCH_BYTES`] of typed JSON, as `BatchWriteItem` refuses a request over
//! 16 MB (25 items of 400 KB by DynamoDB's measure can be far more as JSON).
//!
//! DynamoDB refuses a `BatchWriteItem` that holds one key twice, comparing keys by value.
//! A repeat within a batch is therefore reported as a bad line, naming the line of the
//! first; memory stays bounded by the batch, so repeats further apart are not looked for
//! (both are written, and which one stays is not defined).

use crate::format::item::Item;
use crate::format::key::ItemKey;
use crate::format::limits::MAX_BATCH_WRITE_ITEMS;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// A batch closes before its items' typed JSON would pass this: under the request limit
/// ([`crate::format::limits::MAX_BATCH_WRITE_BYTES`], 16 MB) with room for the request's
/// own wrapping.
pub const MAX_BATCH_BYTES: usize = 12 << 20;

/// What a put adds to the request besides the item's JSON (`{"PutRequest":{"Item":..}},`).
const PUT_OVERHEAD: usize = 32;

/// Where a line is: its data file (0 for a single file or stream) and its line number.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    /// The data file, counted from 0 in the manifest's order.
    pub file: u32,
    /// The line in that file, from 1.
    pub line: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)
    }
}

/// A batch for the writer, with where its items came from.
#[derive(Debug, Default)]
pub struct Batch {
    /// The items, in input order.
    pub items: Vec<Item>,
    /// Each item's position.
    pub positions: Vec<Position>,
}

impl Batch {
    /// The position of its last item: once it is written, everything up to there is.
    pub fn last(&self) -> Option<Position> {
        self.positions.last().copied()
    }
}

/// Fills batches in input order.
#[derive(Debug, Default)]
pub struct Batcher {
    batch: Batch,
    /// The keys of the batch being filled, with their lines.
    keys: HashMap<ItemKey, u64>,
    /// The typed JSON of the batch being filled, in bytes.
    bytes: usize,
}

impl Batcher {
    /// Adds an item at line `line` of the current file, `bytes` its typed JSON's length
    /// (the line's); a full batch comes back, by count or by bytes. A key already in the
    /// batch is an error naming the line it is on.
    pub fn push(
        &mut self,
        line: u64,
        item: Item,
        key: ItemKey,
        bytes: usize,
    ) -> Result<Option<Batch>, String> {
        self.push_at(Position { file: 0, line }, item, key, bytes)
    }

    /// As [`push`](Self::push), at `position`.
    pub fn push_at(
        &mut self,
        position: Position,
        item: Item,
        key: ItemKey,
        bytes: usize,
    ) -> Result<Option<Batch>, String> {
        let bytes = bytes.saturating_add(PUT_OVERHEAD);
        // Too big to join: the batch so far goes out, and this item starts the next
        // (which then holds one item, so is never full by count as well).
        let closed =
            if !self.batch.items.is_empty() && self.bytes.saturating_add(bytes) > MAX_BATCH_BYTES {
                self.finish()
            } else {
                None
            };
        if let Some(first) = self.keys.get(&key) {
            return Err(format!(
                "the key is already on line {first}, in the same batch of {MAX_BATCH_WRITE_ITEMS}: \
                 DynamoDB refuses a batch with a key twice (keys compare by value)"
            ));
        }
        self.keys.insert(key, position.line);
        self.bytes += bytes;
        self.batch.items.push(item);
        self.batch.positions.push(position);
        if self.batch.items.len() == MAX_BATCH_WRITE_ITEMS {
            return Ok(self.finish());
        }
        Ok(closed)
    }

    /// The batch being filled, if it holds anything.
    pub fn finish(&mut self) -> Option<Batch> {
        self.keys.clear();
        self.bytes = 0;
        let batch = std::mem::take(&mut self.batch);
        (!batch.items.is_empty()).then_some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::item::Value;
    use crate::format::key::KeySchema;

    #[test]
    fn batches_hold_25_and_refuse_a_key_twice_by_value() {
        let schema = KeySchema::parse("pk:N").expect("schema");
        let item = |n: &str| Item::from([("pk".to_string(), Value::N(n.into()))]);
        let mut batcher = Batcher::default();
        let mut full = Vec::new();
        for i in 0..30u64 {
            let it = item(&i.to_string());
            let key = schema.key_of(&it).expect("key");
            if let Some(batch) = batcher.push(i + 1, it, key, 20).expect("distinct") {
                full.push(batch);
            }
        }
        assert_eq!(full.len(), 1);
        assert_eq!(full[0].items.len(), 25);
        assert_eq!(full[0].last(), Some(Position { file: 0, line: 25 }));
        // "26.0" is 26, already in the batch being filled (lines 26..=30).
        let again = item("26.0");
        let key = schema.key_of(&again).expect("key");
        let err = batcher.push(31, again, key, 20).expect_err("repeat");
        assert!(err.contains("already on line 27"), "{err}");
        assert_eq!(batcher.finish().map(|b| b.items.len()), Some(5));
        // A new batch has no memory of the last one.
        let later = item("26");
        let key = schema.key_of(&later).expect("key");
        assert!(batcher.push(32, later, key, 20).is_ok());
    }
    #[test]
    fn a_batch_closes_before_its_json_passes_the_byte_bound() {
        let schema = KeySchema::parse("pk:N").expect("schema");
        let item = |n: u64| Item::from([("pk".to_string(), Value::N(n.to_string()))]);
        let mut batcher = Batcher::default();
        let mut full = Vec::new();
        // Lines of 3 MB: four with their overhead pass 12 MB, so three per batch.
        let line = 3 << 20;
        for i in 0..10u64 {
            let it = item(i);
            let key = schema.key_of(&it).expect("key");
            if let Some(batch) = batcher.push(i + 1, it, key, line).expect("distinct") {
                full.push(batch);
            }
        }
        full.extend(batcher.finish());
        let sizes: Vec<usize> = full.iter().map(|b| b.items.len()).collect();
        assert_eq!(sizes, [3, 3, 3, 1]);
        assert!(
            sizes
                .iter()
                .all(|&n| n * (line + PUT_OVERHEAD) <= MAX_BATCH_BYTES)
        );
        // One line over the bound on its own still goes, alone.
        let mut batcher = Batcher::default();
        let (a, b) = (item(1), item(2));
        let (ka, kb) = (
            schema.key_of(&a).expect("key"),
            schema.key_of(&b).expect("key"),
        );
        assert!(batcher.push(1, a, ka, 100).expect("ok").is_none());
        let first = batcher.push(2, b, kb, MAX_BATCH_BYTES).expect("ok");
        assert_eq!(first.map(|b| b.items.len()), Some(1));
        assert_eq!(batcher.finish().map(|b| b.items.len()), Some(1));
    }
}
