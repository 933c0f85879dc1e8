//! The DynamoDB page source: one `Scan` (or `Query`, for `pk`) call per page.

use super::{KeyAttribute, KeyType, Page, PageRequest, PageSource, ReadShape};
use crate::error::{ErrorKind, UpstreamError};
use crate::scan::Item;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Intercept;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    ConsumedCapacity, KeySchemaElement, KeyType as DynamoKeyType, ReturnConsumedCapacity,
    ScalarAttributeType, TableDescription,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

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
    /// `DescribeTable` (for `pk` and `index` requests only), kept for a minute and
    /// fetched again at once when an index is not in it: indexes can be added while a
    /// warm function runs, and must then be found.
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
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
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
    async fn describe(&self, fresh: bool) -> Result<Arc<TableDescription>, UpstreamError> {
        // Held across the call, so concurrent requests share one DescribeTable.
        let mut cached = self.description.lock().await;
        if let Some(described) = cached.as_ref()
            && !fresh
            && described.at.elapsed() < DESCRIPTION_TTL
        {
            return Ok(described.table.clone());
        }
        let output = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(crate::client::classify)?;
        let table = Arc::new(output.table.ok_or_else(|| {
            UpstreamError::new(ErrorKind::Internal, "DescribeTable without a table")
        })?);
        *cached = Some(Described {
            table: table.clone(),
            at: Instant::now(),
        });
        Ok(table)
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

/// Placeholders for every name in a projection or key condition, so reserved words
/// (`name`, `status`, `data`...) and odd characters are always safe.
struct Expressions {
    names: HashMap<String, String>,
    projection: Option<String>,
}

fn expressions(shape: &ReadShape) -> Expressions {
    let mut names = HashMap::new();
    let projection = (!shape.fields.is_empty()).then(|| {
        let placeholders: Vec<String> = shape
            .fields
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let placeholder = format!("#f{i}");
                names.insert(placeholder.clone(), field.clone());
                placeholder
            })
            .collect();
        placeholders.join(", ")
    });
    if let Some((name, _)) = &shape.partition {
        names.insert("#pk".to_string(), name.clone());
    }
    Expressions { names, projection }
}

impl PageSource for DynamoSource {
    async fn page(&self, request: PageRequest) -> Result<Page, UpstreamError> {
        let counter = AttemptCounter::default();
        let override_config =
            aws_sdk_dynamodb::config::Builder::default().interceptor(counter.clone());
        let shape = &request.shape;
        let Expressions { names, projection } = expressions(shape);
        let names = (!names.is_empty()).then_some(names);
        // Scan and Query share every setter but their own (segment / key condition); their
        // builders are distinct SDK types, so the shared part is spelled once, here.
        macro_rules! read {
            ($builder:expr) => {
                $builder
                    .table_name(&self.table)
                    .set_index_name(shape.index.clone())
                    .set_expression_attribute_names(names)
                    .set_projection_expression(projection)
                    .consistent_read(shape.consistent)
                    .limit(to_i32(request.limit))
                    .set_exclusive_start_key(request.exclusive_start_key)
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
                            output.consumed_capacity,
                        )
                    })
                    .map_err(|err| UpstreamError {
                        retries: counter.retries(),
                        ..classify(err, shape)
                    })?
            };
        }
        let page = match &shape.partition {
            Some((_, value)) => read!(
                self.client
                    .query()
                    .key_condition_expression("#pk = :pk")
                    .expression_attribute_values(":pk", value.to_attribute())
            ),
            None => read!(
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

    async fn partition_key(&self, index: Option<&str>) -> Result<KeyAttribute, UpstreamError> {
        let table = self.describe(false).await?;
        match partition_key_of(&table, index) {
            // The cached description may predate the index: look once more.
            Err(err) if err.kind == ErrorKind::IndexNotFound => {
                partition_key_of(&*self.describe(true).await?, index)
            }
            found => found,
        }
    }
}

/// The partition key of `table`, or of its index `index`.
fn partition_key_of(
    table: &TableDescription,
    index: Option<&str>,
) -> Result<KeyAttribute, UpstreamError> {
    let schema: &[KeySchemaElement] = match index {
        None => table.key_schema(),
        Some(index) => table
            .global_secondary_indexes()
            .iter()
            .find(|gsi| gsi.index_name() == Some(index))
            .map(|gsi| gsi.key_schema())
            .or_else(|| {
                table
                    .local_secondary_indexes()
                    .iter()
                    .find(|lsi| lsi.index_name() == Some(index))
                    .map(|lsi| lsi.key_schema())
            })
            .ok_or_else(|| {
                UpstreamError::new(ErrorKind::IndexNotFound, format!("no index {index:?}"))
            })?,
    };
    let name = schema
        .iter()
        .find(|key| key.key_type() == &DynamoKeyType::Hash)
        .map(|key| key.attribute_name().to_string())
        .ok_or_else(|| UpstreamError::new(ErrorKind::Internal, "key schema without a HASH key"))?;
    let key_type = table
        .attribute_definitions()
        .iter()
        .find(|def| def.attribute_name() == name)
        .map(|def| match def.attribute_type() {
            ScalarAttributeType::N => KeyType::N,
            ScalarAttributeType::B => KeyType::B,
            _ => KeyType::S,
        })
        .ok_or_else(|| {
            UpstreamError::new(ErrorKind::Internal, "key attribute without a definition")
        })?;
    Ok(KeyAttribute { name, key_type })
}

/// Sorts an SDK error; DynamoDB reports a missing index as a validation error, so that
/// one is recognised by its message and named properly.
fn classify<E, R>(err: SdkError<E, R>, shape: &ReadShape) -> UpstreamError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: crate::client::HttpStatus + std::fmt::Debug + Send + Sync + 'static,
{
    let index_missing = shape.index.is_some()
        && err.code() == Some("ValidationException")
        && err.message().is_some_and(|m| m.contains("specified index"));
    let mut err = crate::client::classify(err);
    if index_missing {
        err.kind = ErrorKind::IndexNotFound;
    }
    err
}

/// A page from the parts `Scan` and `Query` outputs share.
fn page_of(
    items: Option<Vec<Item>>,
    last_evaluated_key: Option<Item>,
    scanned_count: i32,
    consumed_capacity: Option<ConsumedCapacity>,
) -> Page {
    Page {
        items: items.unwrap_or_default(),
        last_evaluated_key: last_evaluated_key.filter(|key| !key.is_empty()),
        scanned_count: u64::try_from(scanned_count).unwrap_or(0),
        consumed_capacity: consumed_capacity.and_then(|c| c.capacity_units),
        retries: 0,
    }
}

/// Segment numbers and limits are validated far below `i32::MAX` before they get here.
fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
