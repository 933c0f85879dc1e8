//! The HTTP edge: a query string becomes a validated [`StreamRequest`] or a 4xx, and a
//! scan becomes a streaming NDJSON response.
//!
//! Nothing is scanned until every parameter is valid. The status line is committed only
//! once the first page (or the first error) is in, so a missing table is a real 404.
//! Error bodies are always `{"error":{"code","message"}}` with fixed or validated text.

use crate::config::Config;
use crate::error::UpstreamError;
use crate::scan::PageSource;
use crate::scan::stream::{self, ScanPlan};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, stream as fstream};
use http_body::Frame;
use http_body_util::StreamBody;
use lambda_http::http::{HeaderValue, Method, Response, StatusCode, Uri, header};
use lambda_http::tracing::{info, warn};
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;

/// The body of every response: a stream of byte frames (the streaming runtime needs one
/// body type for success and error alike).
pub type ResponseBody = StreamBody<BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

/// The parameters this endpoint understands.
pub const PARAMETERS: &[&str] = &["segments", "limit"];

/// A validated request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRequest {
    /// Segments scanned concurrently (and `TotalSegments`).
    pub segments: u32,
    /// Items per Scan call.
    pub limit: u32,
}

/// A request that gets an error response instead of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// A stable code clients can match on.
    pub code: &'static str,
    /// A human-readable explanation, built only from fixed text and validated input.
    pub message: String,
}

impl ApiError {
    fn bad_parameter(code: &'static str, message: String) -> Self {
        Self {
            status: 400,
            code,
            message,
        }
    }

    /// The JSON error body.
    pub fn body(&self) -> Vec<u8> {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut out = body.to_string().into_bytes();
        out.push(b'\n');
        out
    }
}

impl From<&UpstreamError> for ApiError {
    fn from(err: &UpstreamError) -> Self {
        Self {
            status: err.kind.status(),
            code: err.kind.code(),
            message: err.kind.message().to_string(),
        }
    }
}

/// Parses and bounds the query string. Unknown, repeated or malformed parameters are
/// rejected with a message naming the parameter.
pub fn parse_query(query: Option<&str>, config: &Config) -> Result<StreamRequest, ApiError> {
    let mut segments = None;
    let mut limit = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let (slot, max) = match name.as_ref() {
            "segments" => (&mut segments, config.max_segments),
            "limit" => (&mut limit, config.max_limit),
            other => {
                return Err(ApiError::bad_parameter(
                    "UnknownParameter",
                    format!(
                        "unknown parameter {}; known parameters: {}",
                        quoted(other),
                        PARAMETERS.join(", ")
                    ),
                ));
            }
        };
        if slot.is_some() {
            return Err(ApiError::bad_parameter(
                "InvalidParameter",
                format!("parameter {name} is given more than once"),
            ));
        }
        *slot = Some(bounded(&name, &value, max)?);
    }
    Ok(StreamRequest {
        segments: segments.unwrap_or(config.default_segments),
        limit: limit.unwrap_or(config.default_limit),
    })
}

/// Strict decimal digits only: no sign, no spaces, no exponent.
fn bounded(name: &str, value: &str, max: u32) -> Result<u32, ApiError> {
    let parsed = if !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit()) {
        value.parse::<u32>().ok()
    } else {
        None
    };
    match parsed {
        Some(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_parameter(
            "InvalidParameter",
            format!("{name} must be an integer in 1..={max}, got {}", quoted(value)),
        )),
    }
}

/// Echoes client input back safely: quoted, escaped, and cut short.
fn quoted(value: &str) -> String {
    let short: String = value.chars().take(40).collect();
    let ellipsis = if short.len() < value.len() { "..." } else { "" };
    format!("{short:?}{ellipsis}")
}

/// The streamer: configuration and page source, built once at cold start and shared by
/// every invocation.
#[derive(Debug)]
pub struct Streamer<S> {
    config: Config,
    source: Arc<S>,
}

impl<S: PageSource> Streamer<S> {
    /// A streamer reading from `source` within the bounds of `config`.
    pub fn new(config: Config, source: S) -> Self {
        Self {
            config,
            source: Arc::new(source),
        }
    }

    /// Answers one request. Never fails: every failure is a response.
    pub async fn handle(&self, method: &Method, uri: &Uri) -> Response<ResponseBody> {
        if method != Method::GET {
            let err = ApiError {
                status: 405,
                code: "MethodNotAllowed",
                message: format!("use GET, not {}", quoted(method.as_str())),
            };
            let mut response = error_response(&err);
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
            return response;
        }
        let request = match parse_query(uri.query(), &self.config) {
            Ok(request) => request,
            Err(err) => return error_response(&err),
        };
        let plan = ScanPlan {
            total_segments: request.segments,
            segments: 0..request.segments,
            limit: request.limit,
        };
        info!(segments = request.segments, limit = request.limit, "scan starting");
        match stream::start(self.source.clone(), plan).await {
            Ok(scan) => {
                let body = scan.map(|bytes| Ok(Frame::data(bytes))).boxed();
                response(StatusCode::OK, "application/x-ndjson", StreamBody::new(body))
            }
            Err(err) => {
                warn!(cause = %err, source = ?err.source, "scan failed before the first page");
                error_response(&ApiError::from(&err))
            }
        }
    }
}

/// A complete JSON error response.
pub fn error_response(err: &ApiError) -> Response<ResponseBody> {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let frame = Ok(Frame::data(Bytes::from(err.body())));
    response(status, "application/json", StreamBody::new(fstream::iter([frame]).boxed()))
}

fn response(status: StatusCode, content_type: &'static str, body: ResponseBody) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
