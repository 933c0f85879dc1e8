//! Case 13 (`BENCH_CASES=changes scripts/bench.sh`): keeping a copy current, in one run
//! against DynamoDB Local and its stream:
//!
//! - `seeder --apply` of 100k put-only change lines against `seeder --from` of the same
//!   100k items (both at their default concurrency, 4), into an empty table each time,
//!   after one untimed load of each, in turns;
//! - `scanstream changes --follow | seeder --apply -` while 1,000 puts arrive at 50 a
//!   second: the time from each put to its item's appearance in the copy (the copy is
//!   scanned every 100 ms), p50 and p99;
//! - the records a second of `scanstream changes` (one invocation under
//!   `cargo lambda watch --release`, to a file) reading a stream of 50k records, against a
//!   bare boto3 loop (`GetShardIterator`, `GetRecords` until each shard is caught up) over
//!   the same stream.
//!
//! Results in `bench-results/changes.md` and `changes.json`.

use crate::cases::{check_count, empty_table, local_client, seeder_command, start_watch};
use crate::report::{Stat, machine};
use crate::services::Service;
use crate::{REPS, ROOT, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use scanstream::format::json::Format;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const APPLIED: u64 = 100_000;
const STREAMED: u64 = 50_000;
const FOLLOWED: u64 = 1_000;
const WRITES_PER_S: u64 = 50;

pub async fn run(out_dir: &Path) -> Result<()> {
    let ddb = Service::dynamodb_local(Path::new(ROOT).join("target/bench-dynamodb-local.log"))?;
    let dynamo = local_client(&ddb.endpoint()).await;
    let scratch = Path::new(ROOT).join("target/bench-changes");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;

    // 1. --apply against --from.
    let (items, changes) = (scratch.join("items.ndjson"), scratch.join("changes.ndjson"));
    write_files(&items, &changes)?;
    let (mut from, mut apply) = (Vec::new(), Vec::new());
    // One untimed load of each kind first (DynamoDB Local's JIT makes its first writes
    // slow), then the timed ones, in turns whose order alternates.
    for rep in 0..=REPS {
        let mut kinds = [
            (&mut from, "--from", &items),
            (&mut apply, "--apply", &changes),
        ];
        if rep % 2 == 1 {
            kinds.reverse();
        }
        for (runs, flag, file) in kinds {
            let table = format!("bench-apply-{rep}-{}", flag.trim_start_matches('-'));
            empty_table(&dynamo, &table, false).await?;
            let started = Instant::now();
            let out = seeder_command(&ddb)
                .args(["--table", &table, flag, file.to_str().unwrap_or_default()])
                .output()?;
            let seconds = started.elapsed().as_secs_f64();
            if !out.status.success() {
                return Err(
                    format!("seeder {flag}: {}", String::from_utf8_lossy(&out.stderr)).into(),
                );
            }
            check_count(&dynamo, &table, APPLIED).await?;
            eprintln!("seeder {flag}: {:.0} items/s", APPLIED as f64 / seconds);
            if rep > 0 {
                runs.push(APPLIED as f64 / seconds);
            }
            let _ = dynamo.delete_table().table_name(&table).send().await;
        }
    }

    // 2. and 3.: a table with a stream behind the streamer.
    let source = "bench-changes-src";
    empty_table(&dynamo, source, true).await?;
    // Changes from now: the stream was made just before (a time before it is refused).
    let since = now_text();
    let watch = start_watch(&ddb, source, &[])?;
    let url = watch.url("streamer", "").trim_end_matches('?').to_string();
    let warm = reqwest::Client::new()
        .get(format!("{url}?changes=true"))
        .send()
        .await?;
    if !warm.status().is_success() {
        return Err(format!("the streamer's warm-up call: {}", warm.status()).into());
    }
    let latencies = follow_latency(&ddb, &dynamo, &url, source, &since).await?;
    let p = |q: f64| {
        let at = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies[at]
    };
    let (p50, p99) = (p(0.5), p(0.99));
    eprintln!("follow: p50 {p50:.2} s, p99 {p99:.2} s");

    // A fresh stream of STREAMED records: the table re-created with its stream.
    empty_table(&dynamo, source, true).await?;
    let since = now_text();
    let out = seeder_command(&ddb)
        .args([
            "--table",
            source,
            "--count",
            &STREAMED.to_string(),
            "--concurrency",
            "4",
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!("seeding: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let (mut ours, mut boto) = (Vec::new(), Vec::new());
    for rep in 0..REPS {
        let file = scratch.join(format!("read-{rep}.ndjson"));
        let started = Instant::now();
        let out = Command::new(Path::new(ROOT).join("target/release/scanstream"))
            .args(["changes", &url, "--since", &since, "--margin", "0"])
            .args(["--no-checkpoint", "--quiet", "-o"])
            .arg(&file)
            .stdin(Stdio::null())
            .output()?;
        let seconds = started.elapsed().as_secs_f64();
        if !out.status.success() {
            return Err(format!(
                "scanstream changes: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let lines = std::fs::read(&file)?
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        if lines != STREAMED {
            return Err(format!("scanstream changes read {lines} records, not {STREAMED}").into());
        }
        eprintln!(
            "scanstream changes: {:.0} records/s",
            STREAMED as f64 / seconds
        );
        ours.push(STREAMED as f64 / seconds);
        let (records, seconds) = boto_loop(&ddb, source)?;
        if records != STREAMED {
            return Err(format!("the boto3 loop read {records} records, not {STREAMED}").into());
        }
        eprintln!("boto3 loop: {:.0} records/s", records as f64 / seconds);
        boto.push(records as f64 / seconds);
    }
    drop(watch);

    let show = |s: Stat| format!("{:.0} ({:.0}-{:.0})", s.median, s.min, s.max);
    let ratio = |a: &[f64], b: &[f64]| Stat::of(a.iter().zip(b).map(|(a, b)| a / b)).median;
    let mut text = format!(
        "Machine: {}\n\nRelease binaries, DynamoDB Local in memory (its stream), the streamer under `cargo lambda watch --release`, {REPS} runs each: median (min-max), ratios are medians of per-run ratios. Command: `BENCH_CASES=changes scripts/bench.sh`.\n\n\
         | load into an empty table, {APPLIED} seeder records | items/s | ratio | goal |\n|---|---|---|---|\n",
        machine()
    );
    text += &format!(
        "| `seeder --from` the items (`{{\"Item\":...}}` lines) | {} | 1.00x | |\n",
        show(Stat::of(from.clone()))
    );
    text += &format!(
        "| `seeder --apply` the same items as INSERT change lines | {} | {:.2}x | >= 0.9x |\n",
        show(Stat::of(apply.clone())),
        ratio(&apply, &from)
    );
    text += &format!(
        "\n| `scanstream changes --follow \\| seeder --apply -`, {FOLLOWED} puts at {WRITES_PER_S}/s | p50 | p99 | goal |\n|---|---|---|---|\n| from a put to its item in the copy (scanned every 100 ms) | {p50:.2} s | {p99:.2} s | p50 <= 2 s |\n"
    );
    text += &format!(
        "\n| read a stream of {STREAMED} records to its end | records/s | ratio |\n|---|---|---|\n| `scanstream changes` (one invocation a call, to a file) | {} | {:.2}x |\n| a bare boto3 loop (`GetShardIterator`, `GetRecords`) | {} | 1.00x |\n",
        show(Stat::of(ours.clone())),
        ratio(&ours, &boto),
        show(Stat::of(boto.clone()))
    );
    println!("{text}");
    std::fs::write(out_dir.join("changes.md"), &text)?;
    let json = serde_json::json!({
        "from_items_per_s": from,
        "apply_items_per_s": apply,
        "follow_latency_s": {"p50": p50, "p99": p99, "all": latencies},
        "changes_records_per_s": ours,
        "boto3_records_per_s": boto,
    });
    std::fs::write(
        out_dir.join("changes.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    Ok(())
}

/// The items file and the same items as put-only change lines.
fn write_files(items: &Path, changes: &Path) -> Result<()> {
    let mut items = std::io::BufWriter::new(std::fs::File::create(items)?);
    let mut changes = std::io::BufWriter::new(std::fs::File::create(changes)?);
    for i in 0..APPLIED {
        let item = scanstream::generate::record::record(42, i);
        let mut line = Vec::new();
        Format::Dynamodb.write_line(&mut line, &item);
        items.write_all(&line)?;
        let key = scanstream::format::item::Item::from([("id".to_string(), item["id"].clone())]);
        let record = scanstream::format::change::StreamRecord {
            event_id: i.to_string(),
            event_name: "INSERT".into(),
            event_version: "1.1".into(),
            region: "us-east-1".into(),
            created_ms: Some(1_765_000_000_000),
            keys: key,
            new_image: Some(item),
            old_image: None,
            sequence: format!("{:021}", i + 1),
            size_bytes: None,
            view_type: "NEW_AND_OLD_IMAGES".into(),
            by_service: None,
        };
        let mut line = Vec::new();
        record.write_line(
            &mut line,
            "arn:aws:dynamodb:us-east-1:0:table/bench/stream/x",
        );
        changes.write_all(&line)?;
    }
    items.flush()?;
    changes.flush()?;
    Ok(())
}

/// `scanstream changes --follow | seeder --apply -` into a copy while FOLLOWED puts arrive
/// at WRITES_PER_S: each put's latency to the copy, in seconds, sorted.
async fn follow_latency(
    ddb: &Service,
    dynamo: &aws_sdk_dynamodb::Client,
    url: &str,
    source: &str,
    since: &str,
) -> Result<Vec<f64>> {
    let copy = "bench-changes-copy";
    empty_table(dynamo, copy, false).await?;
    let mut follower = Command::new(Path::new(ROOT).join("target/release/scanstream"))
        .args([
            "changes", url, "--since", since, "--margin", "0", "--follow", "--quiet",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(
            Path::new(ROOT).join("target/bench-changes-follow.log"),
        )?)
        .spawn()?;
    let pipe = follower.stdout.take().ok_or("no stdout")?;
    let mut applier = seeder_command(ddb)
        .args(["--table", copy, "--apply", "-"])
        .stdin(pipe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let written: std::sync::Arc<std::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    let writer = {
        let (dynamo, written, source) = (dynamo.clone(), written.clone(), source.to_string());
        tokio::spawn(async move {
            let start = Instant::now();
            for i in 0..FOLLOWED {
                let due = start + Duration::from_millis(i * 1000 / WRITES_PER_S);
                tokio::time::sleep_until(due.into()).await;
                let id = format!("follow-{i:05}");
                let put = dynamo
                    .put_item()
                    .table_name(&source)
                    .item("id", AttributeValue::S(id.clone()))
                    .item("n", AttributeValue::N(i.to_string()))
                    .send()
                    .await;
                if put.is_ok() {
                    written
                        .lock()
                        .map(|mut w| w.insert(id, Instant::now()))
                        .ok();
                }
            }
        })
    };
    let mut seen: HashMap<String, f64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(FOLLOWED / WRITES_PER_S + 120);
    while (seen.len() as u64) < FOLLOWED && Instant::now() < deadline {
        let now = Instant::now();
        let mut start = None;
        loop {
            let page = dynamo
                .scan()
                .table_name(copy)
                .projection_expression("id")
                .set_exclusive_start_key(start)
                .send()
                .await?;
            let written = written.lock().map_err(|_| "poisoned")?;
            for item in page.items() {
                if let Some(AttributeValue::S(id)) = item.get("id")
                    && !seen.contains_key(id)
                    && let Some(at) = written.get(id)
                {
                    seen.insert(id.clone(), now.saturating_duration_since(*at).as_secs_f64());
                }
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    writer.await?;
    let _ = follower.kill();
    let _ = follower.wait();
    let _ = applier.wait();
    if (seen.len() as u64) < FOLLOWED {
        return Err(format!(
            "only {} of {FOLLOWED} puts reached the copy (target/bench-changes-follow.log)",
            seen.len()
        )
        .into());
    }
    let mut latencies: Vec<f64> = seen.into_values().collect();
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// The boto3 loop over `table`'s stream: records read and seconds.
fn boto_loop(ddb: &Service, table: &str) -> Result<(u64, f64)> {
    let script = r#"
import sys, time, boto3
endpoint, table = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
ddb, streams = boto3.client("dynamodb", **kw), boto3.client("dynamodbstreams", **kw)
started = time.monotonic()
arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
records = 0
for shard in shards:
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    empty = 0
    while it and empty < 2:
        page = streams.get_records(ShardIterator=it, Limit=1000)
        records += len(page["Records"])
        empty = 0 if page["Records"] else empty + 1
        it = page.get("NextShardIterator")
print(records, time.monotonic() - started)
"#;
    let python = Path::new(ROOT).join(".tools/venv/bin/python");
    let out = Command::new(python)
        .args(["-c", script, &ddb.endpoint(), table])
        .output()?;
    if !out.status.success() {
        return Err(format!("boto3 loop: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    let records = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or("boto3: no count")?;
    let seconds = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or("boto3: no time")?;
    Ok((records, seconds))
}

/// Now, in RFC 3339: the stream of a table made just before is older.
fn now_text() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    scanstream::format::time::iso8601(now)
}
