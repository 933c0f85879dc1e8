//! Resume tokens: where each segment of an interrupted read stands.
//!
//! A cursor is `2.<payload>.<tag>`: a version, the base64url (no padding) of a
//! deflate-compressed JSON payload, and a truncated HMAC-SHA256 of version and payload
//! keyed with the deployment's `CURSOR_SECRET`, compared in constant time. The tag catches
//! a corrupted or edited token; with a secret set, only this deployment can mint one.
//! (Without a secret a forger gains nothing: the token can only select items of the table
//! the caller may already scan.) Version 1 tokens (a plain SHA-256 seal) are refused with
//! a message to start the scan again.
//!
//! Compression matters: keys are up to 2 KB (partition) and 1 KB (sort), an index scan
//! carries both the index's keys and the table's, and JSON writes a control character
//! as six bytes. [`worst::worst_case_len`] is what a cursor of `segments` positions can reach
//! (incompressible keys of the largest sizes); the configuration checks at cold start that
//! `MAX_CURSOR_BYTES` admits it, so the server never mints a cursor it would refuse.
//!
//! The payload holds the table, `total_segments`, `segment_offset`, the shape of the read
//! (projection, consistency, index; for a Query the key, the partitions, how many are
//! read at once, the sort-key condition and the order; the filter with its names and
//! typed values; `select=count`) and each segment's (or partition's) position: not
//! started, after a key, or done. Keys keep their DynamoDB types (S, N or B). A Query
//! fan-out over `MAX_PARTITIONS` partitions is checked at cold start as segments are
//! ([`worst::worst_case_query_len`]).

use crate::format::item::Item;
use crate::format::shape::{Filter, QueryShape, ReadShape};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::io::{Read, Write};
use std::sync::Arc;

pub mod changes;
mod repr;
pub mod worst;

use repr::*;

/// The only version this code writes and reads.
const VERSION: &str = "2";
/// Versions this code once wrote: refused with a message to start again.
const RETIRED_VERSIONS: &[&str] = &["1"];
/// Tag bytes kept: 128 bits of HMAC-SHA256, as NIST allows for truncated tags.
const TAG_LEN: usize = 16;

/// Where a segment stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    /// Nothing read yet.
    Start,
    /// Continue after this key (an `ExclusiveStartKey`).
    After(Item),
    /// Read to its end.
    Done,
}

/// A decoded cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// The table the positions belong to.
    pub table: String,
    /// The table was split into this many segments.
    pub total_segments: u32,
    /// The first segment of the read; `positions[i]` is segment `segment_offset + i`.
    pub segment_offset: u32,
    /// One position per segment of the read.
    pub positions: Vec<Position>,
    /// What the read returns.
    pub shape: ReadShape,
}

