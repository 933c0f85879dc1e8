//! A fault proxy that streams: between the client and the emulator it answers 429 to calls
//! beyond a number at once (as a Function URL does when the function has no more
//! environments), cuts response bodies at a byte (breaking the connection, as a proxy
//! that caps a response does), and at random under a seed: 503s, 429s and cuts. In front
//! of DynamoDB Local it answers Scan and Query calls, at random, with the
//! `ProvisionedThroughputExceededException` DynamoDB sends when it throttles.
//!
//! Unlike [`super::stall`], bodies are relayed chunk by chunk as they arrive, so a call is
//! "at once" for as long as its body streams, and a cut breaks the connection mid-body.

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rand::{RngExt, SeedableRng};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::relay::{forward, head_of};

/// What the proxy does to the calls it relays.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Calls beyond this many at once get a 429, for this long after the first call.
    pub at_once: Option<(usize, Duration)>,
    /// Every body is cut (the connection broken) after this many bytes.
    pub cut_at: Option<usize>,
    /// Random faults between the client and the streamer.
    pub random: Option<RandomFaults>,
    /// In front of DynamoDB: this share of Scan, Query and BatchWriteItem calls is
    /// throttled.
    pub dynamodb_throttle: Option<f64>,
    /// In front of S3: every `n`th `UploadPart` or `CompleteMultipartUpload` call, the
    /// first included, is answered `503 SlowDown`, or `500 InternalError` for every other
    /// one of those. With 2, every part's and completion's first attempt fails and its
    /// retry gets through.
    pub s3_fail_every: Option<u64>,
    /// The seed of every random choice.
    pub seed: u64,
    /// Rewrites whole bodies (numbered from 0 by call): a trailer or lines that differ.
    pub edit: Option<Edit>,
    /// Calls that go silent and stay open: a half-open connection, a hung proxy.
    pub stall: Option<Stall>,
}

/// The first `calls` calls go silent: before their response (`after: None`), or after
/// `after` bytes of body. The connection stays open until the client gives up on it.
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    pub calls: u64,
    pub after: Option<usize>,
}

/// A rewrite of call `n`'s whole body.
#[derive(Clone)]
pub struct Edit(pub Arc<dyn Fn(u64, Bytes) -> Bytes + Send + Sync>);

impl std::fmt::Debug for Edit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Edit")
    }
}

/// Chances per call, each drawn once per call.
#[derive(Debug, Clone, Copy)]
pub struct RandomFaults {
    pub status_503: f64,
    pub status_429: f64,
    /// The body is cut at a byte drawn from `0..cut_within`; a body shorter than that
    /// arrives whole, and then the connection breaks.
    pub cut: f64,
    pub cut_within: usize,
}

/// What the proxy did, for the test's report.
#[derive(Debug, Default)]
pub struct Counts {
    pub calls: AtomicU64,
    pub status_429: AtomicU64,
    pub status_503: AtomicU64,
    /// Bodies cut before their end.
    pub cut: AtomicU64,
    /// Bodies that arrived whole, then the connection broke.
    pub broken_after_end: AtomicU64,
    /// DynamoDB calls answered with ProvisionedThroughputExceededException.
    pub dynamodb_throttled: AtomicU64,
    /// S3 part uploads and completions answered 503 SlowDown or 500 InternalError.
    pub s3_failed: AtomicU64,
    /// S3 part uploads and completions seen.
    pub s3_eligible: AtomicU64,
    /// The most calls whose bodies streamed at once.
    pub most_at_once: AtomicU64,
    /// Calls that went silent (`Faults::stall`).
    pub stalled: AtomicU64,
}

impl Counts {
    /// One line of every count.
    pub fn line(&self) -> String {
        let get = |n: &AtomicU64| n.load(Ordering::SeqCst);
        format!(
            "{} calls, {} 429s, {} 503s, {} bodies cut, {} broken after their end, \
             {} DynamoDB calls throttled, {} S3 calls failed, at most {} at once, {} stalled",
            get(&self.calls),
            get(&self.status_429),
            get(&self.status_503),
            get(&self.cut),
            get(&self.broken_after_end),
            get(&self.dynamodb_throttled),
            get(&self.s3_failed),
            get(&self.most_at_once),
            get(&self.stalled),
        )
    }
}

