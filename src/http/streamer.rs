//! `GET /?segments=&limit=...` (or the same parameters form-encoded in a `POST` body, for
//! cursors too long for a URL): the table as one NDJSON stream.
//!
//! Every parameter is checked before anything is read. The status line is committed only
//! once the first page (or the first error) is in, so a missing table is a real 404
//! rather than a 200 with an error inside.

use super::lambda::Handler;
use super::{
    ApiError, ErrorCode, Invocation, Params, ResponseBody, error_response, quoted, response,
    time_budget,
};
use crate::compress::Compression;
use crate::config::{Config, DYNAMODB_MAX_TOTAL_SEGMENTS};
use crate::encode::{Format, is_json_number};
use crate::error::{ErrorKind, UpstreamError};
use crate::scan::cursor::{Cursor, Position};
use crate::scan::stream::{self, CursorSeal, ScanPlan};
use crate::scan::{KeyType, KeyValue, PageSource, ReadShape};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use http_body::Frame;
use lambda_http::http::{Method, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// The parameters this endpoint understands.
pub const PARAMETERS: &[&str] = &[
    "segments",
    "limit",
    "total_segments",
    "segment_offset",
    "cursor",
    "max_items",
    "fields",
    "consistent",
    "index",
    "pk",
    "format",
    "compress",
    "max_rcu",
];

/// Parameters a cursor already fixes: given with a cursor, they are refused rather than
/// silently ignored or allowed to contradict it.
const FIXED_BY_CURSOR: &[&str] = &[
    "segments",
    "total_segments",
    "segment_offset",
    "fields",
    "consistent",
    "index",
    "pk",
];

/// DynamoDB's largest `max_items` worth asking for; bounds the arithmetic, not the use.
const MAX_ITEMS: u64 = 1_000_000_000_000;
/// Projections of more attributes than this are refused (DynamoDB caps expressions at 4 KB).
const MAX_FIELDS: usize = 100;

/// A request whose parameters are all valid; `pk` still needs the key schema to be read.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRequest {
    /// Segments scanned concurrently.
    pub segments: u32,
    /// `TotalSegments`.
    pub total_segments: u32,
    /// The first segment read.
    pub segment_offset: u32,
    /// Items per Scan call.
    pub limit: u32,
    /// Stop after this many items.
    pub max_items: Option<u64>,
    /// Where each segment starts: from a cursor, or all from the start.
    pub positions: Vec<Position>,
    /// Projection, consistency, index (the partition comes from `pk` below or a cursor).
    pub shape: ReadShape,
    /// The raw `pk` value, read against the key schema before scanning.
    pub pk: Option<String>,
    /// How items are written (`format=`); a resumed read may change it.
    pub format: Format,
    /// How the body is compressed (`compress=`); a resumed read may change it.
    pub compression: Compression,
    /// Read capacity units a second for the invocation (`max_rcu=`, or
    /// `DEFAULT_MAX_RCU`); a resumed read may change it.
    pub max_rcu: Option<f64>,
}

/// Media types a `POST` body may have (compared without case or parameters); no
/// `content-type` at all is read as a form too, as curl's `--data` without a header.
pub const FORM_MEDIA_TYPES: &[&str] = &["application/x-www-form-urlencoded", "text/plain"];

/// The parameters of an invocation: the query string, and for `POST` the form body too.
fn params_of(invocation: &Invocation<'_>, config: &Config) -> Result<Params, ApiError> {
    let query = invocation.uri.query().unwrap_or_default();
    match *invocation.method {
        Method::GET => Params::parse(query, PARAMETERS),
        Method::POST => {
            let form = invocation.content_type.is_none_or(|ct| {
                let media_type = ct.split(';').next().unwrap_or_default().trim();
                FORM_MEDIA_TYPES
                    .iter()
                    .any(|form| media_type.eq_ignore_ascii_case(form))
            });
            if !form {
                return Err(ApiError::new(
                    415,
                    ErrorCode::UnsupportedMediaType,
                    format!(
                        "POST a form body ({}), e.g. cursor=...",
                        FORM_MEDIA_TYPES.join(" or ")
                    ),
                ));
            }
            let max_body = config.max_cursor_bytes + 16 * 1024;
            if invocation.body.len() > max_body {
                return Err(ApiError::new(
                    413,
                    ErrorCode::BodyTooLarge,
                    format!("the body may hold at most {max_body} bytes"),
                ));
            }
            let body = std::str::from_utf8(invocation.body).map_err(|_| {
                ApiError::bad_request(ErrorCode::InvalidParameter, "the body is not UTF-8".into())
            })?;
            Params::parse(&format!("{query}&{body}"), PARAMETERS)
        }
        _ => Err(ApiError::method_not_allowed(invocation.method, "GET, POST")),
    }
}