/// The table name and secret a cursor is sealed with.
#[derive(Debug, Clone)]
pub struct CursorSeal {
    /// The table the cursor belongs to.
    pub table: String,
    /// `CURSOR_SECRET`, possibly empty.
    pub secret: Arc<[u8]>,
}

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Longer than the configured cap.
    #[error("cursor is {len} bytes, more than the {max} allowed")]
    Oversized {
        /// The token's length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Made by a version of scanstream this one cannot read.
    #[error("cursor version is not supported (this server reads version {VERSION})")]
    UnsupportedVersion,
    /// Made by an earlier version of scanstream, whose cursors are no longer accepted.
    #[error("cursor version {0} is no longer accepted; start the scan again without a cursor")]
    Retired(&'static str),
    /// Longer than this size once decompressed: not one this server made.
    #[error("cursor payload is too large")]
    PayloadTooLarge,
    /// More positions or other entries than a cursor within the size cap can hold: not
    /// one this server made.
    #[error("cursor holds more entries than this server's cursors can")]
    TooManyEntries,
    /// A change stream's cursor given to a table read.
    #[error("this cursor is a change stream's: resume it with changes=true")]
    OfChanges,
    /// A table read's cursor given to a change stream's read.
    #[error("this cursor is a table read's, not a change stream's: resume it without changes=true")]
    OfTable,
    /// Not a cursor at all.
    #[error("cursor is malformed")]
    Malformed,
    /// A cursor, but not as it was issued.
    #[error("cursor failed its integrity check (edited, truncated, or from another deployment)")]
    Tampered,
}

impl Cursor {
    /// The token for this cursor, sealed with `secret`.
    pub fn encode(&self, secret: &[u8]) -> String {
        let payload = Payload {
            table: self.table.clone(),
            total_segments: self.total_segments,
            segment_offset: self.segment_offset,
            positions: self.positions.iter().map(position_repr).collect(),
            fields: self.shape.fields.clone(),
            consistent: self.shape.consistent,
            index: self.shape.index.clone(),
            partition: None,
            query: self.shape.query.as_ref().map(|query| QueryRepr {
                key: query.key.clone(),
                partitions: query.partitions.iter().map(repr_of_key).collect(),
                concurrency: query.concurrency,
                sort: query.sort.as_ref().map(|sort| SortRepr {
                    key: sort.key.clone(),
                    op: sort.op.name().to_string(),
                    value: repr_of_key(&sort.value),
                    to: sort.to.as_ref().map(repr_of_key),
                }),
                descending: query.descending,
            }),
            filter: self.shape.filter.as_ref().map(|filter| FilterRepr {
                expression: filter.expression.clone(),
                names: filter.names.clone(),
                values: filter
                    .values
                    .iter()
                    .map(|(name, value)| (name.clone(), crate::format::json::typed_json(value)))
                    .collect(),
            }),
            count: self.shape.count,
        };
        // Serialising strings, numbers and maps of them cannot fail.
        seal(
            VERSION,
            &serde_json::to_vec(&payload).unwrap_or_default(),
            secret,
        )
    }

    /// Reads a token, checking its size, version, digest and contents.
    pub fn decode(token: &str, secret: &[u8], max_len: usize) -> Result<Self, CursorError> {
        let max_entries = SHAPE_ENTRIES + POSITION_ENTRIES * (max_len / MIN_POSITION_BYTES + 1);
        let json = unseal(token, VERSION, secret, max_len, max_entries)?;
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| CursorError::Malformed)?;
        let positions = payload
            .positions
            .into_iter()
            .map(position_of)
            .collect::<Option<Vec<_>>>()
            .ok_or(CursorError::Malformed)?;
        let query = match (payload.partition, payload.query) {
            (None, None) => None,
            (Some((key, value)), None) => Some(QueryShape {
                key,
                partitions: vec![key_of_repr(value).ok_or(CursorError::Malformed)?],
                concurrency: 1,
                sort: None,
                descending: false,
            }),
            (None, Some(query)) => Some(query_of(query).ok_or(CursorError::Malformed)?),
            (Some(_), Some(_)) => return Err(CursorError::Malformed),
        };
        let filter = match payload.filter {
            None => None,
            Some(filter) => Some(Filter {
                expression: filter.expression,
                names: filter.names,
                values: filter
                    .values
                    .into_iter()
                    .map(|(name, value)| {
                        Some((name, crate::format::json::typed_value(&value).ok()?))
                    })
                    .collect::<Option<_>>()
                    .ok_or(CursorError::Malformed)?,
            }),
        };
        let cursor = Self {
            table: payload.table,
            total_segments: payload.total_segments,
            segment_offset: payload.segment_offset,
            positions,
            shape: ReadShape {
                fields: payload.fields,
                consistent: payload.consistent,
                index: payload.index,
                query,
                filter,
                count: payload.count,
            },
        };
        let segments = u32::try_from(cursor.positions.len()).unwrap_or(u32::MAX);
        let in_range = segments >= 1
            && cursor
                .segment_offset
                .checked_add(segments)
                .is_some_and(|end| end <= cursor.total_segments);
        // A Query has one position per partition, and at least one partition at a time.
        let query_consistent = cursor.shape.query.as_ref().is_none_or(|query| {
            query.partitions.len() == cursor.positions.len()
                && (1..=segments).contains(&query.concurrency)
        });
        if !in_range || !query_consistent {
            return Err(CursorError::Malformed);
        }
        Ok(cursor)
    }

    /// True when every segment is done: there is nothing left to resume.
    pub fn is_finished(&self) -> bool {
        self.positions.iter().all(|p| *p == Position::Done)
    }
}

