//! The cases: reads through the emulator, the bare SDK and library baselines, the
//! buffered server, and seeding; each returns a [`Sample`].

use crate::services::Service;
use crate::{REPS, ROOT, Result};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures::StreamExt;
use scanstream::dynamo::source::DynamoSource;
use scanstream::dynamo::table;
use scanstream::format::item::Item;
use scanstream::format::trailer::Trailer;
use scanstream::generate::record;
use scanstream::read::stream::{ScanPlan, start};
use serde::Serialize;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `cargo lambda watch --release` serving the streamer over `table` of `ddb`.
pub fn start_watch(
    ddb: &Service,
    table: &str,
    extra_env: &[(&'static str, &str)],
) -> Result<Service> {
    start_watch_at(&ddb.endpoint(), table, extra_env, table)
}

/// As [`start_watch`], with the streamer's DynamoDB at `endpoint` (a [`LatencyLink`] in
/// front of DynamoDB Local, say), logging to `target/bench-watch-{log_name}.log`.
pub fn start_watch_at(
    endpoint: &str,
    table: &str,
    extra_env: &[(&'static str, &str)],
    log_name: &str,
) -> Result<Service> {
    start_watch_in(Path::new(ROOT), endpoint, table, extra_env, log_name)
}

/// As [`start_watch_at`], serving the streamer of the package at `root`.
pub fn start_watch_in(
    root: &Path,
    endpoint: &str,
    table: &str,
    extra_env: &[(&'static str, &str)],
    log_name: &str,
) -> Result<Service> {
    let mut env = vec![
        ("TABLE_NAME", table.to_string()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.to_string()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "local".into()),
        ("AWS_SECRET_ACCESS_KEY", "local".into()),
        ("RUST_LOG", "warn".into()),
    ];
    env.extend(extra_env.iter().map(|(k, v)| (*k, v.to_string())));
    let log = Path::new(ROOT).join(format!("target/bench-watch-{log_name}.log"));
    Ok(Service::lambda_watch_in(root, &env, true, log)?)
}

/// The streamer's URL under `watch` with `query`.
pub fn streamer_url(watch: &Service, query: &str) -> String {
    watch.url("streamer", query)
}

/// The release streamer `watch` started: `cargo lambda watch` runs each function in a
/// process group of its own, so it is found by its parent chain.
fn streamer_pid(watch: &Service) -> Option<u32> {
    let watch = watch.pid();
    let parent = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Field 4 of /proc/PID/stat, counted after the ")" closing the command name.
        stat.rsplit(')')
            .next()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok())
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            if !String::from_utf8_lossy(&cmdline).contains("release/streamer") {
                return None;
            }
            let mut ancestor = pid;
            for _ in 0..4 {
                ancestor = parent(ancestor)?;
                if ancestor == watch {
                    return Some(pid);
                }
            }
            None
        })
}

pub async fn local_client(endpoint: &str) -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "bench"))
        .load()
        .await;
    Client::new(&config)
}

