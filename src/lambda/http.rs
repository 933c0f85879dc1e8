//! The HTTP side of both functions: one invocation as a handler sees it, its time
//! budget, and responses, streamed or a JSON error.
//!
//! Error bodies are always `{"error":{"code","message"}}`, built from fixed text and
//! validated input only; the mapping of refused requests and upstream failures to
//! statuses lives here, in one place ([`ApiError`]).

use crate::format::error::{ErrorKind, UpstreamError};
use crate::read::open::OpenError;
use crate::read::params::{ErrorCode, RequestError, quoted};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use http_body::Frame;
use http_body_util::StreamBody;
use lambda_http::http::{HeaderValue, Method, Response, StatusCode, Uri, header};
use serde_json::json;
use std::convert::Infallible;
use std::time::SystemTime;

/// The body of every response: a stream of byte frames (the streaming runtime needs one
/// body type for success and error alike).
pub type ResponseBody = StreamBody<BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

/// One invocation as a handler sees it, Lambda or not.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    /// GET, or (streamer only) POST with a form body.
    pub method: &'a Method,
    /// Path and query string.
    pub uri: &'a Uri,
    /// The `content-type` header, if any.
    pub content_type: Option<&'a str>,
    /// The request body (POST only).
    pub body: &'a [u8],
    /// The invocation's deadline, under Lambda.
    pub deadline: Option<SystemTime>,
}

impl<'a> Invocation<'a> {
    /// A `GET` of `uri`, without a deadline: what tests and local callers send.
    pub fn get(uri: &'a Uri) -> Self {
        Self {
            method: &Method::GET,
            uri,
            content_type: None,
            body: b"",
            deadline: None,
        }
    }
}

/// When to stop working: the invocation's deadline less the reserve, as an `Instant`.
///
/// A deadline already past when the request arrives is not a real one (`cargo lambda
/// watch` sends its 600 s timeout as if it were a timestamp: 600000 ms after 1970); it is
/// ignored rather than allowed to stop every stream (or seeding run) at once.
pub fn time_budget(
    deadline: Option<SystemTime>,
    reserve: std::time::Duration,
) -> Option<tokio::time::Instant> {
    let left = deadline?.duration_since(SystemTime::now()).ok()?;
    if left.is_zero() {
        return None;
    }
    let usable = left.saturating_sub(reserve);
    Some(tokio::time::Instant::now() + usable)
}

/// A request that gets an error response instead of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// A stable code clients can match on.
    pub code: ErrorCode,
    /// A human-readable explanation, built only from fixed text and validated input.
    pub message: String,
    /// The methods allowed, sent as `Allow` with a 405.
    pub allow: Option<&'static str>,
}

impl ApiError {
    /// A 400 with `code` and `message`.
    pub fn bad_request(code: ErrorCode, message: String) -> Self {
        Self::new(400, code, message)
    }

    /// An error of any status.
    pub fn new(status: u16, code: ErrorCode, message: String) -> Self {
        Self {
            status,
            code,
            message,
            allow: None,
        }
    }

    /// A 405 for `method`, naming the methods `allow`ed (`"GET"`, `"GET, POST"`).
    pub fn method_not_allowed(method: &Method, allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                405,
                ErrorCode::MethodNotAllowed,
                format!("use {allow}, not {}", quoted(method.as_str())),
            )
        }
    }

    /// The JSON error body, one line.
    pub fn body(&self) -> Vec<u8> {
        let body = json!({"error": {"code": self.code.as_str(), "message": self.message}});
        let mut out = body.to_string().into_bytes();
        out.push(b'\n');
        out
    }
}

/// A request refused for its parameters: a `400` with the request's code and message.
impl From<RequestError> for ApiError {
    fn from(err: RequestError) -> Self {
        match err.code {
            ErrorCode::DestinationNotAllowed => Self::new(403, err.code, err.message),
            ErrorCode::ChangesGone => Self::new(410, err.code, err.message),
            _ => Self::bad_request(err.code, err.message),
        }
    }
}