/// Inflated bytes per byte of `MAX_CURSOR_BYTES`. Keys of control characters deflate to
/// almost nothing but are six times their size as JSON: a position of four such keys and
/// a partition, under such names, inflates to about 55 KB, the largest shape to about
/// 350 KB. The cap holds at least [`MIN_POSITION_BYTES`] per position and the shape's
/// worst case besides, more than an eighth of either.
const INFLATION: usize = 8;

/// The least a position of the largest keys adds to [`worst::worst_case_len`]: 6 KB of
/// incompressible key bytes, base64 once in the JSON and once in the token. So no
/// `MAX_SEGMENTS` or `MAX_PARTITIONS` the configuration admits exceeds
/// `MAX_CURSOR_BYTES / MIN_POSITION_BYTES`.
const MIN_POSITION_BYTES: usize = 8 * 1024;

/// Entries (each `[`, `{` and `,` outside strings) of a position: a key of four
/// attributes is `{` and four typed values `{"B":..}` with three commas, one comma
/// before the next position, and a Query's partition `{"B":..}` with its comma.
const POSITION_ENTRIES: usize = 11;

/// Entries of everything but the positions: 100 projected names, the filter's name and
/// value placeholders, the values' own JSON (each entry is at least one byte of the
/// bounded `values` text), the sort condition and the payload's fields.
const SHAPE_ENTRIES: usize = 100
    + 2 * crate::format::limits::MAX_PLACEHOLDERS
    + crate::format::limits::MAX_VALUES_BYTES
    + 64;

/// Inflates `compressed` once through a fixed buffer, keeping nothing, and returns its
/// length: refused past `INFLATION` x `max_len` bytes, or past the entries a cursor of
/// `max_len` can hold. Every collection the payload parses into grows with its entries
/// (a million `"s"` positions take a few MB of JSON and hundreds of MB once parsed), so
/// counting them bounds what the parse allocates; strings are bounded by the length.
fn measure(compressed: &[u8], max_len: usize, max_entries: usize) -> Result<usize, CursorError> {
    let max_bytes = max_len.saturating_mul(INFLATION);
    let mut inflater = DeflateDecoder::new(compressed).take(max_bytes as u64 + 1);
    let mut buffer = [0u8; 8192];
    let (mut len, mut entries) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    loop {
        let read = inflater
            .read(&mut buffer)
            .map_err(|_| CursorError::Malformed)?;
        if read == 0 {
            return Ok(len);
        }
        len += read;
        if len > max_bytes {
            return Err(CursorError::PayloadTooLarge);
        }
        for &byte in &buffer[..read] {
            match (in_string, byte) {
                (true, _) if escaped => escaped = false,
                (true, b'\\') => escaped = true,
                (true, b'"') | (false, b'"') => in_string = !in_string,
                (false, b'[' | b'{' | b',') => entries += 1,
                _ => {}
            }
        }
        if entries > max_entries {
            return Err(CursorError::TooManyEntries);
        }
    }
}

/// `json` deflated, base64url'd and sealed as a token of `version`.
fn seal(version: &str, json: &[u8], secret: &[u8]) -> String {
    // Compressing into a Vec cannot fail.
    let mut deflate = DeflateEncoder::new(Vec::new(), Compression::default());
    let compressed = deflate
        .write_all(json)
        .and_then(|()| deflate.finish())
        .unwrap_or_default();
    let body = URL_SAFE_NO_PAD.encode(compressed);
    let tag = URL_SAFE_NO_PAD.encode(&tag(secret, version, &body)[..TAG_LEN]);
    format!("{version}.{body}.{tag}")
}

