//! A read of the table's changes (`changes=true`): its parameters, the checks before any
//! line (a stream with new images, the cursor's stream still the table's, `since` within
//! the stream's retention, a cursor's positions still kept), and the shard walk
//! ([`walk`]) that streams the records.
//!
//! Exactness rests on three facts of DynamoDB Streams: each key's changes reach one shard
//! in order; a shard's records are read in order; and a child shard is read only after
//! its parent is read to its end. The cursor holds each shard's last sequence number
//! sent, so a resumed read sends each record once.

mod shard;
pub mod walk;

use crate::dynamo::client::Dynamo;
use crate::dynamo::streams::{StreamError, StreamShards, Streams, table_stream};
use crate::format::compress::Compression;
use crate::format::cursor::changes::{ChangeCursor, MAX_CHANGE_CURSOR_BYTES, ShardPosition};
use crate::format::cursor::{CursorError, CursorSeal};
use crate::format::error::UpstreamError;
use crate::read::params::{ErrorCode, Params, RequestError, quoted};
use bytes::Bytes;
use futures::stream::BoxStream;
use std::collections::{BTreeMap, HashMap};

/// The parameters `changes=true` takes; any other is refused beside it.
pub const CHANGE_PARAMETERS: &[&str] = &[
    "margin",
    "changes",
    "since",
    "cursor",
    "limit",
    "max_items",
    "compress",
];

/// How long DynamoDB Streams keeps a record.
pub const RETENTION_MS: u64 = 24 * 3600 * 1000;
/// How far back a read may start: the retention less an hour, so the read reaches the
/// oldest records it needs (in every shard) before DynamoDB trims them.
pub const SAFE_RETENTION_MS: u64 = RETENTION_MS - 3600 * 1000;
/// The most `margin` takes, in seconds.
pub const MAX_MARGIN_S: u64 = 3600;
/// How far in the future `since` may be (clock skew), and still be taken.
const SINCE_AHEAD_MS: u64 = 5 * 60 * 1000;
/// `GetRecords`' own bounds on `Limit`.
pub const MAX_RECORDS_LIMIT: u32 = 1000;

/// A read of the table's changes, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangesRequest {
    /// Records created before this (milliseconds since the epoch) are skipped: `since` less
    /// `margin`, rounded down to the minute (DynamoDB rounds a record's time down: to the
    /// second, and DynamoDB Local to the minute).
    pub since_ms: Option<u64>,
    /// `since` less the margin, for a fresh read: the stream must be older (the margin
    /// is for clocks that differ, and a stream made within it may have missed changes).
    pub cutoff_ms: Option<u64>,
    /// The oldest record the read needs from a shard it has not started (the cursor's
    /// `needed_ms`, or `since`).
    pub needed_ms: Option<u64>,
    /// Where a resumed read goes on.
    pub cursor: Option<ChangeCursor>,
    /// Records a `GetRecords` call asks for (1 to 1,000).
    pub limit: u32,
    /// Stop after this many records.
    pub max_items: Option<u64>,
    /// How the body is compressed.
    pub compression: Compression,
}

/// What the deployment allows a change read.
#[derive(Debug, Clone)]
pub struct ChangeBounds {
    /// The seal cursors are made and checked with.
    pub seal: CursorSeal,
}

/// Whether the parameters ask for the table's changes.
pub fn is_changes(params: &Params) -> bool {
    params.has("changes")
}

