//! Case 12 (`BENCH_CASES=restore scripts/bench.sh`): restoring an export from S3 into an
//! existing table, in one run, against the local S3 server (moto) and DynamoDB Local:
//!
//! - 100k seeder records in DynamoDB's export layout (20 gzip files of 5,000), restored
//!   by `scanstream seed --from s3://...` through K = 1, 2 and 4 seeder invocations under
//!   `cargo lambda watch`, against the local loader `seeder --from s3://...` (one
//!   DynamoDB Local serves both, so the local loader is the ceiling here);
//! - `--max-wcu 200` and `400` (two invocations) over an export of about 65 s at that
//!   rate: the write units the summaries reported per second of the whole run.
//!
//! Every restore starts from an empty table (deleted and created again: the function's
//! `TABLE_NAME` is fixed) and must end with every item. Results in
//! `bench-results/restore.md` and `restore.json`.

use crate::cases::{check_count, empty_table, local_client, seeder_command, start_watch_in};
use crate::export::s3_client;
use crate::report::{Stat, machine};
use crate::services::Service;
use crate::{REPS, ROOT, Result};
use scanstream::format::export::{hex_md5, md5_base64};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const ITEMS: u64 = 100_000;
const PER_FILE: u64 = 5_000;
const TABLE: &str = "bench-restore";
const BUCKET: &str = "bench-restores";

