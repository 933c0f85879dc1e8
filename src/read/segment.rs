//! One segment's task: fetch a page, encode it into one buffer of whole lines, and hand
//! it to the merge ([`super::stream`]), until the segment, the partition or the budget
//! ends. A task reserves its channel slot before it fetches, which is what bounds the
//! pages in flight to one per segment.

use super::budget::Budget;
use super::filtered::{Fitted, FullPages};
use crate::dynamo::source::{PageRequest, PageSource};
use crate::format::cursor::Position;
use crate::format::error::UpstreamError;
use crate::format::json::Format;
use crate::format::key::KeyValue;
use crate::format::rate::RateLimit;
use crate::format::shape::ReadShape;
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// A page a segment task hands to the merge.
#[derive(Debug)]
pub(super) struct EncodedPage {
    /// Index into the plan's positions.
    pub(super) slot: usize,
    pub(super) lines: Bytes,
    pub(super) items: u64,
    pub(super) scanned: u64,
    pub(super) consumed_capacity: Option<f64>,
    pub(super) retries: u64,
    /// Where the segment stands once this page is sent.
    pub(super) next: Position,
}

#[derive(Debug)]
pub(super) enum Event {
    Page(EncodedPage),
    Failed { slot: usize, error: UpstreamError },
}

/// One segment's task: fetch, encode, hand over, until the segment or the budget ends.
///
/// It holds only what its own pages need: not the plan, whose positions (a key per
/// segment) would make memory grow with the square of the segments on a resumed read.
/// For a Query it reads one partition; a worker runs one after another.
pub(super) struct Segment<S> {
    pub(super) source: Arc<S>,
    pub(super) slot: usize,
    pub(super) segment: u32,
    pub(super) total_segments: u32,
    /// The partition a Query reads.
    pub(super) partition: Option<KeyValue>,
    pub(super) limit: u32,
    pub(super) shape: Arc<ReadShape>,
    pub(super) format: Format,
    pub(super) tx: mpsc::Sender<Event>,
    pub(super) budget: Arc<Budget>,
    pub(super) rate: Option<Arc<RateLimit>>,
    /// Whole pages, cut to the budget: a filtered read under `max_items`.
    pub(super) full: Option<Arc<FullPages>>,
}

impl<S> Clone for Segment<S> {
    fn clone(&self) -> Self {
        Self {
            source: self.source.clone(),
            slot: self.slot,
            segment: self.segment,
            total_segments: self.total_segments,
            partition: self.partition.clone(),
            limit: self.limit,
            shape: self.shape.clone(),
            format: self.format,
            tx: self.tx.clone(),
            budget: self.budget.clone(),
            rate: self.rate.clone(),
            full: self.full.clone(),
        }
    }
}