/// The change read `params` asks for, checked; `now_ms` is the function's clock.
pub fn parse_changes(
    params: &Params,
    bounds: &ChangeBounds,
    now_ms: u64,
) -> Result<ChangesRequest, RequestError> {
    let invalid = |message: String| RequestError::new(ErrorCode::InvalidParameter, message);
    if let Some(other) = params
        .names()
        .find(|name| !CHANGE_PARAMETERS.contains(name))
    {
        return Err(invalid(format!(
            "{other} does not apply to changes=true, which reads the table's stream and takes only {}",
            CHANGE_PARAMETERS.join(", ")
        )));
    }
    if params.text("changes") != Some("true") {
        return Err(invalid("changes takes only true".into()));
    }
    let cursor = match params.text("cursor") {
        None => None,
        Some(token) => Some(
            ChangeCursor::decode(token, &bounds.seal.secret, MAX_CHANGE_CURSOR_BYTES)
                .map_err(|err| cursor_error(&err))?,
        ),
    };
    if let Some(cursor) = &cursor
        && cursor.table != bounds.seal.table
    {
        return Err(RequestError::new(
            ErrorCode::InvalidCursor,
            "the cursor is of another table's stream".into(),
        ));
    }
    let gone = |message: String| RequestError::new(ErrorCode::ChangesGone, message);
    let margin_s = params.integer("margin", 0u64, 0, MAX_MARGIN_S)?;
    if cursor.is_some() && params.has("margin") {
        return Err(invalid(
            "margin is fixed by the cursor: give one or the other".into(),
        ));
    }
    let (since_ms, cutoff_ms, needed_ms) = match (params.text("since"), &cursor) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "since is fixed by the cursor: give one or the other".into(),
            ));
        }
        (Some(text), None) => {
            let since = crate::format::time::parse_rfc3339(text)
                .map_err(|why| invalid(format!("since: {why}")))?;
            if since > now_ms + SINCE_AHEAD_MS {
                return Err(invalid(format!("since {} is in the future", quoted(text))));
            }
            // The records sent are those from `since` less the margin, rounded down to the
            // minute (DynamoDB rounds a record's time down): the oldest the read needs.
            let lower = since.saturating_sub(margin_s * 1000);
            let floor = lower / 60_000 * 60_000;
            if floor + SAFE_RETENTION_MS < now_ms {
                return Err(gone(format!(
                    "since {} (less the margin) is more than 23 hours ago: the stream keeps changes 24 hours, and a read needs time to reach them in every shard; take a new snapshot",
                    quoted(text)
                )));
            }
            (Some(floor), Some(lower), Some(floor))
        }
        (None, Some(cursor)) => {
            if let Some(needed) = cursor.needed_ms
                && needed + SAFE_RETENTION_MS < now_ms
            {
                return Err(gone(format!(
                    "the cursor needs changes from {}, more than 23 hours ago: the stream may no longer keep them; take a new snapshot",
                    crate::format::time::iso8601(needed)
                )));
            }
            (cursor.since_ms, None, cursor.needed_ms)
        }
        (None, None) if params.has("margin") => {
            return Err(invalid("margin needs since".into()));
        }
        (None, None) => (None, None, None),
    };
    let limit = match params.text("limit") {
        None => MAX_RECORDS_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_RECORDS_LIMIT).contains(n))
            .ok_or_else(|| {
                invalid(format!(
                    "limit must be an integer in 1..={MAX_RECORDS_LIMIT} (records a GetRecords call asks for), not {}",
                    quoted(text)
                ))
            })?,
    };
    let max_items = match params.text("max_items") {
        None => None,
        Some(text) => Some(
            text.parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    invalid(format!(
                        "max_items must be a positive integer, not {}",
                        quoted(text)
                    ))
                })?,
        ),
    };
    let compression = match params.text("compress") {
        None => Compression::None,
        Some(name) => Compression::from_name(name).ok_or_else(|| {
            invalid(format!(
                "compress must be one of none, gzip, zstd, not {}",
                quoted(name)
            ))
        })?,
    };
    Ok(ChangesRequest {
        since_ms,
        cutoff_ms,
        needed_ms,
        cursor,
        limit,
        max_items,
        compression,
    })
}

fn cursor_error(err: &CursorError) -> RequestError {
    RequestError::new(ErrorCode::InvalidCursor, err.to_string())
}

/// Why a change read did not start.
#[derive(Debug)]
pub enum ChangesRefused {
    /// The table's stream cannot be read as asked: a `4xx` with this code and message.
    Request(RequestError),
    /// DynamoDB failed.
    Upstream(UpstreamError),
}

impl From<UpstreamError> for ChangesRefused {
    fn from(err: UpstreamError) -> Self {
        Self::Upstream(err)
    }
}

fn gone(message: String) -> ChangesRefused {
    ChangesRefused::Request(RequestError::new(ErrorCode::ChangesGone, message))
}

fn not_readable(message: String) -> ChangesRefused {
    ChangesRefused::Request(RequestError::new(ErrorCode::StreamNotReadable, message))
}

/// The view types whose records carry the new image a copy is made from.
const VIEW_TYPES_WITH_NEW_IMAGES: &[&str] = &["NEW_IMAGE", "NEW_AND_OLD_IMAGES"];

