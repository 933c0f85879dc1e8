//! The trailer: the last line of every stream, saying what the stream holds.
//!
//! Its shape is reserved: a JSON object whose only key is [`TRAILER_KEY`]. A stream whose
//! last line is not a trailer was cut off, and the client can tell. [`Tally`] keeps the
//! numbers and positions as pages are sent and makes the trailer (and its cursor) from
//! them; [`split_body`] reads a whole body back into items and its trailer.

use super::cursor::{Cursor, CursorSeal, Position};
use crate::error::ErrorKind;
use crate::format::shape::ReadShape;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The one key of the trailer object. DynamoDB items always carry their key attributes,
/// so only a table keyed by an attribute of this name could produce a look-alike.
pub const TRAILER_KEY: &str = "@scanstream";

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
    /// A stable code (see [`crate::error::ErrorKind::code`]).
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

/// What one page sent adds to the tally.
#[derive(Debug, Clone, PartialEq)]
pub struct SentPage {
    /// Items in the page.
    pub items: u64,
    /// Items DynamoDB read for it.
    pub scanned: u64,
    /// Read capacity it cost, when reported.
    pub consumed_capacity: Option<f64>,
    /// Attempts beyond the first it took.
    pub retries: u64,
    /// Where its segment stands once it is sent.
    pub next: Position,
}

/// The running counts of one stream and each segment's position as of the pages *sent*,
/// so the cursor resumes exactly after the last item delivered.
#[derive(Debug)]
pub struct Tally {
    total_segments: u32,
    segment_offset: u32,
    /// Per segment of the read: where it stands.
    positions: Vec<Position>,
    /// Per segment of the read: what it sent.
    segments: Vec<SegmentSummary>,
    shape: Arc<ReadShape>,
    /// Without it an incomplete trailer has no cursor.
    seal: Option<CursorSeal>,
    scanned: u64,
    consumed_capacity: Option<f64>,
    retries: u64,
}

impl Tally {
    /// A tally of nothing sent yet, segments `segment_offset..` starting at `positions`.
    pub fn new(
        total_segments: u32,
        segment_offset: u32,
        positions: Vec<Position>,
        shape: Arc<ReadShape>,
        seal: Option<CursorSeal>,
    ) -> Self {
        let segments = positions
            .iter()
            .zip(segment_offset..)
            .map(|(position, segment)| SegmentSummary {
                segment,
                items: 0,
                pages: 0,
                done: *position == Position::Done,
            })
            .collect();
        Self {
            total_segments,
            segment_offset,
            positions,
            segments,
            shape,
            seal,
            scanned: 0,
            consumed_capacity: None,
            retries: 0,
        }
    }

    /// Counts `page` of the segment in `slot` as sent.
    pub fn record(&mut self, slot: usize, page: SentPage) {
        if let Some(summary) = self.segments.get_mut(slot) {
            summary.items += page.items;
            summary.pages += 1;
            summary.done = page.next == Position::Done;
        }
        if let Some(position) = self.positions.get_mut(slot) {
            *position = page.next;
        }
        self.scanned += page.scanned;
        if let Some(units) = page.consumed_capacity {
            *self.consumed_capacity.get_or_insert(0.0) += units;
        }
        self.retries += page.retries;
    }

    /// Counts the retries of a call that failed.
    pub fn add_retries(&mut self, retries: u64) {
        self.retries += retries;
    }

    /// Every segment read to its end.
    pub fn all_done(&self) -> bool {
        self.segments.iter().all(|s| s.done)
    }

    /// The segment number of `slot`.
    pub fn segment_of(&self, slot: usize) -> u32 {
        self.segment_offset + u32::try_from(slot).unwrap_or(u32::MAX - self.segment_offset)
    }

