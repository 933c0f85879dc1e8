//! A scripted Function URL: every request is answered by a closure, with a body that may
//! be a bomb, never end, or redirect; the requests are kept for the test to look at. And
//! a child process's peak RSS, watched while it runs.

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub type Body = BoxBody<Bytes, Infallible>;

/// What a request looked like: its path and query, and its headers.
#[derive(Debug, Clone)]
pub struct Seen {
    pub uri: String,
    pub headers: http::HeaderMap,
}

/// The stub; it stops when dropped.
pub struct Stub {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    accept: JoinHandle<()>,
}

impl Stub {
    /// Serves `answer` on a free loopback port.
    pub async fn start<F>(answer: F) -> Self
    where
        F: Fn(&Seen) -> Response<Body> + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}/", listener.local_addr().expect("address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(answer);
        let kept = seen.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (answer, kept) = (answer.clone(), kept.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let request = Seen {
                            uri: request.uri().to_string(),
                            headers: request.headers().clone(),
                        };
                        let response = answer(&request);
                        if let Ok(mut kept) = kept.lock() {
                            kept.push(request);
                        }
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, seen, accept }
    }

    /// The requests served so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A response of `status` with `body` whole.
pub fn answer(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()).boxed())
        .expect("a response")
}

/// A body of `chunk` sent `times` times, as fast as it is read (`None`: every `pause`,
/// without end).
pub fn repeated(chunk: Bytes, times: Option<usize>, pause: Duration) -> Body {
    let frames = futures::stream::repeat(chunk).then(move |chunk| async move {
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        Ok::<_, Infallible>(Frame::data(chunk))
    });
    match times {
        Some(times) => BodyExt::boxed(StreamBody::new(frames.take(times))),
        None => BodyExt::boxed(StreamBody::new(frames)),
    }
}

/// Runs `command` to its end, reading its peak RSS (`VmHWM`, kB) from `/proc` every few
/// milliseconds; the output and the highest peak seen.
pub fn run_watching_rss(command: &mut std::process::Command) -> (std::process::Output, u64) {
    use std::io::Read;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("it runs");
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let read = |pipe: &mut Option<std::process::ChildStdout>| {
        let mut bytes = Vec::new();
        if let Some(pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    };
    let errors = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(pipe) = &mut stderr {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    });
    let pid = child.id();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watching = peak.clone();
    let watcher = std::thread::spawn(move || {
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let kb = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0);
            watching.fetch_max(kb, std::sync::atomic::Ordering::SeqCst);
            // A zombie keeps its status file but no memory: done.
            if status.contains("State:\tZ") {
                break;
            }
            std::thread::sleep(Duration::from_millis(3));
        }
    });
    let stdout = read(&mut stdout);
    let status = child.wait().expect("waited");
    let _ = watcher.join();
    let stderr = errors.join().unwrap_or_default();
    let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
    (
        std::process::Output {
            status,
            stdout,
            stderr,
        },
        peak,
    )
}

/// A zstd frame of `blocks` RLE blocks of 128 KiB of `byte`: 4 bytes on the wire for each
/// 128 KiB (8192 blocks: 32 KiB for 1 GiB).
pub fn zstd_bomb(blocks: usize, byte: u8) -> Vec<u8> {
    // Magic, a header with no content size and a 128 KiB window (log 17 = 10 + 7).
    let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 7 << 3];
    for n in 0..blocks {
        let last = u32::from(n + 1 == blocks);
        // Last_Block, Block_Type 1 (RLE), Block_Size: 3 bytes, little-endian.
        let header = last | (1 << 1) | ((128 << 10) << 3);
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(byte);
    }
    frame
}
