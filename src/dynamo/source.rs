//! Page sources: what the fan-out asks of a backend ([`PageSource`]: one page of one
//! segment or partition, the key schema, the approximate size), and the DynamoDB source,
//! one `Scan` (or `Query`, for `pk`) call per page, with the key condition, filter and
//! `Select` a read's shape asks for.

use crate::dynamo::client::Dynamo;
use crate::dynamo::convert;
use crate::dynamo::error::classify_read;
use crate::dynamo::schema::{describe, key_schema_of};
use crate::format::error::{ErrorKind, UpstreamError};
use crate::format::item::Item;
use crate::format::key::{KeyAttribute, KeySchema, KeyValue};
use crate::format::shape::{ReadShape, SortOp};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Intercept;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, ReturnConsumedCapacity, Select, TableDescription,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

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

/// Scans one table through the SDK client it is given.
#[derive(Debug, Clone)]
pub struct DynamoSource {
    /// Shared with every segment task; it holds the connection pool and the retry policy.
    client: Client,
    /// Fixed at construction: a request can never reach another table.
    table: String,
    /// `ReturnConsumedCapacity` of every call: `TOTAL` unless turned off, since against
    /// DynamoDB Local it costs about a tenth of the scan rate (measured, see README).
    capacity: ReturnConsumedCapacity,
    /// `DescribeTable` (for `pk`, `index` and Query requests, and a fresh Scan's size
    /// lookup), kept for a minute and fetched again at once when an index is not in it:
    /// indexes can be added while a warm function runs, and must then be found.
    description: Arc<Mutex<Option<Described>>>,
}

/// A table description and when it was fetched.
#[derive(Debug)]
struct Described {
    table: Arc<TableDescription>,
    at: Instant,
}

/// How long a table description is trusted.
const DESCRIPTION_TTL: Duration = Duration::from_secs(60);

impl DynamoSource {
    /// A source scanning `table` through `client`.
    pub fn new(client: Dynamo, table: impl Into<String>) -> Self {
        Self {
            client: client.sdk().clone(),
            table: table.into(),
            capacity: ReturnConsumedCapacity::Total,
            description: Arc::default(),
        }
    }

    /// Whether to ask DynamoDB for the read capacity each page consumed (default yes).
    pub fn with_consumed_capacity(mut self, report: bool) -> Self {
        self.capacity = if report {
            ReturnConsumedCapacity::Total
        } else {
            ReturnConsumedCapacity::None
        };
        self
    }

    /// The table's description: the cached one unless it is older than
    /// [`DESCRIPTION_TTL`] or `fresh` is asked for.
    ///
    /// The lock is held across the call, so concurrent key lookups share one
    /// `DescribeTable`; a request waiting on it waits at most the SDK's operation timeout
    /// (`OPERATION_TIMEOUT_MS`, retries included) and, in the streamer, its own deadline.
    async fn describe(&self, fresh: bool) -> Result<Arc<TableDescription>, UpstreamError> {
        let mut cached = self.description.lock().await;
        if let Some(table) = Self::cached(&cached, fresh) {
            return Ok(table);
        }
        let table = self.describe_table().await?;
        *cached = Some(Described {
            table: table.clone(),
            at: Instant::now(),
        });
        Ok(table)
    }

    /// The description for the advisory size lookup: the cached one, or a
    /// `DescribeTable` made without the lock, so a throttled lookup never holds back a
    /// Query's or an index's key lookup behind it; its answer is cached all the same.
    async fn describe_unlocked(&self) -> Result<Arc<TableDescription>, UpstreamError> {
        if let Some(table) = Self::cached(&*self.description.lock().await, false) {
            return Ok(table);
        }
        let table = self.describe_table().await?;
        *self.description.lock().await = Some(Described {
            table: table.clone(),
            at: Instant::now(),
        });
        Ok(table)
    }

    /// The cached description, unless it is older than [`DESCRIPTION_TTL`] or `fresh`.
    fn cached(cached: &Option<Described>, fresh: bool) -> Option<Arc<TableDescription>> {
        cached
            .as_ref()
            .filter(|described| !fresh && described.at.elapsed() < DESCRIPTION_TTL)
            .map(|described| described.table.clone())
    }

