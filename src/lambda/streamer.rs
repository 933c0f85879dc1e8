//! The streamer function: `GET /?segments=&limit=...`, or the same parameters
//! form-encoded in a `POST` body (for cursors or `pk` lists too long for a URL), answered
//! with the table as one NDJSON stream.
//!
//! This edge only translates: an invocation to [`Params`], the read's [`Bounds`] from the
//! settings, and the read's outcome ([`Reader::open`]) to a response. The status line is
//! committed only once the first page (or the first error) is in, so a missing table is
//! a real 404 rather than a 200 with an error inside.

use super::http::{ApiError, Invocation, ResponseBody, error_response, response, time_budget};
use super::runtime::Handler;
use crate::dynamo::s3::Bucket;
use crate::dynamo::source::{ApproximateSize, PageSource};
use crate::format::compress::Compression;
use crate::format::cursor::CursorSeal;
use crate::format::error::ErrorKind;
use crate::format::export::{KEY_SCHEMA_HEADER, RecordedKeySchema};
use crate::format::key::KeySchema;
use crate::format::limits;
use crate::format::trailer::{APPROX_BYTES_HEADER, APPROX_ITEMS_HEADER};
use crate::lambda::config::Config;
use crate::read::changes::{
    CHANGE_PARAMETERS, ChangeBounds, ChangeReader, ChangesRefused, ChangesRequest, is_changes,
    parse_changes,
};
use crate::read::export::{ExportTarget, export as export_files, open_first_file};
use crate::read::open::Reader;
use crate::read::params::{ErrorCode, Params};
use crate::read::request::query::MAX_PK_TEXT_BYTES;
use crate::read::request::{Bounds, PARAMETERS, REPEATABLE, StreamRequest, parse_request};
use futures::StreamExt;
use http_body::Frame;
use lambda_http::http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;

/// Media types a `POST` body may have (compared without case or parameters); no
/// `content-type` at all is read as a form too, as curl's `--data` without a header.
pub const FORM_MEDIA_TYPES: &[&str] = &["application/x-www-form-urlencoded", "text/plain"];

/// Every parameter name the streamer knows: a read's, and a change read's.
fn known_parameters() -> Vec<&'static str> {
    let mut known = PARAMETERS.to_vec();
    for name in CHANGE_PARAMETERS {
        if !known.contains(name) {
            known.push(name);
        }
    }
    known
}

/// The parameters of an invocation: the query string, and for `POST` the form body too.
fn params_of(invocation: &Invocation<'_>, bounds: &Bounds) -> Result<Params, ApiError> {
    let query = invocation.uri.query().unwrap_or_default();
    let known = known_parameters();
    match *invocation.method {
        Method::GET => Params::parse_repeatable(query, &known, REPEATABLE).map_err(ApiError::from),
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
            let max_body = max_body_bytes(bounds);
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
            Params::parse_repeatable(&format!("{query}&{body}"), &known, REPEATABLE)
                .map_err(ApiError::from)
        }
        _ => Err(ApiError::method_not_allowed(invocation.method, "GET, POST")),
    }
}

/// The largest POST body: a cursor of `MAX_CURSOR_BYTES` (or a change cursor of its own
/// bound), or `MAX_PARTITIONS` `pk` values of the largest size percent-encoded, with a
/// filter at its bounds, and room for the other parameters.
pub fn max_body_bytes(bounds: &Bounds) -> usize {
    let per_pk = "&pk=".len() + 3 * MAX_PK_TEXT_BYTES;
    let filter = 3
        * (limits::MAX_EXPRESSION_BYTES
            + limits::MAX_VALUES_BYTES
            + limits::MAX_PLACEHOLDERS
                * (limits::MAX_PLACEHOLDER_BYTES + limits::MAX_NAME_BYTES + 8));
    let query = bounds.max_partitions as usize * per_pk + filter;
    bounds
        .max_cursor_bytes
        .max(query)
        .max(crate::format::cursor::changes::MAX_CHANGE_CURSOR_BYTES)
        + 16 * 1024
}

/// What an invocation asks for: a read of the table, or of its changes.
#[derive(Debug)]
pub enum Request {
    /// A Scan or Query (or an export of one); boxed, as it is much the larger.
    Read(Box<StreamRequest>),
    /// The table's changes (`changes=true`).
    Changes(ChangesRequest),
}

/// Checks every parameter of an invocation: method, body, names, values, cursor.
pub fn any_request_of(
    invocation: &Invocation<'_>,
    bounds: &Bounds,
    change_bounds: &ChangeBounds,
) -> Result<Request, ApiError> {
    let params = params_of(invocation, bounds)?;
    if is_changes(&params) {
        return Ok(Request::Changes(parse_changes(
            &params,
            change_bounds,
            now_ms(),
        )?));
    }
    if params.has("since") {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidParameter,
            "since applies only to changes=true".into(),
        ));
    }
    Ok(Request::Read(Box::new(parse_request(&params, bounds)?)))
}

