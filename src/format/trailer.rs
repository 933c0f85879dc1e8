//! The trailer: the last line of every stream, saying what the stream holds.
//!
//! Its shape is reserved: a JSON object whose only key is [`TRAILER_KEY`]. A stream whose
//! last line is not a trailer was cut off, and the client can tell. The read's tally
//! (`read::tally`) keeps the numbers and positions as pages are sent and makes the trailer
//! (and its cursor) from them; [`split_body`] reads a whole body back into items and its
//! trailer.

use crate::format::error::ErrorKind;
use serde::{Deserialize, Serialize};

/// The one key of the trailer object. DynamoDB items always carry their key attributes,
/// so only a table keyed by an attribute of this name could produce a look-alike.
pub const TRAILER_KEY: &str = "@scanstream";

/// The table's approximate item count, in a response's headers (DynamoDB's `ItemCount`,
/// refreshed about every six hours: approximate).
pub const APPROX_ITEMS_HEADER: &str = "x-scanstream-approx-items";
/// The table's approximate size in bytes (`TableSizeBytes`, as approximate).
pub const APPROX_BYTES_HEADER: &str = "x-scanstream-approx-bytes";

/// The summary of one stream, sent as its last line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trailer {
    /// True when every segment was read to its end and nothing failed.
    pub complete: bool,
    /// Items sent, over all segments.
    pub items: u64,
    /// Items DynamoDB read (`ScannedCount`), over all segments.
    pub scanned: u64,
    /// Pages fetched, over all segments.
    pub pages: u64,
    /// Read capacity units consumed, as DynamoDB reported them; `null` when not asked
    /// for (`RETURN_CONSUMED_CAPACITY=NONE`).
    pub consumed_capacity: Option<f64>,
    /// Read capacity units a second over the scan: `consumed_capacity` over `elapsed_ms`.
    pub rcu_per_s: Option<f64>,
    /// With `max_rcu`: time segments spent waiting for the read-rate cap, added over
    /// segments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcu_wait_ms: Option<u64>,
    /// Attempts beyond the first over all Scan calls (throttling, transient errors).
    pub retries: u64,
    /// Per-segment counts, in segment order; empty for a Query, which has
    /// `partitions` instead.
    #[serde(default)]
    pub segments: Vec<SegmentSummary>,
    /// A Query's per-partition counts, in the order the partitions were asked for
    /// (read them with [`Trailer::partitions`]). Boxed: a trailer is carried by value in
    /// the client's outcomes, so it stays small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Box<Vec<PartitionSummary>>>,
    /// From the start of the scan to this trailer.
    pub elapsed_ms: u64,
    /// From the start of the scan to the first page being ready to send.
    pub ttfb_ms: u64,
    /// Why the stream stopped before the end, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<StopReason>,
    /// Where to resume (`?cursor=`), when the stream stopped before the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The failure that stopped the stream, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TrailerError>,
    /// In the trailer `scanstream pull --trailer` writes: the read's `T0` (RFC 3339), from
    /// which the table's changes bring the output up to date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes_since: Option<String>,
}

/// Why a stream stopped before reading everything.
///
/// On the wire it is a snake_case string. A reason this build does not know (a newer
/// streamer's) still parses, as [`StopReason::Unknown`] with its text: a client reads it
/// as "incomplete, go on from the cursor" instead of as a trailer that is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `max_items` were sent.
    MaxItems,
    /// The invocation's deadline (less the reserve) was reached.
    TimeBudget,
    /// The response reached its byte budget.
    ByteBudget,
    /// DynamoDB failed and retries did not cure it (see `error`).
    Error,
    /// A read of the table's changes (`changes=true`) reached the end of every shard: every
    /// open shard had nothing new. Such a trailer is `complete`, and its cursor is where
    /// the next call goes on.
    CaughtUp,
    /// A reason this build does not know, with its text.
    Unknown(ReasonText),
}

impl StopReason {
    /// The reason as it is on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::MaxItems => "max_items",
            Self::TimeBudget => "time_budget",
            Self::ByteBudget => "byte_budget",
            Self::Error => "error",
            Self::CaughtUp => "caught_up",
            Self::Unknown(text) => text.as_str(),
        }
    }

    /// The reason for its wire text; an unknown one keeps its text.
    pub fn from_wire(text: &str) -> Self {
        match text {
            "max_items" => Self::MaxItems,
            "time_budget" => Self::TimeBudget,
            "byte_budget" => Self::ByteBudget,
            "error" => Self::Error,
            "caught_up" => Self::CaughtUp,
            other => Self::Unknown(ReasonText::new(other)),
        }
    }
}