/// Checks every parameter of an invocation: method, body, names, values, cursor.
pub fn parse_request(
    invocation: &Invocation<'_>,
    config: &Config,
) -> Result<StreamRequest, ApiError> {
    let params = params_of(invocation, config)?;
    // Where to read: from a cursor, or from the parameters. The rest may be given either way.
    let read = match params.text("cursor") {
        Some(token) => resumed(&params, token, config)?,
        None => fresh(&params, config)?,
    };
    Ok(StreamRequest {
        segments: read.segments,
        total_segments: read.total_segments,
        segment_offset: read.segment_offset,
        positions: read.positions,
        shape: read.shape,
        pk: read.pk,
        limit: params.integer("limit", config.default_limit, 1, config.max_limit)?,
        max_items: params.optional_integer("max_items", 1, MAX_ITEMS)?,
        format: params.choice("format", Format::Json, Format::NAMES, Format::from_name)?,
        compression: params.choice(
            "compress",
            Compression::None,
            Compression::NAMES,
            Compression::from_name,
        )?,
        max_rcu: params
            .positive_decimal("max_rcu", config.max_rcu)?
            .or(config.default_max_rcu),
    })
}

/// What a request reads and where each segment starts.
struct Read {
    segments: u32,
    total_segments: u32,
    segment_offset: u32,
    positions: Vec<Position>,
    shape: ReadShape,
    pk: Option<String>,
}

fn invalid(message: String) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidParameter, message)
}

/// A read resumed from `token`, which fixes everything but the delivery parameters.
fn resumed(params: &Params, token: &str, config: &Config) -> Result<Read, ApiError> {
    if let Some(fixed) = FIXED_BY_CURSOR.iter().find(|name| params.has(name)) {
        return Err(invalid(format!(
            "{fixed} cannot be combined with cursor: the cursor already fixes it"
        )));
    }
    let bad_cursor = |message: String| ApiError::bad_request(ErrorCode::InvalidCursor, message);
    let cursor = Cursor::decode(token, &config.cursor_secret, config.max_cursor_bytes)
        .map_err(|err| bad_cursor(err.to_string()))?;
    if cursor.table != config.table_name {
        return Err(bad_cursor("cursor belongs to another table".into()));
    }
    let segments = u32::try_from(cursor.positions.len()).unwrap_or(u32::MAX);
    if segments > config.max_segments {
        return Err(bad_cursor(format!(
            "cursor spans {segments} segments, more than the {} allowed",
            config.max_segments
        )));
    }
    Ok(Read {
        segments,
        total_segments: cursor.total_segments,
        segment_offset: cursor.segment_offset,
        positions: cursor.positions,
        shape: cursor.shape,
        pk: None,
    })
}

/// A read from the start, shaped by the parameters.
fn fresh(params: &Params, config: &Config) -> Result<Read, ApiError> {
    let pk = params.text("pk").map(str::to_string);
    if let Some(pk) = &pk {
        if pk.is_empty() || pk.len() > 2048 {
            return Err(invalid("pk must be 1 to 2048 bytes".into()));
        }
        if let Some(name) = ["total_segments", "segment_offset"]
            .iter()
            .find(|n| params.has(n))
        {
            return Err(invalid(format!(
                "{name} cannot be combined with pk: a Query reads one partition, unsegmented"
            )));
        }
    }
    let default_segments = if pk.is_some() {
        1
    } else {
        config.default_segments
    };
    let segments = params.integer("segments", default_segments, 1, config.max_segments)?;
    if pk.is_some() && segments != 1 {
        return Err(invalid(
            "segments must be 1 with pk: a Query reads one partition, unsegmented".into(),
        ));
    }
    let total_segments =
        params.integer("total_segments", segments, 1, DYNAMODB_MAX_TOTAL_SEGMENTS)?;
    let segment_offset = params.integer("segment_offset", 0, 0, total_segments - 1)?;
    if u64::from(segment_offset) + u64::from(segments) > u64::from(total_segments) {
        return Err(invalid(format!(
            "segment_offset + segments ({segment_offset} + {segments}) must not exceed total_segments ({total_segments})"
        )));
    }
    Ok(Read {
        segments,
        total_segments,
        segment_offset,
        positions: vec![Position::Start; segments as usize],
        shape: ReadShape {
            fields: fields(params)?,
            consistent: params.boolean("consistent")?,
            index: index(params)?,
            partition: None,
        },
        pk,
    })
}

