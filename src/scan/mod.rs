//! The parallel Scan: page sources, the fan-out over segments, and the merged NDJSON stream.
//!
//! A [`PageSource`] fetches one page of one segment. [`stream::start`] runs one task per
//! segment against a source and merges their pages, as they arrive, into a single stream
//! of NDJSON buffers that ends with a [`trailer`] line carrying a [`cursor`] when the
//! stream stopped early. The same merge runs against DynamoDB ([`dynamo::DynamoSource`])
//! and against an in-memory table ([`memory::MemorySource`]).

pub mod budget;
pub mod cursor;
pub mod dynamo;
pub mod memory;
pub mod stream;
pub mod trailer;

use crate::encode::Item;
use crate::error::UpstreamError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::future::Future;
use std::sync::Arc;

/// What a read returns, beyond "every item of the table": the parameters that shape the
/// result. A cursor carries them, so a resumed read returns the same kind of items.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadShape {
    /// Top-level attributes to return (a projection); empty means all.
    pub fields: Vec<String>,
    /// Strongly consistent reads.
    pub consistent: bool,
    /// Read this global secondary index instead of the table.
    pub index: Option<String>,
    /// Query this partition (key attribute name and value) instead of scanning.
    pub partition: Option<(String, AttributeValue)>,
}

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
    /// Projection, consistency, index, partition: the same for every page of a read.
    pub shape: Arc<ReadShape>,
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
    /// Read capacity units the page cost, when the source was asked to report it.
    pub consumed_capacity: Option<f64>,
    /// Attempts beyond the first that the page took (throttling, transient errors).
    pub retries: u64,
}

/// The scalar type of a key attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
}

/// The partition key of a table or index: what `?pk=` is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttribute {
    /// The attribute name.
    pub name: String,
    /// Its type, which decides how the `pk` text is read.
    pub key_type: KeyType,
}

/// Fetches pages of a segmented scan. Implemented for DynamoDB and for an in-memory table.
pub trait PageSource: Send + Sync + 'static {
    /// Fetches the page `request` names.
    fn page(
        &self,
        request: PageRequest,
    ) -> impl Future<Output = Result<Page, UpstreamError>> + Send;

    /// The partition key of the table, or of `index`; also how a missing table or index
    /// is found before any page is read.
    fn partition_key(
        &self,
        index: Option<&str>,
    ) -> impl Future<Output = Result<KeyAttribute, UpstreamError>> + Send;
}
