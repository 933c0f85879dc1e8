//! How the client reaches a Function URL: one way to sign, send and read the status.
//!
//! `pull`'s calls, `plan`'s sample call and `seed`'s calls all go through
//! [`Transport::send`]: the request's form sorted and percent-encoded as RFC 3986 says (so
//! the query string is its own SigV4 canonical form), signed, sent with the caller's idle
//! timeout, and its status read: a 3xx is never followed, a 429 is [`Failure::Throttled`],
//! a 5xx is worth trying again, any other 4xx is refused with the start of its body.
//!
//! - [`sign`]: SigV4 for Function URLs.
//! - [`lines`]: a streamer's body split into item lines and its trailer.

pub mod lines;
pub mod sign;

use sign::{SignError, Signer};
use std::sync::Arc;
use std::time::Duration;

/// Signs and sends requests to a Function URL.
#[derive(Debug, Clone)]
pub struct Transport {
    /// Follows no redirect ([`http_client`]).
    http: reqwest::Client,
    signer: Arc<Signer>,
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The Function URL.
    pub url: &'a str,
    /// The parameters, in any order.
    pub form: Vec<(String, String)>,
    /// A POST with the form as its body (a cursor or a Query's keys can be longer than a
    /// URL); otherwise a GET with the form as its query string.
    pub post: bool,
    /// How long to wait for the response.
    pub idle: Duration,
    /// How long to read a refused call's body for its message.
    pub refusal_wait: Duration,
}

/// Why a request got no `200`.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The URL with its query string does not make a request.
    #[error("{url} is not a valid URL: {error}")]
    Url {
        /// The URL, with the query string of a GET.
        url: String,
        /// Why.
        error: http::Error,
    },
    /// The credentials did not load: a later try may get them (STS or IMDS throttled,
    /// the network).
    #[error("{0}")]
    Credentials(SignError),
    /// The request could not be signed.
    #[error("{0}")]
    Signing(SignError),
    /// The request failed before a response.
    #[error("request failed: {0}")]
    Send(reqwest::Error),
    /// No response within the request's `idle`.
    #[error("no response in {} s", .0.as_secs())]
    Silent(Duration),
    /// A 3xx: not followed, as a signed request goes only where it was signed for.
    #[error("{0}")]
    Redirected(String),
    /// A 429: too many calls at once.
    #[error("{0}")]
    Throttled(String),
    /// A 5xx.
    #[error("{0}")]
    Unavailable(String),
    /// Another status, which trying again cannot cure.
    #[error("{0}")]
    Refused(String),
}

impl Failure {
    /// Whether the same request may get through later (429s aside: [`Failure::Throttled`]
    /// is waited out, not retried, by whoever tells them apart).
    pub fn retry(&self) -> bool {
        matches!(
            self,
            Self::Credentials(_)
                | Self::Send(_)
                | Self::Silent(_)
                | Self::Throttled(_)
                | Self::Unavailable(_)
        )
    }
}

impl Transport {
    /// Signs with `signer`; a connection must be made within `connect_timeout`.
    pub fn new(signer: Arc<Signer>, connect_timeout: Duration) -> Self {
        Self {
            http: http_client(connect_timeout),
            signer,
        }
    }