/// Checks every parameter of a read of the table (not of its changes).
pub fn request_of(invocation: &Invocation<'_>, bounds: &Bounds) -> Result<StreamRequest, ApiError> {
    let params = params_of(invocation, bounds)?;
    if is_changes(&params) || params.has("since") {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidParameter,
            "this is a read of the table, not of its changes".into(),
        ));
    }
    Ok(parse_request(&params, bounds)?)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// What the settings allow a request.
pub fn bounds(config: &Config) -> Bounds {
    Bounds {
        table_name: config.table_name.clone(),
        cursor_secret: config.cursor_secret.clone(),
        max_cursor_bytes: config.max_cursor_bytes,
        max_segments: config.max_segments,
        default_segments: config.default_segments,
        max_limit: config.max_limit,
        default_limit: config.default_limit,
        max_partitions: config.max_partitions,
        max_rcu: config.max_rcu,
        default_max_rcu: config.default_max_rcu,
        export: config.export.as_ref().map(|export| export.location.clone()),
    }
}

/// The streamer: settings and reader, built once at cold start and shared by every
/// invocation.
#[derive(Debug)]
pub struct Streamer<S> {
    /// Budgets for every request.
    config: Config,
    /// Bounds and defaults of every request's parameters.
    bounds: Bounds,
    /// Reads the table.
    reader: Reader<S>,
    /// The bucket of `to=` (`EXPORT_BUCKET`), when the function has one.
    bucket: Option<Arc<Bucket>>,
    /// Reads the table's changes (`changes=true`), when connected.
    changes: Option<ChangeReader>,
    /// Bounds of a change read's parameters.
    change_bounds: ChangeBounds,
}

impl<S: PageSource> Streamer<S> {
    /// A streamer reading from `source` within the bounds of `config`.
    pub fn new(config: Config, source: S) -> Self {
        let seal = CursorSeal {
            table: config.table_name.clone(),
            secret: Arc::from(config.cursor_secret.as_slice()),
        };
        Self {
            bounds: bounds(&config),
            change_bounds: ChangeBounds { seal: seal.clone() },
            reader: Reader::new(source, seal, config.max_response_bytes),
            config,
            bucket: None,
            changes: None,
        }
    }

    /// The seal this streamer's cursors are made with: what its change reader needs.
    pub fn seal(&self) -> CursorSeal {
        self.change_bounds.seal.clone()
    }

    /// The streamer reading the table's changes through `reader` (`changes=true`).
    pub fn with_changes(mut self, reader: ChangeReader) -> Self {
        self.changes = Some(reader);
        self
    }

    /// Answers a read of the table's changes.
    async fn handle_changes(
        &self,
        request: ChangesRequest,
        invocation: &Invocation<'_>,
    ) -> Response<ResponseBody> {
        let Some(reader) = &self.changes else {
            return error_response(&ApiError::new(
                500,
                ErrorCode::Upstream(ErrorKind::Internal),
                "the change stream reader is not connected".into(),
            ));
        };
        let reserve = Duration::from_millis(self.config.deadline_reserve_ms);
        let deadline = time_budget(invocation.deadline, reserve);
        let compression = request.compression;
        match reader.open(request, deadline).await {
            Ok(body) => response(
                StatusCode::OK,
                compression.content_type(),
                body.map(|bytes| Ok(Frame::data(bytes))).boxed(),
            ),
            Err(ChangesRefused::Request(err)) => error_response(&ApiError::from(err)),
            Err(ChangesRefused::Upstream(err)) => error_response(&ApiError::from(&err)),
        }
    }

    /// The streamer writing `to=` exports into `bucket` (the one `EXPORT_BUCKET` names).
    pub fn with_bucket(mut self, bucket: Bucket) -> Self {
        self.bucket = Some(Arc::new(bucket));
        self
    }