    /// One `DescribeTable` of the table.
    async fn describe_table(&self) -> Result<Arc<TableDescription>, UpstreamError> {
        Ok(Arc::new(describe(&self.client, &self.table).await?))
    }
}

/// Counts the attempts of one call, so retries can be reported per page.
#[derive(Debug, Clone, Default)]
struct AttemptCounter(Arc<AtomicU64>);

impl Intercept for AttemptCounter {
    fn name(&self) -> &'static str {
        "scanstream::AttemptCounter"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl AttemptCounter {
    fn retries(&self) -> u64 {
        self.0.load(Ordering::Relaxed).saturating_sub(1)
    }
}

/// The expressions of one call, with their placeholders: every name in a projection or
/// key condition goes through a placeholder, so reserved words (`name`, `status`,
/// `data`...) and odd characters are always safe, and every value (the partition, the
/// sort-key bounds, the filter's own) travels as `ExpressionAttributeValues`, never
/// spliced into the text. Generated placeholders begin with
/// [`super::RESERVED_PLACEHOLDER_PREFIX`], which user placeholders may not.
#[derive(Debug, Default)]
struct Expressions {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    projection: Option<String>,
    key_condition: Option<String>,
    filter: Option<String>,
}

fn expressions(
    shape: &ReadShape,
    partition: Option<&KeyValue>,
) -> Result<Expressions, convert::Unsupported> {
    let mut out = Expressions::default();
    let names = &mut out.names;
    out.projection = (!shape.fields.is_empty()).then(|| {
        let placeholders: Vec<String> = shape
            .fields
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let placeholder = format!("#scanstreamF{i}");
                names.insert(placeholder.clone(), field.clone());
                placeholder
            })
            .collect();
        placeholders.join(", ")
    });
    if let (Some(query), Some(value)) = (&shape.query, partition) {
        out.names
            .insert("#scanstreamPk".to_string(), query.key.clone());
        out.values
            .insert(":scanstreamPk".to_string(), convert::key(value));
        let mut condition = "#scanstreamPk = :scanstreamPk".to_string();
        if let Some(sort) = &query.sort {
            out.names
                .insert("#scanstreamSk".to_string(), sort.key.clone());
            out.values
                .insert(":scanstreamSk".to_string(), convert::key(&sort.value));
            let (k, v) = ("#scanstreamSk", ":scanstreamSk");
            let clause = match sort.op {
                SortOp::Eq => format!("{k} = {v}"),
                SortOp::Lt => format!("{k} < {v}"),
                SortOp::Le => format!("{k} <= {v}"),
                SortOp::Gt => format!("{k} > {v}"),
                SortOp::Ge => format!("{k} >= {v}"),
                SortOp::Prefix => format!("begins_with({k}, {v})"),
                SortOp::Between => {
                    if let Some(to) = &sort.to {
                        out.values
                            .insert(":scanstreamSkTo".to_string(), convert::key(to));
                    }
                    format!("{k} BETWEEN {v} AND :scanstreamSkTo")
                }
            };
            condition = format!("{condition} AND {clause}");
        }
        out.key_condition = Some(condition);
    }
    if let Some(filter) = &shape.filter {
        out.names.extend(filter.names.clone());
        for (placeholder, value) in &filter.values {
            out.values
                .insert(placeholder.clone(), convert::attribute(value.clone())?);
        }
        out.filter = Some(filter.expression.clone());
    }
    Ok(out)
}

