//! The cursor of a read of the table's change stream (`changes=true`): the stream it
//! belongs to, the `since` its records are kept from, and where each shard stands.
//!
//! A token is `c1.<payload>.<tag>`, sealed as a table read's cursor is (the parent module),
//! but of its own version, so one kind given for the other is named, not "malformed".
//!
//! Only shards with something to say are held. A shard read to its end is dropped once a
//! child of it is held (a child is read only after its parent is done, so the parent's
//! being done is implied), and a shard the stream no longer lists is dropped by the read.
//! So a cursor holds about one entry per open shard, whatever the stream's history.

use super::{CursorError, seal, unseal};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The version of change cursors: not a table read's.
pub const VERSION: &str = "c1";

/// The longest shard ID DynamoDB Streams makes (its API reference: 28 to 65 characters).
pub const MAX_SHARD_ID: usize = 65;
/// The longest sequence number (its API reference: 21 to 40 digits).
pub const MAX_SEQUENCE: usize = 40;
/// The longest stream ARN (its API reference: 37 to 1024 characters).
pub const MAX_STREAM_ARN: usize = 1024;
/// The longest change cursor minted or taken, whatever `MAX_CURSOR_BYTES` says: a shard
/// held costs about 42 bytes compressed (an estimate, not measured here), so this holds some
/// thousands of open shards. (A table read's cursor
/// is bounded by its segments; a stream's by the table's partitions, which no setting caps.)
pub const MAX_CHANGE_CURSOR_BYTES: usize = 256 * 1024;

/// Where one shard stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardPosition {
    /// Read through this sequence number: the next record is after it.
    After(String),
    /// Read to its end (the shard is closed).
    Done,
}

/// A decoded change cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeCursor {
    /// The table whose stream this is.
    pub table: String,
    /// The stream's ARN: a cursor of another stream (the table's stream re-created) is not
    /// one this read can go on from.
    pub stream: String,
    /// Records created before this time (milliseconds since the epoch) are skipped: the
    /// request's `since` less its margin, rounded down to the minute.
    pub since_ms: Option<u64>,
    /// The creation time of the oldest record the next call may still need from a shard
    /// this cursor does not hold (one not started): past the stream's retention, those
    /// records may be gone without any error, so such a cursor is refused. `None` when the
    /// read asked for everything the stream keeps (no `since`) and some shard is unstarted.
    pub needed_ms: Option<u64>,
    /// Shards with a position that have not yet reached `since`: their records from before
    /// it are still skipped. (Once a shard passes `since`, every later record is sent,
    /// whatever its approximate time says.)
    pub skipping: BTreeSet<String>,
    /// The shards with a position, by shard ID; a shard the stream lists and this does
    /// not (and that is no ancestor of one it does) has not been started.
    pub shards: BTreeMap<String, ShardPosition>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    #[serde(rename = "t")]
    table: String,
    #[serde(rename = "a")]
    stream: String,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    since_ms: Option<u64>,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    needed_ms: Option<u64>,
    #[serde(rename = "k", default, skip_serializing_if = "BTreeSet::is_empty")]
    skipping: BTreeSet<String>,
    /// A shard's last sequence number read, or `null` when it is done.
    #[serde(rename = "p")]
    shards: BTreeMap<String, Option<String>>,
}

impl ChangeCursor {
    /// The token for this cursor, sealed with `secret`.
    pub fn encode(&self, secret: &[u8]) -> String {
        let payload = Payload {
            table: self.table.clone(),
            stream: self.stream.clone(),
            since_ms: self.since_ms,
            needed_ms: self.needed_ms,
            skipping: self.skipping.clone(),
            shards: self
                .shards
                .iter()
                .map(|(id, position)| {
                    let at = match position {
                        ShardPosition::After(sequence) => Some(sequence.clone()),
                        ShardPosition::Done => None,
                    };
                    (id.clone(), at)
                })
                .collect(),
        };
        // Serialising strings and maps of them cannot fail.
        seal(
            VERSION,
            &serde_json::to_vec(&payload).unwrap_or_default(),
            secret,
        )
    }