    /// Answers one request. Never fails: every failure is a response.
    pub async fn handle(&self, invocation: Invocation<'_>) -> Response<ResponseBody> {
        let request = match any_request_of(&invocation, &self.bounds, &self.change_bounds) {
            Ok(Request::Read(request)) => *request,
            Ok(Request::Changes(request)) => {
                return self.handle_changes(request, &invocation).await;
            }
            Err(err) => return error_response(&err),
        };
        let reserve = Duration::from_millis(self.config.deadline_reserve_ms);
        // The read stops this long before the deadline less the reserve; an export's read
        // earlier still, so its last file can be completed in what is left.
        let mut read_reserve = reserve;
        let export = match (&request.to, &self.config.export, &self.bucket) {
            (None, ..) => None,
            (Some(to), Some(settings), Some(bucket)) => {
                read_reserve += settings.reserve;
                let target = ExportTarget {
                    folder: to.clone(),
                    compression: request.compression,
                    file_bytes: settings.file_bytes,
                    part_bytes: settings.part_bytes,
                    call: format!("{:016x}", rand::random::<u64>()),
                    deadline: time_budget(invocation.deadline, reserve),
                };
                // Before anything is read: a bucket it may not write is a 502 now.
                match open_first_file(&**bucket, &target).await {
                    Ok(first) => Some((target, bucket.clone(), first)),
                    Err(err) => return error_response(&ApiError::from(&err)),
                }
            }
            // The bounds refuse `to=` without EXPORT_BUCKET, and the binary connects the
            // bucket whenever it is set.
            (Some(_), ..) => {
                return error_response(&ApiError::new(
                    500,
                    ErrorCode::Upstream(ErrorKind::Internal),
                    "the export bucket is configured but not connected".into(),
                ));
            }
        };
        let deadline = time_budget(invocation.deadline, read_reserve);
        let compression = request.compression;
        match (self.reader.open(request, deadline).await, export) {
            (Ok(opened), Some((target, bucket, first))) => {
                let body = export_files(opened.stream, bucket, target, first)
                    .map(|bytes| Ok(Frame::data(bytes)))
                    .boxed();
                let mut response = response(StatusCode::OK, Compression::None.content_type(), body);
                key_header(response.headers_mut(), opened.key.as_ref());
                response
            }
            (Ok(opened), None) => {
                let body = opened.stream.map(|bytes| Ok(Frame::data(bytes))).boxed();
                let mut response = response(StatusCode::OK, compression.content_type(), body);
                if let Some(size) = opened.size {
                    size_headers(response.headers_mut(), size);
                }
                key_header(response.headers_mut(), opened.key.as_ref());
                response
            }
            (Err(err), export) => {
                if let Some((_, bucket, first)) = export {
                    first.abandon(bucket).await;
                }
                error_response(&ApiError::from(err))
            }
        }
    }
}

/// The table's key schema, for a client that records it in an export.
fn key_header(headers: &mut HeaderMap, key: Option<&KeySchema>) {
    let value = key.map(|key| RecordedKeySchema::of(key).to_header());
    if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(KEY_SCHEMA_HEADER, value);
    }
}