pub fn seeder_command(ddb: &Service) -> Command {
    let mut command = Command::new(Path::new(ROOT).join("target/release/seeder"));
    command
        .env("AWS_ENDPOINT_URL_DYNAMODB", ddb.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .stdin(Stdio::null());
    command
}

pub fn seed(ddb: &Service, table: &str, count: u64) -> Result<String> {
    let out = seeder_command(ddb)
        .args([
            "--table",
            table,
            "--create-table",
            "--concurrency",
            "4",
            "--count",
            &count.to_string(),
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!("seeding {table}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(table.to_string())
}

/// One client read: times to the first body byte and to the end, and what arrived.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    pub ttfb_ms: f64,
    pub total_ms: f64,
    pub items: u64,
    /// Body bytes as received (compressed when the body is).
    pub wire_bytes: u64,
}

impl Sample {
    /// A write bench's sample: its 20,000 items written in `total_ms`, nothing streamed.
    fn of_writes(total_ms: f64) -> Self {
        Self {
            ttfb_ms: total_ms,
            total_ms,
            items: 20_000,
            wire_bytes: 0,
        }
    }

    pub fn items_per_s(&self) -> f64 {
        self.items as f64 / (self.total_ms / 1000.0)
    }
}

pub async fn repeat<F, Fut>(mut run: F) -> Result<Vec<Sample>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Sample>>,
{
    let mut samples = Vec::with_capacity(REPS);
    for _ in 0..REPS {
        samples.push(run().await?);
    }
    Ok(samples)
}

/// Reads a whole response, sleeping `pause` after each chunk (a slow reader when > 0).
pub async fn fetch(url: String, pause: Duration) -> Result<Sample> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let started = Instant::now();
    let mut response = http.get(&url).send().await?;
    if !response.status().is_success() {
        return Err(format!("{url}: {}", response.status()).into());
    }
    let mut ttfb = None;
    let mut lines = 0u64;
    let mut wire_bytes = 0u64;
    let mut tail = Vec::new();
    let mut decoder = scanstream::format::compress::Decompressor::for_headers(response.headers())?;
    while let Some(chunk) = response.chunk().await? {
        ttfb.get_or_insert_with(|| started.elapsed());
        wire_bytes += chunk.len() as u64;
        let plain = decoder.decode(&chunk)?;
        lines += plain.iter().filter(|&&b| b == b'\n').count() as u64;
        // Keep only the end: the trailer is the last line.
        tail.extend_from_slice(&plain);
        if tail.len() > 1 << 16 {
            tail.drain(..tail.len() - (1 << 16));
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    let total = started.elapsed();
    let trailer = Trailer::of_body(&tail).ok_or("response without a trailer")?;
    if !trailer.complete || trailer.items + 1 != lines {
        return Err(format!("incomplete read of {url}: {trailer:?}").into());
    }
    Ok(Sample {
        ttfb_ms: ttfb.unwrap_or(total).as_secs_f64() * 1000.0,
        total_ms: total.as_secs_f64() * 1000.0,
        items: trailer.items,
        wire_bytes,
    })
}

/// A stand-in for a Function URL's bandwidth: each connection's response gets its first
/// `burst` bytes at full speed, then `rate` bytes a second (Lambda: 6 MB, then 2 MB/s).
pub struct CappedProxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl CappedProxy {
    pub async fn start(upstream_port: u16, burst: u64, rate: u64) -> Result<Self> {
        let (port, task) = tcp_relay(upstream_port, move |client, upstream| async move {
            let (mut client_read, client_write) = client.into_split();
            let (upstream_read, mut upstream_write) = upstream.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
            });
            let _ = throttle(upstream_read, client_write, burst, rate).await;
        })
        .await?;
        Ok(Self { port, task })
    }

    /// `url` (on the emulator) through this proxy.
    pub fn wrap(&self, url: &str) -> String {
        let path = url.splitn(4, '/').nth(3).unwrap_or_default();
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for CappedProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A link of fixed latency in front of a local TCP service: every byte a client sends is
/// passed on `delay` after it arrived, in order, and the answers come back at once. So
/// each request's round trip grows by `delay`, as it would across a network, while
/// requests in flight on other connections overlap, as they do against a remote
/// DynamoDB. DynamoDB Local answers in-process on this machine's two cores, so without it
/// a benchmark measures the emulator's CPU and nothing that concurrency hides.
pub struct LatencyLink {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl LatencyLink {
    pub async fn start(upstream_port: u16, delay: Duration) -> Result<Self> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (port, task) = tcp_relay(upstream_port, move |client, upstream| async move {
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let (mut client_read, mut client_write) = client.into_split();
            let (mut upstream_read, mut upstream_write) = upstream.into_split();
            // Stamped on arrival, sent when due: a request read in several pieces is late
            // by `delay` once, not once a piece.
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = client_read.read(&mut buf).await {
                    if n == 0 || tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                while let Some((arrived, bytes)) = rx.recv().await {
                    tokio::time::sleep_until((arrived + delay).into()).await;
                    if upstream_write.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                let _ = upstream_write.shutdown().await;
            });
            let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
        })
        .await?;
        Ok(Self { port, task })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for LatencyLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on a free loopback port; each connection, with a new one to `upstream_port`,
/// goes to `link`. The port, and the task to abort to stop listening.
async fn tcp_relay<F, Fut>(
    upstream_port: u16,
    link: F,
) -> Result<(u16, tokio::task::JoinHandle<()>)>
where
    F: Fn(tokio::net::TcpStream, tokio::net::TcpStream) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(upstream) =
                    tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await
                {
                    link(client, upstream).await;
                }
            });
        }
    });
    Ok((port, task))
}