pub async fn run(out_dir: &Path) -> Result<()> {
    let ddb = Service::dynamodb_local(Path::new(ROOT).join("target/bench-dynamodb-local.log"))?;
    let s3 = Service::s3_local(Path::new(ROOT).join("target/bench-s3-local.log"))?;
    let s3_endpoint = s3.endpoint();
    let s3_client = s3_client(&s3_endpoint).await;
    s3_client.create_bucket().bucket(BUCKET).send().await?;
    let dynamo = local_client(&ddb.endpoint()).await;
    let big = put_export(&s3_client, "imports/big", ITEMS, PER_FILE).await?;
    let capped = [
        (
            200.0,
            put_export(&s3_client, "imports/w200", 13_000, 1_000).await?,
        ),
        (
            400.0,
            put_export(&s3_client, "imports/w400", 26_000, 2_000).await?,
        ),
    ];
    empty_table(&dynamo, TABLE, false).await?;
    let env = [
        ("IMPORT_BUCKET", BUCKET),
        ("IMPORT_PREFIX", "imports"),
        ("AWS_ENDPOINT_URL_S3", s3_endpoint.as_str()),
    ];
    let watch = start_watch_in(Path::new(ROOT), &ddb.endpoint(), TABLE, &env, "restore")?;
    let url = watch.url("seeder", "").trim_end_matches('?').to_string();
    // The first call builds and starts the function: not part of any row.
    let warm = reqwest::Client::new().get(&url).send().await?;
    if warm.status().as_u16() != 400 {
        return Err(format!("the seeder's warm-up call: {}", warm.status()).into());
    }
    let from = format!("s3://{BUCKET}/{big}");
    let (mut local, mut fan) = (Vec::new(), vec![Vec::new(); 3]);
    for _ in 0..REPS {
        empty_table(&dynamo, TABLE, false).await?;
        let started = Instant::now();
        let out = seeder_command(&ddb)
            .args(["--table", TABLE, "--from", &from])
            .env("AWS_ENDPOINT_URL_S3", &s3_endpoint)
            .output()?;
        let seconds = started.elapsed().as_secs_f64();
        if !out.status.success() {
            return Err(format!("seeder --from: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        check_count(&dynamo, TABLE, ITEMS).await?;
        eprintln!("local loader: {:.0} items/s", ITEMS as f64 / seconds);
        local.push(ITEMS as f64 / seconds);
        for (slot, k) in [1u32, 2, 4].into_iter().enumerate() {
            empty_table(&dynamo, TABLE, false).await?;
            let (seconds, _) = restore(&url, &from, k, None, &s3_endpoint)?;
            check_count(&dynamo, TABLE, ITEMS).await?;
            eprintln!("K={k}: {:.0} items/s", ITEMS as f64 / seconds);
            fan[slot].push(ITEMS as f64 / seconds);
        }
    }
    let mut rated = Vec::new();
    for (asked, folder) in &capped {
        empty_table(&dynamo, TABLE, false).await?;
        let from = format!("s3://{BUCKET}/{folder}");
        let (seconds, units) = restore(&url, &from, 2, Some(*asked), &s3_endpoint)?;
        eprintln!(
            "--max-wcu {asked}: {:.1} units/s over {seconds:.0} s",
            units / seconds
        );
        rated.push((*asked, units, seconds));
    }
    drop(watch);

    let show = |s: Stat| format!("{:.0} ({:.0}-{:.0})", s.median, s.min, s.max);
    let ratio = |a: &[f64], b: &[f64]| Stat::of(a.iter().zip(b).map(|(a, b)| a / b)).median;
    let mut text = format!(
        "Machine: {}\n\nRelease binaries, DynamoDB Local in memory, moto as S3, the seeder function under `cargo lambda watch --release` (SEED_CONCURRENCY 4), {ITEMS} seeder records in {} gzip files, {REPS} runs each: median (min-max), ratios are medians of per-run ratios. Command: `BENCH_CASES=restore scripts/bench.sh`.\n\n\
         | restore into an existing, empty table | items/s | ratio | goal |\n|---|---|---|---|\n",
        machine(),
        ITEMS / PER_FILE
    );
    text += &format!(
        "| the local loader, `seeder --table T --from s3://...` | {} | 1.00x | |\n",
        show(Stat::of(local.clone()))
    );
    for (slot, k) in [1u32, 2, 4].into_iter().enumerate() {
        text += &format!(
            "| `scanstream seed URL --from s3://... --invocations {k}` | {} | {:.2}x the local loader | {} |\n",
            show(Stat::of(fan[slot].clone())),
            ratio(&fan[slot], &local),
            if k == 4 { ">= 0.9x" } else { "" }
        );
    }
    text += "\n| `--max-wcu`, 2 invocations | write units reported | seconds, whole run | units/s | of the cap | goal |\n|---|---|---|---|---|---|\n";
    for (asked, units, seconds) in &rated {
        text += &format!(
            "| {asked:.0} | {units:.0} | {seconds:.1} | {:.1} | {:.2} | 0.90-1.10 |\n",
            units / seconds,
            units / seconds / asked
        );
    }
    println!("{text}");
    std::fs::write(out_dir.join("restore.md"), &text)?;
    let json = serde_json::json!({
        "items": ITEMS,
        "local_items_per_s": local,
        "k1_items_per_s": fan[0],
        "k2_items_per_s": fan[1],
        "k4_items_per_s": fan[2],
        "max_wcu": rated.iter().map(|(asked, units, seconds)| serde_json::json!({
            "asked": asked, "units": units, "seconds": seconds})).collect::<Vec<_>>(),
    });
    std::fs::write(
        out_dir.join("restore.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    Ok(())
}

/// `scanstream seed URL --from FROM --invocations K [--max-wcu R]` to its end: its wall
/// clock in seconds, and the write units its summary line reported.
fn restore(
    url: &str,
    from: &str,
    k: u32,
    max_wcu: Option<f64>,
    s3_endpoint: &str,
) -> Result<(f64, f64)> {
    let mut command = Command::new(Path::new(ROOT).join("target/release/scanstream"));
    command
        .args(["seed", url, "--from", from, "--quiet", "--no-checkpoint"])
        .args(["--invocations", &k.to_string()])
        .env("AWS_ENDPOINT_URL_S3", s3_endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .stdin(std::process::Stdio::null());
    if let Some(wcu) = max_wcu {
        command.args(["--max-wcu", &wcu.to_string()]);
    }
    let started = Instant::now();
    let out = command.output()?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("scanstream seed --from {from}: {stderr}").into());
    }
    // "...; 1234.5 write units (56.7/s)"
    let units = stderr
        .lines()
        .find_map(|line| {
            let (before, _) = line.split_once(" write units")?;
            before.rsplit(' ').next()?.parse::<f64>().ok()
        })
        .ok_or_else(|| format!("no write units in: {stderr}"))?;
    Ok((seconds, units))
}

/// Puts `items` seeder records (seed 42) in DynamoDB's export layout under `prefix`,
/// `per_file` a gzip file; the export's folder.
async fn put_export(
    s3: &aws_sdk_s3::Client,
    prefix: &str,
    items: u64,
    per_file: u64,
) -> Result<String> {
    let id = "01765000000000-bench000";
    let root = format!("{prefix}/AWSDynamoDB/{id}");
    let mut manifest = String::new();
    let mut start = 0;
    while start < items {
        let end = (start + per_file).min(items);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in start..end {
            let item = scanstream::generate::record::record(42, i);
            let mut line = Vec::new();
            scanstream::format::json::Format::Dynamodb.write_line(&mut line, &item);
            std::io::Write::write_all(&mut gz, &line)?;
        }
        let body = gz.finish()?;
        let key = format!("{root}/data/{start:08}.json.gz");
        manifest += &serde_json::json!({
            "itemCount": end - start,
            "md5Checksum": md5_base64(&body[..])?,
            "etag": hex_md5(&body),
            "dataFileS3Key": key,
        })
        .to_string();
        manifest.push('\n');
        put(s3, &key, body).await?;
        start = end;
    }
    let summary = serde_json::json!({
        "version": "2020-06-30",
        "exportArn": null,
        "startTime": "2026-12-06T00:00:00.000Z",
        "endTime": "2026-12-06T00:01:00.000Z",
        "s3Bucket": BUCKET,
        "s3Prefix": prefix,
        "manifestFilesS3Key": format!("{root}/manifest-files.json"),
        "itemCount": items,
        "outputFormat": "DYNAMODB_JSON",
        "exportType": "FULL_EXPORT",
    });
    put(
        s3,
        &format!("{root}/manifest-files.json"),
        manifest.into_bytes(),
    )
    .await?;
    put(
        s3,
        &format!("{root}/manifest-summary.json"),
        summary.to_string().into_bytes(),
    )
    .await?;
    Ok(root)
}

async fn put(s3: &aws_sdk_s3::Client, key: &str, body: Vec<u8>) -> Result<()> {
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(body.into())
        .send()
        .await?;
    Ok(())
}
