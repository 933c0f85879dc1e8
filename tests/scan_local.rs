//! The parallel scan against the real DynamoDB Local: every item exactly once, whatever
//! the segments and page size, the JSON of every DynamoDB type, and filtered reads under
//! `max_items` (whole pages, cut and resumed at an item's key) on a table and an index.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use futures::StreamExt;
use scanstream::dynamo::source::DynamoSource;
use scanstream::format::item::{Item, Value as ItemValue};
use scanstream::read::stream::{ScanPlan, start};
use serde_json::{Value, json};
use std::sync::Arc;

async fn scan_all(source: Arc<DynamoSource>, segments: u32, limit: u32) -> Vec<u8> {
    let plan = ScanPlan::segments(segments, limit);
    let stream = start(source, plan).await.expect("scan starts");
    stream
        .fold(Vec::new(), |mut body, chunk| async move {
            body.extend_from_slice(&chunk);
            body
        })
        .await
}

#[tokio::test]
async fn every_item_exactly_once_for_any_segments_and_limit() {
    let client = local_client().await;
    for count in [0u64, 1, 1000] {
        let table = seeded_table(&client, "once", 7, count).await;
        let source = Arc::new(DynamoSource::new(
            scanstream::dynamo::client::Dynamo::from(client.clone()),
            &table,
        ));
        let expected = expected_ids(7, count);
        for segments in [1u32, 2, 4, 7, 16] {
            for limit in [1u32, 10, 100] {
                let body = scan_all(source.clone(), segments, limit).await;
                let (items, trailer) = split_body(&body);
                let case = format!("count={count} segments={segments} limit={limit}");
                assert_same_ids(&ids(&items), &expected, &case);
                assert!(trailer.complete, "{case}: {trailer:?}");
                assert_eq!(trailer.items, count, "{case}");
                assert_eq!(trailer.scanned, count, "{case}");
                assert_eq!(trailer.segments.len(), segments as usize, "{case}");
                assert!(trailer.segments.iter().all(|s| s.done), "{case}");
                assert_eq!(
                    trailer.segments.iter().map(|s| s.items).sum::<u64>(),
                    count,
                    "{case}"
                );
                assert!(trailer.pages >= u64::from(segments), "{case}");
                assert!(trailer.error.is_none(), "{case}");
            }
        }
    }
}

