//! Case 8 (`BENCH_CASES=query scripts/bench.sh`): the Query fan-out. One invocation
//! queries 100 partitions with `segments=8` (eight at a time) through the emulator,
//! against the same 100 Queries made one after another by a plain SDK loop, and made
//! eight at a time by the SDK (the backend's ceiling: items counted, nothing encoded).
//! Items/s and time to the first item of each, `REPS` runs in rotating order, and the
//! ratio within each run.
//!
//! DynamoDB Local answers in-process on this machine's two cores: there, a Query's time
//! is the emulator's CPU, which concurrency cannot hide. Against DynamoDB, a page's time
//! is mostly the round trip, which it hides. So the case runs once on DynamoDB Local as
//! it is, and again with each request's round trip lengthened by a [`LatencyLink`], for
//! everyone alike. Results in `bench-results/query.md` and `query.json`.

use crate::cases::{
    LatencyLink, Sample, fetch, local_client, start_watch_at, streamer_url, warm_up,
};
use crate::report::{Stat, machine};
use crate::services::Service;
use crate::{REPS, ROOT, Result};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, WriteRequest,
};
use futures::StreamExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Partitions queried, and items in each.
const PARTITIONS: usize = 100;
const PER_PARTITION: usize = 500;
/// Partitions queried at once by the streamer, and by the SDK's own fan-out.
const SEGMENTS: u32 = 8;
/// `Limit` of every Query, both sides.
const LIMIT: i32 = 100;
/// Added to each request's round trip to DynamoDB Local, in milliseconds. A Query page
/// from DynamoDB in the same region takes single-digit milliseconds.
const DELAYS_MS: [u64; 3] = [0, 5, 10];

/// One latency's runs.
struct Runs {
    delay_ms: u64,
    fan_out: Vec<Sample>,
    sdk_parallel: Vec<Sample>,
    sdk_loop: Vec<Sample>,
}