/// The proxy; it stops when dropped.
pub struct FaultProxy {
    /// Where to send calls instead of the upstream.
    pub url: String,
    pub counts: Arc<Counts>,
    accept: JoinHandle<()>,
}

struct State {
    faults: Faults,
    upstream: String,
    http: reqwest::Client,
    counts: Arc<Counts>,
    rng: Mutex<rand_chacha::ChaCha8Rng>,
    /// Calls whose bodies are streaming.
    running: Mutex<usize>,
    first_call: Mutex<Option<Instant>>,
}

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

impl FaultProxy {
    /// Starts relaying to `upstream` on a free loopback port.
    pub async fn start(upstream: &str, faults: Faults) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let counts = Arc::new(Counts::default());
        let state = Arc::new(State {
            rng: Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(faults.seed)),
            faults,
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            counts: counts.clone(),
            running: Mutex::new(0),
            first_call: Mutex::new(None),
        });
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| relay(state.clone(), request));
                    // A call cut or dropped mid-body ends its connection here.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url,
            counts,
            accept,
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One call's place among those streaming; given back when its body ends or is dropped.
struct Running(Arc<State>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut running) = self.0.running.lock() {
            *running -= 1;
        }
    }
}

fn answer(status: u16, content_type: &str, body: &'static [u8]) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(
            Full::new(Bytes::from_static(body))
                .map_err(|e| match e {})
                .boxed_unsync(),
        )
        .unwrap_or_default()
}

/// What S3 answers when it sheds load, and when it fails.
const SLOW_DOWN: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
const INTERNAL_ERROR: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>";

/// What DynamoDB answers a throttled call with.
const THROTTLED: &[u8] = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provision throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."}"#;