/// `fields=a,b,c`: top-level attribute names, each passed to DynamoDB through
/// `ExpressionAttributeNames`, so reserved words and odd characters are safe.
fn fields(params: &Params) -> Result<Vec<String>, ApiError> {
    let Some(raw) = params.text("fields") else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = raw.split(',').map(str::to_string).collect();
    if names.len() > MAX_FIELDS {
        return Err(invalid(format!(
            "fields may name at most {MAX_FIELDS} attributes"
        )));
    }
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() || name.len() > 255 {
            return Err(invalid(
                "fields must be comma-separated attribute names of 1 to 255 bytes".into(),
            ));
        }
        if names[..i].contains(name) {
            return Err(invalid(format!("fields names {} twice", quoted(name))));
        }
    }
    Ok(names)
}

/// DynamoDB index names: 3 to 255 of `[A-Za-z0-9_.-]`.
fn index(params: &Params) -> Result<Option<String>, ApiError> {
    let Some(name) = params.text("index") else {
        return Ok(None);
    };
    let valid = (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !valid {
        return Err(invalid(format!(
            "index must be 3 to 255 characters of A-Z a-z 0-9 _ . -, got {}",
            quoted(name)
        )));
    }
    Ok(Some(name.to_string()))
}

/// Reads the `pk` text as the key's type: S as is, N as a number, B as base64.
fn partition_value(text: &str, key_type: KeyType) -> Result<KeyValue, ApiError> {
    let bad = |what: &str| {
        ApiError::bad_request(
            ErrorCode::InvalidParameter,
            format!("pk must be {what} for this key, got {}", quoted(text)),
        )
    };
    match key_type {
        KeyType::S => Ok(KeyValue::S(text.to_string())),
        KeyType::N if is_json_number(text) => Ok(KeyValue::N(text.to_string())),
        KeyType::N => Err(bad("a number")),
        KeyType::B => STANDARD
            .decode(text)
            .map(KeyValue::B)
            .map_err(|_| bad("base64")),
    }
}

/// The streamer: configuration and page source, built once at cold start and shared by
/// every invocation.
#[derive(Debug)]
pub struct Streamer<S> {
    /// Bounds, defaults and budgets for every request.
    config: Config,
    /// Shared with the segment tasks of every request.
    source: Arc<S>,
    /// Seals the cursors of incomplete streams.
    seal: CursorSeal,
}

impl<S: PageSource> Streamer<S> {
    /// A streamer reading from `source` within the bounds of `config`.
    pub fn new(config: Config, source: S) -> Self {
        let seal = CursorSeal {
            table: config.table_name.clone(),
            secret: Arc::from(config.cursor_secret.as_slice()),
        };
        Self {
            config,
            source: Arc::new(source),
            seal,
        }
    }

    /// Answers one request. Never fails: every failure is a response.
    pub async fn handle(&self, invocation: Invocation<'_>) -> Response<ResponseBody> {
        let mut request = match parse_request(&invocation, &self.config) {
            Ok(request) => request,
            Err(err) => return error_response(&err),
        };
        let deadline = time_budget(
            invocation.deadline,
            Duration::from_millis(self.config.deadline_reserve_ms),
        );
        if request.pk.is_some() || request.shape.index.is_some() {
            // Finds a missing table or index (404) and the key type before any Scan.
            let described = self.source.partition_key(request.shape.index.as_deref());
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
            let key = match described {
                Ok(key) => key,
                Err(err) => {
                    warn!(cause = %err, source = ?err.source, "describing the table failed");
                    return error_response(&ApiError::from(&err));
                }
            };
            if let Some(text) = request.pk.take() {
                match partition_value(&text, key.key_type) {
                    Ok(value) => request.shape.partition = Some((key.name, value)),
                    Err(err) => return error_response(&err),
                }
            }
        }
        info!(
            segments = request.segments,
            total_segments = request.total_segments,
            segment_offset = request.segment_offset,
            limit = request.limit,
            max_items = ?request.max_items,
            max_rcu = ?request.max_rcu,
            "scan starting"
        );
        let plan = ScanPlan {
            total_segments: request.total_segments,
            segment_offset: request.segment_offset,
            positions: request.positions,
            limit: request.limit,
            shape: Arc::new(request.shape),
            max_items: request.max_items,
            max_bytes: Some(self.config.max_response_bytes),
            deadline,
            seal: Some(self.seal.clone()),
            format: request.format,
            compression: request.compression,
            max_rcu: request.max_rcu,
        };
        match stream::start(self.source.clone(), plan).await {
            Ok(scan) => {
                let body = scan.map(|bytes| Ok(Frame::data(bytes))).boxed();
                response(StatusCode::OK, request.compression.content_type(), body)
            }
            Err(err) => {
                warn!(cause = %err, source = ?err.source, "scan failed before the first page");
                error_response(&ApiError::from(&err))
            }
        }
    }
}

impl<S: PageSource> Handler for Streamer<S> {
    async fn handle(&self, invocation: Invocation<'_>) -> Response<ResponseBody> {
        Streamer::handle(self, invocation).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::Uri;
    use std::time::SystemTime;

    fn config() -> Config {
        Config::from_lookup(|name| (name == "TABLE_NAME").then(|| "t".to_string())).expect("config")
    }

    fn get(query: &str) -> Result<StreamRequest, ApiError> {
        let uri: Uri = format!("/?{query}").parse().expect("uri");
        let invocation = Invocation {
            method: &Method::GET,
            uri: &uri,
            content_type: None,
            body: b"",
            deadline: None,
        };
        parse_request(&invocation, &config())
    }

    #[test]
    fn defaults_and_bounds() {
        let r = get("").expect("valid");
        assert_eq!(
            (r.segments, r.total_segments, r.segment_offset, r.limit),
            (4, 4, 0, 100)
        );
        let r = get("segments=2&total_segments=10&segment_offset=8&limit=1000&max_items=5")
            .expect("valid");
        assert_eq!(
            (r.segments, r.total_segments, r.segment_offset, r.limit),
            (2, 10, 8, 1000)
        );
        assert_eq!(r.max_items, Some(5));
        assert_eq!(r.positions.len(), 2);
    }

    #[test]
    fn shape_parameters() {
        let r = get("fields=name,status,a%2Cb&consistent=true&index=by-status").expect("valid");
        assert_eq!(r.shape.fields, ["name", "status", "a", "b"]);
        assert!(r.shape.consistent);
        assert_eq!(r.shape.index.as_deref(), Some("by-status"));
        let r = get("pk=abc").expect("valid");
        assert_eq!((r.segments, r.pk.as_deref()), (1, Some("abc")));
    }

    #[test]
    fn a_deadline_in_the_past_is_no_deadline() {
        let epoch_plus_600s = SystemTime::UNIX_EPOCH + Duration::from_millis(600_000);
        assert_eq!(
            time_budget(Some(epoch_plus_600s), Duration::from_secs(2)),
            None
        );
        assert_eq!(time_budget(None, Duration::from_secs(2)), None);
        let soon = SystemTime::now() + Duration::from_secs(10);
        let at = time_budget(Some(soon), Duration::from_secs(2)).expect("a budget");
        let left = at - tokio::time::Instant::now();
        assert!(
            left <= Duration::from_secs(8) && left > Duration::from_secs(7),
            "{left:?}"
        );
    }

    #[test]
    fn partition_values_follow_the_key_type() {
        assert_eq!(
            partition_value("x", KeyType::S),
            Ok(KeyValue::S("x".into()))
        );
        assert_eq!(
            partition_value("-1.5", KeyType::N),
            Ok(KeyValue::N("-1.5".into()))
        );
        assert!(partition_value("1e", KeyType::N).is_err());
        assert_eq!(
            partition_value("AAE=", KeyType::B),
            Ok(KeyValue::B(vec![0, 1]))
        );
        assert!(partition_value("***", KeyType::B).is_err());
    }

    #[test]
    fn a_cursor_fixes_the_shape_and_must_fit_the_table() {
        let cursor = Cursor {
            table: "t".into(),
            total_segments: 4,
            segment_offset: 0,
            positions: vec![Position::Start, Position::Done],
            shape: ReadShape::default(),
        };
        let token = cursor.encode(b"");
        let r = get(&format!("cursor={token}&limit=7&max_items=3")).expect("valid");
        assert_eq!((r.segments, r.total_segments, r.limit), (2, 4, 7));
        assert_eq!(r.positions, cursor.positions);
        let err = get(&format!("cursor={token}&segments=2")).unwrap_err();
        assert!(
            err.message
                .contains("segments cannot be combined with cursor"),
            "{}",
            err.message
        );
        let other = Cursor {
            table: "other".into(),
            ..cursor
        }
        .encode(b"");
        let err = get(&format!("cursor={other}")).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (ErrorCode::InvalidCursor, "cursor belongs to another table")
        );
    }

    #[test]
    fn post_bodies_carry_parameters() {
        let uri: Uri = "/?limit=5".parse().expect("uri");
        let post = |content_type: Option<&'static str>, body: &'static [u8]| {
            parse_request(
                &Invocation {
                    method: &Method::POST,
                    uri: &uri,
                    content_type,
                    body,
                    deadline: None,
                },
                &config(),
            )
        };
        let r = post(Some("application/x-www-form-urlencoded"), b"segments=2").expect("valid");
        assert_eq!((r.segments, r.limit), (2, 5));
        assert_eq!(
            post(Some("application/json"), b"{}").unwrap_err().status,
            415
        );
        assert!(
            post(None, b"limit=6")
                .unwrap_err()
                .message
                .contains("more than once")
        );
    }
}
