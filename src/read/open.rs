//! Opening a read: a checked request typed by the table's key schema, the key a filtered
//! read under `max_items` resumes from, and the first page raced against the table's
//! size lookup. What comes back is the stream and the size, or why the read did not
//! start; the edge turns either into a response.

use super::params::{ErrorCode, RequestError};
use super::request::StreamRequest;
use super::request::query::{query_shape, resumed_query_fits};
use crate::dynamo::source::{ApproximateSize, PageSource};
use crate::format::compress::Compression;
use crate::format::cursor::CursorSeal;
use crate::format::cursor::Position;
use crate::format::error::{ErrorKind, UpstreamError};
use crate::format::key::KeySchema;
use crate::read::filtered;
use crate::read::stream::{self, ScanPlan, ScanStream};
use futures::future::Either;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// The longest the size lookup is waited for once the first page is ready: it is
/// advisory, and a slow `DescribeTable` must not hold a stream back for long.
pub const SIZE_LOOKUP_GRACE: Duration = Duration::from_millis(200);

/// The longest a filtered read under `max_items` waits for the table's key schema before
/// its first page; past it, and past a tenth of what is left of the deadline, it reads
/// with pages sized by the budget (slower, the same items), so a slow or throttled
/// `DescribeTable` never fails a read that needs no key.
pub const KEY_LOOKUP_WAIT: Duration = Duration::from_secs(2);

/// How long a failed key-schema lookup is remembered.
const KEY_LOOKUP_FAILURE_TTL: Duration = Duration::from_secs(30);

/// What reads a table: the page source and the cursor seal, built once at cold start and
/// shared by every read.
#[derive(Debug)]
pub struct Reader<S> {
    /// Shared with the segment tasks of every read.
    source: Arc<S>,
    /// Seals the cursors of incomplete streams.
    seal: CursorSeal,
    /// The byte budget of one read's stream.
    max_response_bytes: u64,
    /// When the key-schema lookup of a filtered read under `max_items` last failed: for
    /// [`KEY_LOOKUP_FAILURE_TTL`] such reads do not ask again (a denied `DescribeTable`
    /// would cost every call a failed request before its first page).
    key_lookup_failed: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// A read under way: its stream, and the table's approximate size when it was looked
/// up (a fresh Scan only) and back in time.
#[derive(Debug)]
pub struct Opened {
    /// The body, page by page, then the trailer.
    pub stream: ScanStream,
    /// The table's (or index's) approximate size.
    pub size: Option<ApproximateSize>,
    /// The table's key schema, when it was looked up with the size, or for an export, and
    /// back in time: the client records it in an export.
    pub key: Option<KeySchema>,
}

/// Why a read did not start.
#[derive(Debug)]
pub enum OpenError {
    /// The request does not fit the table's key schema.
    Request(RequestError),
    /// DynamoDB failed: describing the table, or the first page.
    Upstream(UpstreamError),
}

impl<S: PageSource> Reader<S> {
    /// A reader of `source` whose streams stop at `max_response_bytes` and whose
    /// cursors `seal` seals.
    pub fn new(source: S, seal: CursorSeal, max_response_bytes: u64) -> Self {
        Self {
            source: Arc::new(source),
            seal,
            max_response_bytes,
            key_lookup_failed: Arc::default(),
        }
    }

    /// The page source every read shares.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The attributes of an item's key in a read of the table or `index`, for a filtered
    /// read under `max_items` to read whole pages (`scan::filtered`). Not knowing them
    /// costs calls, not items: the pages are then sized by the budget. So the lookup is
    /// waited for at most [`KEY_LOOKUP_WAIT`] (or a tenth of what is left before
    /// `deadline`), a failure is logged, not returned, and remembered for
    /// [`KEY_LOOKUP_FAILURE_TTL`]. A lookup not back in time goes on by itself and fills
    /// the source's cache for the next call.
    async fn position_key(
        &self,
        index: Option<&str>,
        deadline: Option<tokio::time::Instant>,
    ) -> Vec<String> {
        let failed_at = *lock_ignoring_poison(&self.key_lookup_failed);
        if failed_at.is_some_and(|at| at.elapsed() < KEY_LOOKUP_FAILURE_TTL) {
            return Vec::new();
        }
        let wait = deadline.map_or(KEY_LOOKUP_WAIT, |at| {
            KEY_LOOKUP_WAIT.min(at.saturating_duration_since(tokio::time::Instant::now()) / 10)
        });
        let source = self.source.clone();
        let index = index.map(str::to_owned);
        let failed = self.key_lookup_failed.clone();
        let lookup = tokio::spawn(async move {
            let found = filtered::position_key(&*source, index.as_deref()).await;
            *lock_ignoring_poison(&failed) = match &found {
                Ok(_) => None,
                Err(err) => {
                    warn!(cause = %err, source = ?err.source, "no key schema: filtered pages sized by max_items");
                    Some(std::time::Instant::now())
                }
            };
            found
        });
        match tokio::time::timeout(wait, lookup).await {
            Ok(Ok(Ok(key))) => key,
            // Logged by the lookup itself.
            Ok(Ok(Err(_))) => Vec::new(),
            Ok(Err(join)) => {
                warn!(cause = %join, "the key-schema lookup panicked: filtered pages sized by max_items");
                Vec::new()
            }
            Err(_) => {
                warn!(
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "key schema not back in time: filtered pages sized by max_items"
                );
                Vec::new()
            }
        }
    }