pub async fn run(out_dir: &Path) -> Result<()> {
    let ddb = Service::dynamodb_local(Path::new(ROOT).join("target/bench-dynamodb-local.log"))?;
    let direct = local_client(&ddb.endpoint()).await;
    let table = "bench-query-100x500";
    create(&direct, table).await?;
    // DynamoDB Local's JIT warms on the first reads: one untimed pass, so the first
    // measured run is not the slowest for reasons of its own.
    sdk_loop(&direct, table, 1).await?;
    let pks: String = (0..PARTITIONS).map(|p| format!("pk=p{p:03}&")).collect();
    let expected = (PARTITIONS * PER_PARTITION) as u64;
    let mut all = Vec::new();
    for delay_ms in DELAYS_MS {
        let link = match delay_ms {
            0 => None,
            ms => Some(LatencyLink::start(ddb.port, Duration::from_millis(ms)).await?),
        };
        let endpoint = link
            .as_ref()
            .map_or_else(|| ddb.endpoint(), LatencyLink::endpoint);
        let client = local_client(&endpoint).await;
        let watch = start_watch_at(&endpoint, table, &[], &format!("{table}-{delay_ms}ms"))?;
        warm_up(&watch).await?;
        let url = streamer_url(&watch, &format!("{pks}limit={LIMIT}&segments={SEGMENTS}"));
        let mut runs = Runs {
            delay_ms,
            fan_out: Vec::new(),
            sdk_parallel: Vec::new(),
            sdk_loop: Vec::new(),
        };
        for rep in 0..REPS {
            // Rotate who goes first, so none always meets a warmer DynamoDB Local.
            for turn in 0..3 {
                match (rep + turn) % 3 {
                    0 => runs.fan_out.push(fetch(url.clone(), Duration::ZERO).await?),
                    1 => runs
                        .sdk_parallel
                        .push(sdk_loop(&client, table, SEGMENTS as usize).await?),
                    _ => runs.sdk_loop.push(sdk_loop(&client, table, 1).await?),
                }
            }
            eprintln!(
                "+{delay_ms} ms, run {rep}: fan-out {:.0} items/s, SDK x{SEGMENTS} {:.0}, SDK loop {:.0}",
                runs.fan_out[rep].items_per_s(),
                runs.sdk_parallel[rep].items_per_s(),
                runs.sdk_loop[rep].items_per_s()
            );
        }
        let samples = runs
            .fan_out
            .iter()
            .chain(&runs.sdk_parallel)
            .chain(&runs.sdk_loop);
        if let Some(short) = samples.clone().find(|s| s.items != expected) {
            return Err(format!("read {} of {expected} items", short.items).into());
        }
        all.push(runs);
    }

    let ratio = |a: &[Sample], b: &[Sample]| {
        Stat::of(
            a.iter()
                .zip(b)
                .map(|(a, b)| a.items_per_s() / b.items_per_s()),
        )
    };
    let row = |delay: u64, name: &str, samples: &[Sample], against_loop: &Stat| {
        let rate = Stat::of(samples.iter().map(Sample::items_per_s));
        let ttfb = Stat::of(samples.iter().map(|s| s.ttfb_ms));
        let total = Stat::of(samples.iter().map(|s| s.total_ms));
        format!(
            "| +{delay} ms | {name} | {:.0} ({:.0}-{:.0}) | {:.1} ({:.1}-{:.1}) | {:.0} ({:.0}-{:.0}) | {:.2}x ({:.2}-{:.2}) |\n",
            rate.median,
            rate.min,
            rate.max,
            ttfb.median,
            ttfb.min,
            ttfb.max,
            total.median,
            total.min,
            total.max,
            against_loop.median,
            against_loop.min,
            against_loop.max,
        )
    };
    let mut text = format!(
        "Machine: {}\n\n### Query fan-out: {PARTITIONS} partitions of {PER_PARTITION} items, Limit {LIMIT}, median (min-max) of {REPS} runs\n\n\
         Command: `BENCH_CASES=query scripts/bench.sh`. The fan-out is one invocation through `cargo lambda watch --release` read by an HTTP client (items encoded, sent and counted). The SDK rows make the same Queries in the harness and only count the items: one after another, or {SEGMENTS} partitions at a time. TTFB: to the first body byte, or to the first page. \"+N ms\": each request to DynamoDB Local goes through a link that passes it on N ms late (`LatencyLink`), for all three readers; +0 ms is DynamoDB Local as it is. The ratio is against the SDK loop of the same run.\n\n\
         | round trip | reader | items/s | TTFB ms | total ms | vs SDK loop |\n|---|---|---|---|---|---|\n",
        machine()
    );
    let mut json = Vec::new();
    for runs in &all {
        let d = runs.delay_ms;
        let fan = ratio(&runs.fan_out, &runs.sdk_loop);
        let par = ratio(&runs.sdk_parallel, &runs.sdk_loop);
        let ceiling = ratio(&runs.fan_out, &runs.sdk_parallel);
        let one = Stat::of([1.0]);
        text += &row(
            d,
            &format!("streamer, {PARTITIONS} pk, segments={SEGMENTS}"),
            &runs.fan_out,
            &fan,
        );
        text += &row(
            d,
            &format!("SDK, {SEGMENTS} Queries at a time"),
            &runs.sdk_parallel,
            &par,
        );
        text += &row(d, "SDK loop, one Query after another", &runs.sdk_loop, &one);
        json.push(serde_json::json!({
            "delay_ms": d,
            "fan_out": runs.fan_out,
            "sdk_parallel": runs.sdk_parallel,
            "sdk_loop": runs.sdk_loop,
            "fan_out_vs_loop": fan,
            "fan_out_vs_sdk_parallel": ceiling,
        }));
    }
    text += "\nGoal: the fan-out at least 3x the SDK loop. Fan-out against the SDK's own 8 at a time (the ceiling), median per run:";
    for runs in &all {
        text += &format!(
            " +{} ms {:.2}x;",
            runs.delay_ms,
            ratio(&runs.fan_out, &runs.sdk_parallel).median
        );
    }
    text.pop();
    text += ".\n";
    // The link's delay is a floor: tokio's timer rounds up to the next millisecond, and
    // the link is a hop of its own. What each request really gained, by the SDK loop:
    let requests = REQUESTS.load(std::sync::atomic::Ordering::Relaxed);
    let loop_ms = |runs: &Runs| Stat::of(runs.sdk_loop.iter().map(|s| s.total_ms)).median;
    if let Some(direct) = all.iter().find(|r| r.delay_ms == 0) {
        text += &format!(
            "\nAdded to each of the SDK loop's {requests} requests, measured (its median total less the +0 ms one's, over {requests}):"
        );
        for runs in all.iter().filter(|r| r.delay_ms > 0) {
            text += &format!(
                " +{} ms link: {:.1} ms;",
                runs.delay_ms,
                (loop_ms(runs) - loop_ms(direct)) / requests as f64
            );
        }
        text.pop();
        text += ".\n";
    }
    println!("{text}");
    std::fs::write(out_dir.join("query.md"), &text)?;
    std::fs::write(
        out_dir.join("query.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "partitions": PARTITIONS,
            "per_partition": PER_PARTITION,
            "segments": SEGMENTS,
            "limit": LIMIT,
            "sdk_requests": REQUESTS.load(std::sync::atomic::Ordering::Relaxed),
            "runs": json,
        }))?,
    )?;
    Ok(())
}