#[tokio::test]
async fn every_dynamodb_type_has_its_json() {
    let client = local_client().await;
    let table = unique_table("types");
    scanstream::dynamo::table::ensure_table(
        &scanstream::dynamo::client::Dynamo::from(client.clone()),
        &table,
    )
    .await
    .expect("create table");
    let item: Item = [
        ("id", ItemValue::S("all-types ☃".into())),
        ("s", ItemValue::S("line\nbreak \"quoted\" 😀".into())),
        ("n_int", ItemValue::N("-42".into())),
        ("n_dec", ItemValue::N("2.71".into())),
        (
            "n_big",
            ItemValue::N("12345678901234567890123456789012345678".into()),
        ),
        (
            "n_tiny",
            ItemValue::N("0.000000000000000000000000000000000000001".into()),
        ),
        ("b", ItemValue::B(vec![0u8, 159, 146, 150, 255])),
        ("t", ItemValue::Bool(true)),
        ("f", ItemValue::Bool(false)),
        ("z", ItemValue::Null(true)),
        (
            "l",
            ItemValue::L(vec![
                ItemValue::S("a".into()),
                ItemValue::N("1".into()),
                ItemValue::L(vec![]),
            ]),
        ),
        (
            "m",
            ItemValue::M(
                [(
                    "deeper".to_string(),
                    ItemValue::M([("deepest".to_string(), ItemValue::Bool(true))].into()),
                )]
                .into(),
            ),
        ),
        ("ss", ItemValue::Ss(vec!["x".into(), "y".into()])),
        ("ns", ItemValue::Ns(vec!["1".into(), "2.5".into()])),
        ("bs", ItemValue::Bs(vec![b"hi".to_vec()])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    client
        .put_item()
        .table_name(&table)
        .set_item(Some(
            scanstream::dynamo::convert::attributes(item.clone()).expect("sendable"),
        ))
        .send()
        .await
        .expect("put item");

    let source = Arc::new(DynamoSource::new(
        scanstream::dynamo::client::Dynamo::from(client.clone()),
        &table,
    ));
    let body = scan_all(source, 1, 10).await;
    let (items, trailer) = split_body(&body);
    assert!(trailer.complete);
    let [got] = items.as_slice() else {
        panic!("one item expected, got {items:?}")
    };
    // Sets come back in DynamoDB's order: compare them as sets.
    let mut got = got.clone();
    for key in ["ss", "ns"] {
        let mut values: Vec<String> = got[key]
            .as_array()
            .expect("set is an array")
            .iter()
            .map(|v| v.to_string())
            .collect();
        values.sort();
        got[key] = json!(values);
    }
    assert_eq!(
        got,
        json!({
            "id": "all-types ☃",
            "s": "line\nbreak \"quoted\" 😀",
            "n_int": -42, "n_dec": 2.71,
            "n_big": serde_json::from_str::<serde_json::Value>("12345678901234567890123456789012345678").expect("number"),
            "n_tiny": serde_json::from_str::<serde_json::Value>("1E-39").expect("number"),
            "b": "AJ+Slv8=", "t": true, "f": false, "z": null,
            "l": ["a", 1, []], "m": {"deeper": {"deepest": true}},
            "ss": ["\"x\"", "\"y\""], "ns": ["1", "2.5"], "bs": ["aGk="]
        })
    );
    // Every digit survives on the wire, not just in a float.
    let text = String::from_utf8(body).expect("utf-8");
    assert!(
        text.contains("\"n_big\":12345678901234567890123456789012345678"),
        "{text}"
    );
}

/// A table keyed (tenant S, n N) with a global index (day S, slot N) whose keys many items
/// share, so a position in the index needs the table's key too; `id` is unique, `kind` is
/// `rare` for one item in a hundred, `amount` runs 0..10.
async fn filter_table(client: &aws_sdk_dynamodb::Client, count: usize) -> String {
    use aws_sdk_dynamodb::types::ScalarAttributeType as T;
    let table = unique_table("filtered");
    create_keyed_table(
        client,
        &table,
        ("tenant", T::S),
        Some(("n", T::N)),
        &[("by-day", ("day", T::S), Some(("slot", T::N)))],
    )
    .await;
    let items = (0..count).map(|i| -> Item {
        [
            ("tenant", ItemValue::S(format!("t{}", i % 7))),
            ("n", ItemValue::N(i.to_string())),
            ("day", ItemValue::S(format!("d{}", i % 3))),
            ("slot", ItemValue::N((i % 5).to_string())),
            ("id", ItemValue::S(format!("i{i:05}"))),
            (
                "kind",
                ItemValue::S(
                    if i.is_multiple_of(100) {
                        "rare"
                    } else {
                        "common"
                    }
                    .into(),
                ),
            ),
            ("amount", ItemValue::N((i % 10).to_string())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    });
    let items: Vec<Item> = items.collect();
    write_batches(client, &table, items.chunks(25).map(<[Item]>::to_vec)).await;
    table
}

/// Follows cursors of `query` through the streamer's handler to the end: every item sent
/// and the Scan calls answered. Each incomplete stream carries exactly `max_items`.
async fn follow_filtered(
    streamer: &scanstream::lambda::streamer::Streamer<DynamoSource>,
    query: &str,
    max_items: u64,
) -> (Vec<Value>, u64) {
    let mut next = format!("{query}&max_items={max_items}");
    let (mut items, mut pages) = (Vec::new(), 0);
    for round in 0.. {
        let (status, body) = get_via_handler(streamer, &next).await;
        assert_eq!(status, 200, "{next}: {}", String::from_utf8_lossy(&body));
        let (got, trailer) = split_body(&body);
        pages += trailer.pages;
        if !trailer.complete {
            assert_eq!(got.len() as u64, max_items, "{trailer:?}");
        }
        items.extend(got);
        match trailer.cursor {
            Some(cursor) => next = format!("cursor={cursor}&max_items={max_items}"),
            None => break,
        }
        assert!(round < 2000, "resuming does not end");
    }
    (items, pages)
}

fn filter_params(filter: &str, names: &str, values: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("filter", filter)
        .append_pair("names", names)
        .append_pair("values", values)
        .finish()
}

fn sorted_ids(items: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = items
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn filtered_reads_under_max_items_read_whole_pages_on_a_table_and_an_index() {
    const COUNT: usize = 3000;
    let client = local_client().await;
    let table = filter_table(&client, COUNT).await;
    let config = scanstream::lambda::config::Config::from_lookup(|name| {
        (name == "TABLE_NAME").then(|| table.to_string())
    })
    .expect("config");
    let streamer = scanstream::lambda::streamer::Streamer::new(
        config,
        DynamoSource::new(
            scanstream::dynamo::client::Dynamo::from(client.clone()),
            &table,
        ),
    );
    let rare = filter_params("#k = :k", r##"{"#k":"kind"}"##, r#"{":k":{"S":"rare"}}"#);
    let want = |keep: fn(usize) -> bool| -> Vec<String> {
        let mut ids: Vec<String> = (0..COUNT)
            .filter(|i| keep(*i))
            .map(|i| format!("i{i:05}"))
            .collect();
        ids.sort();
        ids
    };

    // 1% match, 5 a call, pages of 100: the table is 30 pages. Pages sized by the budget
    // read at most 5 items a call (600 calls at least), one item at the end of each.
    let (items, pages) =
        follow_filtered(&streamer, &format!("segments=4&limit=100&{rare}"), 5).await;
    assert_eq!(
        sorted_ids(&items),
        want(|i| i.is_multiple_of(100)),
        "1% on the table"
    );
    eprintln!("1% on the table, 5 a call: {pages} Scan calls");
    assert!(pages <= 60, "{pages} Scan calls for a table of 30 pages");

    // 70% match, cut on almost every page: on the table and on the index (whose keys
    // repeat, so the resume key is the index's key and the table's), with a projection
    // that leaves the keys out.
    let most = filter_params("#a < :a", r##"{"#a":"amount"}"##, r#"{":a":{"N":"7"}}"#);
    for (what, query) in [
        (
            "table",
            format!("segments=3&limit=40&fields=id,amount&{most}"),
        ),
        (
            "index",
            format!("index=by-day&segments=3&limit=40&fields=id,amount&{most}"),
        ),
        (
            "index, 1%",
            format!("index=by-day&segments=2&limit=100&fields=id&{rare}"),
        ),
    ] {
        let (items, _) = follow_filtered(&streamer, &query, 37).await;
        let keep: fn(usize) -> bool = if what.ends_with("1%") {
            |i| i.is_multiple_of(100)
        } else {
            |i| i % 10 < 7
        };
        assert_eq!(sorted_ids(&items), want(keep), "{what}: every match once");
        let allowed = if what.ends_with("1%") { 1 } else { 2 };
        assert!(
            items
                .iter()
                .all(|item| item.as_object().map(|o| o.len()) == Some(allowed)),
            "{what}: only the fields asked for, the keys taken out again"
        );
    }

    // A Query of the index, cut on every page: in the index's order, every match once.
    let query = format!("index=by-day&pk=d1&limit=20&{most}");
    let (items, _) = follow_filtered(&streamer, &query, 6).await;
    let got: Vec<&str> = items
        .iter()
        .map(|i| i["id"].as_str().expect("id"))
        .collect();
    let sdk = sdk_query_ids(&client, &table, Some("by-day"), ("day", "d1")).await;
    assert_eq!(got, sdk, "the index's own order");

    // A Query of the table itself (`pk` without an index), cut and resumed at the
    // table's key: in the table's order, every match once.
    let query = format!("pk=t3&limit=20&{most}");
    let (items, _) = follow_filtered(&streamer, &query, 6).await;
    let got: Vec<&str> = items
        .iter()
        .map(|i| i["id"].as_str().expect("id"))
        .collect();
    let sdk = sdk_query_ids(&client, &table, None, ("tenant", "t3")).await;
    assert!(!sdk.is_empty());
    assert_eq!(got, sdk, "the table's own order, every match once");
}

/// The ids a Query by the SDK itself returns, in its order: partition `key` of the table
/// or of `index`, filtered on `amount < 7` as the streamer's reads above are.
async fn sdk_query_ids(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    index: Option<&str>,
    (name, value): (&str, &str),
) -> Vec<String> {
    let items: Vec<Item> = common::query_items(
        client
            .query()
            .table_name(table)
            .set_index_name(index.map(str::to_string))
            .key_condition_expression("#k = :k")
            .filter_expression("#a < :a")
            .expression_attribute_names("#k", name)
            .expression_attribute_names("#a", "amount")
            .expression_attribute_values(":k", AttributeValue::S(value.into()))
            .expression_attribute_values(":a", AttributeValue::N("7".into())),
    )
    .await;
    items
        .iter()
        .map(|i| match &i["id"] {
            ItemValue::S(id) => id.clone(),
            other => panic!("id {other:?}"),
        })
        .collect()
}