    /// The first segment not read to its end; `None` for a Query, whose positions are
    /// partitions, not segments.
    pub fn first_unfinished_segment(&self) -> Option<u32> {
        if self.shape.query.is_some() {
            return None;
        }
        self.segments.iter().find(|s| !s.done).map(|s| s.segment)
    }

    /// The segment number of `slot` as a trailer error names it: `None` for a Query.
    pub fn error_segment(&self, slot: usize) -> Option<u32> {
        self.shape.query.is_none().then(|| self.segment_of(slot))
    }

    /// The trailer: `reason` and `error` apply only when some segment is unfinished, and
    /// then (with a seal) a cursor says where each segment stands.
    pub fn trailer(
        &self,
        reason: Option<StopReason>,
        error: Option<TrailerError>,
        elapsed: Duration,
        ttfb: Duration,
    ) -> Trailer {
        let complete = self.all_done();
        let cursor = match (&self.seal, complete) {
            (Some(seal), false) => Some(
                Cursor {
                    table: seal.table.clone(),
                    total_segments: self.total_segments,
                    segment_offset: self.segment_offset,
                    positions: self.positions.clone(),
                    shape: (*self.shape).clone(),
                }
                .encode(&seal.secret),
            ),
            _ => None,
        };
        let partitions = match &self.shape.query {
            Some(query) => query
                .partitions
                .iter()
                .zip(&self.segments)
                .map(|(pk, summary)| PartitionSummary {
                    pk: pk.to_text(),
                    items: summary.items,
                    pages: summary.pages,
                    done: summary.done,
                })
                .collect(),
            None => Vec::new(),
        };
        Trailer {
            complete,
            items: self.segments.iter().map(|s| s.items).sum(),
            scanned: self.scanned,
            pages: self.segments.iter().map(|s| s.pages).sum(),
            consumed_capacity: self.consumed_capacity,
            rcu_per_s: self.consumed_capacity.map(|units| {
                // Rounded to tenths: the rate is a measure, not an account.
                (units / elapsed.as_secs_f64().max(0.001) * 10.0).round() / 10.0
            }),
            rcu_wait_ms: None,
            retries: self.retries,
            segments: if partitions.is_empty() {
                self.segments.clone()
            } else {
                Vec::new()
            },
            partitions: (!partitions.is_empty()).then(|| Box::new(partitions)),
            elapsed_ms: millis(elapsed),
            ttfb_ms: millis(ttfb),
            reason: if complete { None } else { reason },
            cursor,
            error,
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
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
        let trailer = Tally::new(1, 0, vec![Position::Start], Arc::default(), None).trailer(
            None,
            None,
            Duration::ZERO,
            Duration::ZERO,
        );
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
    fn the_tally_resumes_after_the_last_page_sent() {
        let mut tally = Tally::new(
            4,
            2,
            vec![Position::Start, Position::Start],
            Arc::default(),
            Some(CursorSeal {
                table: "t".into(),
                secret: Arc::from(&b"k"[..]),
            }),
        );
        let key = crate::format::item::Item::from([(
            "id".to_string(),
            aws_sdk_dynamodb::types::AttributeValue::S("x".into()),
        )]);
        tally.record(
            1,
            SentPage {
                items: 3,
                scanned: 4,
                consumed_capacity: Some(1.5),
                retries: 1,
                next: Position::After(key.clone()),
            },
        );
        tally.add_retries(2);
        let trailer = tally.trailer(
            Some(StopReason::MaxItems),
            None,
            Duration::from_millis(5),
            Duration::from_millis(1),
        );
        assert_eq!((trailer.items, trailer.scanned, trailer.retries), (3, 4, 3));
        assert_eq!(trailer.segments[1].segment, 3);
        let cursor =
            Cursor::decode(&trailer.cursor.expect("cursor"), b"k", 1 << 20).expect("decodes");
        assert_eq!(
            cursor.positions,
            vec![Position::Start, Position::After(key)]
        );
        assert_eq!(tally.first_unfinished_segment(), Some(2));
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