/// Copies `from` to `to`: `burst` bytes at once, then no faster than `rate` bytes/s.
async fn throttle(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    burst: u64,
    rate: u64,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent = 0u64;
    let mut capped_since: Option<Instant> = None;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
        sent += n as u64;
        if sent > burst {
            // Past the burst, byte k of the capped part may leave no earlier than k / rate.
            let since = *capped_since.get_or_insert_with(Instant::now);
            let due = Duration::from_secs_f64((sent - burst) as f64 / rate as f64);
            let elapsed = since.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
    }
}

/// A read under `max_rcu=asked`: the trailer's consumed units and the wall clock.
pub async fn rate_read(watch: &Service, asked: f64) -> Result<(f64, f64)> {
    let url = streamer_url(watch, &format!("limit=100&max_rcu={asked}&segments=4"));
    let started = Instant::now();
    let body = reqwest::get(&url).await?.bytes().await?;
    let wall = started.elapsed().as_secs_f64();
    let trailer = Trailer::of_body(&body).ok_or("response without a trailer")?;
    if !trailer.complete {
        return Err(format!("incomplete read under max_rcu={asked}: {trailer:?}").into());
    }
    Ok((trailer.consumed_capacity.unwrap_or_default(), wall))
}

pub async fn warm_up(watch: &Service) -> Result<()> {
    fetch(
        streamer_url(watch, "segments=1&limit=10&max_items=10"),
        Duration::ZERO,
    )
    .await
    .map(|_| ())
    .or_else(|e| {
        if e.to_string().contains("incomplete read") {
            Ok(())
        } else {
            Err(e)
        }
    })
}

pub async fn memory_case(watch: &Service, items: u64) -> Result<u64> {
    warm_up(watch).await?;
    // A slow reader: the scan must wait for it rather than pile pages up in memory.
    let sample = fetch(
        streamer_url(watch, "segments=4&limit=100"),
        Duration::from_millis(1),
    )
    .await?;
    if sample.items != items {
        return Err(format!("read {} of {items} items", sample.items).into());
    }
    streamer_peak_rss(watch)
}

/// The peak RSS (`VmHWM`) of the streamer process `watch` started, in bytes.
pub fn streamer_peak_rss(watch: &Service) -> Result<u64> {
    let pid = streamer_pid(watch).ok_or("streamer process not found")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or("no VmHWM")?;
    Ok(kib * 1024)
}

/// The bare baseline: the same parallel scan with the SDK, items counted, nothing encoded.
pub async fn bare_scan(client: Client, table: String, segments: u32, limit: u32) -> Result<Sample> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..segments)
        .map(|segment| {
            let (client, table) = (client.clone(), table.clone());
            tokio::spawn(async move {
                let mut count = 0u64;
                let mut start = None;
                loop {
                    let page = client
                        .scan()
                        .table_name(&table)
                        .segment(segment as i32)
                        .total_segments(segments as i32)
                        .limit(limit as i32)
                        .set_exclusive_start_key(start)
                        .send()
                        .await?;
                    count += page.items().len() as u64;
                    start = page.last_evaluated_key;
                    if start.is_none() {
                        return Ok::<u64, aws_sdk_dynamodb::Error>(count);
                    }
                }
            })
        })
        .collect();
    let mut items = 0;
    for task in tasks {
        items += task.await??;
    }
    let total = started.elapsed().as_secs_f64() * 1000.0;
    Ok(Sample {
        ttfb_ms: total,
        total_ms: total,
        items,
        wire_bytes: 0,
    })
}

/// Our scan without HTTP: the library's merged, encoded stream read in-process. Set
/// against the bare scan and the client, it splits the gap between our code and the relay
/// through the emulator.
pub async fn library_scan(
    client: Client,
    table: String,
    segments: u32,
    limit: u32,
) -> Result<Sample> {
    let started = Instant::now();
    let source = Arc::new(DynamoSource::new(
        scanstream::dynamo::client::Dynamo::from(client),
        table,
    ));
    let source = Arc::new(Arc::unwrap_or_clone(source).with_consumed_capacity(false));
    let mut stream = start(source, ScanPlan::segments(segments, limit)).await?;
    let ttfb = started.elapsed().as_secs_f64() * 1000.0;
    let mut lines = 0u64;
    while let Some(chunk) = stream.next().await {
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let total = started.elapsed().as_secs_f64() * 1000.0;
    Ok(Sample {
        ttfb_ms: ttfb,
        total_ms: total,
        items: lines.saturating_sub(1),
        wire_bytes: 0,
    })
}

/// The buffered baseline: the same library scan, collected fully, sent as one response
/// by a plain HTTP/1 server (hyper), parameters read as the streamer reads them.
pub struct BufferedServer {
    pub port: u16,
    pub task: tokio::task::JoinHandle<()>,
}

impl BufferedServer {
    pub async fn start(client: Client, table: String) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let source = Arc::new(DynamoSource::new(
            scanstream::dynamo::client::Dynamo::from(client),
            table,
        ));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let source = source.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        buffered(source.clone(), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { port, task })
    }

    pub fn url(&self, segments: u32) -> String {
        format!(
            "http://127.0.0.1:{}/?limit=100&segments={segments}",
            self.port
        )
    }
}

