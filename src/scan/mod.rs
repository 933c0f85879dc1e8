//! The parallel Scan (and the Query fan-out): page sources, the fan-out over segments or
//! partitions, and the merged NDJSON stream.
//!
//! A [`PageSource`] fetches one page of one segment. [`stream::start`] runs one task per
//! segment against a source and merges their pages, as they arrive, into a single stream
//! of NDJSON buffers that ends with a [`trailer`] line carrying a [`cursor`] when the
//! stream stopped early. The same merge runs against DynamoDB ([`dynamo::DynamoSource`])
//! and against an in-memory table ([`memory::MemorySource`]).

pub mod budget;
pub mod cursor;
pub mod dynamo;
pub mod filtered;
pub mod memory;
pub mod rate;
pub mod stream;
pub mod trailer;

use crate::error::UpstreamError;
use crate::format::key::{KeyAttribute, KeySchema, KeyValue};
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
    /// Query partitions (their values are per position, in the plan and the cursor)
    /// instead of scanning segments.
    pub query: Option<QueryShape>,
    /// A filter expression applied by DynamoDB to what it read.
    pub filter: Option<Filter>,
    /// Count the items (DynamoDB's `Select=COUNT`) instead of returning them.
    pub count: bool,
}

/// What a Query of each partition looks like: the key attribute, an optional sort-key
/// condition, and the order.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryShape {
    /// The partition key attribute of the table or index.
    pub key: String,
    /// The partitions read, one per position of the plan (and of the cursor).
    pub partitions: Vec<KeyValue>,
    /// How many partitions are queried at once (`segments`).
    pub concurrency: u32,
    /// A condition on the sort key, when one was asked for.
    pub sort: Option<SortCondition>,
    /// Newest first: `ScanIndexForward=false`.
    pub descending: bool,
}

/// One condition on the sort key of a Query, typed by the key schema.
#[derive(Debug, Clone, PartialEq)]
pub struct SortCondition {
    /// The sort key attribute.
    pub key: String,
    /// The comparison.
    pub op: SortOp,
    /// The value compared with (the lower bound, for `Between`).
    pub value: KeyValue,
    /// The upper bound, for `Between` only.
    pub to: Option<KeyValue>,
}

/// The comparisons a key condition allows on a sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOp {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `begins_with`
    Prefix,
    /// `BETWEEN ... AND ...`, inclusive.
    Between,
}

impl SortOp {
    /// Every comparison, each with the short name the cursor stores it under.
    pub const ALL: &'static [(SortOp, &'static str)] = &[
        (Self::Eq, "eq"),
        (Self::Lt, "lt"),
        (Self::Le, "le"),
        (Self::Gt, "gt"),
        (Self::Ge, "ge"),
        (Self::Prefix, "prefix"),
        (Self::Between, "between"),
    ];

    /// The short name (`eq`, `lt`, ..., `between`).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(op, _)| *op == self)
            .map_or("eq", |(_, name)| name)
    }

    /// The comparison called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(op, _)| *op)
    }
}

/// A filter expression in DynamoDB's own language, with its placeholders. Values are
/// never spliced into the expression: they travel as `ExpressionAttributeValues`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The expression, as DynamoDB writes it (`#s = :v AND size(#n) > :len`).
    pub expression: String,
    /// Name placeholders (`#s`) to attribute names.
    pub names: std::collections::BTreeMap<String, String>,
    /// Value placeholders (`:v`) to typed values.
    pub values: std::collections::BTreeMap<String, AttributeValue>,
}

/// Every placeholder scanstream generates (for the projection and the key condition)
/// begins with this, after its `#` or `:`; user placeholders may not, so they never
/// collide.
pub const RESERVED_PLACEHOLDER_PREFIX: &str = "scanstream";

/// DynamoDB refused an expression the user wrote (a filter, or a key condition built
/// from the user's values): its message is about the user's own input and is passed on.
#[derive(Debug, thiserror::Error)]
#[error("DynamoDB rejected the expression: {message}")]
pub struct ExpressionRejected {
    /// DynamoDB's message, with anything internal (the table name, control
    /// characters) taken out and cut short.
    pub message: String,
    /// The SDK error, for the logs.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
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
    /// Projection, consistency, index, query, filter: the same for every page of a read.
    pub shape: Arc<ReadShape>,
    /// The partition to Query (with `shape.query`); `None` for a Scan.
    pub partition: Option<KeyValue>,
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
    /// Items that matched (DynamoDB's `Count`): the page's items, or with `Select=COUNT`
    /// (no items returned) how many there were.
    pub count: u64,
    /// Read capacity units the page cost, when the source was asked to report it.
    pub consumed_capacity: Option<f64>,
    /// Attempts beyond the first that the page took (throttling, transient errors).
    pub retries: u64,
}

/// A table's (or an index's) size as DynamoDB last counted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApproximateSize {
    /// `ItemCount`.
    pub items: u64,
    /// `TableSizeBytes` (`IndexSizeBytes` for an index).
    pub bytes: u64,
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

    /// DynamoDB's approximate size of the table, or of `index` (`ItemCount` and
    /// `TableSizeBytes`, which DynamoDB refreshes about every six hours); `None` when
    /// the source cannot say. Advisory: a failure to find out is `None`, not an error.
    fn approximate_size(
        &self,
        index: Option<&str>,
    ) -> impl Future<Output = Option<ApproximateSize>> + Send {
        let _ = index;
        async { None }
    }

    /// The partition and sort keys of the table, or of `index`. Sources without sort
    /// keys need not implement it.
    fn key_schema(
        &self,
        index: Option<&str>,
    ) -> impl Future<Output = Result<KeySchema, UpstreamError>> + Send {
        async move {
            Ok(KeySchema {
                partition: self.partition_key(index).await?,
                sort: None,
            })
        }
    }
}
