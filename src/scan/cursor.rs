//! Resume tokens: where each segment of an interrupted read stands.
//!
//! A cursor is `1.<payload>.<digest>`: a version, the base64url (no padding) of a JSON
//! payload, and a truncated SHA-256 over the payload and the deployment's
//! `CURSOR_SECRET`. The digest catches a corrupted or edited token; with a secret set,
//! only this deployment can mint one. (Without a secret a forger gains nothing: the
//! token can only select items of the table the caller may already scan.)
//!
//! The payload holds the table, `total_segments`, `segment_offset`, the shape of the read
//! (projection, consistency, index, partition) and each segment's position: not started,
//! after a key, or done. Keys keep their DynamoDB types (S, N or B).

use super::ReadShape;
use crate::encode::Item;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The only version this code writes and reads.
const VERSION: &str = "1";
/// Digest bytes kept: 128 bits is plenty to catch edits.
const DIGEST_LEN: usize = 16;

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
    /// Not a cursor at all.
    #[error("cursor is malformed")]
    Malformed,
    /// A cursor, but not as it was issued.
    #[error("cursor failed its integrity check (edited, truncated, or from another deployment)")]
    Tampered,
}

/// A key value with its DynamoDB type, as serialised in the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum KeyValue {
    S(String),
    N(String),
    /// Base64 (standard alphabet).
    B(String),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    #[serde(rename = "t")]
    table: String,
    #[serde(rename = "n")]
    total_segments: u32,
    #[serde(rename = "o")]
    segment_offset: u32,
    /// `"s"` not started, `"d"` done, or the key to continue after.
    #[serde(rename = "p")]
    positions: Vec<PositionRepr>,
    #[serde(rename = "f", default, skip_serializing_if = "Vec::is_empty")]
    fields: Vec<String>,
    #[serde(rename = "c", default, skip_serializing_if = "std::ops::Not::not")]
    consistent: bool,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    index: Option<String>,
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    partition: Option<(String, KeyValue)>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum PositionRepr {
    Mark(String),
    After(BTreeMap<String, KeyValue>),
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
            partition: self
                .shape
                .partition
                .as_ref()
                .and_then(|(name, value)| Some((name.clone(), key_value(value)?))),
        };
        // Serialising strings, numbers and maps of them cannot fail.
        let json = serde_json::to_vec(&payload).unwrap_or_default();
        let body = URL_SAFE_NO_PAD.encode(json);
        let digest = URL_SAFE_NO_PAD.encode(digest(secret, &body));
        format!("{VERSION}.{body}.{digest}")
    }

    /// Reads a token, checking its size, version, digest and contents.
    pub fn decode(token: &str, secret: &[u8], max_len: usize) -> Result<Self, CursorError> {
        if token.len() > max_len {
            return Err(CursorError::Oversized {
                len: token.len(),
                max: max_len,
            });
        }
        let mut parts = token.split('.');
        let (Some(version), Some(body), Some(seal), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CursorError::Malformed);
        };
        if version != VERSION {
            return Err(
                if version.bytes().all(|b| b.is_ascii_digit()) && !version.is_empty() {
                    CursorError::UnsupportedVersion
                } else {
                    CursorError::Malformed
                },
            );
        }
        let seal = URL_SAFE_NO_PAD
            .decode(seal)
            .map_err(|_| CursorError::Malformed)?;
        if seal != digest(secret, body) {
            return Err(CursorError::Tampered);
        }
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CursorError::Malformed)?;
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| CursorError::Malformed)?;
        let positions = payload
            .positions
            .into_iter()
            .map(position_of)
            .collect::<Option<Vec<_>>>()
            .ok_or(CursorError::Malformed)?;
        let partition = match payload.partition {
            None => None,
            Some((name, value)) => Some((name, attribute_of(value).ok_or(CursorError::Malformed)?)),
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
                partition,
            },
        };
        let segments = u32::try_from(cursor.positions.len()).unwrap_or(u32::MAX);
        let in_range = segments >= 1
            && cursor
                .segment_offset
                .checked_add(segments)
                .is_some_and(|end| end <= cursor.total_segments);
        if !in_range {
            return Err(CursorError::Malformed);
        }
        Ok(cursor)
    }

    /// True when every segment is done: there is nothing left to resume.
    pub fn is_finished(&self) -> bool {
        self.positions.iter().all(|p| *p == Position::Done)
    }
}

fn digest(secret: &[u8], body: &str) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update((secret.len() as u64).to_be_bytes());
    hasher.update(secret);
    hasher.update(body.as_bytes());
    hasher.finalize()[..DIGEST_LEN].to_vec()
}

fn position_repr(position: &Position) -> PositionRepr {
    match position {
        Position::Start => PositionRepr::Mark("s".into()),
        Position::Done => PositionRepr::Mark("d".into()),
        Position::After(key) => PositionRepr::After(
            key.iter()
                .filter_map(|(name, value)| Some((name.clone(), key_value(value)?)))
                .collect(),
        ),
    }
}

fn position_of(repr: PositionRepr) -> Option<Position> {
    match repr {
        PositionRepr::Mark(mark) if mark == "s" => Some(Position::Start),
        PositionRepr::Mark(mark) if mark == "d" => Some(Position::Done),
        PositionRepr::Mark(_) => None,
        PositionRepr::After(key) if key.is_empty() => None,
        PositionRepr::After(key) => key
            .into_iter()
            .map(|(name, value)| Some((name, attribute_of(value)?)))
            .collect::<Option<Item>>()
            .map(Position::After),
    }
}

/// Keys are only ever S, N or B; anything else is not a key and is left out.
fn key_value(value: &AttributeValue) -> Option<KeyValue> {
    match value {
        AttributeValue::S(s) => Some(KeyValue::S(s.clone())),
        AttributeValue::N(n) => Some(KeyValue::N(n.clone())),
        AttributeValue::B(b) => Some(KeyValue::B(STANDARD.encode(b.as_ref()))),
        _ => None,
    }
}

fn attribute_of(value: KeyValue) -> Option<AttributeValue> {
    Some(match value {
        KeyValue::S(s) => AttributeValue::S(s),
        KeyValue::N(n) => AttributeValue::N(n),
        KeyValue::B(b) => AttributeValue::B(Blob::new(STANDARD.decode(b).ok()?)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Cursor {
        Cursor {
            table: "orders".into(),
            total_segments: 8,
            segment_offset: 4,
            positions: vec![
                Position::Start,
                Position::After(Item::from([
                    ("id".to_string(), AttributeValue::S("a/b+c ☃".into())),
                    ("n".to_string(), AttributeValue::N("12.50".into())),
                    ("b".to_string(), AttributeValue::B(Blob::new(vec![0, 255]))),
                ])),
                Position::Done,
                Position::Start,
            ],
            shape: ReadShape {
                fields: vec!["name".into(), "status".into()],
                consistent: false,
                index: Some("by-status".into()),
                partition: Some(("status".into(), AttributeValue::S("open".into()))),
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
        let v2 = format!("2{}", &token[1..]);
        assert_eq!(
            Cursor::decode(&v2, b"secret", 10_000),
            Err(CursorError::UnsupportedVersion)
        );
        for junk in ["", "1", "1..", "1.a.b", "x.y.z", "1.!!.??", "1.a.b.c"] {
            assert!(Cursor::decode(junk, b"secret", 10_000).is_err(), "{junk:?}");
        }
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
}
