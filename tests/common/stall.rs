//! A fault-injecting HTTP proxy: in front of DynamoDB Local it relays calls until told to
//! stall, then holds every further call open without answering, as a DynamoDB that
//! accepts connections but never responds (or a half-open pooled connection) would. In
//! front of the emulator it fails chosen calls: a status, or a body cut short, and adds up
//! the read capacity every uncompressed answer's trailer reports, cut-off ones included.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::relay::{forward, head_of};

/// The proxy; it stops when dropped.
pub struct StallProxy {
    /// Where the functions send their DynamoDB calls.
    pub url: String,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

/// What a chosen call gets instead of the upstream's answer.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// This status, with a short JSON body.
    Status(u16),
    /// The upstream's answer, its body cut after this many bytes.
    Cut(usize),
}

struct State {
    faults: std::sync::Mutex<std::collections::HashMap<usize, Fault>>,
    upstream: String,
    http: reqwest::Client,
    /// Calls seen so far.
    calls: AtomicUsize,
    /// Calls numbered this or higher (from 0) are held open; `usize::MAX` relays all.
    stall_from: AtomicUsize,
    /// Read capacity reported by the trailers of the upstream's answers.
    consumed: std::sync::Mutex<f64>,
}

impl StallProxy {
    /// Starts relaying to `upstream` (DynamoDB Local's URL) on a free loopback port.
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(State {
            faults: std::sync::Mutex::default(),
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            calls: AtomicUsize::new(0),
            stall_from: AtomicUsize::new(usize::MAX),
            consumed: std::sync::Mutex::new(0.0),
        });
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| relay(state.clone(), request));
                    // A connection the client dropped mid-call ends here; nothing to do.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, state, accept }
    }

    /// Relays `more` further calls, then holds every call after them open.
    pub fn stall_after(&self, more: usize) {
        let from = self.calls() + more;
        self.state.stall_from.store(from, Ordering::SeqCst);
    }

    /// Makes call number `call` (from 0) fail with `fault`.
    pub fn fail_call(&self, call: usize, fault: Fault) {
        if let Ok(mut faults) = self.state.faults.lock() {
            faults.insert(call, fault);
        }
    }

    /// Read capacity the streamer's uncompressed answers reported in their trailers, the
    /// bodies later cut short included: what the calls really consumed.
    pub fn consumed_capacity(&self) -> f64 {
        self.state.consumed.lock().map_or(f64::NAN, |units| *units)
    }

    /// Relays every call again.
    pub fn heal(&self) {
        self.state.stall_from.store(usize::MAX, Ordering::SeqCst);
    }

    /// Calls seen so far, stalled ones included.
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }
}

/// A proxy in front of `emulator`'s streamer, and the streamer's URL through it.
pub async fn proxied_streamer(emulator: &super::emulator::Emulator) -> (StallProxy, String) {
    let base = emulator.url("streamer", "");
    let proxy = StallProxy::start(base.trim_end_matches("/lambda-url/streamer/?")).await;
    let url = format!("{}/lambda-url/streamer/", proxy.url);
    (proxy, url)
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let call = state.calls.fetch_add(1, Ordering::SeqCst);
    if call >= state.stall_from.load(Ordering::SeqCst) {
        // Accepted, never answered: only the caller's own timeout ends this.
        std::future::pending::<()>().await;
    }
    let fault = state
        .faults
        .lock()
        .ok()
        .and_then(|faults| faults.get(&call).copied());
    if let Some(Fault::Status(status)) = fault {
        return Ok(Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                b"{\"error\":{\"code\":\"Injected\"}}\n",
            )))
            .unwrap_or_default());
    }
    let Some(answer) = forward(&state.http, &state.upstream, request).await else {
        return Ok(Response::builder()
            .status(502)
            .body(Full::new(Bytes::new()))
            .unwrap_or_default());
    };
    let response = head_of(&answer);
    let mut bytes = answer.bytes().await.unwrap_or_default();
    let reported = scanstream::format::trailer::Trailer::of_body(&bytes)
        .and_then(|trailer| trailer.consumed_capacity);
    if let (Some(units), Ok(mut consumed)) = (reported, state.consumed.lock()) {
        *consumed += units;
    }
    if let Some(Fault::Cut(at)) = fault {
        bytes.truncate(at);
    }
    Ok(response.body(Full::new(bytes)).unwrap_or_default())
}