/// The JSON a token of `version` seals, checked: its size, its version (another kind's
/// named as such), its tag, and what it inflates to (at most `max_entries` entries).
fn unseal(
    token: &str,
    version: &str,
    secret: &[u8],
    max_len: usize,
    max_entries: usize,
) -> Result<Vec<u8>, CursorError> {
    if token.len() > max_len {
        return Err(CursorError::Oversized {
            len: token.len(),
            max: max_len,
        });
    }
    let mut parts = token.split('.');
    let (Some(found), Some(body), Some(seal), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(CursorError::Malformed);
    };
    if found != version {
        return Err(if found == changes::VERSION {
            CursorError::OfChanges
        } else if found == VERSION {
            CursorError::OfTable
        } else if let Some(retired) = RETIRED_VERSIONS.iter().find(|v| **v == found) {
            CursorError::Retired(retired)
        } else if found.bytes().all(|b| b.is_ascii_digit()) && !found.is_empty() {
            CursorError::UnsupportedVersion
        } else {
            CursorError::Malformed
        });
    }
    let seal = URL_SAFE_NO_PAD
        .decode(seal)
        .map_err(|_| CursorError::Malformed)?;
    if seal.len() != TAG_LEN || !verify(secret, version, body, &seal) {
        return Err(CursorError::Tampered);
    }
    let compressed = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CursorError::Malformed)?;
    // Sealed, but with an empty CURSOR_SECRET anyone can seal: measure what it inflates
    // to before holding any of it.
    let len = measure(&compressed, max_len, max_entries)?;
    let mut json = Vec::with_capacity(len);
    DeflateDecoder::new(compressed.as_slice())
        .take(len as u64)
        .read_to_end(&mut json)
        .map_err(|_| CursorError::Malformed)?;
    Ok(json)
}

