//! The parallel Scan: page sources, the fan-out over segments, and the merged NDJSON stream.
//!
//! A [`PageSource`] fetches one page of one segment. [`stream::start`] runs one task per
//! segment against a source and merges their pages, as they arrive, into a single stream
//! of NDJSON buffers that ends with a trailer line. The same merge runs against DynamoDB
//! ([`dynamo::DynamoSource`]) and against an in-memory table ([`memory::MemorySource`]).

pub mod dynamo;
pub mod memory;
pub mod stream;
pub mod trailer;

use crate::encode::Item;
use crate::error::UpstreamError;
use std::future::Future;

/// Which page to fetch: a segment of a parallel Scan and where in it to continue.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    /// This segment's number, `0..total_segments`.
    pub segment: u32,
    /// How many segments the table is split into.
    pub total_segments: u32,
    /// At most this many items are read for the page (DynamoDB's `Limit`).
    pub limit: u32,
    /// Continue after this key (the previous page's `LastEvaluatedKey`); `None` starts
    /// the segment from its beginning.
    pub exclusive_start_key: Option<Item>,
}

/// One page of one segment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// The items, in the order the source returned them.
    pub items: Vec<Item>,
    /// Where the next page starts; `None` when the segment is finished.
    pub last_evaluated_key: Option<Item>,
    /// Items the source read for this page (DynamoDB's `ScannedCount`).
    pub scanned_count: u64,
    /// Read capacity units the page cost, when the source reports it.
    pub consumed_capacity: f64,
}

/// Fetches pages of a segmented scan. Implemented for DynamoDB and for an in-memory table.
pub trait PageSource: Send + Sync + 'static {
    /// Fetches the page `request` names.
    fn page(
        &self,
        request: PageRequest,
    ) -> impl Future<Output = Result<Page, UpstreamError>> + Send;
}