impl PageSource for DynamoSource {
    async fn page(&self, request: PageRequest) -> Result<Page, UpstreamError> {
        let counter = AttemptCounter::default();
        let override_config =
            aws_sdk_dynamodb::config::Builder::default().interceptor(counter.clone());
        let shape = &request.shape;
        let Expressions {
            names,
            values,
            projection,
            key_condition,
            filter,
        } = expressions(shape, request.partition.as_ref()).map_err(unsupported)?;
        let start = request
            .exclusive_start_key
            .map(convert::attributes)
            .transpose()
            .map_err(unsupported)?;
        // DynamoDB refuses empty maps: absent, not empty.
        let names = (!names.is_empty()).then_some(names);
        let values = (!values.is_empty()).then_some(values);
        let select = shape.count.then_some(Select::Count);
        // Scan and Query share every setter but their own (segment / key condition); their
        // builders are distinct SDK types, so the shared part is spelled once, here.
        macro_rules! read {
            ($builder:expr) => {
                $builder
                    .table_name(&self.table)
                    .set_index_name(shape.index.clone())
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .set_projection_expression(projection)
                    .set_filter_expression(filter)
                    .set_select(select)
                    .consistent_read(shape.consistent)
                    .limit(to_i32(request.limit))
                    .set_exclusive_start_key(start)
                    .return_consumed_capacity(if request.report_capacity {
                        ReturnConsumedCapacity::Total
                    } else {
                        self.capacity.clone()
                    })
                    .customize()
                    .config_override(override_config)
                    .send()
                    .await
                    .map(|output| {
                        page_of(
                            output.items,
                            output.last_evaluated_key,
                            output.scanned_count,
                            output.count,
                            output.consumed_capacity,
                        )
                    })
                    .map_err(|err| UpstreamError {
                        retries: counter.retries(),
                        ..classify_read(err, shape, &self.table)
                    })?
            };
        }
        let page = match (&shape.query, key_condition) {
            (Some(query), Some(condition)) => read!(
                self.client
                    .query()
                    .key_condition_expression(condition)
                    .scan_index_forward(!query.descending)
            ),
            (Some(_), None) => {
                return Err(UpstreamError::new(
                    ErrorKind::Internal,
                    "a Query page without a partition",
                ));
            }
            (None, _) => read!(
                self.client
                    .scan()
                    .segment(to_i32(request.segment))
                    .total_segments(to_i32(request.total_segments))
            ),
        };
        Ok(Page {
            retries: counter.retries(),
            ..page
        })
    }

    async fn key_schema(&self, index: Option<&str>) -> Result<KeySchema, UpstreamError> {
        let table = self.describe(false).await?;
        match key_schema_of(&table, index) {
            // The cached description may predate the index: look once more.
            Err(err) if err.kind == ErrorKind::IndexNotFound => {
                key_schema_of(&*self.describe(true).await?, index)
            }
            found => found,
        }
    }

    async fn partition_key(&self, index: Option<&str>) -> Result<KeyAttribute, UpstreamError> {
        Ok(self.key_schema(index).await?.partition)
    }

    async fn approximate_size(&self, index: Option<&str>) -> Option<ApproximateSize> {
        let table = self.describe_unlocked().await.ok()?;
        let (items, bytes) = match index {
            None => (table.item_count(), table.table_size_bytes()),
            Some(index) => table
                .global_secondary_indexes()
                .iter()
                .find(|gsi| gsi.index_name() == Some(index))
                .map(|gsi| (gsi.item_count(), gsi.index_size_bytes()))
                .or_else(|| {
                    table
                        .local_secondary_indexes()
                        .iter()
                        .find(|lsi| lsi.index_name() == Some(index))
                        .map(|lsi| (lsi.item_count(), lsi.index_size_bytes()))
                })?,
        };
        Some(ApproximateSize {
            items: u64::try_from(items?).ok()?,
            bytes: u64::try_from(bytes?).ok()?,
        })
    }
}

/// A value this build cannot send, as the error of the page that would have sent it.
fn unsupported(err: convert::Unsupported) -> UpstreamError {
    UpstreamError::new(ErrorKind::Internal, err.to_string())
}

/// A page from the parts `Scan` and `Query` outputs share; its items and key are moved
/// into the crate's own values here, once per page.
fn page_of(
    items: Option<Vec<HashMap<String, AttributeValue>>>,
    last_evaluated_key: Option<HashMap<String, AttributeValue>>,
    scanned_count: i32,
    count: i32,
    consumed_capacity: Option<ConsumedCapacity>,
) -> Page {
    Page {
        count: u64::try_from(count).unwrap_or(0),
        items: items
            .unwrap_or_default()
            .into_iter()
            .map(convert::item)
            .collect(),
        last_evaluated_key: last_evaluated_key
            .filter(|key| !key.is_empty())
            .map(convert::item),
        scanned_count: u64::try_from(scanned_count).unwrap_or(0),
        consumed_capacity: consumed_capacity.and_then(|c| c.capacity_units),
        retries: 0,
    }
}

/// Segment numbers and limits are validated far below `i32::MAX` before they get here.
fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