    /// Reads a token, checking its size, version, tag and contents.
    pub fn decode(token: &str, secret: &[u8], max_len: usize) -> Result<Self, CursorError> {
        // Every entry is a shard ID of at least one byte and a comma: a token of
        // `max_len` bytes cannot honestly hold more entries than bytes.
        let json = unseal(token, VERSION, secret, max_len, max_len)?;
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| CursorError::Malformed)?;
        let id_ok = |id: &String| {
            !id.is_empty() && id.len() <= MAX_SHARD_ID && id.bytes().all(|b| b.is_ascii_graphic())
        };
        let sequence_ok = |sequence: &String| {
            !sequence.is_empty()
                && sequence.len() <= MAX_SEQUENCE
                && sequence.bytes().all(|b| b.is_ascii_digit())
        };
        let well_formed = !payload.stream.is_empty()
            && payload.stream.len() <= MAX_STREAM_ARN
            && payload
                .shards
                .iter()
                .all(|(id, at)| id_ok(id) && at.as_ref().is_none_or(sequence_ok))
            && payload
                .skipping
                .iter()
                .all(|id| matches!(payload.shards.get(id), Some(Some(_))));
        if !well_formed {
            return Err(CursorError::Malformed);
        }
        Ok(Self {
            table: payload.table,
            stream: payload.stream,
            since_ms: payload.since_ms,
            needed_ms: payload.needed_ms,
            skipping: payload.skipping,
            shards: payload
                .shards
                .into_iter()
                .map(|(id, at)| (id, at.map_or(ShardPosition::Done, ShardPosition::After)))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::cursor::Cursor;

    fn sample() -> ChangeCursor {
        ChangeCursor {
            table: "orders".into(),
            stream: "arn:aws:dynamodb:us-east-1:1:table/orders/stream/2026-12-07T00:00:00.000"
                .into(),
            since_ms: Some(1_765_000_000_000),
            needed_ms: Some(1_765_000_060_000),
            skipping: BTreeSet::from(["shardId-0002".to_string()]),
            shards: BTreeMap::from([
                ("shardId-0001".to_string(), ShardPosition::Done),
                (
                    "shardId-0002".to_string(),
                    ShardPosition::After("000000000000000000123".into()),
                ),
            ]),
        }
    }

    #[test]
    fn a_change_cursor_round_trips_and_is_sealed() {
        let token = sample().encode(b"secret");
        assert!(token.starts_with("c1."), "{token}");
        assert_eq!(
            ChangeCursor::decode(&token, b"secret", 10_000),
            Ok(sample())
        );
        assert_eq!(
            ChangeCursor::decode(&token, b"other", 10_000),
            Err(CursorError::Tampered)
        );
        assert!(matches!(
            ChangeCursor::decode(&token, b"secret", 10),
            Err(CursorError::Oversized { .. })
        ));
    }

    #[test]
    fn one_kind_of_cursor_given_for_the_other_is_named() {
        let token = sample().encode(b"");
        assert_eq!(
            Cursor::decode(&token, b"", 10_000),
            Err(CursorError::OfChanges)
        );
        let table = Cursor {
            table: "orders".into(),
            total_segments: 1,
            segment_offset: 0,
            positions: vec![crate::format::cursor::Position::Start],
            shape: crate::format::shape::ReadShape::default(),
        }
        .encode(b"");
        assert_eq!(
            ChangeCursor::decode(&table, b"", 10_000),
            Err(CursorError::OfTable)
        );
    }

    #[test]
    fn positions_that_are_not_a_streams_are_refused() {
        for (id, at) in [
            ("", Some("1")),
            ("shard", Some("12a")),
            ("shard", Some("")),
            ("shard id", None),
        ] {
            let payload = Payload {
                table: "t".into(),
                stream: "arn".into(),
                since_ms: None,
                needed_ms: None,
                skipping: BTreeSet::new(),
                shards: BTreeMap::from([(id.to_string(), at.map(str::to_string))]),
            };
            let token = seal(VERSION, &serde_json::to_vec(&payload).expect("JSON"), b"");
            assert_eq!(
                ChangeCursor::decode(&token, b"", 10_000),
                Err(CursorError::Malformed),
                "{id:?} {at:?}"
            );
        }
    }
}
