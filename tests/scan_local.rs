//! The parallel scan against the real DynamoDB Local: every item exactly once, whatever
//! the segments and page size, and the JSON of every DynamoDB type.

mod common;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use futures::StreamExt;
use scanstream::scan::Item;
use scanstream::scan::dynamo::DynamoSource;
use scanstream::scan::stream::{ScanPlan, start};
use serde_json::json;
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
        let source = Arc::new(DynamoSource::new(client.clone(), &table));
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
    scanstream::seed::table::ensure_table(&client, &table)
        .await
        .expect("create table");
    let item: Item = [
        ("id", AttributeValue::S("all-types ☃".into())),
        ("s", AttributeValue::S("line\nbreak \"quoted\" 😀".into())),
        ("n_int", AttributeValue::N("-42".into())),
        ("n_dec", AttributeValue::N("2.71".into())),
        (
            "n_big",
            AttributeValue::N("12345678901234567890123456789012345678".into()),
        ),
        (
            "n_tiny",
            AttributeValue::N("0.000000000000000000000000000000000000001".into()),
        ),
        (
            "b",
            AttributeValue::B(Blob::new(vec![0u8, 159, 146, 150, 255])),
        ),
        ("t", AttributeValue::Bool(true)),
        ("f", AttributeValue::Bool(false)),
        ("z", AttributeValue::Null(true)),
        (
            "l",
            AttributeValue::L(vec![
                AttributeValue::S("a".into()),
                AttributeValue::N("1".into()),
                AttributeValue::L(vec![]),
            ]),
        ),
        (
            "m",
            AttributeValue::M(
                [(
                    "deeper".to_string(),
                    AttributeValue::M([("deepest".to_string(), AttributeValue::Bool(true))].into()),
                )]
                .into(),
            ),
        ),
        ("ss", AttributeValue::Ss(vec!["x".into(), "y".into()])),
        ("ns", AttributeValue::Ns(vec!["1".into(), "2.5".into()])),
        ("bs", AttributeValue::Bs(vec![Blob::new(b"hi".to_vec())])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    client
        .put_item()
        .table_name(&table)
        .set_item(Some(item))
        .send()
        .await
        .expect("put item");

    let source = Arc::new(DynamoSource::new(client.clone(), &table));
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