impl<S: PageSource> Segment<S> {
    /// Reads until the segment ends (`true`) or something stops it (`false`): the
    /// client went away, `max_items` was reached, or a page failed.
    pub(super) async fn run(self, mut start_key: Option<crate::format::item::Item>) -> bool {
        // Capacity and items of this segment's pages so far: what an item costs.
        let (mut units, mut items) = (0.0, 0u64);
        // The next page is sized by the budget, not read whole: one that had to be cut
        // before the key could be trusted is read again that way.
        let mut budget_sized = false;
        loop {
            // Reserve before fetching: this is what bounds pages in flight per segment.
            let Ok(permit) = self.tx.reserve().await else {
                debug!("client gone, segment stops");
                return false;
            };
            let full = self
                .full
                .as_deref()
                .filter(|full| full.active() && !std::mem::take(&mut budget_sized));
            let want = full.map_or(self.limit, |full| full.reservation(self.limit));
            let Some(mut reservation) = self.budget.take(want).await else {
                debug!("max_items reached, segment stops");
                return false;
            };
            // A filtered page reads about what matches its reservation at the rate seen
            // so far (`super::filtered`); otherwise exactly its reservation.
            let mut limit = match full {
                Some(full) => full.page_limit(self.limit, reservation.items()),
                None => reservation.items(),
            };
            if let Some(rate) = &self.rate {
                rate.admit().await;
                let per_item = (items > 0).then(|| units / items as f64);
                limit = rate.page_limit(limit, per_item);
            }
            let request = PageRequest {
                segment: self.segment,
                total_segments: self.total_segments,
                limit,
                // Kept: a page dropped below is read again from the same key.
                exclusive_start_key: start_key.clone(),
                shape: full.map_or(&self.shape, |full| full.shape()).clone(),
                partition: self.partition.clone(),
                report_capacity: self.rate.is_some(),
            };
            let mut fetched = self.source.page(request).await;
            if let (Some(full), Ok(page)) = (full, fetched.as_mut()) {
                let fitted = full.fit(page, &mut reservation);
                if fitted != Fitted::Sent {
                    // Not sent: the segment's position has not moved, so reading on from
                    // `start_key` loses nothing. What the page cost is still charged, and
                    // counted in the trailer as a page of no items (the client paces its
                    // `--max-rcu` by the trailers' capacity).
                    if let Some(rate) = &self.rate {
                        let cost = page.consumed_capacity.unwrap_or(0.0);
                        rate.charge(cost);
                        units += cost;
                        items += page.scanned_count;
                    }
                    reservation.settle(0);
                    budget_sized = fitted == Fitted::Unverified;
                    debug!(?fitted, "filtered page dropped, read again");
                    permit.send(Event::Page(EncodedPage {
                        slot: self.slot,
                        lines: Bytes::new(),
                        items: 0,
                        scanned: page.scanned_count,
                        consumed_capacity: page.consumed_capacity,
                        retries: page.retries,
                        next: start_key.clone().map_or(Position::Start, Position::After),
                    }));
                    continue;
                }
            }
            if full.is_none()
                && let (Some(whole), Ok(page)) = (self.full.as_deref(), fetched.as_ref())
            {
                whole.observe(page.last_evaluated_key.as_ref());
            }
            let used = fetched.as_ref().map_or(0, |page| page.items.len() as u64);
            reservation.settle(used);
            match fetched {
                Ok(page) => {
                    // With `select=count` no items come back, only how many matched.
                    let fetched = if self.shape.count {
                        page.count
                    } else {
                        page.items.len() as u64
                    };
                    let mut lines = Vec::with_capacity(page.items.len() * 256);
                    for item in &page.items {
                        self.format.write_line(&mut lines, item);
                    }
                    if let Some(rate) = &self.rate {
                        // Without a report, half a unit per 4 KB read: an eventually
                        // consistent read's price, on the plain lines' size.
                        let cost = page.consumed_capacity.unwrap_or_else(|| {
                            (lines.len() as f64 / crate::format::limits::READ_UNIT_BYTES as f64)
                                .ceil()
                                * 0.5
                        });
                        rate.charge(cost);
                        units += cost;
                        // Per item *read*: `Limit` counts what DynamoDB reads, before a
                        // filter drops any, so a filter that matches little must not make
                        // pages look expensive.
                        items += page.scanned_count.max(fetched);
                    }
                    start_key = page.last_evaluated_key;
                    let next = match &start_key {
                        Some(key) => Position::After(key.clone()),
                        None => Position::Done,
                    };
                    let done = next == Position::Done;
                    permit.send(Event::Page(EncodedPage {
                        slot: self.slot,
                        lines: Bytes::from(lines),
                        items: fetched,
                        scanned: page.scanned_count,
                        consumed_capacity: page.consumed_capacity,
                        retries: page.retries,
                        next,
                    }));
                    if done {
                        return true;
                    }
                }
                Err(error) => {
                    warn!(cause = %error, source = ?error.source, "segment failed");
                    permit.send(Event::Failed {
                        slot: self.slot,
                        error,
                    });
                    return false;
                }
            }
        }
    }
}
