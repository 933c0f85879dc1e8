//! DynamoDB Streams: the table's stream found by `DescribeTable`, its shards listed by
//! `DescribeStream`, and their records read by `GetShardIterator` and `GetRecords`, moved
//! into the crate's own [`StreamRecord`] as they arrive.
//!
//! The client honours `AWS_ENDPOINT_URL_DYNAMODB_STREAMS` (the SDK's own setting for this
//! service) and, without it, `AWS_ENDPOINT_URL_DYNAMODB`: DynamoDB Local serves both APIs
//! on one port. Throttled calls (`LimitExceededException`) are retried by the SDK's
//! standard retry mode, as DynamoDB's are.

use crate::dynamo::client::{CallSettings, Dynamo, shared};
use crate::dynamo::convert::stream_item;
use crate::format::change::StreamRecord;
use crate::format::error::{ErrorKind, UpstreamError};
use aws_sdk_dynamodbstreams::error::SdkError;
use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError;
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorError;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};

/// The environment variable naming DynamoDB's endpoint, which the streams client falls
/// back on.
const DYNAMODB_ENDPOINT: &str = "AWS_ENDPOINT_URL_DYNAMODB";
/// The SDK's own endpoint variable for this service.
const STREAMS_ENDPOINT: &str = "AWS_ENDPOINT_URL_DYNAMODB_STREAMS";
/// Pages of `DescribeStream` read at most (100 shards a page): a stream lists the shards
/// of its last 24 hours.
const MAX_DESCRIBE_PAGES: usize = 1000;

/// The adapter's handle on DynamoDB Streams; cloning it is cheap.
#[derive(Debug, Clone)]
pub struct Streams(aws_sdk_dynamodbstreams::Client);

impl Streams {
    /// A client built from the standard chain with `settings`' retries and timeouts.
    pub async fn connect(settings: &CallSettings) -> Self {
        let config = shared(settings).await;
        let mut builder = aws_sdk_dynamodbstreams::config::Builder::from(&config);
        if std::env::var_os(STREAMS_ENDPOINT).is_none()
            && let Ok(endpoint) = std::env::var(DYNAMODB_ENDPOINT)
        {
            builder = builder.endpoint_url(endpoint);
        }
        Self(aws_sdk_dynamodbstreams::Client::from_conf(builder.build()))
    }
}

impl From<aws_sdk_dynamodbstreams::Client> for Streams {
    /// The handle of a client built elsewhere (tests, with mocks).
    fn from(client: aws_sdk_dynamodbstreams::Client) -> Self {
        Self(client)
    }
}

/// What `DescribeTable` says of a table's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStream {
    /// `LatestStreamArn`: the stream now, or the last one while it is disabled (kept
    /// readable for 24 hours).
    pub arn: Option<String>,
    /// `StreamSpecification.StreamEnabled`.
    pub enabled: bool,
    /// `StreamSpecification.StreamViewType`, as DynamoDB names it.
    pub view_type: Option<String>,
}

/// The stream of `table`, as `DescribeTable` gives it.
pub async fn table_stream(dynamo: &Dynamo, table: &str) -> Result<TableStream, UpstreamError> {
    let described = crate::dynamo::schema::describe(dynamo.sdk(), table).await?;
    let specification = described.stream_specification();
    Ok(TableStream {
        arn: described.latest_stream_arn().map(str::to_string),
        enabled: specification.is_some_and(|s| s.stream_enabled()),
        view_type: specification
            .and_then(|s| s.stream_view_type())
            .map(|view| view.as_str().to_string()),
    })
}

/// One shard of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// Its ID.
    pub id: String,
    /// The shard it was split from, if the stream still lists one.
    pub parent: Option<String>,
    /// Whether it is closed: it has an ending sequence number, and takes no new records.
    pub closed: bool,
}

/// A stream as `DescribeStream` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamShards {
    /// `StreamStatus`: ENABLING, ENABLED, DISABLING or DISABLED.
    pub status: String,
    /// `StreamViewType`.
    pub view_type: String,
    /// `CreationRequestDateTime`, in milliseconds since the epoch: no change before it is
    /// in the stream.
    pub created_ms: Option<u64>,
    /// Every shard the stream lists.
    pub shards: Vec<Shard>,
}

/// A page of one shard's records.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordsPage {
    /// The records, in the shard's order.
    pub records: Vec<StreamRecord>,
    /// The iterator of the next page; `None` once a closed shard is read to its end.
    pub next: Option<String>,
}