impl Serialize for StopReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StopReason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Self::from_wire(&text))
    }
}

/// The text of an unknown stop reason, kept inline so that [`StopReason`] stays `Copy`;
/// a text longer than [`ReasonText::MAX`] bytes is cut at a character boundary (a reason is
/// a short code, and this text is only ever shown in a message).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ReasonText {
    bytes: [u8; ReasonText::MAX],
    len: u8,
}

impl ReasonText {
    /// The longest text kept, in bytes.
    pub const MAX: usize = 64;

    fn new(text: &str) -> Self {
        let mut end = text.len().min(Self::MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0; Self::MAX];
        bytes[..end].copy_from_slice(&text.as_bytes()[..end]);
        Self {
            bytes,
            // `end` is at most MAX (64).
            len: u8::try_from(end).unwrap_or(u8::MAX),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Cut at a character boundary of a `str`: always UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Debug for ReasonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// What one segment contributed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentSummary {
    /// The segment number, out of the scan's total segments.
    pub segment: u32,
    /// Items sent from this segment.
    pub items: u64,
    /// Pages fetched from this segment.
    pub pages: u64,
    /// Whether the segment was read to its end.
    pub done: bool,
}

/// What one partition of a Query contributed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSummary {
    /// The partition key value as a request writes it (S as is, N as its decimal text,
    /// B as base64).
    pub pk: String,
    /// Items sent from this partition (counted, with `select=count`).
    pub items: u64,
    /// Pages fetched from this partition.
    pub pages: u64,
    /// Whether the partition was read to its end.
    pub done: bool,
}

/// A failure that ended the stream early; the text is safe for clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailerError {
    /// A stable code (see [`crate::format::error::ErrorKind::code`]).
    pub code: String,
    /// A fixed, safe description.
    pub message: String,
    /// The segment that failed, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<u32>,
}

/// The trailer wrapped in its reserved key, as it appears on the wire.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailerLine {
    /// The trailer itself.
    #[serde(rename = "@scanstream")]
    pub trailer: Trailer,
}