/// Reads a table's changes: built once at cold start.
#[derive(Debug, Clone)]
pub struct ChangeReader {
    dynamo: Dynamo,
    streams: Streams,
    seal: CursorSeal,
    max_response_bytes: u64,
}

impl ChangeReader {
    /// A reader of the table `seal` names, through `dynamo` and `streams`, whose responses
    /// stop at `max_response_bytes`.
    pub fn new(
        dynamo: Dynamo,
        streams: Streams,
        seal: CursorSeal,
        max_response_bytes: u64,
    ) -> Self {
        Self {
            dynamo,
            streams,
            seal,
            max_response_bytes,
        }
    }

    /// Checks the table's stream against the request and starts the walk: every refusal
    /// comes before any line.
    pub async fn open(
        &self,
        request: ChangesRequest,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<BoxStream<'static, Bytes>, ChangesRefused> {
        let started_ms = walk::now_ms();
        let table = &self.seal.table;
        let stream = table_stream(&self.dynamo, table).await?;
        // A disabled stream is kept readable for 24 hours: a cursor of it may drain it.
        let drains = |arn: &String| {
            request
                .cursor
                .as_ref()
                .is_some_and(|cursor| &cursor.stream == arn)
        };
        let Some(arn) = stream.arn.filter(|arn| stream.enabled || drains(arn)) else {
            return Err(not_readable(format!(
                "the table has no enabled stream: set its StreamSpecification (StreamEnabled, StreamViewType {})",
                VIEW_TYPES_WITH_NEW_IMAGES.join(" or ")
            )));
        };
        if let Some(cursor) = &request.cursor
            && cursor.stream != arn
        {
            return Err(gone(
                "the cursor is of a stream the table no longer has (the stream was re-created): its changes cannot be followed on; take a new snapshot".into(),
            ));
        }
        let listed = self.streams.describe(&arn).await.map_err(stream_refusal)?;
        // The table names the view type of its enabled stream; a stream turned off, its own.
        let view = match stream.view_type.filter(|_| stream.enabled) {
            Some(view) => view,
            None => listed.view_type.clone(),
        };
        if !VIEW_TYPES_WITH_NEW_IMAGES.contains(&view.as_str()) {
            return Err(not_readable(format!(
                "the table's stream is of StreamViewType {view}, whose records have no new image to copy: set its StreamSpecification's StreamViewType to {}",
                VIEW_TYPES_WITH_NEW_IMAGES.join(" or ")
            )));
        }
        if let (Some(cutoff), Some(created)) = (request.cutoff_ms, listed.created_ms)
            && created > cutoff
        {
            return Err(gone(format!(
                "the table's stream began at {}, after since {}: the changes between were never recorded; take a new snapshot now that the stream is on",
                crate::format::time::iso8601(created),
                crate::format::time::iso8601(cutoff)
            )));
        }
        let shards = plan_shards(&listed, request.cursor.as_ref())?;
        walk::start(
            self.streams.clone(),
            walk::Walk {
                arn,
                seal: self.seal.clone(),
                since_ms: request.since_ms,
                needed_ms: request.needed_ms,
                limit: request.limit,
                max_items: request.max_items,
                compression: request.compression,
                max_bytes: self.max_response_bytes,
                deadline,
                started_ms,
            },
            shards,
        )
        .await
        .map_err(stream_refusal)
    }
}

/// A stream call's failure before any line, as the client sees it.
pub fn stream_refusal(err: StreamError) -> ChangesRefused {
    match err {
        StreamError::Trimmed => gone(
            "the stream no longer keeps the changes this read would go on from (past its 24-hour retention): take a new snapshot".into(),
        ),
        StreamError::NotFound => gone(
            "the table's stream, or a shard the cursor is at, no longer exists: take a new snapshot".into(),
        ),
        StreamError::IteratorExpired => ChangesRefused::Upstream(UpstreamError::new(
            crate::format::error::ErrorKind::Internal,
            "a shard iterator expired before it was used",
        )),
        StreamError::Upstream(err) => ChangesRefused::Upstream(err),
    }
}

