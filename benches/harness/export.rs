//! Case 11 (`BENCH_CASES=export scripts/bench.sh`): exports straight to S3 (`to=`), in one
//! run, against the local S3 server (moto) and DynamoDB Local, on 30k items:
//!
//! - one invocation of 4 segments exporting to S3 through the proxy that imitates the
//!   Function URL (256 KB at full speed, then 1 MB/s a response), against the streamed
//!   zstd pull of the same invocation shape to a local file through the same proxy;
//! - the same export with no proxy: the cap should no longer matter;
//! - 4 invocations of 1 segment exporting at once, against a bare SDK scan of 4 segments;
//! - the bytes through the Function URL per decoded byte of data written;
//! - the streamer's peak RSS exporting 20k and 200k items (each in a fresh process).
//!
//! Results in `bench-results/export.md` and `export.json`.

use crate::cases::{
    CappedProxy, bare_scan, client_pull, local_client, seed, start_watch_in, streamer_peak_rss,
    streamer_url, warm_up,
};
use crate::report::{Stat, machine};
use crate::services::Service;
use crate::{REPS, ROOT, Result};
use aws_sdk_s3::config::BehaviorVersion;
use scanstream::format::export::{ExportedFile, ExportedFileLine};
use scanstream::format::trailer::Trailer;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

const ITEMS: u64 = 30_000;
/// The imitated Function URL's full-speed bytes per response.
const BURST: u64 = 256_000;
/// Its rate after the burst, bytes/s.
const RATE: u64 = 1_000_000;
const PREFIX: &str = "bench";

/// One export call (or several at once), as its caller saw it.
#[derive(Debug, Clone, serde::Serialize)]
struct ExportRun {
    items: u64,
    seconds: f64,
    /// Response bytes, every call together.
    wire_bytes: u64,
    files: usize,
    /// Bytes stored in S3.
    stored_bytes: u64,
}

impl ExportRun {
    fn items_per_s(&self) -> f64 {
        self.items as f64 / self.seconds
    }
}

