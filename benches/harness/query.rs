//! Case 8 (`BENCH_CASES=query scripts/bench.sh`): the Query fan-out. One invocation
//! queries 100 partitions with `segments=8` (eight at a time) through the emulator,
//! against the same 100 Queries made one after another by a plain SDK loop (items
//! counted, nothing encoded): items/s and time to the first item of each, `REPS`
//! alternating runs, and the ratio within each run. Results in `bench-results/query.md`
//! and `query.json`.

use crate::cases::{Sample, fetch, local_client, start_watch, streamer_url, warm_up};
use crate::report::{Stat, machine};
use crate::services::Service;
use crate::{REPS, ROOT, Result};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, WriteRequest,
};
use std::path::Path;
use std::time::{Duration, Instant};

/// Partitions queried, and items in each.
const PARTITIONS: usize = 100;
const PER_PARTITION: usize = 500;
/// Partitions queried at once by the streamer.
const SEGMENTS: u32 = 8;
/// `Limit` of every Query, both sides.
const LIMIT: i32 = 100;

pub async fn run(out_dir: &Path) -> Result<()> {
    let ddb = Service::dynamodb_local(Path::new(ROOT).join("target/bench-dynamodb-local.log"))?;
    let client = local_client(&ddb.endpoint()).await;
    let table = "bench-query-100x500";
    create(&client, table).await?;
    let watch = start_watch(&ddb, table, &[])?;
    warm_up(&watch).await?;
    let pks: String = (0..PARTITIONS).map(|p| format!("pk=p{p:03}&")).collect();
    let url = streamer_url(&watch, &format!("{pks}limit={LIMIT}&segments={SEGMENTS}"));
    let (mut fan_out, mut sdk) = (Vec::new(), Vec::new());
    for rep in 0..REPS {
        // Alternate which goes first, so neither always meets a warmer DynamoDB Local.
        if rep % 2 == 0 {
            fan_out.push(fetch(url.clone(), Duration::ZERO).await?);
            sdk.push(sdk_loop(&client, table).await?);
        } else {
            sdk.push(sdk_loop(&client, table).await?);
            fan_out.push(fetch(url.clone(), Duration::ZERO).await?);
        }
        eprintln!(
            "query fan-out run {rep}: {:.0} items/s against {:.0} (SDK loop)",
            fan_out[rep].items_per_s(),
            sdk[rep].items_per_s()
        );
    }
    let expected = (PARTITIONS * PER_PARTITION) as u64;
    if let Some(short) = fan_out.iter().chain(&sdk).find(|s| s.items != expected) {
        return Err(format!("read {} of {expected} items", short.items).into());
    }
    let ratios = Stat::of(
        fan_out
            .iter()
            .zip(&sdk)
            .map(|(f, s)| f.items_per_s() / s.items_per_s()),
    );
    let row = |name: &str, samples: &[Sample]| {
        let rate = Stat::of(samples.iter().map(Sample::items_per_s));
        let ttfb = Stat::of(samples.iter().map(|s| s.ttfb_ms));
        let total = Stat::of(samples.iter().map(|s| s.total_ms));
        format!(
            "| {name} | {:.0} ({:.0}-{:.0}) | {:.1} ({:.1}-{:.1}) | {:.0} ({:.0}-{:.0}) |\n",
            rate.median,
            rate.min,
            rate.max,
            ttfb.median,
            ttfb.min,
            ttfb.max,
            total.median,
            total.min,
            total.max
        )
    };
    let mut text = format!(
        "Machine: {}\n\n### Query fan-out: {PARTITIONS} partitions of {PER_PARTITION} items, Limit {LIMIT}, median (min-max) of {REPS} runs\n\n\
         Command: `BENCH_CASES=query scripts/bench.sh`. The fan-out is one invocation through `cargo lambda watch --release` read by an HTTP client (items encoded, sent and counted); the SDK loop makes the same Queries one after another and only counts the items. TTFB: to the first body byte, or to the first page of the first partition.\n\n\
         | reader | items/s | TTFB ms | total ms |\n|---|---|---|---|\n",
        machine()
    );
    text += &row(
        &format!("streamer, {PARTITIONS} pk, segments={SEGMENTS}"),
        &fan_out,
    );
    text += &row("SDK loop, one Query after another", &sdk);
    text += &format!(
        "\nItems/s ratio (fan-out / SDK loop), per run: median {:.2}, min {:.2}, max {:.2} (goal: at least 3).\n",
        ratios.median, ratios.min, ratios.max
    );
    println!("{text}");
    std::fs::write(out_dir.join("query.md"), &text)?;
    std::fs::write(
        out_dir.join("query.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "partitions": PARTITIONS,
            "per_partition": PER_PARTITION,
            "segments": SEGMENTS,
            "limit": LIMIT,
            "fan_out": fan_out,
            "sdk_loop": sdk,
            "ratio": ratios,
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

/// The same Queries, one after another, with the SDK: every page of every partition,
/// items counted.
async fn sdk_loop(client: &Client, table: &str) -> Result<Sample> {
    let started = Instant::now();
    let mut ttfb = None;
    let mut items = 0u64;
    for p in 0..PARTITIONS {
        let mut start = None;
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
            ttfb.get_or_insert_with(|| started.elapsed());
            items += out.items().len() as u64;
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
    }
    let total = started.elapsed();
    Ok(Sample {
        ttfb_ms: ttfb.unwrap_or(total).as_secs_f64() * 1000.0,
        total_ms: total.as_secs_f64() * 1000.0,
        items,
        wire_bytes: 0,
    })
}
