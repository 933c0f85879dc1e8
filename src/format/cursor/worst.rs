//! The longest cursor a read can produce: what the configuration checks `MAX_CURSOR_BYTES`
//! against at cold start, so the server never mints a cursor it would refuse.
//!
//! A real cursor of the largest keys (incompressible, under the longest names) and the
//! largest shape a request can give is encoded for one and five positions, and the length
//! is extended linearly from those two.

use super::{Cursor, Position};
use crate::format::item::Value;
use crate::format::key::KeyValue;
use crate::format::limits::{
    self, MAX_KEY_NAME_BYTES, MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES, MAX_TOTAL_SEGMENTS,
};
use crate::format::shape::{Filter, QueryShape, ReadShape, SortCondition, SortOp};

/// The longest token a cursor of `segments` positions can be: each position after a key
/// of four attributes (an index scan's key holds the index's partition and sort keys and
/// the table's), each of the largest size, of bytes no compressor can shrink, under the
/// longest names; and the largest shape a request can give (projection, filter with
/// its names and values, see [`worst_case_shape`]). Binary keys are the worst case:
/// base64 in the JSON, and after deflate still one byte per byte; random text is no
/// larger.
///
/// Measured on one and five positions and extended linearly (with a margin per
/// position), so that checking a `MAX_SEGMENTS` of a million costs no gigabytes.
pub fn worst_case_len(segments: u32) -> usize {
    extrapolate(segments, |n| worst_case_token(n, false).len())
}

/// The longest token a Query fan-out over `partitions` partitions can be: as
/// [`worst_case_len`], and each position also carries its partition's value (2 KB of
/// binary) and the largest sort-key condition.
pub fn worst_case_query_len(partitions: u32) -> usize {
    extrapolate(partitions, |n| worst_case_token(n, true).len())
}

fn extrapolate(positions: u32, len: impl Fn(u32) -> usize) -> usize {
    let one = len(1);
    let five = len(5);
    let per_position = (five.saturating_sub(one)).div_ceil(4) + 64;
    one + per_position * (positions.max(1) as usize - 1)
}

/// Random bytes and names, seeded: the same worst case on every run.
struct Noise(rand_chacha::ChaCha8Rng);

impl Noise {
    fn new(seed: u64) -> Self {
        use rand::SeedableRng;
        Self(rand_chacha::ChaCha8Rng::seed_from_u64(seed))
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        use rand::RngExt;
        (0..len).map(|_| self.0.random()).collect()
    }

    /// Random text over the 63 characters of placeholders (`A-Z a-z 0-9 _`): about as
    /// costly to deflate as base64 whether positions or the shape dominate the payload,
    /// so that the bound extrapolated from few positions holds for many.
    fn name(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
        self.bytes(len)
            .into_iter()
            .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
            .collect()
    }
}

/// The largest shape a request can ask for, of incompressible text: 100 projected
/// names, an index, a 4 KB filter with the most name and value placeholders of the
/// longest sizes and values filling their bound.
fn worst_case_shape(noise: &mut Noise) -> ReadShape {
    let names = (0..limits::MAX_PLACEHOLDERS)
        .map(|_| {
            (
                format!("#{}", noise.name(limits::MAX_PLACEHOLDER_BYTES - 1)),
                noise.name(limits::MAX_NAME_BYTES),
            )
        })
        .collect();
    // One value filling the `values` bound: base64 in a B, the costliest encoding.
    let value = Value::B(noise.bytes(limits::MAX_VALUES_BYTES * 3 / 4));
    ReadShape {
        fields: (0..100).map(|_| noise.name(255)).collect(),
        consistent: true,
        index: Some("i".repeat(255)),
        query: None,
        filter: Some(Filter {
            expression: noise.name(limits::MAX_EXPRESSION_BYTES),
            names,
            values: [(format!(":{}", noise.name(254)), value)].into(),
        }),
        count: false,
    }
}

/// A real cursor of `positions` positions as large as positions get; with `query`, a
/// fan-out over that many partitions of the largest values.
fn worst_case_token(positions: u32, query: bool) -> String {
    let mut noise = Noise::new(u64::from(positions) * 2 + u64::from(query));
    let sizes = [
        MAX_PARTITION_KEY_BYTES,
        MAX_SORT_KEY_BYTES,
        MAX_PARTITION_KEY_BYTES,
        MAX_SORT_KEY_BYTES,
    ];
    let mut shape = worst_case_shape(&mut noise);
    let key_positions = (0..positions)
        .map(|_| {
            Position::After(
                sizes
                    .iter()
                    .map(|&size| {
                        let name = noise.name(MAX_KEY_NAME_BYTES);
                        (name, Value::B(noise.bytes(size)))
                    })
                    .collect(),
            )
        })
        .collect();
    let (total_segments, positions) = if query {
        shape.query = Some(QueryShape {
            key: noise.name(MAX_KEY_NAME_BYTES),
            partitions: (0..positions)
                .map(|_| KeyValue::B(noise.bytes(MAX_PARTITION_KEY_BYTES)))
                .collect(),
            concurrency: positions,
            sort: Some(SortCondition {
                key: noise.name(MAX_KEY_NAME_BYTES),
                op: SortOp::Between,
                value: KeyValue::B(noise.bytes(MAX_SORT_KEY_BYTES)),
                to: Some(KeyValue::B(noise.bytes(MAX_SORT_KEY_BYTES))),
            }),
            descending: true,
        });
        (positions, key_positions)
    } else {
        (MAX_TOTAL_SEGMENTS, key_positions)
    };
    Cursor {
        table: "t".repeat(255),
        total_segments,
        segment_offset: 0,
        positions,
        shape,
    }
    .encode(b"")
}

#[cfg(test)]
mod tests {
    use super::super::MIN_POSITION_BYTES;
    use super::*;

    #[test]
    fn a_cursor_cap_holds_at_most_one_position_per_min_position_bytes() {
        // What the decoder's entry budget rests on: a MAX_SEGMENTS or MAX_PARTITIONS the
        // configuration admits under a cap of N bytes is at most N / MIN_POSITION_BYTES.
        for n in [1, 64, 212, 1000] {
            let len = worst_case_len(n);
            assert!(len >= n as usize * MIN_POSITION_BYTES, "{n}: {len}");
            assert!(worst_case_query_len(n) >= len, "{n}");
        }
    }

    #[test]
    fn the_worst_case_bound_holds_for_a_real_worst_case_cursor() {
        let real = worst_case_token(64, false).len();
        let bound = worst_case_len(64);
        eprintln!("worst-case cursor of 64 segments: {real} bytes, bound {bound}");
        assert!(real <= bound, "{real} > {bound}");
        assert!(
            bound - real < real / 50,
            "bound {bound} is loose for {real}"
        );
        // Each position carries 6 KB of incompressible key bytes: base64 makes it 8 KB.
        assert!(real > 64 * 8 * 1024, "{real}");
        assert!(Cursor::decode(&worst_case_token(64, false), b"", bound).is_ok());
        let real = worst_case_token(100, true).len();
        let bound = worst_case_query_len(100);
        eprintln!("worst-case cursor of 100 partitions: {real} bytes, bound {bound}");
        assert!(
            real <= bound && bound - real < real / 50,
            "{real} vs {bound}"
        );
        assert!(Cursor::decode(&worst_case_token(100, true), b"", bound).is_ok());
    }
}