fn mac(secret: &[u8], version: &str, body: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length, the empty one included.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(version.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac
}

fn tag(secret: &[u8], version: &str, body: &str) -> Vec<u8> {
    mac(secret, version, body).finalize().into_bytes().to_vec()
}

/// Constant-time check of a truncated tag.
fn verify(secret: &[u8], version: &str, body: &str, tag: &[u8]) -> bool {
    mac(secret, version, body)
        .verify_truncated_left(tag)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::worst::{worst_case_len, worst_case_query_len};
    use super::*;
    use crate::format::item::Value;
    use crate::format::key::KeyValue;
    use crate::format::limits;
    use crate::format::shape::{SortCondition, SortOp};

    fn sample() -> Cursor {
        Cursor {
            table: "orders".into(),
            total_segments: 8,
            segment_offset: 4,
            positions: vec![
                Position::Start,
                Position::After(Item::from([
                    ("id".to_string(), Value::S("a/b+c ☃".into())),
                    ("n".to_string(), Value::N("12.50".into())),
                    ("b".to_string(), Value::B(vec![0, 255])),
                ])),
                Position::Done,
                Position::Start,
            ],
            shape: ReadShape {
                fields: vec!["name".into(), "status".into()],
                consistent: false,
                index: Some("by-status".into()),
                query: None,
                filter: Some(Filter {
                    expression: "#a > :n AND contains(#b, :s)".into(),
                    names: [("#a".into(), "age".into()), ("#b".into(), "tags".into())].into(),
                    values: [
                        (":n".into(), Value::N("12.50".into())),
                        (":s".into(), Value::L(vec![Value::Bool(true)])),
                    ]
                    .into(),
                }),
                count: true,
            },
        }
    }

    #[test]
    fn a_cursor_round_trips_and_is_url_safe() {
        let token = sample().encode(b"secret");
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{token}"
        );
        assert_eq!(Cursor::decode(&token, b"secret", 10_000), Ok(sample()));
    }

    #[test]
    fn edits_other_secrets_sizes_and_versions_are_refused() {
        let token = sample().encode(b"secret");
        assert_eq!(
            Cursor::decode(&token, b"other", 10_000),
            Err(CursorError::Tampered)
        );
        let (head, tail) = token.split_at(10);
        let flipped = if tail.starts_with('A') { 'B' } else { 'A' };
        let edited = format!("{head}{flipped}{}", &tail[1..]);
        assert_eq!(
            Cursor::decode(&edited, b"secret", 10_000),
            Err(CursorError::Tampered)
        );
        assert!(matches!(
            Cursor::decode(&token, b"secret", 20),
            Err(CursorError::Oversized { max: 20, .. })
        ));
        let v3 = format!("3{}", &token[1..]);
        assert_eq!(
            Cursor::decode(&v3, b"secret", 10_000),
            Err(CursorError::UnsupportedVersion)
        );
        for junk in ["", "1", "1..", "1.a.b", "x.y.z", "1.!!.??", "1.a.b.c"] {
            assert!(Cursor::decode(junk, b"secret", 10_000).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn a_query_cursor_keeps_partitions_condition_order_and_positions() {
        let after = Item::from([
            ("tenant".to_string(), Value::S("b".into())),
            ("n".to_string(), Value::N("-3.5".into())),
        ]);
        let cursor = Cursor {
            table: "orders".into(),
            total_segments: 3,
            segment_offset: 0,
            positions: vec![Position::Done, Position::After(after), Position::Start],
            shape: ReadShape {
                query: Some(QueryShape {
                    key: "tenant".into(),
                    partitions: vec![
                        KeyValue::S("a".into()),
                        KeyValue::S("b".into()),
                        KeyValue::S("c".into()),
                    ],
                    concurrency: 2,
                    sort: Some(SortCondition {
                        key: "n".into(),
                        op: SortOp::Between,
                        value: KeyValue::N("-10".into()),
                        to: Some(KeyValue::N("10".into())),
                    }),
                    descending: true,
                }),
                count: true,
                ..ReadShape::default()
            },
        };
        let token = cursor.encode(b"k");
        assert_eq!(Cursor::decode(&token, b"k", 10_000), Ok(cursor.clone()));
        // Positions and partitions must pair up; workers within them.
        for broken in [
            Cursor {
                positions: vec![Position::Start; 2],
                total_segments: 2,
                ..cursor.clone()
            },
            Cursor {
                shape: ReadShape {
                    query: cursor.shape.query.clone().map(|q| QueryShape {
                        concurrency: 4,
                        ..q
                    }),
                    ..cursor.shape.clone()
                },
                ..cursor.clone()
            },
        ] {
            assert_eq!(
                Cursor::decode(&broken.encode(b"k"), b"k", 10_000),
                Err(CursorError::Malformed)
            );
        }
    }

    #[test]
    fn a_one_partition_cursor_of_the_earlier_payload_still_resumes() {
        // The payload a single-`pk` Query wrote before the fan-out: the partition as "k".
        let json = br#"{"t":"t","n":1,"o":0,"p":[{"id":{"S":"x"}}],"k":["tenant",{"S":"a"}]}"#;
        let mut deflate = DeflateEncoder::new(Vec::new(), Compression::default());
        deflate.write_all(json).expect("deflate");
        let body = URL_SAFE_NO_PAD.encode(deflate.finish().expect("deflate"));
        let token = format!(
            "2.{body}.{}",
            URL_SAFE_NO_PAD.encode(&tag(b"", VERSION, &body)[..TAG_LEN])
        );
        let cursor = Cursor::decode(&token, b"", 10_000).expect("decodes");
        let query = cursor.shape.query.expect("a Query");
        assert_eq!(
            (query.key.as_str(), query.partitions, query.concurrency),
            ("tenant", vec![KeyValue::S("a".into())], 1)
        );
    }

    #[test]
    fn a_sealed_but_inconsistent_payload_is_malformed() {
        let mut cursor = sample();
        cursor.segment_offset = 6; // 6 + 4 segments > 8
        let token = cursor.encode(b"");
        assert_eq!(
            Cursor::decode(&token, b"", 10_000),
            Err(CursorError::Malformed)
        );
    }

    #[test]
    fn a_version_1_cursor_is_refused_with_a_message_to_start_again() {
        // A token as version 1 made them: JSON payload, truncated SHA-256 seal.
        let v1 = "1.eyJ0IjoidCIsIm4iOjEsIm8iOjAsInAiOlsicyJdfQ.AAAAAAAAAAAAAAAAAAAAAA";
        let err = Cursor::decode(v1, b"", 10_000).unwrap_err();
        assert_eq!(err, CursorError::Retired("1"));
        assert!(err.to_string().contains("start the scan again"), "{err}");
    }

    #[test]
    fn the_tag_is_an_hmac_of_version_and_payload() {
        let token = sample().encode(b"k");
        let (head, tag) = token.rsplit_once('.').expect("three parts");
        let body = head.strip_prefix("2.").expect("version 2");
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"k").expect("key");
        mac.update(format!("2.{body}").as_bytes());
        let full = mac.finalize().into_bytes();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(tag).expect("base64"),
            &full[..TAG_LEN]
        );
        // A tag of the right bytes but the wrong length is refused too.
        let short = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&full[..8]));
        assert_eq!(
            Cursor::decode(&short, b"k", 10_000),
            Err(CursorError::Tampered)
        );
    }

    #[test]
    fn sixty_four_segments_of_large_control_character_keys_fit_the_default_cap() {
        // 2 KB partition keys of control characters: 12 KB each once JSON-escaped.
        let key = |i: u32| -> String {
            (0..2048u32)
                .map(|j| char::from_u32((i * 7 + j) % 31 + 1).unwrap_or('\u{1}'))
                .collect()
        };
        let cursor = Cursor {
            table: "t".into(),
            total_segments: 64,
            segment_offset: 0,
            positions: (0..64)
                .map(|i| Position::After(Item::from([("id".to_string(), Value::S(key(i)))])))
                .collect(),
            shape: ReadShape::default(),
        };
        let token = cursor.encode(b"s");
        let cap = crate::lambda::config::DEFAULT_MAX_CURSOR_BYTES;
        assert!(token.len() <= cap, "{} > {cap}", token.len());
        assert_eq!(Cursor::decode(&token, b"s", cap), Ok(cursor));
    }

    #[test]
    fn escape_heavy_cursors_of_the_most_positions_a_cap_admits_decode() {
        // Control characters: six bytes each as JSON, next to nothing once deflated. What
        // a cursor inflates to, and its entries, must stay within what `measure` allows.
        let text = |len: usize, seed: usize| -> String {
            (0..len)
                .map(|i| char::from(((i * 7 + seed) % 31 + 1) as u8))
                .collect()
        };
        let key = |i: usize| -> Item {
            [2048, 1024, 2048, 1024]
                .iter()
                .enumerate()
                .map(|(k, &len)| (text(255, i + k), Value::S(text(len, i))))
                .collect()
        };
        let shape = ReadShape {
            fields: (0..100).map(|i| text(255, i)).collect(),
            filter: Some(Filter {
                expression: text(limits::MAX_EXPRESSION_BYTES, 0),
                names: (0..100).map(|i| (format!("#n{i}"), text(255, i))).collect(),
                values: [(":v".into(), Value::S(text(2700, 0)))].into(),
            }),
            ..ReadShape::default()
        };
        for (n, query) in [(64u32, false), (100, true)] {
            let cursor = Cursor {
                table: "t".into(),
                total_segments: n,
                segment_offset: 0,
                positions: (0..n as usize).map(|i| Position::After(key(i))).collect(),
                shape: ReadShape {
                    query: query.then(|| QueryShape {
                        key: text(255, 0),
                        partitions: (0..n as usize)
                            .map(|i| KeyValue::S(text(2048, i)))
                            .collect(),
                        concurrency: n,
                        sort: None,
                        descending: false,
                    }),
                    ..shape.clone()
                },
            };
            let cap = if query {
                worst_case_query_len(n)
            } else {
                worst_case_len(n)
            };
            let token = cursor.encode(b"k");
            assert_eq!(Cursor::decode(&token, b"k", cap), Ok(cursor), "{n}");
        }
    }
}
