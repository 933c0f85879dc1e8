//! Queries end to end: the streamer under the real `cargo lambda watch`, read by an HTTP
//! client, against a DynamoDB Local table keyed (tenant S, n N) with a global index
//! (status S, created S). Every case is compared with the SDK's own Query, Scan or count
//! of the same expression: sort-key conditions in both orders, filters on a Scan, a Query
//! and the index, 50 partitions at once, `select=count`, each resumed by cursor in the
//! middle; then every bad combination is a named 400.

mod common;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType, Select};
use common::emulator::Emulator;
use common::*;
use scanstream::format::item::Item;
use scanstream::format::item::Value as ItemValue;
use scanstream::format::trailer::{StopReason, Trailer};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

const TENANTS: usize = 60;
const PER_TENANT: usize = 40;

fn tenant(i: usize) -> String {
    format!("t{i:02}")
}

/// The sort key of item `j` of a partition: negative, whole and fractional numbers, so
/// that numeric order (not text order) is what is tested.
fn n_text(j: usize) -> String {
    let base = j as i64 * 7 - 100;
    if j.is_multiple_of(2) {
        base.to_string()
    } else {
        format!("{base}.5")
    }
}

async fn orders_table(client: &Client) -> String {
    let table = unique_table("query");
    create_keyed_table(
        client,
        &table,
        ("tenant", ScalarAttributeType::S),
        Some(("n", ScalarAttributeType::N)),
        &[(
            "by-status",
            ("status", ScalarAttributeType::S),
            Some(("created", ScalarAttributeType::S)),
        )],
    )
    .await;
    let items: Vec<Item> = (0..TENANTS * PER_TENANT)
        .map(|i| {
            let (t, j) = (i / PER_TENANT, i % PER_TENANT);
            [
                ("tenant", ItemValue::S(tenant(t))),
                ("n", ItemValue::N(n_text(j))),
                (
                    "status",
                    ItemValue::S(["open", "closed", "pending"][(i * 7) % 3].into()),
                ),
                (
                    "created",
                    ItemValue::S(format!(
                        "2026-{:02}-{:02}T{:04}",
                        1 + j % 12,
                        1 + (i * 3) % 28,
                        i
                    )),
                ),
                ("amount", ItemValue::N(((i * 13) % 100).to_string())),
                // `name` is a reserved word: filters must reach it through a placeholder.
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

/// An item as the streamer writes it, parsed: SDK items go through the same encoder,
/// so both sides compare as the same JSON.
fn as_json(item: &Item) -> Value {
    serde_json::from_slice(&scanstream::format::json::to_line(item)).expect("JSON")
}

fn key_of(item: &Value) -> String {
    format!("{}|{}", item["tenant"], item["n"])
}

fn keys(items: &[Value]) -> Vec<String> {
    items.iter().map(key_of).collect()
}

fn sorted(mut keys: Vec<String>) -> Vec<String> {
    keys.sort();
    keys
}

/// An expression as the SDK takes it: text, names and values.
#[derive(Default, Clone)]
struct Expr {
    text: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn new(text: &str, names: &[(&str, &str)], values: &[(&str, AttributeValue)]) -> Self {
        Self {
            text: text.into(),
            names: names
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    /// The streamer's `filter`, `names` and `values` parameters for this expression.
    fn params(&self) -> Vec<(String, String)> {
        let mut out = vec![("filter".to_string(), self.text.clone())];
        if !self.names.is_empty() {
            out.push((
                "names".into(),
                serde_json::to_string(&self.names).expect("names"),
            ));
        }
        if !self.values.is_empty() {
            let values: serde_json::Map<String, Value> = self
                .values
                .iter()
                .map(|(k, v)| {
                    let v = scanstream::dynamo::convert::value(v.clone());
                    (k.clone(), scanstream::format::json::typed_json(&v))
                })
                .collect();
            out.push(("values".into(), Value::Object(values).to_string()));
        }
        out
    }

    fn merged(&self, other: &Expr) -> (HashMap<String, String>, HashMap<String, AttributeValue>) {
        let mut names = self.names.clone();
        names.extend(other.names.clone());
        let mut values = self.values.clone();
        values.extend(other.values.clone());
        (names, values)
    }
}

/// The SDK's own Query, every page, in DynamoDB's order.
async fn sdk_query(
    client: &Client,
    table: &str,
    index: Option<&str>,
    key_condition: &Expr,
    filter: Option<&Expr>,
    forward: bool,
) -> Vec<Value> {
    let empty = Expr::default();
    let (names, values) = key_condition.merged(filter.unwrap_or(&empty));
    let items: Vec<Item> = common::query_items(
        client
            .query()
            .table_name(table)
            .set_index_name(index.map(str::to_string))
            .key_condition_expression(&key_condition.text)
            .set_filter_expression(filter.map(|f| f.text.clone()))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(forward),
    )
    .await;
    items.iter().map(as_json).collect()
}

/// The SDK's own Scan with `filter`, every page.
async fn sdk_scan(client: &Client, table: &str, index: Option<&str>, filter: &Expr) -> Vec<Value> {
    let items: Vec<Item> = client
        .scan()
        .table_name(table)
        .set_index_name(index.map(str::to_string))
        .filter_expression(&filter.text)
        .set_expression_attribute_names(Some(filter.names.clone()))
        .set_expression_attribute_values(Some(filter.values.clone()))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("SDK scan")
        .into_iter()
        .map(scanstream::dynamo::convert::item)
        .collect();
    items.iter().map(as_json).collect()
}

fn n(value: &str) -> AttributeValue {
    AttributeValue::N(value.into())
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .expect("http client")
}

fn form(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// One call: GET with the parameters in the URL, or POST with them in a form body.
async fn call(
    client: &reqwest::Client,
    emulator: &Emulator,
    params: &[(String, String)],
    post: bool,
) -> (u16, Vec<u8>) {
    let request = if post {
        client
            .post(emulator.url("streamer", ""))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(params))
    } else {
        client.get(emulator.url("streamer", &form(params)))
    };
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

/// Reads `params` to the end, cut every `max_items` (when given) and resumed by cursor,
/// alternately in the URL and in a POST body: the items in arrival order and every
/// trailer.
async fn read_all(
    client: &reqwest::Client,
    emulator: &Emulator,
    params: &[(&str, String)],
    max_items: Option<u64>,
) -> (Vec<Value>, Vec<Trailer>) {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let cut: Vec<(String, String)> = max_items
        .map(|m| vec![("max_items".to_string(), m.to_string())])
        .unwrap_or_default();
    let mut items = Vec::new();
    let mut trailers = Vec::new();
    let mut next: Vec<(String, String)> = params.iter().chain(&cut).cloned().collect();
    // A long list of partitions goes in a POST body, as a client would send it.
    let many_pks = params.iter().filter(|(k, _)| k == "pk").count() > 10;
    for round in 0.. {
        let post = if round == 0 { many_pks } else { round % 2 == 1 };
        let (status, body) = call(client, emulator, &next, post).await;
        assert_eq!(
            status,
            200,
            "{next:?}: {}\n{}",
            String::from_utf8_lossy(&body),
            emulator.log_text()
        );
        let (page, trailer) = split_body(&body);
        if let Some(max) = max_items
            && !trailer.complete
        {
            assert_eq!(page.len() as u64, max, "exactly max_items: {trailer:?}");
            assert_eq!(trailer.reason, Some(StopReason::MaxItems));
        }
        items.extend(page);
        let cursor = trailer.cursor.clone();
        trailers.push(trailer);
        match cursor {
            Some(cursor) => {
                next = cut.clone();
                next.push(("cursor".into(), cursor));
            }
            None => break,
        }
        assert!(round < 500, "resuming does not end");
    }
    (items, trailers)
}

fn p(name: &str, value: impl Into<String>) -> (&str, String) {
    (name, value.into())
}

#[tokio::test]
async fn queries_filters_fan_out_and_counts_match_the_sdk() {
    let ddb = local_client().await;
    let table = orders_table(&ddb).await;
    let emulator = Emulator::start("query", &function_env(&table));
    let client = http();
    // The first request builds and starts the function: on a loaded machine that can
    // outlast the client's timeout for one read, so it gets a longer one of its own.
    emulator.warm().await;
    let pk = |t: &str| Expr::new("#t = :t", &[("#t", "tenant")], &[(":t", s(t))]);
    let with_sk = |t: &str, clause: &str, values: &[(&str, AttributeValue)]| {
        let mut e = pk(t);
        e.text = format!("#t = :t AND {clause}");
        e.names.insert("#n".into(), "n".into());
        e.values
            .extend(values.iter().map(|(k, v)| (k.to_string(), v.clone())));
        e
    };

    // 1. Every sort-key condition, both orders, one partition: the very sequence the SDK
    // returns, resumed by cursor in the middle (max_items 7, pages of 3).
    let conditions: Vec<(Vec<(&str, String)>, Expr)> = vec![
        (vec![], pk("t07")),
        (
            vec![p("sk_eq", "-30")],
            with_sk("t07", "#n = :v", &[(":v", n("-30"))]),
        ),
        (
            vec![p("sk_lt", "0")],
            with_sk("t07", "#n < :v", &[(":v", n("0"))]),
        ),
        (
            vec![p("sk_le", "-30")],
            with_sk("t07", "#n <= :v", &[(":v", n("-30"))]),
        ),
        (
            vec![p("sk_gt", "100")],
            with_sk("t07", "#n > :v", &[(":v", n("100"))]),
        ),
        (
            vec![p("sk_ge", "-30")],
            with_sk("t07", "#n >= :v", &[(":v", n("-30"))]),
        ),
        (
            vec![p("sk_from", "-50"), p("sk_to", "50.5")],
            with_sk(
                "t07",
                "#n BETWEEN :a AND :b",
                &[(":a", n("-50")), (":b", n("50.5"))],
            ),
        ),
    ];
    for (sk, expr) in &conditions {
        for (order, forward) in [("asc", true), ("desc", false)] {
            let mut params = vec![p("pk", "t07"), p("limit", "3"), p("order", order)];
            params.extend(sk.iter().cloned());
            let (got, trailers) = read_all(&client, &emulator, &params, Some(7)).await;
            let want = sdk_query(&ddb, &table, None, expr, None, forward).await;
            assert!(!want.is_empty(), "{sk:?} selects something");
            assert_eq!(keys(&got), keys(&want), "{sk:?} order={order}");
            assert!(trailers.len() >= want.len() / 7, "{sk:?}: cut and resumed");
            let last = trailers.last().expect("a trailer");
            assert_eq!(last.partitions().len(), 1, "{last:?}");
            assert_eq!(last.partitions()[0].pk, "t07");
        }
    }
    eprintln!(
        "sort-key conditions: {} cases x 2 orders match",
        conditions.len()
    );

    // sk_prefix on the index's string sort key, newest first.
    let (got, _) = read_all(
        &client,
        &emulator,
        &[
            p("index", "by-status"),
            p("pk", "open"),
            p("sk_prefix", "2026-03"),
            p("order", "desc"),
            p("limit", "4"),
        ],
        Some(9),
    )
    .await;
    let prefix = Expr::new(
        "#s = :s AND begins_with(#c, :p)",
        &[("#s", "status"), ("#c", "created")],
        &[(":s", s("open")), (":p", s("2026-03"))],
    );
    let want = sdk_query(&ddb, &table, Some("by-status"), &prefix, None, false).await;
    assert!(want.len() > 9);
    assert_eq!(keys(&got), keys(&want), "sk_prefix on the index, desc");

    // 2. Filters, in DynamoDB's own language, with `name` (a reserved word) through a
    // placeholder. On a Scan: the same set; scanned counts what was read, not sent.
    let filter = Expr::new(
        "#st = :st AND #a >= :a AND begins_with(#nm, :nm)",
        &[("#st", "status"), ("#a", "amount"), ("#nm", "name")],
        &[(":st", s("open")), (":a", n("50")), (":nm", s("order 1"))],
    );
    let mut params = vec![p("segments", "4"), p("limit", "50")];
    let filter_params = filter.params();
    params.extend(filter_params.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let (got, trailers) = read_all(&client, &emulator, &params, Some(40)).await;
    let want = sdk_scan(&ddb, &table, None, &filter).await;
    assert!(want.len() > 40, "{}", want.len());
    assert_eq!(sorted(keys(&got)), sorted(keys(&want)), "filtered scan");
    let scanned: u64 = trailers.iter().map(|t| t.scanned).sum();
    let sent: u64 = trailers.iter().map(|t| t.items).sum();
    assert_eq!(sent, want.len() as u64);
    assert!(
        scanned >= (TENANTS * PER_TENANT) as u64 && scanned > 3 * sent,
        "a filtered scan reads everything: scanned {scanned}, sent {sent}"
    );
    let units: f64 = trailers.iter().filter_map(|t| t.consumed_capacity).sum();
    eprintln!("filtered scan: {sent} sent of {scanned} scanned, {units} units");

    // On a Query with a sort-key condition, newest first.
    let amount = Expr::new("#a < :a", &[("#a", "amount")], &[(":a", n("60"))]);
    let mut params = vec![
        p("pk", "t11"),
        p("sk_gt", "0"),
        p("order", "desc"),
        p("limit", "4"),
    ];
    let amount_params = amount.params();
    params.extend(amount_params.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let (got, _) = read_all(&client, &emulator, &params, Some(5)).await;
    let key_condition = with_sk("t11", "#n > :v", &[(":v", n("0"))]);
    let want = sdk_query(&ddb, &table, None, &key_condition, Some(&amount), false).await;
    assert!(want.len() > 5);
    assert_eq!(keys(&got), keys(&want), "filtered query, desc");

    // On the index: a Query with a filter, and a Scan of the index with one.
    let mut params = vec![
        p("index", "by-status"),
        p("pk", "pending"),
        p("limit", "20"),
    ];
    params.extend(amount_params.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let (got, _) = read_all(&client, &emulator, &params, Some(111)).await;
    let pending = Expr::new("#s = :s", &[("#s", "status")], &[(":s", s("pending"))]);
    let want = sdk_query(
        &ddb,
        &table,
        Some("by-status"),
        &pending,
        Some(&amount),
        true,
    )
    .await;
    assert!(want.len() > 111);
    assert_eq!(keys(&got), keys(&want), "filtered index query");
    let mut params = vec![
        p("index", "by-status"),
        p("segments", "3"),
        p("limit", "100"),
    ];
    params.extend(amount_params.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let (got, _) = read_all(&client, &emulator, &params, Some(500)).await;
    let want = sdk_scan(&ddb, &table, Some("by-status"), &amount).await;
    assert_eq!(
        sorted(keys(&got)),
        sorted(keys(&want)),
        "filtered index scan"
    );

    // 3. 50 partitions at once (8 at a time, sent in a POST body), cut every 150 items:
    // every item of the 50 SDK Queries once, each partition in its own order.
    let tenants: Vec<String> = (5..55).map(tenant).collect();
    for (order, forward, sk) in [
        ("asc", true, vec![]),
        ("desc", false, vec![p("sk_lt", "50")]),
    ] {
        let mut params: Vec<(&str, String)> = tenants.iter().map(|t| p("pk", t.clone())).collect();
        params.extend([p("segments", "8"), p("limit", "7"), p("order", order)]);
        params.extend(sk.iter().cloned());
        let (got, trailers) = read_all(&client, &emulator, &params, Some(150)).await;
        let mut want = Vec::new();
        for t in &tenants {
            let expr = if sk.is_empty() {
                pk(t)
            } else {
                with_sk(t, "#n < :v", &[(":v", n("50"))])
            };
            let items = sdk_query(&ddb, &table, None, &expr, None, forward).await;
            let got_here: Vec<Value> = got
                .iter()
                .filter(|item| item["tenant"] == t.as_str())
                .cloned()
                .collect();
            assert_eq!(
                keys(&got_here),
                keys(&items),
                "partition {t} in order {order}"
            );
            want.extend(items);
        }
        assert_eq!(
            sorted(keys(&got)),
            sorted(keys(&want)),
            "50 partitions, {order}"
        );
        assert!(trailers.len() >= 5, "{} calls", trailers.len());
        let last = trailers.last().expect("trailer");
        assert!(last.complete && last.segments.is_empty());
        assert_eq!(last.partitions().len(), 50);
        assert!(last.partitions().iter().all(|p| p.done));
        let first = &trailers[0];
        assert!(
            first.partitions().iter().any(|p| !p.done && p.items > 0)
                || first.partitions().iter().filter(|p| p.items > 0).count() > 1,
            "partitions interleave: {:?}",
            first.partitions()
        );
    }

    // 4. select=count: one trailer and no items, the SDK's own count.
    let sdk_count = |index: Option<&'static str>, expr: Option<Expr>, key: Option<Expr>| {
        let ddb = ddb.clone();
        let table = table.clone();
        async move {
            let mut total = 0i64;
            let mut start = None;
            loop {
                let page = match &key {
                    Some(key) => {
                        let (names, values) = key.merged(expr.as_ref().unwrap_or(&Expr::default()));
                        let out = ddb
                            .query()
                            .table_name(&table)
                            .set_index_name(index.map(str::to_string))
                            .key_condition_expression(&key.text)
                            .set_filter_expression(expr.as_ref().map(|e| e.text.clone()))
                            .set_expression_attribute_names(Some(names))
                            .set_expression_attribute_values(Some(values))
                            .select(Select::Count)
                            .set_exclusive_start_key(start.take())
                            .send()
                            .await
                            .expect("count");
                        (out.count, out.last_evaluated_key)
                    }
                    None => {
                        let e = expr.clone().expect("a filter");
                        let out = ddb
                            .scan()
                            .table_name(&table)
                            .filter_expression(&e.text)
                            .set_expression_attribute_names(Some(e.names))
                            .set_expression_attribute_values(Some(e.values))
                            .select(Select::Count)
                            .set_exclusive_start_key(start.take())
                            .send()
                            .await
                            .expect("count");
                        (out.count, out.last_evaluated_key)
                    }
                };
                total += i64::from(page.0);
                match page.1 {
                    Some(key) if !key.is_empty() => start = Some(key),
                    _ => return total as u64,
                }
            }
        }
    };
    let mut params = vec![p("select", "count"), p("segments", "4")];
    params.extend(filter_params.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let (status, body) = call(
        &client,
        &emulator,
        &params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<Vec<_>>(),
        false,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (items, trailer) = split_body(&body);
    assert!(items.is_empty(), "a count streams no items");
    assert_eq!(body.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
    let want = sdk_count(None, Some(filter.clone()), None).await;
    assert_eq!(trailer.items, want, "filtered scan count");
    assert_eq!(trailer.scanned, (TENANTS * PER_TENANT) as u64);
    let mut params: Vec<(&str, String)> = tenants.iter().map(|t| p("pk", t.clone())).collect();
    params.extend([p("select", "count"), p("segments", "8"), p("sk_ge", "0")]);
    let (items, trailers) = read_all(&client, &emulator, &params, None).await;
    assert!(items.is_empty());
    let mut want = 0;
    for t in &tenants {
        want += sdk_count(None, None, Some(with_sk(t, "#n >= :v", &[(":v", n("0"))]))).await;
    }
    let counted = trailers.last().expect("trailer");
    assert_eq!(counted.items, want, "fan-out count");
    assert_eq!(
        counted.partitions().iter().map(|p| p.items).sum::<u64>(),
        want
    );
    let want_index = sdk_count(
        Some("by-status"),
        Some(amount.clone()),
        Some(pending.clone()),
    )
    .await;
    let mut params = vec![
        p("select", "count"),
        p("index", "by-status"),
        p("pk", "pending"),
    ];
    params.extend(amount_params.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let (_, trailers) = read_all(&client, &emulator, &params, None).await;
    assert_eq!(
        trailers.last().expect("trailer").items,
        want_index,
        "index count"
    );

    // 5. DynamoDB's own ValidationException about the user's expression: a 400 with
    // DynamoDB's message, and nothing internal (not the table's name).
    for (params, says) in [
        (
            Expr::new("#t = :v", &[("#t", "tenant")], &[(":v", s("x"))]).params(),
            "key",
        ),
        (
            Expr::new("#a >>= :v", &[("#a", "amount")], &[(":v", n("1"))]).params(),
            "",
        ),
    ] {
        let mut all = vec![("pk".to_string(), "t01".to_string())];
        all.extend(params);
        let (status, body) = call(&client, &emulator, &all, false).await;
        let text = String::from_utf8_lossy(&body);
        eprintln!("DynamoDB refused {all:?}: {status} {text}");
        assert_eq!(status, 400, "{text}");
        let error: Value = serde_json::from_slice(&body).expect("JSON error");
        assert_eq!(error["error"]["code"], "InvalidRequest");
        let message = error["error"]["message"].as_str().expect("message");
        assert!(
            message.starts_with("DynamoDB rejected the request: "),
            "{message}"
        );
        assert!(
            message.len() > "DynamoDB rejected the request: ".len() + 5,
            "{message}"
        );
        assert!(message.to_lowercase().contains(says), "{message}");
        assert!(!message.contains(&table), "{message}");
    }

    bad_queries_are_named_400s(&client, &emulator).await;
}

/// Every bad combination of the Query, filter and count parameters is a 400 naming the
/// parameter, before anything is read.
async fn bad_queries_are_named_400s(client: &reqwest::Client, emulator: &Emulator) {
    let enc = |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    let filter = |f: &str, names: &str, values: &str| {
        format!(
            "filter={}&names={}&values={}",
            enc(f),
            enc(names),
            enc(values)
        )
    };
    let many: String = (0..101).map(|i| format!("pk=p{i}&")).collect();
    let cases: Vec<(String, &str)> = vec![
        ("sk_eq=1".into(), "sk_eq"),
        ("sk_lt=1".into(), "sk_lt"),
        ("sk_le=1".into(), "sk_le"),
        ("sk_gt=1".into(), "sk_gt"),
        ("sk_ge=1".into(), "sk_ge"),
        ("sk_prefix=a".into(), "sk_prefix"),
        ("sk_from=1&sk_to=2".into(), "sk_from"),
        ("pk=t01&sk_from=1".into(), "sk_to"),
        ("pk=t01&sk_to=1".into(), "sk_from"),
        ("pk=t01&sk_lt=1&sk_gt=0".into(), "sk_lt and sk_gt"),
        ("pk=t01&sk_eq=x".into(), "sk_eq must be a number"),
        ("pk=t01&sk_lt=1e999".into(), "sk_lt must be a number"),
        ("pk=t01&sk_prefix=1".into(), "sk_prefix"),
        ("pk=t01&sk_from=9&sk_to=-1".into(), "sk_from"),
        (format!("pk=t01&sk_eq={}", "9".repeat(1100)), "sk_eq"),
        (
            "index=by-status&pk=open&sk_from=b&sk_to=a".into(),
            "sk_from",
        ),
        ("order=desc".into(), "order"),
        ("pk=t01&order=newest".into(), "order"),
        ("pk=t01&pk=t01".into(), "pk"),
        (many, "pk"),
        ("pk=t01&pk=t02&segments=3".into(), "segments"),
        ("pk=t01&total_segments=2".into(), "total_segments"),
        ("select=everything".into(), "select"),
        ("select=count&fields=a".into(), "select"),
        ("select=count&max_items=3".into(), "max_items"),
        ("names=%7B%7D".into(), "names"),
        ("values=%7B%7D".into(), "values"),
        ("filter=".into(), "filter"),
        (format!("filter={}", "a".repeat(4097)), "filter"),
        (filter("#a = :v", r##"{"#a":"amount"}"##, "{}"), ":v"),
        (filter("#a = :v", "{}", r#"{":v":{"N":"1"}}"#), "#a"),
        (
            filter(
                "#a = :v",
                r##"{"#a":"amount","#b":"x"}"##,
                r#"{":v":{"N":"1"}}"#,
            ),
            "#b",
        ),
        (
            filter(
                "#a = :v",
                r##"{"#a":"amount"}"##,
                r#"{":v":{"N":"1"},":w":{"N":"2"}}"#,
            ),
            ":w",
        ),
        (
            filter("#a = :v", r##"{"#a":"amount"}"##, r#"{":v":{"N":"one"}}"#),
            "values",
        ),
        (
            filter("#a = :v", r##"{"#a":"amount"}"##, r#"{":v":{"X":"1"}}"#),
            "values",
        ),
        (
            filter("#a = :v", r##"{"#a":"amount"}"##, r#"{":v":{"SS":[]}}"#),
            "values",
        ),
        (filter("#a = :v", r##"{"#a":"amount"}"##, "[]"), "values"),
        (filter("#a = :v", "[]", r#"{":v":{"N":"1"}}"#), "names"),
        (
            filter("#a = :v", r##"{"#a":7}"##, r#"{":v":{"N":"1"}}"#),
            "names",
        ),
        (
            filter("#a = :v", r##"{"#a b":"x"}"##, r#"{":v":{"N":"1"}}"#),
            "names",
        ),
        (
            filter(
                "#scanstreamPk = :v",
                r##"{"#scanstreamPk":"tenant"}"##,
                r#"{":v":{"S":"1"}}"#,
            ),
            "reserved",
        ),
        (
            filter(
                "#a = :scanstreamSk",
                r##"{"#a":"amount"}"##,
                r#"{":scanstreamSk":{"N":"1"}}"#,
            ),
            "reserved",
        ),
    ];
    for (query, named) in &cases {
        let (status, body) = call_raw(client, emulator, query).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 400, "{query}: {text}");
        let error: Value = serde_json::from_slice(&body).expect("JSON error");
        let message = error["error"]["message"].as_str().expect("message");
        assert!(message.contains(named), "{query}: {message}");
    }
    eprintln!("{} bad query requests, each a named 400", cases.len());
}

async fn call_raw(client: &reqwest::Client, emulator: &Emulator, query: &str) -> (u16, Vec<u8>) {
    let response = client
        .get(emulator.url("streamer", query))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

/// GIVEN a DynamoDB that throttles a third of the Scan and Query calls, and a function
/// that does not retry (MAX_ATTEMPTS=1) WHEN a filtered `select=count` Scan, and a count
/// over 20 partitions, are cut by those errors THEN each is resumed by its cursor until
/// complete, and the sums of the trailers' counts are the SDK's own counts.
#[tokio::test]
async fn a_count_cut_by_errors_resumes_by_cursor_to_the_sdks_count() {
    use common::faults::{FaultProxy, Faults};
    let ddb = local_client().await;
    let table = orders_table(&ddb).await;
    let dynamodb = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("DynamoDB Local");
    let throttling = FaultProxy::start(
        &dynamodb,
        Faults {
            dynamodb_throttle: Some(0.3),
            seed: 17,
            ..Faults::default()
        },
    )
    .await;
    let mut env = function_env_via(&table, &throttling.url);
    env.push(("MAX_ATTEMPTS", "1".into()));
    let emulator = Emulator::start("count-cut", &env);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1200))
        .build()
        .expect("http client");
    // Reads `params` to the end: a throttled first page is an error status (nothing was
    // sent, the same request is made again), a later one a trailer with a cursor.
    let count_all = |params: Vec<(String, String)>| {
        let (client, emulator) = (&client, &emulator);
        async move {
            let (mut items, mut scanned, mut cut) = (0u64, 0u64, 0usize);
            let mut next = params.clone();
            for round in 0.. {
                assert!(round < 400, "the count does not end");
                let (status, body) = call(client, emulator, &next, true).await;
                if status == 429 || status >= 500 {
                    continue;
                }
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                let (lines, trailer) = split_body(&body);
                assert!(lines.is_empty(), "a count streams no items");
                items += trailer.items;
                scanned += trailer.scanned;
                match trailer.cursor.clone() {
                    Some(cursor) => {
                        assert_eq!(trailer.reason, Some(StopReason::Error), "{trailer:?}");
                        cut += 1;
                        next = vec![
                            ("cursor".to_string(), cursor),
                            ("limit".to_string(), "50".to_string()),
                        ];
                    }
                    None => break,
                }
            }
            (items, scanned, cut)
        }
    };
    let filter = Expr::new("#a >= :a", &[("#a", "amount")], &[(":a", n("50"))]);
    let mut params = vec![
        ("select".to_string(), "count".to_string()),
        ("segments".to_string(), "4".to_string()),
        ("limit".to_string(), "50".to_string()),
    ];
    params.extend(filter.params());
    let (items, scanned, cut) = count_all(params).await;
    let want = sdk_scan(&ddb, &table, None, &filter).await.len() as u64;
    assert!(cut > 0, "the errors cut the count at least once");
    assert_eq!(items, want, "the filtered Scan count, resumed {cut} times");
    assert_eq!(scanned, (TENANTS * PER_TENANT) as u64);

    let mut params: Vec<(String, String)> = (0..20).map(|t| ("pk".into(), tenant(t))).collect();
    params.extend([
        ("select".to_string(), "count".to_string()),
        ("segments".to_string(), "4".to_string()),
        ("limit".to_string(), "5".to_string()),
        ("sk_ge".to_string(), "0".to_string()),
    ]);
    let (items, _, cut) = count_all(params).await;
    let mut want = 0;
    for t in 0..20 {
        let key = Expr::new(
            "#t = :t AND #n >= :v",
            &[("#t", "tenant"), ("#n", "n")],
            &[(":t", s(&tenant(t))), (":v", n("0"))],
        );
        want += sdk_query(&ddb, &table, None, &key, None, true).await.len() as u64;
    }
    assert!(cut > 0, "the errors cut the fan-out count at least once");
    assert_eq!(items, want, "the fan-out count, resumed {cut} times");
}
