//! The table's size in the streamer's headers, `scanstream plan`, the progress lines off
//! a terminal, and what the summary says a read cost: the real binaries against the
//! streamer under `cargo lambda watch` and DynamoDB Local.

mod common;

use aws_sdk_dynamodb::types::{AttributeValue, ProjectionType, ScalarAttributeType};
use common::emulator::Emulator;
use common::*;
use scanstream::dynamo::source::DynamoSource;
use scanstream::format::trailer::{APPROX_BYTES_HEADER, APPROX_ITEMS_HEADER};
use scanstream::lambda::config::Config;
use scanstream::lambda::http::Invocation;
use scanstream::lambda::streamer::Streamer;
use std::process::{Command, Output, Stdio};

use common::run::scratch;

fn scanstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scanstream"))
        .args(args)
        .stdin(Stdio::null())
        .env("RUST_LOG", "warn")
        .output()
        .expect("scanstream runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A header as a number, if it is there.
fn header(response: &reqwest::Response, name: &str) -> Option<u64> {
    response.headers().get(name)?.to_str().ok()?.parse().ok()
}

/// `ItemCount` and `TableSizeBytes` as DynamoDB Local's own DescribeTable says.
async fn described(ddb: &aws_sdk_dynamodb::Client, table: &str) -> (i64, i64) {
    let table = ddb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("describe")
        .table
        .expect("table");
    (
        table.item_count.unwrap_or(-1),
        table.table_size_bytes.unwrap_or(-1),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streamer_sends_the_approximate_size_and_none_under_a_filter_or_a_query() {
    let ddb = local_client().await;
    let table = seeded_table(&ddb, "sizehdr", 61, 2000).await;
    let (items, bytes) = described(&ddb, &table).await;
    eprintln!(
        "DynamoDB Local describes 2000 seeded items as ItemCount {items}, TableSizeBytes {bytes}"
    );
    let emulator = Emulator::start("sizehdr", &function_env(&table));
    // Bounded: a call that never answers fails the test instead of hanging the run.
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .expect("http client");
    let base = emulator.url("streamer", "");
    let base = base.trim_end_matches('?');
    let get = |query: &[(&str, &str)]| http.get(base).query(query).send();
    let scan = get(&[("max_items", "10")]).await.expect("a scan");
    assert_eq!(scan.status(), 200, "{}", emulator.log_text());
    assert_eq!(
        header(&scan, APPROX_ITEMS_HEADER),
        u64::try_from(items).ok()
    );
    assert_eq!(
        header(&scan, APPROX_BYTES_HEADER),
        u64::try_from(bytes).ok()
    );
    // DynamoDB Local counts at once (real DynamoDB every six hours or so).
    assert_eq!(items, 2000);
    assert!(bytes > 2000 * 100, "{bytes}");
    let filtered = get(&[
        ("filter", "#a > :a"),
        ("names", r##"{"#a":"age"}"##),
        ("values", r#"{":a":{"N":"50"}}"#),
    ])
    .await
    .expect("a filtered scan");
    assert_eq!(filtered.status(), 200);
    assert_eq!(
        header(&filtered, APPROX_ITEMS_HEADER),
        None,
        "a filter: unknown total"
    );
    assert_eq!(header(&filtered, APPROX_BYTES_HEADER), None);
    let id = scanstream::generate::record::record_id(61, 3);
    let query = get(&[("pk", id.as_str())]).await.expect("a query");
    assert_eq!(query.status(), 200);
    assert_eq!(
        header(&query, APPROX_ITEMS_HEADER),
        None,
        "a Query: unknown total"
    );
    // An error has no size.
    let bad = get(&[("segments", "0")]).await.expect("a bad request");
    assert_eq!(bad.status(), 400);
    assert_eq!(header(&bad, APPROX_ITEMS_HEADER), None);
}

/// A sparse index (only some items carry its key) has its own count, and the streamer
/// reports that one for `index`.
#[tokio::test]
async fn an_index_reports_its_own_size() {
    let ddb = local_client().await;
    let table = seeded_table(&ddb, "sizeidx", 62, 300).await;
    add_global_index(
        &ddb,
        &table,
        "by-tag",
        ("tag", ScalarAttributeType::S),
        ProjectionType::KeysOnly,
    )
    .await;
    for i in 0..50 {
        ddb.put_item()
            .table_name(&table)
            .item("id", AttributeValue::S(format!("tagged-{i}")))
            .item("tag", AttributeValue::S(format!("t{}", i % 5)))
            .send()
            .await
            .expect("put");
    }
    let index = ddb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("describe")
        .table
        .expect("table")
        .global_secondary_indexes
        .unwrap_or_default()
        .into_iter()
        .next()
        .expect("the index");
    let (table_items, table_bytes) = described(&ddb, &table).await;
    eprintln!(
        "DynamoDB Local describes 350 items as ItemCount {table_items}, TableSizeBytes \
         {table_bytes}; the keys-only index of 50 as ItemCount {:?}, IndexSizeBytes {:?}",
        index.item_count, index.index_size_bytes
    );
    assert_eq!((table_items, index.item_count), (350, Some(50)));
    let config =
        Config::from_lookup(|name| (name == "TABLE_NAME").then(|| table.clone())).expect("config");
    let streamer = Streamer::new(
        config,
        DynamoSource::new(
            scanstream::dynamo::client::Dynamo::from(ddb.clone()),
            &table,
        ),
    );
    let headers = |query: &str| {
        let uri: lambda_http::http::Uri = format!("/?{query}").parse().expect("uri");
        let streamer = &streamer;
        async move {
            let response = streamer.handle(Invocation::get(&uri)).await;
            assert_eq!(response.status(), 200);
            let number = |name: &str| -> Option<i64> {
                response.headers().get(name)?.to_str().ok()?.parse().ok()
            };
            (number(APPROX_ITEMS_HEADER), number(APPROX_BYTES_HEADER))
        }
    };
    assert_eq!(
        headers("max_items=1").await,
        (Some(table_items), Some(table_bytes))
    );
    assert_eq!(
        headers("index=by-tag&max_items=1").await,
        (index.item_count, index.index_size_bytes),
        "the index's own figures"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_prints_a_plan_from_the_headers_and_one_sample_call() {
    let ddb = local_client().await;
    let table = seeded_table(&ddb, "plan", 63, 3000).await;
    let empty = unique_table("plan-empty");
    scanstream::dynamo::table::ensure_table(
        &scanstream::dynamo::client::Dynamo::from(ddb.clone()),
        &empty,
    )
    .await
    .expect("an empty table");
    let emulator = Emulator::start("plan", &function_env(&table));
    let url = emulator.url("streamer", "");
    let url = url.trim_end_matches('?');
    let out = scanstream(&["plan", url, "--sample-items", "500", "--target", "30s"]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        emulator.log_text()
    );
    eprintln!("{stdout}");
    assert!(stdout.contains("table: ~3,000 items, ~"), "{stdout}");
    assert!(
        stdout.contains("refreshed about every six hours"),
        "{stdout}"
    );
    assert!(stdout.contains("bytes an item: "), "{stdout}");
    assert!(stdout.contains(" zstd ("), "a compression ratio: {stdout}");
    assert!(stdout.contains("read units: "), "{stdout}");
    for k in ["1", "4", "16", "64"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(k)),
            "a row for {k} invocations: {stdout}"
        );
    }
    assert!(
        stdout.contains("suggested for --target 30s: about ")
            && stdout.contains(&format!(
                "scanstream pull {url} --invocations 1 --segments 2"
            )),
        "{stdout}"
    );
    // The sample read units say what the read costs: eventually consistent half the
    // strongly consistent.
    let units = |line: &str| -> Vec<u64> {
        line.split(|c: char| !c.is_ascii_digit() && c != ',')
            .filter(|w| !w.is_empty() && w != &",")
            .map(|w| w.replace(',', "").parse().expect("a number"))
            .collect()
    };
    let read = stdout
        .lines()
        .find(|l| l.starts_with("read units: "))
        .expect("read units");
    let read = units(read);
    assert!(
        read[0] > 0 && (read[1] == read[0] * 2 || read[1] + 1 == read[0] * 2),
        "{read:?}"
    );

    // Held to a share of a capacity, and a sample that read all: an exact count.
    let out = scanstream(&[
        "plan",
        url,
        "--sample-items",
        "5000",
        "--capacity",
        "100",
        "--share",
        "10",
        "--target",
        "1s",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("table: 3,000 items"), "{stdout}");
    assert!(
        stdout.contains("counted: the sample read the whole table"),
        "{stdout}"
    );
    assert!(stdout.contains("within 10% of 100 RCU"), "{stdout}");
    assert!(stdout.contains("--max-rcu 10 "), "10% of 100: {stdout}");
    assert!(stdout.contains("(longer than asked)"), "{stdout}");

    // An empty table: a plan of nothing, not an error or a NaN.
    let emulator = Emulator::start("plan-empty", &function_env(&empty));
    let url = emulator.url("streamer", "");
    let out = scanstream(&["plan", url.trim_end_matches('?')]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    eprintln!("{stdout}");
    assert!(stdout.contains("table: 0 items"), "{stdout}");
    assert!(stdout.contains("none: within the 6 MB burst"), "{stdout}");
    assert!(stdout.contains("none to measure"), "{stdout}");
    assert!(
        !stdout.contains("NaN") && !stdout.contains("inf"),
        "{stdout}"
    );
}

#[test]
fn bad_plan_options_are_command_line_errors() {
    let url = "http://127.0.0.1:9/lambda-url/streamer/";
    for (args, named) in [
        (&["--target", "10x"][..], "--target"),
        (&["--target", "0s"], "--target"),
        (&["--target", "8d"], "--target"),
        (&["--target", "169h"], "--target"),
        (&["--target", "1.5h"], "--target"),
        (&["--target", ""], "--target"),
        (&["--capacity=-1"], "--capacity"),
        (&["--capacity", "0"], "--capacity"),
        (&["--capacity", "NaN"], "--capacity"),
        (&["--capacity", "100", "--share", "0"], "--share"),
        (&["--capacity", "100", "--share", "101"], "--share"),
        (&["--share", "50"], "--capacity"),
        (&["--sample-items", "0"], "--sample-items"),
    ] {
        let out = scanstream(&[&["plan", url][..], args].concat());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?} names {named}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_off_a_terminal_prints_plain_progress_lines_and_quiet_prints_none() {
    let ddb = local_client().await;
    let table = seeded_table(&ddb, "progress", 64, 3000).await;
    // The first call builds the function: not part of the run whose lines are read.
    let emulator = Emulator::start_warm("progress", &function_env(&table)).await;
    let url = emulator.url("streamer", "");
    let url = url.trim_end_matches('?');
    let dir = scratch("progress");
    let summary = dir.join("summary.json");
    let pull = |out: &str, extra: &[&str]| {
        let out = dir.join(out);
        let summary = summary.to_str().expect("path");
        scanstream(
            &[
                &[
                    "pull",
                    url,
                    "--invocations",
                    "2",
                    "--segments",
                    "2",
                    "--limit",
                    "50",
                    "--max-items-per-call",
                    "500",
                    "-o",
                ][..],
                &[out.to_str().expect("path"), "--summary-json", summary],
                extra,
            ]
            .concat(),
        )
    };
    // Slowed by a read rate, so it runs past a few plain-line intervals.
    let out = pull("slow.ndjson", &["--max-rcu", "25"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    eprintln!("{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI codes off a terminal: {stderr:?}"
    );
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(" committed"))
        .collect();
    assert!(!progress.is_empty(), "plain progress lines: {stderr}");
    for line in &progress {
        let percent: u64 = line
            .split('%')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("starts with a percentage: {line}"));
        assert!(percent <= 100, "{line}");
        assert!(line.contains(" of ~3,000 items, ETA "), "{line}");
        assert!(
            line.contains(" items/s, ") && line.contains("B/s on the wire, "),
            "{line}"
        );
        assert!(
            line.contains(" running, ") && line.contains(" retr"),
            "{line}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("JSON");
    assert_eq!(json["items"], 3000);
    assert_eq!(json["estimated_items"], 3000);
    let (wire, decoded) = (
        json["wire_bytes"].as_u64().expect("wire_bytes"),
        json["decoded_bytes"].as_u64().expect("decoded_bytes"),
    );
    assert!(decoded > wire && wire > 0, "{json}");
    let ratio = json["compression_ratio"].as_f64().expect("a ratio");
    assert!(
        (ratio - decoded as f64 / wire as f64).abs() < 0.01,
        "{json}"
    );
    assert!(
        json["consumed_capacity"].as_f64().is_some_and(|u| u > 0.0),
        "{json}"
    );
    for key in [
        "calls",
        "retries",
        "throttled",
        "elapsed_ms",
        "complete",
        "items_per_s",
    ] {
        assert!(json.get(key).is_some(), "{key} kept: {json}");
    }
    let last = stderr.lines().last().expect("a summary line");
    assert!(
        last.starts_with("3000 items in ")
            && last.contains(" read units (")
            && last.contains(" MB decoded (")
            && last.contains(" throttled"),
        "{last}"
    );

    let out = pull("quiet.ndjson", &["--max-rcu", "25", "--quiet"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "the summary line only: {stderr}");
    assert!(stderr.starts_with("3000 items in "), "{stderr}");
}