impl Trailer {
    /// A Query's per-partition counts; empty for a Scan.
    pub fn partitions(&self) -> &[PartitionSummary] {
        self.partitions.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The trailer as one NDJSON line.
    pub fn to_line(&self) -> Vec<u8> {
        let line = TrailerLine {
            trailer: self.clone(),
        };
        // Serialising plain structs of numbers and strings cannot fail.
        let mut out = serde_json::to_vec(&line).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// The trailer of a body, read from its last line (the body may be just its tail):
    /// `None` when the stream was cut off.
    pub fn of_body(body: &[u8]) -> Option<Self> {
        let body = body.strip_suffix(b"\n")?;
        let last = body.rsplit(|&b| b == b'\n').next().unwrap_or(body);
        Self::parse_line(last)
    }

    /// Reads a line as a trailer; `None` when it is an item (or not JSON at all).
    pub fn parse_line(line: &[u8]) -> Option<Self> {
        serde_json::from_slice::<TrailerLine>(line)
            .ok()
            .map(|line| line.trailer)
    }
}

impl TrailerError {
    /// The safe code and message of `kind`, for `segment`.
    pub fn of(kind: ErrorKind, segment: Option<u32>) -> Self {
        Self {
            code: kind.code().into(),
            message: kind.message().into(),
            segment,
        }
    }
}

/// A body that is not whole NDJSON ending in a trailer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body does not end with a newline: it was cut mid-line.
    #[error("the body does not end with a newline (cut off mid-line)")]
    Unterminated,
    /// The last line is not a trailer: the stream was cut off.
    #[error("the last line is not a trailer (the stream was cut off)")]
    NoTrailer,
    /// A line before the trailer is not a JSON object, or is a second trailer.
    #[error("line {0} is not an item")]
    NotAnItem(usize),
}

/// Splits a whole NDJSON body into its item lines (parsed) and its trailer, checking
/// that only the last line is a trailer.
pub fn split_body(body: &[u8]) -> Result<(Vec<serde_json::Value>, Trailer), BodyError> {
    let Some(without_newline) = body.strip_suffix(b"\n") else {
        return Err(BodyError::Unterminated);
    };
    let trailer = Trailer::of_body(body).ok_or(BodyError::NoTrailer)?;
    let mut lines: Vec<&[u8]> = without_newline.split(|&b| b == b'\n').collect();
    lines.pop();
    let items = lines
        .into_iter()
        .enumerate()
        .map(
            |(i, line)| match serde_json::from_slice::<serde_json::Value>(line) {
                Ok(value) if value.is_object() && Trailer::parse_line(line).is_none() => Ok(value),
                _ => Err(BodyError::NotAnItem(i + 1)),
            },
        )
        .collect::<Result<_, _>>()?;
    Ok((items, trailer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailer_round_trips_and_an_item_is_not_a_trailer() {
        let trailer = Trailer {
            changes_since: None,
            complete: false,
            items: 3,
            scanned: 3,
            pages: 2,
            consumed_capacity: Some(1.5),
            rcu_per_s: Some(150.0),
            rcu_wait_ms: None,
            retries: 2,
            segments: vec![SegmentSummary {
                segment: 0,
                items: 3,
                pages: 2,
                done: false,
            }],
            partitions: None,
            elapsed_ms: 10,
            ttfb_ms: 2,
            reason: Some(StopReason::Error),
            cursor: Some("1.abc.def".into()),
            error: Some(TrailerError {
                code: "Throttled".into(),
                message: "m".into(),
                segment: Some(0),
            }),
        };
        let line = trailer.to_line();
        assert_eq!(line.last(), Some(&b'\n'));
        assert!(line.starts_with(br#"{"@scanstream":{"complete":false"#));
        assert_eq!(Trailer::parse_line(&line), Some(trailer));
        assert_eq!(Trailer::parse_line(br#"{"id":"x","items":3}"#), None);
    }

    #[test]
    fn a_body_splits_into_items_and_its_trailer() {
        // What a tally of one segment, nothing sent, makes (see `read::tally`).
        let trailer = Trailer {
            changes_since: None,
            complete: false,
            items: 0,
            scanned: 0,
            pages: 0,
            consumed_capacity: None,
            rcu_per_s: None,
            rcu_wait_ms: None,
            retries: 0,
            segments: vec![SegmentSummary {
                segment: 0,
                items: 0,
                pages: 0,
                done: false,
            }],
            partitions: None,
            elapsed_ms: 0,
            ttfb_ms: 0,
            reason: None,
            cursor: None,
            error: None,
        };
        let mut body = b"{\"id\":\"a\"}\n{\"id\":\"b\"}\n".to_vec();
        body.extend(trailer.to_line());
        let (items, parsed) = split_body(&body).expect("whole");
        assert_eq!(items.len(), 2);
        assert_eq!(parsed, trailer);
        assert_eq!(
            split_body(&body[..body.len() - 1]),
            Err(BodyError::Unterminated)
        );
        assert_eq!(split_body(b"{\"id\":\"a\"}\n"), Err(BodyError::NoTrailer));
        let mut twice = trailer.to_line();
        twice.extend(trailer.to_line());
        assert_eq!(split_body(&twice), Err(BodyError::NotAnItem(1)));
    }

    #[test]
    fn an_unknown_stop_reason_survives_parsing_with_its_text() {
        let line = br#"{"@scanstream":{"complete":false,"items":0,"scanned":0,"pages":0,"consumed_capacity":null,"rcu_per_s":null,"retries":0,"segments":[],"elapsed_ms":1,"ttfb_ms":1,"reason":"quota_exhausted","cursor":"c"}}"#;
        let trailer = Trailer::parse_line(line).expect("still a trailer");
        let reason = trailer.reason.expect("a reason");
        assert!(matches!(reason, StopReason::Unknown(_)), "{reason:?}");
        assert_eq!(reason.as_str(), "quota_exhausted");
        let again = Trailer::parse_line(trailer.to_line().trim_ascii_end()).expect("round trip");
        assert_eq!(again.reason, trailer.reason);
        for known in ["max_items", "time_budget", "byte_budget", "error"] {
            let reason = StopReason::from_wire(known);
            assert!(!matches!(reason, StopReason::Unknown(_)), "{known}");
            assert_eq!(serde_json::to_value(reason).expect("json"), known);
        }
        let long = "é".repeat(40);
        let cut = StopReason::from_wire(&long);
        assert_eq!(cut.as_str(), "é".repeat(32), "cut at a character boundary");
    }
}
