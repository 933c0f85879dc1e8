//! The tally of one stream: its running counts and each segment's position as of the
//! pages sent, from which it makes the trailer and, when the stream stopped early, the
//! cursor that resumes exactly after the last item delivered.

use crate::format::cursor::{Cursor, CursorSeal, Position};
use crate::format::shape::ReadShape;
use crate::format::trailer::{PartitionSummary, SegmentSummary, StopReason, Trailer, TrailerError};
use std::sync::Arc;
use std::time::Duration;

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
#[derive(Debug, Clone)]
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

    /// The sealed cursor that resumes after what was sent; `None` when every segment is
    /// done, or without a seal.
    pub fn cursor(&self) -> Option<String> {
        let seal = self.seal.as_ref()?;
        (!self.all_done()).then(|| {
            Cursor {
                table: seal.table.clone(),
                total_segments: self.total_segments,
                segment_offset: self.segment_offset,
                positions: self.positions.clone(),
                shape: (*self.shape).clone(),
            }
            .encode(&seal.secret)
        })
    }

    /// This tally's deliveries (items, positions) with `current`'s costs (items read,
    /// capacity, retries): what an export reports when the pages after its last file
    /// were read, and paid for, but lost.
    pub fn with_costs_of(mut self, current: &Tally) -> Self {
        self.scanned = current.scanned;
        self.consumed_capacity = current.consumed_capacity;
        self.retries = current.retries;
        self
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
        let cursor = self.cursor();
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
            changes_since: None,
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

#[cfg(test)]
mod tests {
    use super::*;

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
            crate::format::item::Value::S("x".into()),
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
}
