//! What both fault proxies ([`super::faults`], [`super::stall`]) do with a call they let
//! through: send it upstream as it came, and answer with the upstream's status and headers.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};

/// Sends `request` on to `upstream` (its method, path, headers but `host` and
/// `content-length`, and whole body); `None` when the upstream does not answer.
pub async fn forward(
    http: &reqwest::Client,
    upstream: &str,
    request: Request<Incoming>,
) -> Option<reqwest::Response> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::POST);
    let mut forward = http.request(method, format!("{upstream}{path}")).body(body);
    for (name, value) in &parts.headers {
        if name.as_str() != "host" && name.as_str() != "content-length" {
            forward = forward.header(name.as_str(), value.as_bytes());
        }
    }
    // Why a relay failed is the first thing a failed fault test needs: it goes to the
    // test's captured output.
    forward
        .send()
        .await
        .inspect_err(|err| eprintln!("relay to {upstream}{path} failed: {err:?}"))
        .ok()
}

/// A response with `upstream`'s status and headers, but for `content-length` and
/// `transfer-encoding`, which belong to the body the proxy sends.
pub fn head_of(upstream: &reqwest::Response) -> hyper::http::response::Builder {
    let mut response = Response::builder().status(upstream.status().as_u16());
    for (name, value) in upstream.headers() {
        if name.as_str() != "content-length" && name.as_str() != "transfer-encoding" {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    response
}