/// One buffered response: the whole scan, then one body.
async fn buffered(
    source: Arc<DynamoSource>,
    request: hyper::Request<hyper::body::Incoming>,
) -> std::result::Result<
    hyper::Response<http_body_util::Full<bytes::Bytes>>,
    std::convert::Infallible,
> {
    let query = request.uri().query().unwrap_or_default();
    let params = scanstream::read::params::Params::parse(query, &["segments", "limit"]);
    let plan = params.and_then(|p| {
        Ok(ScanPlan::segments(
            p.integer("segments", 1, 1, 64)?,
            p.integer("limit", 100, 1, 10_000)?,
        ))
    });
    let body = match plan {
        Ok(plan) => match start(source, plan).await {
            Ok(stream) => stream.collect::<Vec<_>>().await.concat(),
            Err(_) => Vec::new(),
        },
        Err(_) => Vec::new(),
    };
    let status = if body.is_empty() { 500 } else { 200 };
    Ok(hyper::Response::builder()
        .status(status)
        .header("content-type", "application/x-ndjson")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap_or_default())
}

impl Drop for BufferedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The seeder binary writing 20k items into a fresh table, timed from outside.
pub async fn seeder_run(
    ddb: &Service,
    client: &Client,
    concurrency: usize,
    rep: u64,
) -> Result<Sample> {
    let table = format!("bench-seed-{concurrency}-{rep}");
    table::ensure_table(
        &scanstream::dynamo::client::Dynamo::from(client.clone()),
        &table,
    )
    .await?;
    let started = Instant::now();
    let out = seeder_command(ddb)
        .args([
            "--table",
            &table,
            "--count",
            "20000",
            "--seed",
            &rep.to_string(),
        ])
        .args(["--concurrency", &concurrency.to_string()])
        .output()?;
    let total = started.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        return Err(format!("seeder: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    client.delete_table().table_name(&table).send().await?;
    Ok(Sample::of_writes(total))
}

/// Bare concurrent `BatchWriteItem` calls of pre-generated items (generation not timed).
pub async fn bare_writes(client: &Client, concurrency: usize, rep: u64) -> Result<Sample> {
    let table = format!("bench-bare-{concurrency}-{rep}");
    table::ensure_table(
        &scanstream::dynamo::client::Dynamo::from(client.clone()),
        &table,
    )
    .await?;
    let items: Vec<Item> = (0..20_000).map(|i| record::record(rep + 100, i)).collect();
    let batches: Vec<Vec<WriteRequest>> = items
        .chunks(25)
        .map(|chunk| {
            chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder()
                        .set_item(Some(
                            scanstream::dynamo::convert::attributes(item.clone())
                                .expect("sendable"),
                        ))
                        .build()
                        .expect("item");
                    WriteRequest::builder().put_request(put).build()
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(batches)
        .map(|batch| {
            let (client, table) = (client.clone(), table.clone());
            async move {
                client
                    .batch_write_item()
                    .request_items(table, batch)
                    .send()
                    .await
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let total = started.elapsed().as_secs_f64() * 1000.0;
    for result in results {
        let output = result?;
        if output.unprocessed_items.is_some_and(|u| !u.is_empty()) {
            return Err("DynamoDB Local returned UnprocessedItems".into());
        }
    }
    client.delete_table().table_name(&table).send().await?;
    Ok(Sample::of_writes(total))
}

/// The `scanstream` client (release build) of the package at `root` pulling everything
/// from `url` with K invocations of S segments, timed from outside; items from its summary.
pub fn client_pull(
    root: &Path,
    url: &str,
    k: u32,
    segments: u32,
    compress: &str,
) -> Result<Sample> {
    let (total, summary) = run_client(root, url, k, segments, &["--compress", compress])?;
    Ok(Sample {
        ttfb_ms: 0.0,
        total_ms: total.as_secs_f64() * 1000.0,
        items: summary["items"].as_u64().unwrap_or_default(),
        wire_bytes: summary["wire_bytes"].as_u64().unwrap_or_default(),
    })
}

/// The client with K invocations of 2 segments under `--max-rcu asked`: the capacity its
/// summary reported and the wall clock, in seconds.
pub fn client_rate_read(url: &str, k: u32, asked: f64) -> Result<(f64, f64)> {
    let max_rcu = asked.to_string();
    let (total, summary) = run_client(Path::new(ROOT), url, k, 2, &["--max-rcu", &max_rcu])?;
    let units = summary["consumed_capacity"]
        .as_f64()
        .ok_or("no consumed_capacity in the summary")?;
    Ok((units, total.as_secs_f64()))
}

/// Runs `scanstream pull url` (the release build of the package at `root`, limit 100) to
/// the end; its wall clock from outside and its summary.
fn run_client(
    root: &Path,
    url: &str,
    k: u32,
    segments: u32,
    extra: &[&str],
) -> Result<(Duration, serde_json::Value)> {
    let dir = Path::new(ROOT).join("target");
    let (out, summary) = (dir.join("bench-pull.ndjson"), dir.join("bench-pull.json"));
    let started = Instant::now();
    let status = Command::new(root.join("target/release/scanstream"))
        .args(["pull", url, "--limit", "100"])
        .args([
            "--invocations",
            &k.to_string(),
            "--segments",
            &segments.to_string(),
        ])
        .args(extra)
        .arg("-o")
        .arg(&out)
        // Every run reads the table again into the same file (and keeps the default
        // checkpoint beside it, as a user's run does).
        .arg("--force")
        .arg("--summary-json")
        .arg(&summary)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let total = started.elapsed();
    if !status.success() {
        return Err(format!("scanstream pull {url} K={k} {extra:?} failed").into());
    }
    let summary = serde_json::from_slice(&std::fs::read(&summary)?)?;
    Ok((total, summary))
}

/// One invocation followed by manual resumes, as a person with curl would: GET, then GET
/// with the trailer's cursor until the trailer says complete. Plain NDJSON.
pub async fn manual_resumes(url: &str) -> Result<Sample> {
    let started = Instant::now();
    let http = reqwest::Client::new();
    let (mut items, mut wire) = (0u64, 0u64);
    let mut cursor: Option<String> = None;
    loop {
        let request = match &cursor {
            None => http.get(format!("{url}?limit=100&segments=4")),
            Some(c) => http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("cursor={c}&limit=100")),
        };
        let body = request.send().await?.bytes().await?;
        wire += body.len() as u64;
        let trailer = Trailer::of_body(&body).ok_or("response without a trailer")?;
        items += trailer.items;
        if trailer.complete {
            break;
        }
        cursor = Some(trailer.cursor.ok_or("incomplete without a cursor")?);
    }
    Ok(Sample {
        ttfb_ms: 0.0,
        total_ms: started.elapsed().as_secs_f64() * 1000.0,
        items,
        wire_bytes: wire,
    })
}

/// The short commit `root` is at.
pub fn head(root: &Path) -> Result<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()?;
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// `table`, empty: deleted if there, created keyed as the seeder's records, with a stream
/// (`NEW_AND_OLD_IMAGES`) when `stream`.
pub async fn empty_table(dynamo: &Client, table: &str, stream: bool) -> Result<()> {
    use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
    let _ = dynamo.delete_table().table_name(table).send().await;
    let handle = scanstream::dynamo::client::Dynamo::from(dynamo.clone());
    scanstream::dynamo::table::ensure_table(&handle, table).await?;
    if stream {
        dynamo
            .update_table()
            .table_name(table)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()?,
            )
            .send()
            .await?;
    }
    Ok(())
}

/// Fails unless `table` holds `items` items (a Select=COUNT scan).
pub async fn check_count(dynamo: &Client, table: &str, items: u64) -> Result<()> {
    let mut count = 0u64;
    let mut start = None;
    loop {
        let page = dynamo
            .scan()
            .table_name(table)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await?;
        count += page.count() as u64;
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    if count != items {
        return Err(format!("{table} holds {count} items, not {items}").into());
    }
    Ok(())
}