/// A read that did not start: its request refused (a `400`), or DynamoDB's failure.
impl From<OpenError> for ApiError {
    fn from(err: OpenError) -> Self {
        match err {
            OpenError::Request(err) => Self::from(err),
            OpenError::Upstream(err) => Self::from(&err),
        }
    }
}

/// The one mapping of upstream failures to HTTP: status, code and fixed message.
impl From<&UpstreamError> for ApiError {
    fn from(err: &UpstreamError) -> Self {
        let status = match err.kind {
            ErrorKind::NotFound | ErrorKind::IndexNotFound => 404,
            ErrorKind::AccessDenied => 403,
            ErrorKind::Throttled => 429,
            ErrorKind::Unavailable => 503,
            ErrorKind::TimedOut => 504,
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Internal => 500,
            ErrorKind::Storage => 502,
        };
        // DynamoDB's message about the user's own expression is theirs to read; any
        // other upstream text stays in the logs.
        let message = match err
            .source
            .downcast_ref::<crate::dynamo::error::ExpressionRejected>()
        {
            Some(rejected) if err.kind == ErrorKind::InvalidRequest => {
                format!("{}: {}", err.kind.message(), rejected.message)
            }
            _ => err.kind.message().to_string(),
        };
        Self::new(status, ErrorCode::Upstream(err.kind), message)
    }
}

/// A complete JSON error response.
pub fn error_response(err: &ApiError) -> Response<ResponseBody> {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let frame = Ok(Frame::data(Bytes::from(err.body())));
    let mut response = response(status, "application/json", stream::iter([frame]).boxed());
    if let Some(allow) = err.allow {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

/// A response streaming `body` with `content_type`.
pub fn response(
    status: StatusCode,
    content_type: &'static str,
    body: BoxStream<'static, Result<Frame<Bytes>, Infallible>>,
) -> Response<ResponseBody> {
    let mut response = Response::new(StreamBody::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
    fn a_refused_request_is_a_400_with_its_code_and_message() {
        for code in [
            ErrorCode::UnknownParameter,
            ErrorCode::MissingParameter,
            ErrorCode::InvalidParameter,
            ErrorCode::InvalidCursor,
        ] {
            let err = ApiError::from(RequestError::new(code, "why".into()));
            assert_eq!(
                (err.status, err.code, err.message.as_str()),
                (400, code, "why")
            );
            assert_eq!(err.allow, None);
        }
    }

    #[test]
    fn upstream_kinds_map_to_statuses_in_one_place() {
        let status = |kind| ApiError::from(&UpstreamError::new(kind, "detail")).status;
        assert_eq!(status(ErrorKind::NotFound), 404);
        assert_eq!(status(ErrorKind::TimedOut), 504);
        assert_eq!(status(ErrorKind::Unavailable), 503);
        assert_eq!(status(ErrorKind::Internal), 500);
        let err = ApiError::from(&UpstreamError::new(ErrorKind::NotFound, "secret detail"));
        assert!(!String::from_utf8_lossy(&err.body()).contains("secret"));
    }

    #[test]
    fn dynamodb_s_message_about_the_user_s_expression_is_passed_on() {
        let rejected = UpstreamError::new(
            ErrorKind::InvalidRequest,
            crate::dynamo::error::ExpressionRejected {
                message: "Invalid FilterExpression: Syntax error; token: \"AND\"".into(),
                source: Box::from("sdk detail"),
            },
        );
        let err = ApiError::from(&rejected);
        assert_eq!(err.status, 400);
        assert!(
            err.message.contains("Invalid FilterExpression"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("sdk detail"), "{}", err.message);
        // Only as an invalid request: anything else keeps its fixed message.
        let other = UpstreamError::new(
            ErrorKind::Internal,
            crate::dynamo::error::ExpressionRejected {
                message: "m".into(),
                source: Box::from("s"),
            },
        );
        assert_eq!(ApiError::from(&other).message, "internal error");
    }

    #[test]
    fn a_405_names_the_allowed_methods() {
        let response = error_response(&ApiError::method_not_allowed(&Method::PUT, "GET, POST"));
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()[header::ALLOW], "GET, POST");
    }
}