/// A table keyed (pk S, n N) with `PARTITIONS` x `PER_PARTITION` items of ~200 bytes.
async fn create(client: &Client, table: &str) -> Result<()> {
    let definition = |name: &str, kind| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(definition("pk", ScalarAttributeType::S)?)
        .attribute_definitions(definition("n", ScalarAttributeType::N)?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("n", KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await?;
    let requests: Vec<WriteRequest> = (0..PARTITIONS * PER_PARTITION)
        .map(|i| {
            let item = [
                (
                    "pk",
                    AttributeValue::S(format!("p{:03}", i / PER_PARTITION)),
                ),
                ("n", AttributeValue::N((i % PER_PARTITION).to_string())),
                (
                    "status",
                    AttributeValue::S(["open", "closed"][i % 2].into()),
                ),
                ("note", AttributeValue::S(format!("{i:0>160}"))),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let put = PutRequest::builder().set_item(Some(item)).build()?;
            Ok(WriteRequest::builder().put_request(put).build())
        })
        .collect::<std::result::Result<_, aws_sdk_dynamodb::error::BuildError>>()?;
    let batches: Vec<Vec<WriteRequest>> = requests.chunks(25).map(<[_]>::to_vec).collect();
    // Four batches in flight: DynamoDB Local gains nothing past that (FIELD-NOTES).
    let mut chunks = batches.chunks(4);
    for group in chunks.by_ref() {
        let calls = group.iter().map(|batch| {
            client
                .batch_write_item()
                .request_items(table, batch.clone())
                .send()
        });
        for out in futures::future::join_all(calls).await {
            if out?.unprocessed_items.is_some_and(|u| !u.is_empty()) {
                return Err("DynamoDB Local left items unprocessed".into());
            }
        }
    }
    Ok(())
}

/// The same Queries with the SDK, `at_once` partitions at a time (1: one after
/// another): every page of every partition, items counted.
async fn sdk_loop(client: &Client, table: &str, at_once: usize) -> Result<Sample> {
    let started = Instant::now();
    let first_page = std::sync::OnceLock::new();
    let partitions = futures::stream::iter(0..PARTITIONS)
        .map(|p| query_partition(client, table, p, started, &first_page))
        .buffer_unordered(at_once);
    let counts: Vec<Result<(u64, u64)>> = partitions.collect().await;
    let (mut items, mut requests) = (0, 0);
    for count in counts {
        let (i, r) = count?;
        items += i;
        requests += r;
    }
    REQUESTS.store(requests, std::sync::atomic::Ordering::Relaxed);
    let total = started.elapsed();
    Ok(Sample {
        ttfb_ms: first_page.get().copied().unwrap_or(total).as_secs_f64() * 1000.0,
        total_ms: total.as_secs_f64() * 1000.0,
        items,
        wire_bytes: 0,
    })
}

/// Requests the last SDK run made (pages, with the empty one that can end a partition).
static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Every page of partition `p`, and how many requests it took; the first page anyone
/// gets is noted in `first_page`.
async fn query_partition(
    client: &Client,
    table: &str,
    p: usize,
    started: Instant,
    first_page: &std::sync::OnceLock<Duration>,
) -> Result<(u64, u64)> {
    let mut start = None;
    let (mut items, mut requests) = (0u64, 0u64);
    loop {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("p{p:03}")))
            .limit(LIMIT)
            .set_exclusive_start_key(start.take())
            .send()
            .await?;
        let _ = first_page.set(started.elapsed());
        requests += 1;
        items += out.items().len() as u64;
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok((items, requests)),
        }
    }
}
