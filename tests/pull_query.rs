//! `scanstream pull` as a Query fan-out (issue 17 part 4): the real binary pulls partitions
//! from the real streamer under `cargo lambda watch`, against a DynamoDB Local table keyed
//! (tenant S, n N). Each output is compared with the SDK's own Queries, item for item: 60
//! partitions spread over more slices than invocations, a sort-key condition newest first
//! (each partition's order kept), a filtered count, a pull cut by the fault proxy and
//! resumed from its checkpoint. A resume with another `--pk` set or sort-key condition, and
//! every bad combination of flags, is refused before any call.

mod common;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType, Select};
use common::emulator::Emulator;
use common::faults::{Edit, FaultProxy, Faults};
use common::*;
use scanstream::format::item::Item;
use scanstream::format::item::Value as ItemValue;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::run::*;

const TENANTS: usize = 60;
const PER_TENANT: usize = 30;

fn tenant(i: usize) -> String {
    format!("t{i:02}")
}

/// A table of `TENANTS` partitions of `PER_TENANT` items, sort key `n` negative, whole
/// and fractional, so that numeric order (not text order) is what a Query's order is.
async fn tenants_table(client: &Client) -> String {
    let table = unique_table("pullq");
    create_keyed_table(
        client,
        &table,
        ("tenant", ScalarAttributeType::S),
        Some(("n", ScalarAttributeType::N)),
        &[],
    )
    .await;
    let items: Vec<Item> = (0..TENANTS * PER_TENANT)
        .map(|i| {
            let (t, j) = (i / PER_TENANT, i % PER_TENANT);
            let n = if j % 2 == 0 {
                format!("{}", j as i64 * 7 - 100)
            } else {
                format!("{}.5", j as i64 * 7 - 100)
            };
            [
                ("tenant", ItemValue::S(tenant(t))),
                ("n", ItemValue::N(n)),
                ("amount", ItemValue::N(((i * 13) % 100).to_string())),
                ("name", ItemValue::S(format!("order {i}"))),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
        })
        .collect();
    put_items(client, &table, items).await;
    table
}

/// The SDK's own Query of one partition, every page, in DynamoDB's order, as the
/// streamer writes items.
async fn sdk_query(
    client: &Client,
    table: &str,
    tenant: &str,
    sort: Option<(&str, AttributeValue)>,
    forward: bool,
) -> Vec<Value> {
    let mut condition = "#t = :t".to_string();
    let mut request = client
        .query()
        .table_name(table)
        .expression_attribute_names("#t", "tenant")
        .expression_attribute_values(":t", AttributeValue::S(tenant.into()))
        .scan_index_forward(forward);
    if let Some((op, value)) = sort {
        condition.push_str(&format!(" AND #n {op} :n"));
        request = request
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":n", value);
    }
    let items: Vec<Item> = common::query_items(request.key_condition_expression(condition)).await;
    items
        .iter()
        .map(|item| serde_json::from_slice(&scanstream::format::json::to_line(item)).expect("JSON"))
        .collect()
}

/// Items as sorted text lines: two outputs hold the same items, each as often.
fn as_set(items: &[Value]) -> Vec<String> {
    let mut lines: Vec<String> = items.iter().map(Value::to_string).collect();
    lines.sort();
    lines
}

/// Each partition's items, in the order they arrived.
fn by_tenant(items: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for item in items {
        let tenant = item["tenant"].as_str().expect("tenant").to_string();
        out.entry(tenant).or_default().push(item.clone());
    }
    out
}