async fn relay(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let call = state.counts.calls.fetch_add(1, Ordering::SeqCst);
    let now = Instant::now();
    let first = *state.first_call.lock().expect("lock").get_or_insert(now);
    let faults = &state.faults;
    let stall_after = match faults.stall {
        Some(stall) if call < stall.calls => match stall.after {
            None => {
                state.counts.stalled.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
                None
            }
            after => after,
        },
        _ => None,
    };
    let (random_status, cut_at) = {
        let mut rng = state.rng.lock().expect("lock");
        let mut status = None;
        let mut cut_at = faults.cut_at;
        if let Some(random) = faults.random {
            let roll: f64 = rng.random_range(0.0..1.0);
            if roll < random.status_503 {
                status = Some(503);
            } else if roll < random.status_503 + random.status_429 {
                status = Some(429);
            } else if roll < random.status_503 + random.status_429 + random.cut {
                cut_at = Some(rng.random_range(0..random.cut_within));
            }
        }
        if let Some(share) = faults.dynamodb_throttle {
            let target = request
                .headers()
                .get("x-amz-target")
                .and_then(|t| t.to_str().ok())
                .unwrap_or_default();
            if [".Scan", ".Query", ".BatchWriteItem"]
                .iter()
                .any(|call| target.ends_with(call))
                && rng.random_range(0.0..1.0) < share
            {
                state
                    .counts
                    .dynamodb_throttled
                    .fetch_add(1, Ordering::SeqCst);
                return Ok(answer(400, "application/x-amz-json-1.0", THROTTLED));
            }
        }
        if let Some(every) = faults.s3_fail_every {
            let query = request.uri().query().unwrap_or_default();
            // `PUT ?partNumber=..&uploadId=..` is a part; `POST ?uploadId=..` completes.
            let part = request.method() == hyper::Method::PUT && query.contains("partNumber=");
            let complete = request.method() == hyper::Method::POST && query.contains("uploadId=");
            let nth =
                (part || complete).then(|| state.counts.s3_eligible.fetch_add(1, Ordering::SeqCst));
            if nth.is_some_and(|nth| nth.is_multiple_of(every.max(1))) {
                let n = state.counts.s3_failed.fetch_add(1, Ordering::SeqCst);
                return Ok(if n.is_multiple_of(2) {
                    answer(503, "application/xml", SLOW_DOWN)
                } else {
                    answer(500, "application/xml", INTERNAL_ERROR)
                });
            }
        }
        (status, cut_at)
    };
    match random_status {
        Some(503) => {
            state.counts.status_503.fetch_add(1, Ordering::SeqCst);
            return Ok(answer(
                503,
                "application/json",
                b"{\"Message\":\"Service Unavailable\"}",
            ));
        }
        Some(_) => {
            state.counts.status_429.fetch_add(1, Ordering::SeqCst);
            return Ok(answer(
                429,
                "application/json",
                b"{\"Message\":\"Rate Exceeded.\"}",
            ));
        }
        None => {}
    }
    let place = {
        let mut running = state.running.lock().expect("lock");
        if let Some((most, window)) = faults.at_once
            && *running >= most
            && now.duration_since(first) < window
        {
            drop(running);
            state.counts.status_429.fetch_add(1, Ordering::SeqCst);
            return Ok(answer(
                429,
                "application/json",
                b"{\"Message\":\"Rate Exceeded.\"}",
            ));
        }
        *running += 1;
        state
            .counts
            .most_at_once
            .fetch_max(*running as u64, Ordering::SeqCst);
        Running(state.clone())
    };
    let Some(upstream) = forward(&state.http, &state.upstream, request).await else {
        return Ok(answer(502, "application/json", b"{}"));
    };
    let response = head_of(&upstream);
    if let Some(Edit(edit)) = &state.faults.edit {
        let bytes = upstream.bytes().await.unwrap_or_default();
        drop(place);
        let edited = edit(call, bytes);
        return Ok(response
            .body(Full::new(edited).map_err(|e| match e {}).boxed_unsync())
            .unwrap_or_default());
    }
    // Relayed chunk by chunk; at the cut, the bytes before it and then an error, which
    // makes hyper break the connection instead of ending the body.
    let counts = state.counts.clone();
    let chunks = futures::stream::unfold(Step::Relay(upstream, 0, place), move |step| {
        let counts = counts.clone();
        async move {
            let broken = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut");
            let (mut upstream, sent, place) = match step {
                Step::Relay(upstream, sent, place) => (upstream, sent, place),
                Step::Hang(place) => {
                    let _place = place;
                    std::future::pending::<()>().await;
                    return None;
                }
                Step::Break => {
                    // hyper drops what it has not written yet when a body fails: the bytes
                    // before the break go out first.
                    tokio::time::sleep(FLUSH).await;
                    return Some((Err(broken()), Step::Done));
                }
                Step::Done => return None,
            };
            match upstream.chunk().await {
                Ok(Some(mut chunk)) if stall_after.is_some_and(|at| sent + chunk.len() > at) => {
                    counts.stalled.fetch_add(1, Ordering::SeqCst);
                    let kept = chunk.split_to(stall_after.unwrap_or_default() - sent);
                    Some((Ok(Frame::data(kept)), Step::Hang(place)))
                }
                Ok(Some(mut chunk)) => match cut_at {
                    Some(at) if sent + chunk.len() > at => {
                        counts.cut.fetch_add(1, Ordering::SeqCst);
                        drop(place);
                        let kept = chunk.split_to(at - sent);
                        if kept.is_empty() {
                            Some((Err(broken()), Step::Done))
                        } else {
                            Some((Ok(Frame::data(kept)), Step::Break))
                        }
                    }
                    _ => {
                        let sent = sent + chunk.len();
                        Some((Ok(Frame::data(chunk)), Step::Relay(upstream, sent, place)))
                    }
                },
                Ok(None) if cut_at.is_some() => {
                    counts.broken_after_end.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(FLUSH).await;
                    Some((Err(broken()), Step::Done))
                }
                Ok(None) => None,
                Err(err) => Some((Err(std::io::Error::other(err.to_string())), Step::Done)),
            }
        }
    });
    let body = StreamBody::new(chunks.boxed());
    Ok(response
        .body(BodyExt::boxed_unsync(body))
        .unwrap_or_default())
}

/// How long the bytes before a break are given to reach the client.
const FLUSH: Duration = Duration::from_millis(50);

/// Where a relayed body stands.
enum Step {
    /// Relaying, `usize` bytes sent so far.
    Relay(reqwest::Response, usize, Running),
    /// Cut: the connection breaks next.
    Break,
    /// Stalled: nothing more, and the connection stays open.
    Hang(Running),
    Done,
}