/// Why a stream call failed, where the read acts on the reason.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The shard iterator is more than 15 minutes old: get another from the last
    /// sequence number.
    #[error("the shard iterator expired")]
    IteratorExpired,
    /// The records asked for are past the stream's 24-hour retention.
    #[error("the stream no longer holds these records (TrimmedDataAccessException)")]
    Trimmed,
    /// The stream or the shard does not exist (any more).
    #[error("the stream or the shard does not exist (ResourceNotFoundException)")]
    NotFound,
    /// Anything else, sorted by kind.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl Streams {
    /// Every shard of the stream `arn`.
    pub async fn describe(&self, arn: &str) -> Result<StreamShards, StreamError> {
        let mut shards = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_DESCRIBE_PAGES {
            let output = self
                .0
                .describe_stream()
                .stream_arn(arn)
                .set_exclusive_start_shard_id(after.take())
                .send()
                .await
                .map_err(|err| {
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception())
                    {
                        StreamError::NotFound
                    } else {
                        StreamError::Upstream(crate::dynamo::error::classify(err))
                    }
                })?;
            let Some(description) = output.stream_description else {
                return Err(internal("DescribeStream without a description"));
            };
            let status = description
                .stream_status()
                .map_or_else(String::new, |s| s.as_str().to_string());
            let view_type = description
                .stream_view_type()
                .map_or_else(String::new, |v| v.as_str().to_string());
            let created_ms = description
                .creation_request_date_time()
                .and_then(|time| u64::try_from(time.to_millis().ok()?).ok());
            for shard in description.shards() {
                let Some(id) = shard.shard_id() else { continue };
                shards.push(Shard {
                    id: id.to_string(),
                    parent: shard.parent_shard_id().map(str::to_string),
                    closed: shard
                        .sequence_number_range()
                        .is_some_and(|range| range.ending_sequence_number().is_some()),
                });
            }
            match description.last_evaluated_shard_id {
                Some(last) => after = Some(last),
                None => {
                    return Ok(StreamShards {
                        status,
                        view_type,
                        created_ms,
                        shards,
                    });
                }
            }
        }
        Err(internal(
            "DescribeStream listed more pages than a stream holds",
        ))
    }

    /// An iterator of shard `shard` of stream `arn`: after sequence number `after`, or
    /// from the oldest record the stream keeps. `None` when the shard has nothing left.
    pub async fn iterator(
        &self,
        arn: &str,
        shard: &str,
        after: Option<&str>,
    ) -> Result<Option<String>, StreamError> {
        let kind = if after.is_some() {
            ShardIteratorType::AfterSequenceNumber
        } else {
            ShardIteratorType::TrimHorizon
        };
        let output = self
            .0
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .set_sequence_number(after.map(str::to_string))
            .send()
            .await
            .map_err(iterator_error)?;
        Ok(output.shard_iterator)
    }

    /// At most `limit` records from `iterator`.
    pub async fn records(&self, iterator: &str, limit: i32) -> Result<RecordsPage, StreamError> {
        let output = self
            .0
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
            .map_err(records_error)?;
        Ok(RecordsPage {
            records: output
                .records
                .unwrap_or_default()
                .into_iter()
                .map(record)
                .collect::<Result<_, _>>()?,
            next: output.next_shard_iterator,
        })
    }
}

fn internal(message: &'static str) -> StreamError {
    StreamError::Upstream(UpstreamError::new(ErrorKind::Internal, message))
}

fn iterator_error<R>(err: SdkError<GetShardIteratorError, R>) -> StreamError
where
    R: crate::dynamo::error::HttpStatus + std::fmt::Debug + Send + Sync + 'static,
{
    match err.as_service_error() {
        Some(e) if e.is_trimmed_data_access_exception() => StreamError::Trimmed,
        Some(e) if e.is_resource_not_found_exception() => StreamError::NotFound,
        _ => StreamError::Upstream(crate::dynamo::error::classify(err)),
    }
}

fn records_error<R>(err: SdkError<GetRecordsError, R>) -> StreamError
where
    R: crate::dynamo::error::HttpStatus + std::fmt::Debug + Send + Sync + 'static,
{
    match err.as_service_error() {
        Some(e) if e.is_expired_iterator_exception() => StreamError::IteratorExpired,
        Some(e) if e.is_trimmed_data_access_exception() => StreamError::Trimmed,
        Some(e) if e.is_resource_not_found_exception() => StreamError::NotFound,
        _ => StreamError::Upstream(crate::dynamo::error::classify(err)),
    }
}

/// A record moved into the crate's own shape; one without its `dynamodb` part, keys or
/// sequence number is not one the read can place.
fn record(record: Record) -> Result<StreamRecord, StreamError> {
    let Some(dynamodb) = record.dynamodb else {
        return Err(internal("a stream record without its dynamodb part"));
    };
    let (Some(keys), Some(sequence)) = (dynamodb.keys, dynamodb.sequence_number) else {
        return Err(internal("a stream record without Keys or SequenceNumber"));
    };
    let created_ms = dynamodb.approximate_creation_date_time.and_then(|time| {
        let millis = time.to_millis().ok()?;
        u64::try_from(millis).ok()
    });
    Ok(StreamRecord {
        event_id: record.event_id.unwrap_or_default(),
        event_name: record
            .event_name
            .map_or_else(String::new, |name| name.as_str().to_string()),
        event_version: record.event_version.unwrap_or_default(),
        region: record.aws_region.unwrap_or_default(),
        created_ms,
        keys: stream_item(keys),
        new_image: dynamodb.new_image.map(stream_item),
        old_image: dynamodb.old_image.map(stream_item),
        sequence,
        size_bytes: dynamodb.size_bytes,
        view_type: dynamodb
            .stream_view_type
            .map_or_else(String::new, |view| view.as_str().to_string()),
        by_service: record
            .user_identity
            .filter(|identity| identity.r#type() == Some("Service"))
            .and_then(|identity| identity.principal_id),
    })
}