/// GIVEN 60 partitions in a --pk-file, 8 a call, 3 invocations at once, calls of at most
/// 50 items WHEN pulled THEN the output holds exactly the SDK's Queries' items, each once,
/// each partition in the SDK's order; and a filtered count equals the SDK's count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_over_many_invocations_equals_the_sdks_queries() {
    let ddb = local_client().await;
    let table = tenants_table(&ddb).await;
    let emulator = Emulator::start_warm("pullq-fan", &function_env(&table)).await;
    let url = emulator.url("streamer", "");
    let url = url.trim_end_matches('?');
    let dir = scratch("pullq-fan");
    let keys = dir.join("keys.txt");
    // Unsorted, with a CRLF line and a blank line: the set is what counts.
    let mut text: String = (0..TENANTS)
        .rev()
        .map(|t| format!("{}\n", tenant(t)))
        .collect();
    text = text.replacen("t30\n", "t30\r\n\n", 1);
    std::fs::write(&keys, text).expect("keys");
    let (out, summary_path) = (dir.join("out.ndjson"), dir.join("summary.json"));
    let output = pull_to(url, &out)
        .arg("--pk-file")
        .arg(&keys)
        .args([
            "--invocations",
            "3",
            "--segments",
            "4",
            "--pk-per-call",
            "8",
        ])
        .args(["--max-items-per-call", "50", "--limit", "7"])
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .expect("scanstream runs");
    assert!(
        output.status.success(),
        "{}\n{}",
        stderr_of(&output),
        emulator.log_text()
    );
    let mut expected = Vec::new();
    let mut expected_by_tenant = BTreeMap::new();
    for t in 0..TENANTS {
        let items = sdk_query(&ddb, &table, &tenant(t), None, true).await;
        expected.extend(items.clone());
        expected_by_tenant.insert(tenant(t), items);
    }
    let got = output_items(&out);
    assert_eq!(got.len(), TENANTS * PER_TENANT);
    assert_eq!(as_set(&got), as_set(&expected), "item for item, each once");
    assert_eq!(
        by_tenant(&got),
        expected_by_tenant,
        "each partition in order"
    );
    let summary = read_summary(&summary_path);
    assert_eq!(summary["complete"], true);
    // 8 slices of 8 keys (the last of 4), each of 240 items (120) in calls of 50: 38
    // calls at least.
    assert!(
        summary["calls"].as_u64().is_some_and(|c| c >= 38),
        "{summary}"
    );
    assert!(!dir.join("out.ndjson.ckpt").exists(), "a finished pull");

    // --count --filter over the same partitions: the SDK's count.
    let count_out = dir.join("count.ndjson");
    let output = pull_to(url, &count_out)
        .arg("--pk-file")
        .arg(&keys)
        .args(["--invocations", "2", "--pk-per-call", "25"])
        .args([
            "--filter",
            "amount >= :a",
            "--values",
            r#"{":a":{"N":"50"}}"#,
        ])
        .arg("--count")
        .output()
        .expect("scanstream runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let mut want = 0;
    for t in 0..TENANTS {
        let counted = ddb
            .query()
            .table_name(&table)
            .key_condition_expression("tenant = :t")
            .filter_expression("amount >= :a")
            .expression_attribute_values(":t", AttributeValue::S(tenant(t)))
            .expression_attribute_values(":a", AttributeValue::N("50".into()))
            .select(Select::Count)
            .into_paginator()
            .send()
            .collect::<Vec<_>>()
            .await;
        for page in counted {
            want += page.expect("SDK count").count;
        }
    }
    let text = std::fs::read_to_string(&count_out).expect("count output");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "a count is one trailer line: {text}");
    let trailer: Value = serde_json::from_str(lines[0]).expect("JSON");
    let trailer = &trailer["@scanstream"];
    assert_eq!(trailer["complete"], true, "{trailer}");
    assert_eq!(trailer["items"], want, "{trailer}");
    assert_eq!(trailer["scanned"], TENANTS * PER_TENANT, "{trailer}");
    assert!(want > 0 && (want as usize) < TENANTS * PER_TENANT);
}

