//! The HTTP edge of both functions: query strings become validated requests or a 4xx,
//! outcomes become responses.
//!
//! - [`streamer`]: `GET /?segments=&limit=` streams the table as NDJSON.
//! - [`seeder`]: `GET /?count=&seed=&start=` seeds the table, streaming progress.
//!
//! Nothing runs until every parameter is valid. Error bodies are always
//! `{"error":{"code","message"}}`, built from fixed text and validated input only.

pub mod seeder;
pub mod streamer;

pub use streamer::{Invocation, StreamRequest, Streamer, parse_request};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use http_body::Frame;
use http_body_util::StreamBody;
use lambda_http::http::{HeaderValue, Method, Response, StatusCode, header};
use serde_json::json;
use std::collections::HashMap;
use std::convert::Infallible;

/// The body of every response: a stream of byte frames (the streaming runtime needs one
/// body type for success and error alike).
pub type ResponseBody = StreamBody<BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

/// Runs a Lambda runtime loop (`run` starts one), restarting it when it fails.
///
/// `lambda_runtime` ends its loop at the first transport error on its connection to the
/// Runtime API (seen under `cargo lambda watch` as `IncompleteMessage` on a reused
/// connection). The error is between invocations, so starting a new loop loses nothing.
/// Five failures within a minute mean something is really wrong: give up then.
pub async fn serve<F, Fut>(mut run: F) -> Result<(), lambda_http::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), lambda_http::Error>>,
{
    let mut failures = 0u32;
    let mut window = std::time::Instant::now();
    loop {
        let Err(err) = run().await else {
            return Ok(());
        };
        if window.elapsed() > std::time::Duration::from_secs(60) {
            failures = 0;
            window = std::time::Instant::now();
        }
        failures += 1;
        tracing::error!(cause = %err, failures, "Lambda runtime loop failed; restarting it");
        if failures >= 5 {
            return Err(err);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(failures))).await;
    }
}

/// When to stop working: the invocation's deadline less the reserve, as an `Instant`.
///
/// A deadline already past when the request arrives is not a real one (`cargo lambda
/// watch` sends its 600 s timeout as if it were a timestamp: 600000 ms after 1970); it is
/// ignored rather than allowed to stop every stream (or seeding run) at once.
pub fn time_budget(
    deadline: Option<std::time::SystemTime>,
    reserve: std::time::Duration,
) -> Option<tokio::time::Instant> {
    let left = deadline?
        .duration_since(std::time::SystemTime::now())
        .ok()?;
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
    pub code: &'static str,
    /// A human-readable explanation, built only from fixed text and validated input.
    pub message: String,
}

impl ApiError {
    /// A 400 with `code` and `message`.
    pub fn bad_request(code: &'static str, message: String) -> Self {
        Self {
            status: 400,
            code,
            message,
        }
    }

    /// The JSON error body, one line.
    pub fn body(&self) -> Vec<u8> {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut out = body.to_string().into_bytes();
        out.push(b'\n');
        out
    }
}

impl From<&crate::error::UpstreamError> for ApiError {
    fn from(err: &crate::error::UpstreamError) -> Self {
        Self {
            status: err.kind.status(),
            code: err.kind.code(),
            message: err.kind.message().to_string(),
        }
    }
}

/// Splits a query string into parameters, rejecting unknown and repeated names.
pub fn parameters(
    query: Option<&str>,
    known: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let mut found = HashMap::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if !known.contains(&name.as_ref()) {
            return Err(ApiError::bad_request(
                "UnknownParameter",
                format!(
                    "unknown parameter {}; known parameters: {}",
                    quoted(&name),
                    known.join(", ")
                ),
            ));
        }
        if found.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(ApiError::bad_request(
                "InvalidParameter",
                format!("parameter {name} is given more than once"),
            ));
        }
    }
    Ok(found)
}

/// Reads parameter `name` as an integer in `min..=max` (strict decimal digits: no sign,
/// no spaces, no exponent), or `default` when absent.
pub fn integer(
    params: &HashMap<String, String>,
    name: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ApiError> {
    let Some(value) = params.get(name) else {
        return Ok(default);
    };
    let parsed =
        if !value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit()) {
            value.parse::<u64>().ok()
        } else {
            None
        };
    match parsed {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(
            "InvalidParameter",
            format!(
                "{name} must be an integer in {min}..={max}, got {}",
                quoted(value)
            ),
        )),
    }
}

/// Echoes client input back safely: quoted, escaped, and cut short.
pub fn quoted(value: &str) -> String {
    let short: String = value.chars().take(40).collect();
    let ellipsis = if short.len() < value.len() { "..." } else { "" };
    format!("{short:?}{ellipsis}")
}

/// A 405 response unless the method is GET.
pub fn reject_non_get(method: &Method) -> Option<Response<ResponseBody>> {
    if method == Method::GET {
        return None;
    }
    let err = ApiError {
        status: 405,
        code: "MethodNotAllowed",
        message: format!("use GET, not {}", quoted(method.as_str())),
    };
    let mut response = error_response(&err);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    Some(response)
}

/// A complete JSON error response.
pub fn error_response(err: &ApiError) -> Response<ResponseBody> {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let frame = Ok(Frame::data(Bytes::from(err.body())));
    response(status, "application/json", stream::iter([frame]).boxed())
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

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let err = parameters(Some("a=1&bogus=2"), &["a"]).unwrap_err();
        assert_eq!((err.status, err.code), (400, "UnknownParameter"));
        assert!(err.message.contains("\"bogus\""), "{}", err.message);
        let err = parameters(Some("a=1&a=2"), &["a"]).unwrap_err();
        assert!(
            err.message.contains("a is given more than once"),
            "{}",
            err.message
        );
    }

    #[test]
    fn integers_are_strict_and_bounded() {
        let p = |q: &str| parameters(Some(q), &["n"]).expect("known");
        assert_eq!(integer(&p(""), "n", 7, 1, 10), Ok(7));
        assert_eq!(integer(&p("n=10"), "n", 7, 1, 10), Ok(10));
        for bad in [
            "n=0",
            "n=11",
            "n=-1",
            "n=+1",
            "n=1.0",
            "n=1e1",
            "n=%201",
            "n=",
            "n=99999999999999999999999",
        ] {
            let err = integer(&p(bad), "n", 7, 1, 10).unwrap_err();
            assert!(
                err.message.starts_with("n must be an integer in 1..=10"),
                "{bad}: {}",
                err.message
            );
        }
    }

    #[test]
    fn echoed_input_is_escaped_and_short() {
        assert_eq!(quoted("a\"b"), "\"a\\\"b\"");
        assert!(quoted(&"x".repeat(100)).ends_with("\"..."));
    }
}