/// Where one shard stands as a walk starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPlan {
    /// The shard it was split from, when the stream lists it.
    pub parent: Option<String>,
    /// Where it is: not started (`None`), after a sequence number, or done.
    pub position: Option<ShardPosition>,
    /// Whether it is closed: it is done only once read to its end.
    pub closed: bool,
    /// Whether it passed `since` (with a position and not in the cursor's `skipping`).
    pub passed: bool,
}

/// Every listed shard's place, from the cursor: its own entries, and the ancestors of a
/// shard it holds, which are done (a child is read only after its parent). A cursor's
/// shard the stream no longer lists is dropped when it was done, and refused (410) when
/// it was not: its records are past the retention.
pub fn plan_shards(
    listed: &StreamShards,
    cursor: Option<&ChangeCursor>,
) -> Result<BTreeMap<String, ShardPlan>, ChangesRefused> {
    let parents: HashMap<&str, Option<&str>> = listed
        .shards
        .iter()
        .map(|shard| (shard.id.as_str(), shard.parent.as_deref()))
        .collect();
    let mut plan: BTreeMap<String, ShardPlan> = listed
        .shards
        .iter()
        .map(|shard| {
            let parent = shard
                .parent
                .clone()
                .filter(|parent| parents.contains_key(parent.as_str()));
            (
                shard.id.clone(),
                ShardPlan {
                    parent,
                    position: None,
                    closed: shard.closed,
                    passed: false,
                },
            )
        })
        .collect();
    let Some(cursor) = cursor else {
        return Ok(plan);
    };
    for (id, position) in &cursor.shards {
        match plan.get_mut(id) {
            Some(entry) => {
                entry.position = Some(position.clone());
                entry.passed = !cursor.skipping.contains(id);
            }
            None if *position == ShardPosition::Done => {}
            None => {
                return Err(gone(format!(
                    "shard {} of the cursor is no longer kept by the stream (past its 24-hour retention): take a new snapshot",
                    quoted(id)
                )));
            }
        }
    }
    // Ancestors of every shard the cursor holds are done.
    let held: Vec<String> = cursor
        .shards
        .keys()
        .filter(|id| plan.contains_key(*id))
        .cloned()
        .collect();
    for id in held {
        let mut next = plan.get(&id).and_then(|entry| entry.parent.clone());
        // A lineage is at most as long as the stream's shard list.
        for _ in 0..=plan.len() {
            let Some(parent) = next else { break };
            let Some(entry) = plan.get_mut(&parent) else {
                break;
            };
            if entry.position == Some(ShardPosition::Done) {
                break;
            }
            if let Some(ShardPosition::After(_)) = entry.position {
                // A parent the cursor had not finished, with a child started: not a
                // cursor this server made.
                return Err(ChangesRefused::Request(RequestError::new(
                    ErrorCode::InvalidCursor,
                    "the cursor holds a shard after a parent it had not read to its end".into(),
                )));
            }
            entry.position = Some(ShardPosition::Done);
            next = entry.parent.clone();
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::streams::Shard;
    use std::sync::Arc;

    fn bounds() -> ChangeBounds {
        ChangeBounds {
            seal: CursorSeal {
                table: "t".into(),
                secret: Arc::from(&b"s"[..]),
            },
        }
    }

    const NOW: u64 = 1_765_000_000_000;

    fn parse(query: &str) -> Result<ChangesRequest, RequestError> {
        let mut known: Vec<&str> = CHANGE_PARAMETERS.to_vec();
        known.push("segments");
        let params = Params::parse(query, &known).expect("params");
        parse_changes(&params, &bounds(), NOW)
    }

    #[test]
    fn a_change_read_s_parameters_are_bounded() {
        let request = parse("changes=true").expect("valid");
        assert_eq!((request.limit, request.since_ms), (1000, None));
        let request =
            parse("changes=true&since=2025-12-06T04:46:40Z&limit=10&compress=zstd&max_items=5")
                .expect("valid");
        // An hour and 40 s back, rounded down to the minute.
        assert_eq!(request.since_ms, Some(NOW - 3_640_000));
        assert_eq!(request.cutoff_ms, Some(NOW - 3_600_000));
        let margined = parse("changes=true&since=2025-12-06T04:46:40Z&margin=300").expect("valid");
        assert_eq!(margined.since_ms, Some(NOW - 3_940_000));
        assert_eq!((request.limit, request.max_items), (10, Some(5)));
        for (query, says) in [
            ("changes=yes", "only true"),
            ("changes=true&segments=2", "does not apply"),
            ("changes=true&limit=0", "1..=1000"),
            ("changes=true&limit=1001", "1..=1000"),
            ("changes=true&max_items=0", "positive"),
            ("changes=true&compress=br", "compress"),
            ("changes=true&since=yesterday", "RFC 3339"),
            ("changes=true&since=2025-12-06T07:00:00Z", "future"),
            ("changes=true&cursor=x", "cursor"),
            ("changes=true&margin=60", "margin needs since"),
            (
                "changes=true&since=2025-12-06T04:46:40Z&margin=3601",
                "margin",
            ),
        ] {
            let err = parse(query).expect_err(query);
            assert!(err.message.contains(says), "{query}: {}", err.message);
        }
        // 23 hours and more back: the read could not reach every shard before the trim.
        let err = parse("changes=true&since=2025-12-05T06:30:00Z").expect_err("too old");
        assert_eq!(err.code, ErrorCode::ChangesGone);
    }

    #[test]
    fn a_cursor_fixes_since_and_must_be_this_table_s() {
        let cursor = ChangeCursor {
            table: "t".into(),
            stream: "arn".into(),
            since_ms: Some(NOW - 10),
            needed_ms: Some(NOW - 10),
            skipping: Default::default(),
            shards: BTreeMap::new(),
        };
        let token = cursor.encode(b"s");
        let request = parse(&format!("changes=true&cursor={token}")).expect("valid");
        assert_eq!(request.since_ms, Some(NOW - 10));
        assert!(
            parse(&format!("changes=true&cursor={token}&margin=5"))
                .expect_err("margin beside a cursor")
                .message
                .contains("fixed by the cursor")
        );
        let stale = ChangeCursor {
            needed_ms: Some(NOW - 23 * 3_600_000 - 1),
            ..cursor.clone()
        }
        .encode(b"s");
        assert_eq!(
            parse(&format!("changes=true&cursor={stale}"))
                .expect_err("past the retention")
                .code,
            ErrorCode::ChangesGone
        );
        assert!(
            parse(&format!(
                "changes=true&cursor={token}&since=2025-12-06T05:46:40Z"
            ))
            .expect_err("both")
            .message
            .contains("fixed by the cursor")
        );
        let other = ChangeCursor {
            table: "u".into(),
            ..cursor
        }
        .encode(b"s");
        assert_eq!(
            parse(&format!("changes=true&cursor={other}"))
                .expect_err("other table")
                .code,
            ErrorCode::InvalidCursor
        );
    }

    fn shard(id: &str, parent: Option<&str>) -> Shard {
        Shard {
            id: id.into(),
            parent: parent.map(str::to_string),
            closed: true,
        }
    }

    #[test]
    fn ancestors_of_a_held_shard_are_done_and_lost_positions_are_gone() {
        let listed = StreamShards {
            status: "ENABLED".into(),
            view_type: "NEW_AND_OLD_IMAGES".into(),
            created_ms: None,
            shards: vec![
                shard("a", Some("trimmed")),
                shard("b", Some("a")),
                shard("c", Some("b")),
                shard("d", None),
            ],
        };
        let cursor = ChangeCursor {
            table: "t".into(),
            stream: "arn".into(),
            since_ms: None,
            needed_ms: None,
            skipping: Default::default(),
            shards: BTreeMap::from([
                ("c".to_string(), ShardPosition::After("5".into())),
                ("gone".to_string(), ShardPosition::Done),
            ]),
        };
        let plan = plan_shards(&listed, Some(&cursor)).expect("plan");
        assert_eq!(
            plan["a"].parent, None,
            "a parent the stream no longer lists"
        );
        assert_eq!(plan["a"].position, Some(ShardPosition::Done));
        assert_eq!(plan["b"].position, Some(ShardPosition::Done));
        assert_eq!(plan["c"].position, Some(ShardPosition::After("5".into())));
        assert_eq!(plan["d"].position, None);
        let lost = ChangeCursor {
            shards: BTreeMap::from([("gone".to_string(), ShardPosition::After("1".into()))]),
            ..cursor
        };
        assert!(matches!(
            plan_shards(&listed, Some(&lost)),
            Err(ChangesRefused::Request(RequestError {
                code: ErrorCode::ChangesGone,
                ..
            }))
        ));
    }
}