/// GIVEN ten partitions by --pk, `--sk-ge -30 --order desc`, and calls of 11 items WHEN
/// pulled THEN every partition's items arrive in the SDK's descending order, across the
/// calls that resumed it; and a scan with `--filter` matches the SDK's filtered Queries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sort_key_condition_newest_first_keeps_each_partitions_order() {
    let ddb = local_client().await;
    let table = tenants_table(&ddb).await;
    let emulator = Emulator::start_warm("pullq-order", &function_env(&table)).await;
    let url = emulator.url("streamer", "");
    let url = url.trim_end_matches('?');
    let dir = scratch("pullq-order");
    let out = dir.join("out.ndjson");
    let tenants: Vec<String> = (10..20).map(tenant).collect();
    let mut command = pull_to(url, &out);
    for t in &tenants {
        command.args(["--pk", t]);
    }
    let output = command
        .args(["--sk-ge", "-30", "--order", "desc"])
        .args(["--invocations", "2", "--segments", "3", "--limit", "4"])
        .args(["--max-items-per-call", "11", "--compress", "gzip"])
        .output()
        .expect("scanstream runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let got = by_tenant(&output_items(&out));
    assert_eq!(got.len(), tenants.len());
    for t in &tenants {
        let want = sdk_query(
            &ddb,
            &table,
            t,
            Some((">=", AttributeValue::N("-30".into()))),
            false,
        )
        .await;
        assert!(want.len() > 10, "the condition leaves enough to page");
        assert_eq!(got[t], want, "{t}: the SDK's descending order");
    }

    // A filter on a scan: the SDK's filtered items of every partition.
    let scanned = dir.join("scan.ndjson");
    let output = pull_to(url, &scanned)
        .args(["--filter", "#a < :a AND begins_with(#t, :p)"])
        .args(["--names", r##"{"#a":"amount","#t":"tenant"}"##])
        .args(["--values", r#"{":a":{"N":"20"},":p":{"S":"t1"}}"#])
        .args(["--invocations", "2", "--segments", "2"])
        .output()
        .expect("scanstream runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let mut want = Vec::new();
    for t in 10..20 {
        let items = sdk_query(&ddb, &table, &tenant(t), None, true).await;
        want.extend(
            items
                .into_iter()
                .filter(|item| item["amount"].as_u64().is_some_and(|a| a < 20)),
        );
    }
    assert!(!want.is_empty());
    assert_eq!(as_set(&output_items(&scanned)), as_set(&want));

    // The same filter counted over a Scan of 6 segments, pages of 200 read items: one
    // trailer line with the count.
    let counted = dir.join("count.ndjson");
    let output = pull_to(url, &counted)
        .args(["--count", "--filter", "#a < :a AND begins_with(#t, :p)"])
        .args(["--names", r##"{"#a":"amount","#t":"tenant"}"##])
        .args(["--values", r#"{":a":{"N":"20"},":p":{"S":"t1"}}"#])
        .args(["--invocations", "3", "--segments", "2", "--limit", "200"])
        .output()
        .expect("scanstream runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let text = std::fs::read_to_string(&counted).expect("count");
    let trailer: Value = serde_json::from_str(text.trim_end()).expect("one trailer line");
    assert_eq!(trailer["@scanstream"]["items"], want.len(), "{text}");
    assert_eq!(
        trailer["@scanstream"]["scanned"],
        TENANTS * PER_TENANT,
        "{text}"
    );
}

/// GIVEN a pull whose calls the fault proxy cuts (each body loses its trailer) once a few
/// have been committed WHEN the pull gives up and the same command runs again, uncut
/// THEN it resumes from its checkpoint and the output is exactly the SDK's Queries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_cut_by_the_proxy_resumes_from_its_checkpoint_exactly() {
    let ddb = local_client().await;
    let table = tenants_table(&ddb).await;
    let emulator = Emulator::start_warm("pullq-cut", &function_env(&table)).await;
    let cutting = Arc::new(AtomicBool::new(true));
    let cut = cutting.clone();
    let edit = Edit(Arc::new(move |call, body: bytes::Bytes| {
        // The first calls go through; later ones lose their last half (the trailer).
        if call >= 5 && cut.load(Ordering::SeqCst) {
            body.slice(..body.len() / 2)
        } else {
            body
        }
    }));
    let base = emulator.url("streamer", "");
    let proxy = FaultProxy::start(
        base.trim_end_matches("/lambda-url/streamer/?"),
        Faults {
            edit: Some(edit),
            ..Faults::default()
        },
    )
    .await;
    let url = format!("{}/lambda-url/streamer/", proxy.url);
    let dir = scratch("pullq-cut");
    let (out, summary_path) = (dir.join("out.ndjson"), dir.join("summary.json"));
    let tenants: Vec<String> = (0..40).map(tenant).collect();
    let run = || {
        let mut command = pull_to(&url, &out);
        for t in &tenants {
            command.args(["--pk", t]);
        }
        command
            .args([
                "--invocations",
                "2",
                "--pk-per-call",
                "10",
                "--segments",
                "2",
            ])
            .args(["--max-items-per-call", "40", "--compress", "none"])
            .args(["--max-attempts", "2"])
            .arg("--summary-json")
            .arg(&summary_path)
            .output()
            .expect("scanstream runs")
    };
    let first = run();
    assert!(!first.status.success(), "cut: {}", stderr_of(&first));
    let checkpoint = dir.join("out.ndjson.ckpt");
    assert!(checkpoint.exists(), "{}", stderr_of(&first));
    let committed = read_summary(&summary_path)["items"]
        .as_u64()
        .expect("items");
    assert!(committed > 0, "some calls were committed before the cuts");
    assert!(committed < 40 * PER_TENANT as u64, "and not all");
    cutting.store(false, Ordering::SeqCst);
    let second = run();
    assert!(second.status.success(), "{}", stderr_of(&second));
    assert!(
        stderr_of(&second).contains(&format!("resuming: {committed} items")),
        "{}",
        stderr_of(&second)
    );
    assert!(!checkpoint.exists());
    let mut expected = BTreeMap::new();
    for t in &tenants {
        expected.insert(t.clone(), sdk_query(&ddb, &table, t, None, true).await);
    }
    let got = output_items(&out);
    assert_eq!(got.len(), 40 * PER_TENANT, "none lost, none twice");
    assert_eq!(
        by_tenant(&got),
        expected,
        "each partition whole and in order"
    );
}

/// A proxy in front of nothing: every call it relays fails (502), and it counts them.
async fn dead_end() -> (FaultProxy, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let nowhere = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let proxy = FaultProxy::start(&nowhere, Faults::default()).await;
    let url = format!("{}/lambda-url/streamer/", proxy.url);
    (proxy, url)
}

/// GIVEN a checkpoint of an unfinished Query pull WHEN it is resumed with another --pk
/// set, --pk-file, sort-key condition, order or filter THEN the run is refused before any
/// call, naming the option with both values; the same command resumes.
// Multi-threaded: the client runs blocking this thread while the proxy answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_with_another_pk_set_or_sk_condition_is_refused_before_any_call() {
    let (proxy, url) = dead_end().await;
    let dir = scratch("pullq-refuse");
    let out = dir.join("out.ndjson");
    let keys = dir.join("keys.txt");
    std::fs::write(&keys, "b\na\n").expect("keys");
    let base = |extra: &[&str]| {
        let mut command = pull_to(&url, &out);
        command
            .args(["--pk", "c", "--pk-file"])
            .arg(&keys)
            .args(["--max-attempts", "1"])
            .args(extra);
        command.output().expect("scanstream runs")
    };
    let first = base(&["--sk-lt", "5"]);
    assert!(!first.status.success(), "the calls fail");
    assert!(dir.join("out.ndjson.ckpt").exists(), "a checkpoint is kept");
    let calls = proxy.counts.calls.load(Ordering::SeqCst);
    assert!(calls > 0);
    std::fs::write(dir.join("other.txt"), "a\nd\n").expect("other keys");
    for (extra, wanted) in [
        (
            vec!["--sk-lt", "6"],
            r#"--sk-lt: the checkpoint has "5", this run asks for "6""#,
        ),
        (
            vec!["--sk-gt", "5"],
            r#"--sk-gt: the checkpoint has not set, this run asks for "5""#,
        ),
        (
            vec!["--sk-lt", "5", "--order", "desc"],
            "--order: the checkpoint has not set",
        ),
        (
            vec![
                "--sk-lt",
                "5",
                "--filter",
                "x = :x",
                "--values",
                r#"{":x":{"S":"1"}}"#,
            ],
            "--filter: the checkpoint has not set",
        ),
        (
            vec!["--sk-lt", "5", "--pk", "d"],
            "--pk: the checkpoint has \"3 keys, sha256 ",
        ),
    ] {
        let output = base(&extra);
        let stderr = stderr_of(&output);
        assert!(!output.status.success(), "{extra:?}");
        assert!(stderr.contains(wanted), "{extra:?}: {stderr}");
        assert!(stderr.contains("this run asks for"), "{stderr}");
    }
    // The same keys in another file, in another order: the same set, so it resumes.
    std::fs::write(&keys, "a\nb\n").expect("same keys");
    let same = base(&["--sk-lt", "5"]);
    assert!(
        !stderr_of(&same).contains("another read"),
        "{}",
        stderr_of(&same)
    );
    // A file holding another set is refused as one.
    let mut command = pull_to(&url, &out);
    let other = command
        .args(["--pk", "c", "--pk-file"])
        .arg(dir.join("other.txt"))
        .args(["--sk-lt", "5", "--max-attempts", "1"])
        .output()
        .expect("runs");
    assert!(stderr_of(&other).contains("--pk: the checkpoint has \"3 keys"));
    let after = proxy.counts.calls.load(Ordering::SeqCst);
    // Only the run with the same options made calls.
    assert!(after > calls, "the resumed run called");
    let refused_calls = after - calls;
    assert!(
        refused_calls <= 8,
        "{refused_calls} calls: only the resumed run's"
    );
}

/// Every combination the client can know is wrong is a CLI error before any call.
// Multi-threaded: the client runs blocking this thread while the proxy answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_flags_are_refused_before_any_call() {
    let (proxy, url) = dead_end().await;
    let dir = scratch("pullq-flags");
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "\n\n").expect("empty");
    let twice = dir.join("twice.txt");
    std::fs::write(&twice, "a\nb\na\n").expect("twice");
    let empty = empty.to_string_lossy().into_owned();
    let twice = twice.to_string_lossy().into_owned();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--pk", "a", "--sk-lt", "1", "--sk-gt", "0"],
            "only one sort-key condition at a time, got --sk-lt and --sk-gt",
        ),
        (
            vec![
                "--pk",
                "a",
                "--sk-eq",
                "1",
                "--sk-from",
                "0",
                "--sk-to",
                "2",
            ],
            "only one sort-key condition",
        ),
        (vec!["--sk-eq", "1"], "--sk-eq needs --pk or --pk-file"),
        (vec!["--order", "desc"], "--order needs --pk"),
        (
            vec!["--pk", "a", "--sk-from", "1"],
            "--sk-from needs --sk-to",
        ),
        (vec!["--pk", "a", "--sk-to", "1"], "--sk-to needs --sk-from"),
        (
            vec!["--filter", "#a = :v", "--names", "{not json"],
            "--names is not JSON",
        ),
        (
            vec!["--filter", "a = :v", "--values", "[1]"],
            "--values must be a JSON object",
        ),
        (
            vec!["--filter", "a = :v", "--values", r#"{":v":{"Q":"x"}}"#],
            "--values: \":v\" is not a DynamoDB typed value",
        ),
        (
            vec!["--filter", "#a = :v", "--names", r##"{"#a":1}"##],
            "must stand for an attribute name",
        ),
        (vec!["--values", "{}"], "--filter"),
        (vec!["--pk-file", &empty], "holds no keys"),
        (
            vec!["--pk-file", &twice],
            "\"a\" is given twice (line 1 and line 3)",
        ),
        (
            vec!["--pk", "x", "--pk", "x"],
            "\"x\" is given twice (--pk and --pk)",
        ),
        (vec!["--pk", "1", "--pk", "1.0"], "are one number"),
        (vec!["--pk-file", "/nonexistent/keys"], "/nonexistent/keys"),
        (
            vec!["--count", "--fields", "a"],
            "--count cannot be combined with --fields",
        ),
        (
            vec!["--count", "--max-items-per-call", "5"],
            "--count cannot be combined with --max-items-per-call",
        ),
        (vec!["--pk", "a", "--pk-per-call", "0"], "--pk-per-call"),
    ];
    for (args, wanted) in &cases {
        let out = dir.join("out.ndjson");
        let output = pull_to(&url, &out)
            .args(args)
            .output()
            .expect("scanstream runs");
        let stderr = stderr_of(&output);
        assert!(!output.status.success(), "{args:?} is refused");
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
        assert!(!out.exists(), "{args:?}: no output was made");
    }
    assert_eq!(proxy.counts.calls.load(Ordering::SeqCst), 0, "no call");
}
