//! The trailer: the last line of every stream, saying what the stream holds.
//!
//! Its shape is reserved: a JSON object whose only key is [`TRAILER_KEY`]. A stream whose
//! last line is not a trailer was cut off, and the client can tell.

use serde::{Deserialize, Serialize};

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
    /// Attempts beyond the first over all Scan calls (throttling, transient errors).
    pub retries: u64,
    /// Per-segment counts, in segment order.
    pub segments: Vec<SegmentSummary>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `max_items` were sent.
    MaxItems,
    /// The invocation's deadline (less the reserve) was reached.
    TimeBudget,
    /// The response reached its byte budget.
    ByteBudget,
    /// DynamoDB failed and retries did not cure it (see `error`).
    Error,
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

    /// Reads a line as a trailer; `None` when it is an item (or not JSON at all).
    pub fn parse_line(line: &[u8]) -> Option<Self> {
        serde_json::from_slice::<TrailerLine>(line)
            .ok()
            .map(|line| line.trailer)
    }
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
            retries: 2,
            segments: vec![SegmentSummary {
                segment: 0,
                items: 3,
                pages: 2,
                done: false,
            }],
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
}