    /// Sends `request`; its response when the status is `200`, its body unread.
    pub async fn send(&self, request: Request<'_>) -> Result<reqwest::Response, Failure> {
        let encoded = form(request.form);
        let (built, body) = if request.post {
            let built = http::Request::post(request.url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(());
            (
                built.map_err(|error| (request.url.to_string(), error)),
                encoded.into_bytes(),
            )
        } else {
            let separator = if request.url.contains('?') { '&' } else { '?' };
            let url = format!("{}{separator}{encoded}", request.url);
            (
                http::Request::get(&url)
                    .body(())
                    .map_err(|error| (url, error)),
                Vec::new(),
            )
        };
        let mut built = built.map_err(|(url, error)| Failure::Url { url, error })?;
        match self.signer.sign(&mut built, &body).await {
            Ok(()) => {}
            Err(why @ SignError::Credentials(_)) => return Err(Failure::Credentials(why)),
            Err(why) => return Err(Failure::Signing(why)),
        }
        let mut builder = self
            .http
            .request(built.method().clone(), built.uri().to_string())
            .body(body);
        for (name, value) in built.headers() {
            builder = builder.header(name, value);
        }
        // A Function URL that accepts the connection and never answers would hold this
        // call for good.
        let mut response = match tokio::time::timeout(request.idle, builder.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => return Err(Failure::Send(err)),
            Err(_) => return Err(Failure::Silent(request.idle)),
        };
        let status = response.status().as_u16();
        if let Some(why) = redirected(status, response.headers()) {
            return Err(Failure::Redirected(why));
        }
        if status != 200 {
            // A refusal's body is not progress: read only its first few KB, for a while.
            let text = refusal_text(&mut response, request.refusal_wait).await;
            return Err(if status == 429 {
                Failure::Throttled(format!("{status}: {text}"))
            } else if status >= 500 {
                Failure::Unavailable(format!("{status}: {text}"))
            } else {
                Failure::Refused(refused(status, &text))
            });
        }
        Ok(response)
    }
}

/// `form` sorted and percent-encoded as RFC 3986 says (a space is %20, never `+`): the
/// query string is then its own SigV4 canonical form, whoever canonicalises it.
fn form(mut form: Vec<(String, String)>) -> String {
    form.sort();
    form.iter()
        .map(|(name, value)| format!("{}={}", rfc3986(name), rfc3986(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The table's approximate `(items, bytes)` from a response's headers, when both are
/// there and are counts; anything else is no estimate.
pub fn approximate_size(headers: &reqwest::header::HeaderMap) -> Option<(u64, u64)> {
    use crate::format::trailer::{APPROX_BYTES_HEADER, APPROX_ITEMS_HEADER};
    let number = |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.parse().ok() };
    Some((number(APPROX_ITEMS_HEADER)?, number(APPROX_BYTES_HEADER)?))
}

/// The client every call goes through: no redirect is followed, since a signed request's
/// headers (its session token among them) would go on to wherever a 3xx points.
fn http_client(connect_timeout: Duration) -> reqwest::Client {
    let builder = || reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    builder()
        .connect_timeout(connect_timeout)
        .build()
        .or_else(|_| builder().build())
        .unwrap_or_default()
}

/// Why a 3xx is an error, naming where it points; `None` for any other status.
fn redirected(status: u16, headers: &reqwest::header::HeaderMap) -> Option<String> {
    if !(300..400).contains(&status) {
        return None;
    }
    let location = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no location given");
    Some(format!(
        "{status}: the URL redirects to {location}; not followed, as a signed request goes \
         only where it was signed for: use that URL if it is the function's"
    ))
}

/// The most of a refused call's body read for its message: a body may never end.
const REFUSAL_BYTES: usize = 4096;

/// The start of a refused call's body, at most [`REFUSAL_BYTES`] read within `idle`, as
/// at most 300 characters of text.
async fn refusal_text(response: &mut reqwest::Response, idle: Duration) -> String {
    let mut head = Vec::new();
    let read = async {
        while head.len() < REFUSAL_BYTES {
            let Ok(Some(chunk)) = response.chunk().await else {
                break;
            };
            let room = REFUSAL_BYTES - head.len();
            head.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    };
    let _ = tokio::time::timeout(idle, read).await;
    String::from_utf8_lossy(&head).chars().take(300).collect()
}

/// The message for a status that trying again cannot cure. A 403 from a Function URL
/// with `AWS_IAM` is nearly always a caller without the two permissions such URLs need.
fn refused(status: u16, text: &str) -> String {
    // The functions' own refusals (`{"error":{"code":...}}`) say why themselves.
    if status == 403 && !text.contains("{\"error\":{\"code\":") {
        format!(
            "403 Forbidden: the caller needs lambda:InvokeFunctionUrl and lambda:InvokeFunction \
             on the function (Function URLs created since October 2025 need both; the stack's \
             ReaderPolicyArn output grants them on the streamer, SeederCallerPolicyArn on the \
             seeder, docs/deploy.md): {text}"
        )
    } else {
        format!("{status}: {text}")
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn rfc3986(text: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, RESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_403_names_the_permissions_a_function_url_needs() {
        let message = refused(403, "Forbidden");
        assert!(
            message.contains("lambda:InvokeFunctionUrl")
                && message.contains("lambda:InvokeFunction ")
                && message.contains("ReaderPolicyArn")
                && message.contains("SeederCallerPolicyArn"),
            "{message}"
        );
        assert_eq!(refused(404, "Not Found"), "404: Not Found");
    }

    #[test]
    fn query_values_are_encoded_as_sigv4_canonicalises_them() {
        assert_eq!(rfc3986("a b,c"), "a%20b%2Cc");
        assert_eq!(rfc3986("2.abc-_~x"), "2.abc-_~x");
        assert_eq!(rfc3986("☃"), "%E2%98%83");
    }
}