    /// Starts the read of a checked `request`, to stop by `deadline`: types its Query by
    /// the table's (or index's) key schema, which also finds a missing table or index
    /// before any read, then reads the first page. A fresh Scan's size lookup races that
    /// page.
    pub async fn open(
        &self,
        mut request: StreamRequest,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Opened, OpenError> {
        if !request.pks.is_empty() || request.shape.index.is_some() || request.shape.query.is_some()
        {
            // Finds a missing table or index (404) and the key types before any read.
            let described = self.source.key_schema(request.shape.index.as_deref());
            let described = match deadline {
                Some(at) => tokio::time::timeout_at(at, described)
                    .await
                    .unwrap_or_else(|_| {
                        Err(UpstreamError::new(
                            ErrorKind::TimedOut,
                            "the deadline passed while describing the table",
                        ))
                    }),
                None => described.await,
            };
            let schema = match described {
                Ok(schema) => schema,
                Err(err) => {
                    warn!(cause = %err, source = ?err.source, "describing the table failed");
                    return Err(OpenError::Upstream(err));
                }
            };
            if !request.pks.is_empty() {
                match query_shape(&request, &schema) {
                    Ok(query) => request.shape.query = Some(query),
                    Err(err) => return Err(OpenError::Request(err)),
                }
            } else if let Some(query) = &request.shape.query
                && let Err(message) = resumed_query_fits(query, &schema)
            {
                // A resumed Query's keys are held to the table's schema, as a fresh one's.
                return Err(OpenError::Request(RequestError::new(
                    ErrorCode::InvalidCursor,
                    message,
                )));
            }
        }
        info!(
            segments = request.segments,
            total_segments = request.total_segments,
            segment_offset = request.segment_offset,
            limit = request.limit,
            max_items = ?request.max_items,
            max_rcu = ?request.max_rcu,
            partitions = request.pks.len(),
            filter = request.shape.filter.is_some(),
            count = request.shape.count,
            "scan starting"
        );
        // A Scan's total, for the client's progress and plan; under a filter or a Query
        // it is unknown, and not sent. Only a fresh read looks it up: a client needs it
        // once, and a `DescribeTable` that is throttled need not be asked again by every
        // resumed call of a long read.
        let fresh = request
            .positions
            .iter()
            .all(|position| matches!(position, Position::Start));
        let sized = (fresh
            && request.to.is_none()
            && request.shape.filter.is_none()
            && request.shape.query.is_none())
        .then(|| request.shape.index.clone());
        let position_key = if request.shape.filter.is_some() && request.max_items.is_some() {
            self.position_key(request.shape.index.as_deref(), deadline)
                .await
        } else {
            Vec::new()
        };
        let plan = ScanPlan {
            total_segments: request.total_segments,
            segment_offset: request.segment_offset,
            positions: request.positions,
            limit: request.limit,
            shape: Arc::new(request.shape),
            max_items: request.max_items,
            // An export's items go to S3, not into the response: it has no byte budget,
            // and its files, not the stream, are compressed.
            max_bytes: request.to.is_none().then_some(self.max_response_bytes),
            deadline,
            seal: Some(self.seal.clone()),
            format: request.format,
            compression: match request.to {
                None => request.compression,
                Some(_) => Compression::None,
            },
            max_rcu: request.max_rcu,
            position_key,
        };
        // Beside the first page, never before it: the lookup is polled first, so a cached
        // answer is in the headers. A `DescribeTable` still out when the first page is
        // ready gets [`SIZE_LOOKUP_GRACE`] more (a cold function's first call races its
        // first page against it), then the headers go without the size and the lookup
        // goes on as a task of its own, so it fills the source's cache for the next
        // request whatever it takes (the SDK's operation timeout bounds it).
        let lookup = sized.map(|index| {
            let source = self.source.clone();
            Box::pin(async move {
                let size = source.approximate_size(index.as_deref()).await;
                // Only once the size came back is the description cached: then the key
                // schema costs no second `DescribeTable` (and never waits on the lock
                // behind one, which a Query's key lookup would then wait behind).
                let key = match size {
                    Some(_) => source.key_schema(None).await.ok(),
                    None => None,
                };
                (size, key)
            })
        });
        // An export records the key schema, so each of its calls says it; the
        // description is cached, and an export call writes megabytes to S3 after it.
        let key = match (&request.to, deadline) {
            (Some(_), Some(at)) => tokio::time::timeout_at(at, self.source.key_schema(None))
                .await
                .ok()
                .and_then(Result::ok),
            (Some(_), None) => self.source.key_schema(None).await.ok(),
            (None, _) => None,
        };
        let first = Box::pin(stream::start(self.source.clone(), plan));
        let (started, (size, described_key)) = match lookup {
            None => (first.await, (None, None)),
            Some(lookup) => match futures::future::select(lookup, first).await {
                Either::Left((facts, first)) => (first.await, facts),
                Either::Right((started, mut lookup)) => {
                    let facts = match &started {
                        Ok(_) => match tokio::time::timeout(SIZE_LOOKUP_GRACE, &mut lookup).await {
                            Ok(facts) => facts,
                            Err(_) => {
                                tokio::spawn(lookup);
                                (None, None)
                            }
                        },
                        Err(_) => (None, None),
                    };
                    (started, facts)
                }
            },
        };
        let key = key.or(described_key);
        match started {
            Ok(stream) => Ok(Opened { stream, size, key }),
            Err(err) => {
                warn!(cause = %err, source = ?err.source, "scan failed before the first page");
                Err(OpenError::Upstream(err))
            }
        }
    }
}

/// The lock is held for one assignment or read and never across an await, so a poisoned
/// lock still holds a consistent value.
fn lock_ignoring_poison<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
