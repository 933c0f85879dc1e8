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
pub mod rate;
pub mod stream;
pub mod trailer;

use crate::error::UpstreamError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

/// One DynamoDB item: attribute names to typed values, as the SDK gives it.
pub type Item = HashMap<String, AttributeValue>;

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
    pub partition: Option<(String, KeyValue)>,
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
    /// The page's consumed capacity must be reported (a read-rate cap is charged with it),
    /// whatever the source does by default.
    pub report_capacity: bool,
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

/// A key attribute's value: keys are only ever strings, numbers or binary. Outside the
/// DynamoDB adapter this is what a key value is; the adapter makes the SDK's type of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue {
    /// A string.
    S(String),
    /// A number, as its decimal text.
    N(String),
    /// Binary.
    B(Vec<u8>),
}

impl KeyValue {
    /// The SDK's value for this key.
    pub fn to_attribute(&self) -> AttributeValue {
        match self {
            Self::S(s) => AttributeValue::S(s.clone()),
            Self::N(n) => AttributeValue::N(n.clone()),
            Self::B(b) => AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(b.clone())),
        }
    }

    /// The key value of an SDK value; `None` for types no key can have.
    pub fn of_attribute(value: &AttributeValue) -> Option<Self> {
        match value {
            AttributeValue::S(s) => Some(Self::S(s.clone())),
            AttributeValue::N(n) => Some(Self::N(n.clone())),
            AttributeValue::B(b) => Some(Self::B(b.as_ref().to_vec())),
            _ => None,
        }
    }
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