pub async fn run(out_dir: &Path) -> Result<()> {
    let ddb = Service::dynamodb_local(Path::new(ROOT).join("target/bench-dynamodb-local.log"))?;
    let s3 = Service::s3_local(Path::new(ROOT).join("target/bench-s3-local.log"))?;
    let s3_endpoint = s3.endpoint();
    let s3_client = s3_client(&s3_endpoint).await;
    let bucket = "bench-exports";
    s3_client.create_bucket().bucket(bucket).send().await?;
    let dynamo = local_client(&ddb.endpoint()).await;
    let table = seed(&ddb, "bench-export-30k", ITEMS)?;
    let env = [
        ("EXPORT_BUCKET", bucket),
        ("EXPORT_PREFIX", PREFIX),
        ("AWS_ENDPOINT_URL_S3", s3_endpoint.as_str()),
    ];
    let root = Path::new(ROOT);
    let watch = start_watch_in(root, &ddb.endpoint(), &table, &env, "export")?;
    warm_up(&watch).await?;
    let direct = streamer_url(&watch, "").trim_end_matches('?').to_string();
    let proxy = CappedProxy::start(watch.port, BURST, RATE).await?;
    let capped = proxy.wrap(&direct);
    let capped = capped.trim_end_matches('?').to_string();

    // One untimed export first: the first S3 export of a process pays for its client's
    // connections and warm-up, which would fall on whichever row runs first.
    export(
        &direct,
        &[format!(
            "segments=4&limit=100&to=s3://{bucket}/{PREFIX}/warm"
        )],
        &s3_client,
        bucket,
        ITEMS,
    )
    .await?;
    let (mut export_capped, mut pull_capped, mut export_direct, mut fan_out, mut bare) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut client_s3, mut client_file) = (Vec::new(), Vec::new());
    let mut decoded_bytes = 0u64;
    for rep in 0..REPS {
        let to = |name: &str| format!("s3://{bucket}/{PREFIX}/{name}-{rep}");
        let run = export(
            &capped,
            &[format!("segments=4&limit=100&to={}", to("capped"))],
            &s3_client,
            bucket,
            ITEMS,
        )
        .await?;
        if rep == 0 {
            decoded_bytes = decoded(&s3_client, bucket, &format!("{PREFIX}/capped-0/")).await?;
        }
        eprintln!("export capped: {:.0} items/s", run.items_per_s());
        export_capped.push(run);
        let pulled = whole_pull(root, &capped, 1, 4)?;
        eprintln!("pull capped: {:.0} items/s", pulled.items_per_s());
        pull_capped.push(pulled);
        let run = export(
            &direct,
            &[format!("segments=4&limit=100&to={}", to("direct"))],
            &s3_client,
            bucket,
            ITEMS,
        )
        .await?;
        eprintln!("export direct: {:.0} items/s", run.items_per_s());
        export_direct.push(run);
        let queries: Vec<String> = (0..4)
            .map(|i| {
                format!(
                    "total_segments=4&segment_offset={i}&segments=1&limit=100&to={}",
                    to("fan")
                )
            })
            .collect();
        let run = export(&direct, &queries, &s3_client, bucket, ITEMS).await?;
        eprintln!("export K=4: {:.0} items/s", run.items_per_s());
        fan_out.push(run);
        let seconds = client_export(&capped, &s3_endpoint, &s3_client, bucket, rep).await?;
        eprintln!("client export K=4: {:.0} items/s", ITEMS as f64 / seconds);
        client_s3.push(ITEMS as f64 / seconds);
        let pulled = whole_pull(root, &capped, 4, 1)?;
        eprintln!("client pull K=4: {:.0} items/s", pulled.items_per_s());
        client_file.push(pulled.items_per_s());
        let scanned = bare_scan(dynamo.clone(), table.clone(), 4, 100).await?;
        eprintln!("bare: {:.0} items/s", scanned.items_per_s());
        bare.push(scanned);
    }
    drop(proxy);
    drop(watch);
    dynamo.delete_table().table_name(&table).send().await?;

    let mut memory = Vec::new();
    for items in [20_000u64, 200_000] {
        let table = seed(&ddb, &format!("bench-export-rss-{items}"), items)?;
        let watch = start_watch_in(
            root,
            &ddb.endpoint(),
            &table,
            &env,
            &format!("export-rss-{items}"),
        )?;
        warm_up(&watch).await?;
        let url = streamer_url(&watch, "").trim_end_matches('?').to_string();
        let run = export(
            &url,
            &[format!(
                "segments=4&limit=100&to=s3://{bucket}/{PREFIX}/rss-{items}"
            )],
            &s3_client,
            bucket,
            items,
        )
        .await?;
        let rss = streamer_peak_rss(&watch)?;
        eprintln!("export {items}: peak RSS {:.1} MB", rss as f64 / 1e6);
        memory.push((items, rss, run));
        drop(watch);
        dynamo.delete_table().table_name(&table).send().await?;
    }

    let median = |v: Vec<f64>| Stat::of(v);
    let show = |s: Stat| format!("{:.0} ({:.0}-{:.0})", s.median, s.min, s.max);
    let ratio = |a: &[f64], b: &[f64]| Stat::of(a.iter().zip(b).map(|(a, b)| a / b)).median;
    let e_capped: Vec<f64> = export_capped.iter().map(ExportRun::items_per_s).collect();
    let p_capped: Vec<f64> = pull_capped.iter().map(|s| s.items_per_s()).collect();
    let e_direct: Vec<f64> = export_direct.iter().map(ExportRun::items_per_s).collect();
    let e_fan: Vec<f64> = fan_out.iter().map(ExportRun::items_per_s).collect();
    let s_bare: Vec<f64> = bare.iter().map(|s| s.items_per_s()).collect();
    let wire = export_capped[0].wire_bytes;
    let mut text = format!(
        "Machine: {}\n\nRelease binaries, DynamoDB Local in memory, moto as S3, {ITEMS} seeder records, gzip files (the default), {REPS} runs each: median (min-max), ratios are medians of per-run ratios. Command: `BENCH_CASES=export scripts/bench.sh`.\n\n\
         | reader | items/s | ratio | goal |\n|---|---|---|---|\n",
        machine()
    );
    text += &format!(
        "| S3 export, 1 invocation of 4 segments, through the proxy ({} KB, then {} MB/s) | {} | {:.2}x the streamed pull | >= 2.5x |\n",
        BURST / 1000,
        RATE / 1_000_000,
        show(median(e_capped.clone())),
        ratio(&e_capped, &p_capped)
    );
    text += &format!(
        "| streamed zstd pull to a file, `scanstream pull --invocations 1 --segments 4`, through the proxy ({:.0} B of zstd an item) | {} | 1.00x | |\n",
        pull_capped[0].wire_bytes as f64 / ITEMS as f64,
        show(median(p_capped.clone()))
    );
    text += &format!(
        "| S3 export, 1 invocation of 4 segments, no proxy | {} | capped / this: {:.2} | >= 0.9 |\n",
        show(median(e_direct.clone())),
        ratio(&e_capped, &e_direct)
    );
    text += &format!(
        "| S3 export, 4 invocations of 1 segment at once, no proxy | {} | {:.2}x the bare scan | >= 0.7x |\n",
        show(median(e_fan.clone())),
        ratio(&e_fan, &s_bare)
    );
    text += &format!(
        "| bare SDK parallel scan of 4 segments (items counted, nothing encoded) | {} | 1.00x | |\n",
        show(median(s_bare))
    );
    text += &format!(
        "| the client's export to S3, `scanstream pull --invocations 4 --segments 1 --layout export -o s3://...`, through the proxy, its finish (copies, manifests) included | {} | {:.2}x the streamed pull below | |\n",
        show(median(client_s3.clone())),
        ratio(&client_s3, &client_file)
    );
    text += &format!(
        "| streamed zstd pull to a file, `scanstream pull --invocations 4 --segments 1`, through the proxy | {} | 1.00x | |\n\n",
        show(median(client_file.clone()))
    );
    text += &format!(
        "Bytes through the Function URL: {wire} for {decoded_bytes} bytes of DynamoDB JSON written ({} files, {} bytes stored): **{:.4}%** of the data (goal <= 1%).\n\n",
        export_capped[0].files,
        export_capped[0].stored_bytes,
        wire as f64 * 100.0 / decoded_bytes.max(1) as f64
    );
    text += "### The streamer's peak RSS exporting (a fresh process each, 64 MiB files, 8 MiB parts)\n\n| items | peak RSS | items/s | files |\n|---|---|---|---|\n";
    for (items, rss, run) in &memory {
        text += &format!(
            "| {items} | {:.1} MB | {:.0} | {} |\n",
            *rss as f64 / 1e6,
            run.items_per_s(),
            run.files
        );
    }
    println!("{text}");
    std::fs::write(out_dir.join("export.md"), &text)?;
    let json = serde_json::json!({
        "export_capped": export_capped,
        "pull_capped_items_per_s": p_capped,
        "export_direct": export_direct,
        "client_export_items_per_s": client_s3,
        "client_pull_items_per_s": client_file,
        "export_fan_out": fan_out,
        "bare_items_per_s": bare.iter().map(|s| s.items_per_s()).collect::<Vec<_>>(),
        "wire_bytes": wire,
        "decoded_bytes": decoded_bytes,
        "memory": memory.iter().map(|(items, rss, _)| serde_json::json!({"items": items, "peak_rss_bytes": rss})).collect::<Vec<_>>(),
    });
    std::fs::write(
        out_dir.join("export.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    Ok(())
}

/// A zstd pull of `k` invocations of `segments` to a file, which must read every item.
fn whole_pull(root: &Path, url: &str, k: u32, segments: u32) -> Result<crate::cases::Sample> {
    let pulled = client_pull(root, url, k, segments, "zstd")?;
    if pulled.items != ITEMS {
        return Err(format!("the pull read {} items of {ITEMS}", pulled.items).into());
    }
    Ok(pulled)
}

/// `scanstream pull URL --invocations 4 --segments 1 --layout export -o s3://...` (the
/// release build) to its end, its checkpoint in a folder of its own; the wall clock, in
/// seconds, once the export's summary says it holds every item.
async fn client_export(
    url: &str,
    s3_endpoint: &str,
    s3_client: &aws_sdk_s3::Client,
    bucket: &str,
    rep: usize,
) -> Result<f64> {
    let dir = Path::new(ROOT).join(format!("target/bench-client-export-{rep}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let to = format!("s3://{bucket}/{PREFIX}/client-{rep}");
    let started = Instant::now();
    let output = std::process::Command::new(Path::new(ROOT).join("target/release/scanstream"))
        .args([
            "pull",
            url,
            "--limit",
            "100",
            "--invocations",
            "4",
            "--segments",
            "1",
        ])
        .args(["--format", "dynamodb", "--layout", "export", "-o", &to])
        .env("AWS_ENDPOINT_URL_S3", s3_endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .output()?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        return Err(format!(
            "scanstream pull -o {to} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let printed = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let root = printed
        .strip_prefix(&format!("s3://{bucket}/"))
        .ok_or_else(|| format!("the export's URL: {printed}"))?;
    let summary = s3_client
        .get_object()
        .bucket(bucket)
        .key(format!("{root}manifest-summary.json"))
        .send()
        .await?
        .body
        .collect()
        .await?
        .into_bytes();
    let summary: serde_json::Value = serde_json::from_slice(&summary)?;
    if summary["itemCount"].as_u64() != Some(ITEMS) {
        return Err(format!("the client's export holds {summary}").into());
    }
    Ok(seconds)
}

/// Makes `queries` against `url` at once, each an export call to its end; their files and
/// the wall clock over all of them.
async fn export(
    url: &str,
    queries: &[String],
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    expected: u64,
) -> Result<ExportRun> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(900))
        .build()?;
    let started = Instant::now();
    let calls = queries.iter().map(|query| {
        let http = http.clone();
        let url = format!("{url}?{query}");
        async move {
            let response = http.get(&url).send().await?;
            if !response.status().is_success() {
                return Err(format!("{url}: {}", response.status()).into());
            }
            let body = response.bytes().await?;
            let mut lines: Vec<&[u8]> = body
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            let trailer = lines
                .pop()
                .and_then(Trailer::parse_line)
                .ok_or("an export response without a trailer")?;
            if !trailer.complete {
                return Err(format!("{url}: incomplete {trailer:?}").into());
            }
            let files: Vec<ExportedFile> = lines
                .iter()
                .map(|line| {
                    ExportedFileLine::of_line(line)
                        .map(|l| l.file)
                        .ok_or("not a file line")
                })
                .collect::<std::result::Result<_, _>>()?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((
                trailer.items,
                body.len() as u64,
                files,
            ))
        }
    });
    let results = futures::future::try_join_all(calls).await?;
    let seconds = started.elapsed().as_secs_f64();
    let announced: Vec<&ExportedFile> = results.iter().flat_map(|(_, _, files)| files).collect();
    check_stored(s3, bucket, &announced).await?;
    let mut run = ExportRun {
        items: 0,
        seconds,
        wire_bytes: 0,
        files: 0,
        stored_bytes: 0,
    };
    for (items, wire, files) in results {
        if items != files.iter().map(|f| f.entry.item_count).sum::<u64>() {
            return Err("the trailer's items are not the files' items".into());
        }
        run.items += items;
        run.wire_bytes += wire;
        run.files += files.len();
        run.stored_bytes += files.iter().map(|f| f.bytes).sum::<u64>();
    }
    if run.items != expected {
        return Err(format!("exported {} items, the table has {expected}", run.items).into());
    }
    Ok(run)
}

/// Every announced file is in S3 at the size announced, and nothing else is in its folder.
async fn check_stored(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    files: &[&ExportedFile],
) -> Result<()> {
    let mut folders: Vec<&str> = files
        .iter()
        .filter_map(|f| {
            f.entry
                .data_file_s3_key
                .rsplit_once('/')
                .map(|(folder, _)| folder)
        })
        .collect();
    folders.sort_unstable();
    folders.dedup();
    let mut stored = std::collections::BTreeMap::new();
    for folder in folders {
        let listed = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(format!("{folder}/"))
            .send()
            .await?;
        for object in listed.contents() {
            let size = u64::try_from(object.size().unwrap_or(-1)).unwrap_or(u64::MAX);
            stored.insert(object.key().unwrap_or_default().to_string(), size);
        }
    }
    let announced: std::collections::BTreeMap<String, u64> = files
        .iter()
        .map(|f| (f.entry.data_file_s3_key.clone(), f.bytes))
        .collect();
    if stored != announced {
        return Err(format!("S3 holds {stored:?}, the responses announced {announced:?}").into());
    }
    Ok(())
}

/// The S3 client for the local server, path-style (the restore case uses it too).
pub async fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "local", "local", None, None, "bench",
        ))
        .load()
        .await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(true)
            .build(),
    )
}

/// The decoded size of every gzip file under `prefix`.
async fn decoded(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<u64> {
    let listed = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await?;
    let mut total = 0;
    for object in listed.contents() {
        let key = object.key().ok_or("an object without a key")?;
        let body = client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await?
            .body
            .collect()
            .await?
            .into_bytes();
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain)?;
        total += plain.len() as u64;
    }
    Ok(total)
}