fn size_headers(headers: &mut HeaderMap, size: ApproximateSize) {
    for (name, value) in [
        (APPROX_ITEMS_HEADER, size.items),
        (APPROX_BYTES_HEADER, size.bytes),
    ] {
        headers.insert(name, HeaderValue::from(value));
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
    use crate::format::error::{ErrorKind, UpstreamError};
    use crate::read::open::{KEY_LOOKUP_WAIT, SIZE_LOOKUP_GRACE};
    use lambda_http::http::Uri;

    fn config() -> Config {
        Config::from_lookup(|name| (name == "TABLE_NAME").then(|| "t".to_string())).expect("config")
    }

    fn get(query: &str) -> Result<StreamRequest, ApiError> {
        let uri: Uri = format!("/?{query}").parse().expect("uri");
        request_of(&Invocation::get(&uri), &bounds(&config()))
    }

    #[test]
    fn a_request_s_defaults_and_bounds_are_the_settings() {
        let r = get("").expect("valid");
        assert_eq!(
            (r.segments, r.total_segments, r.segment_offset, r.limit),
            (4, 4, 0, 100)
        );
        let err = get("segments=65").unwrap_err();
        assert_eq!((err.status, err.code), (400, ErrorCode::InvalidParameter));
        assert!(
            err.message
                .starts_with("segments must be an integer in 1..=64"),
            "{}",
            err.message
        );
        let err = get("bogus=1").unwrap_err();
        assert_eq!((err.status, err.code), (400, ErrorCode::UnknownParameter));
    }

    #[test]
    fn post_bodies_carry_parameters() {
        let uri: Uri = "/?limit=5".parse().expect("uri");
        let post = |content_type: Option<&'static str>, body: &'static [u8]| {
            request_of(
                &Invocation {
                    method: &Method::POST,
                    uri: &uri,
                    content_type,
                    body,
                    deadline: None,
                },
                &bounds(&config()),
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

    /// A memory table whose size lookup takes `delay` the first time (a slow or
    /// throttled `DescribeTable`) and is then cached, as DynamoDB's source caches it.
    struct SlowSize {
        inner: crate::dynamo::memory::MemorySource,
        delay: Duration,
        cached: std::sync::atomic::AtomicBool,
    }

    impl PageSource for SlowSize {
        async fn page(
            &self,
            request: crate::dynamo::source::PageRequest,
        ) -> Result<crate::dynamo::source::Page, UpstreamError> {
            self.inner.page(request).await
        }

        async fn partition_key(
            &self,
            index: Option<&str>,
        ) -> Result<crate::format::key::KeyAttribute, UpstreamError> {
            self.inner.partition_key(index).await
        }

        async fn approximate_size(
            &self,
            _: Option<&str>,
        ) -> Option<crate::dynamo::source::ApproximateSize> {
            use std::sync::atomic::Ordering::SeqCst;
            if !self.cached.load(SeqCst) {
                tokio::time::sleep(self.delay).await;
                self.cached.store(true, SeqCst);
            }
            Some(crate::dynamo::source::ApproximateSize {
                items: 7,
                bytes: 700,
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_size_lookup_holds_no_response_back_and_still_fills_the_cache() {
        use std::sync::atomic::Ordering::SeqCst;
        let items = (0..5)
            .map(|i| {
                crate::format::item::Item::from([(
                    "id".to_string(),
                    crate::format::item::Value::S(format!("item-{i}")),
                )])
            })
            .collect();
        let streamer = Streamer::new(
            config(),
            SlowSize {
                inner: crate::dynamo::memory::MemorySource::new(items, "id"),
                delay: Duration::from_secs(5),
                cached: false.into(),
            },
        );
        let uri: Uri = "/?max_items=1".parse().expect("uri");
        let started = tokio::time::Instant::now();
        let response = streamer.handle(Invocation::get(&uri)).await;
        assert_eq!(response.status(), 200);
        // The clock is paused: only the waits in the handler move it.
        assert_eq!(
            started.elapsed(),
            SIZE_LOOKUP_GRACE,
            "the headers waited the grace, not the lookup"
        );
        assert!(response.headers().get(APPROX_ITEMS_HEADER).is_none());
        // The lookup went on after the response, past any timeout a join would have had.
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(
            streamer.reader.source().cached.load(SeqCst),
            "the lookup finished"
        );
        // Cached, it answers at once, and the next fresh response carries it.
        let response = streamer.handle(Invocation::get(&uri)).await;
        assert_eq!(
            response
                .headers()
                .get(APPROX_ITEMS_HEADER)
                .and_then(|v| v.to_str().ok()),
            Some("7")
        );
        assert_eq!(
            response
                .headers()
                .get(APPROX_BYTES_HEADER)
                .and_then(|v| v.to_str().ok()),
            Some("700")
        );
    }

    /// A memory table whose key-schema lookup (a `DescribeTable`) takes `delay`, or
    /// fails when `denied`; it counts the lookups.
    struct SlowKeys {
        inner: crate::dynamo::memory::MemorySource,
        delay: Duration,
        denied: bool,
        lookups: std::sync::atomic::AtomicUsize,
    }

    impl PageSource for SlowKeys {
        async fn page(
            &self,
            request: crate::dynamo::source::PageRequest,
        ) -> Result<crate::dynamo::source::Page, UpstreamError> {
            self.inner.page(request).await
        }

        async fn partition_key(
            &self,
            index: Option<&str>,
        ) -> Result<crate::format::key::KeyAttribute, UpstreamError> {
            self.lookups
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            if self.denied {
                return Err(UpstreamError::new(ErrorKind::AccessDenied, "denied"));
            }
            self.inner.partition_key(index).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_filtered_read_waits_a_bounded_time_for_the_key_and_remembers_a_denial() {
        let table = || {
            let items = (0..50)
                .map(|i| {
                    crate::format::item::Item::from([(
                        "id".to_string(),
                        crate::format::item::Value::S(format!("item-{i}")),
                    )])
                })
                .collect();
            crate::dynamo::memory::MemorySource::new(items, "id").with_filter(|_| true)
        };
        let uri: Uri = "/?max_items=3&filter=attribute_exists(id)"
            .parse()
            .expect("uri");
        // Slow: the read goes on without the key after the wait, with every item it owes.
        let streamer = Streamer::new(
            config(),
            SlowKeys {
                inner: table(),
                delay: Duration::from_secs(60),
                denied: false,
                lookups: 0.into(),
            },
        );
        let started = tokio::time::Instant::now();
        let response = streamer.handle(Invocation::get(&uri)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            started.elapsed(),
            KEY_LOOKUP_WAIT,
            "waited the bound, not the lookup"
        );
        // Denied: asked once, then remembered.
        let streamer = Streamer::new(
            config(),
            SlowKeys {
                inner: table(),
                delay: Duration::ZERO,
                denied: true,
                lookups: 0.into(),
            },
        );
        for _ in 0..3 {
            let response = streamer.handle(Invocation::get(&uri)).await;
            assert_eq!(response.status(), 200);
        }
        assert_eq!(
            streamer
                .reader
                .source()
                .lookups
                .load(std::sync::atomic::Ordering::SeqCst),
            1,
            "a denial is remembered"
        );
    }
}
