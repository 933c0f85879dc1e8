//! The rest of the read API against DynamoDB Local, through the streamer's own handler
//! (no Lambda): projections with reserved words, consistent reads, a global secondary
//! index, a `pk` Query with its cursor, and one table split over several invocations.

mod common;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{ProjectionType, ScalarAttributeType};
use common::*;
use scanstream::dynamo::source::DynamoSource;
use scanstream::format::item::Value as ItemValue;
use scanstream::format::trailer::Trailer;
use scanstream::lambda::config::Config;
use scanstream::lambda::streamer::Streamer;
use serde_json::Value;

const TENANTS: usize = 5;
const PER_TENANT: usize = 60;

/// A table keyed (tenant S, n N) with a global index on `status`.
async fn orders_table(client: &Client) -> String {
    let table = unique_table("orders");
    create_keyed_table(
        client,
        &table,
        ("tenant", ScalarAttributeType::S),
        Some(("n", ScalarAttributeType::N)),
        &[("by-status", ("status", ScalarAttributeType::S), None)],
    )
    .await;
    let items = (0..TENANTS * PER_TENANT)
        .map(|i| {
            [
                ("tenant", ItemValue::S(format!("t{}", i % TENANTS))),
                ("n", ItemValue::N((i / TENANTS).to_string())),
                (
                    "status",
                    ItemValue::S(if i % 3 == 0 { "open" } else { "closed" }.into()),
                ),
                ("name", ItemValue::S(format!("order {i}"))),
                ("data", ItemValue::N(i.to_string())),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
        })
        .collect();
    put_items(client, &table, items).await;
    table
}

async fn streamer(client: &Client, table: &str) -> Streamer<DynamoSource> {
    let config = Config::from_lookup(|name| (name == "TABLE_NAME").then(|| table.to_string()))
        .expect("config");
    Streamer::new(
        config,
        DynamoSource::new(
            scanstream::dynamo::client::Dynamo::from(client.clone()),
            table,
        ),
    )
}

async fn call(
    streamer: &Streamer<DynamoSource>,
    query: &str,
) -> (u16, Vec<Value>, Option<Trailer>) {
    let (status, body) = get_via_handler(streamer, query).await;
    if status != 200 {
        return (
            status,
            vec![serde_json::from_slice(&body).expect("JSON error")],
            None,
        );
    }
    let (items, trailer) = split_body(&body);
    (status, items, Some(trailer))
}

fn keys(items: &[Value]) -> Vec<String> {
    let mut keys: Vec<String> = items
        .iter()
        .map(|i| format!("{}/{}", i["tenant"], i["n"]))
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn projection_consistency_index_and_partition_queries() {
    let client = local_client().await;
    let table = orders_table(&client).await;
    let streamer = streamer(&client, &table).await;
    let all = TENANTS * PER_TENANT;

    // `name` and `data` are DynamoDB reserved words: they only work as placeholders.
    let (status, items, trailer) = call(&streamer, "fields=name,data&segments=3&limit=40").await;
    assert_eq!(status, 200, "{items:?}");
    assert_eq!(items.len(), all);
    assert!(trailer.expect("trailer").complete);
    for item in &items {
        let names: Vec<&String> = item.as_object().expect("object").keys().collect();
        assert_eq!(names, ["data", "name"], "only the projected attributes");
    }

    let (status, items, _) = call(&streamer, "consistent=true&segments=2").await;
    assert_eq!((status, items.len()), (200, all));

    // The global index holds every item (all have a status): scanned through the index.
    let (status, items, trailer) = call(&streamer, "index=by-status&segments=2&limit=50").await;
    assert_eq!(status, 200, "{items:?}");
    assert_eq!(keys(&items).len(), all);
    assert!(trailer.expect("trailer").complete);

    // A Query of one partition, paged, with max_items and resumed by cursor.
    let mut got = Vec::new();
    let mut query = "pk=t3&limit=7&max_items=25".to_string();
    loop {
        let (status, items, trailer) = call(&streamer, &query).await;
        assert_eq!(status, 200, "{items:?}");
        let trailer = trailer.expect("trailer");
        assert!(
            items.iter().all(|i| i["tenant"] == "t3"),
            "only the partition asked for"
        );
        got.extend(items);
        match trailer.cursor {
            Some(cursor) => query = format!("cursor={cursor}&limit=7&max_items=25"),
            None => break,
        }
    }
    let expected: Vec<String> = {
        let mut k: Vec<String> = (0..PER_TENANT).map(|n| format!("\"t3\"/{n}")).collect();
        k.sort();
        k
    };
    assert_eq!(keys(&got), expected, "the whole partition, once");

    // A Query on the index, by its own key.
    let (status, items, _) = call(&streamer, "index=by-status&pk=open&limit=1000").await;
    assert_eq!(status, 200, "{items:?}");
    assert_eq!(items.len(), all.div_ceil(3));
    assert!(items.iter().all(|i| i["status"] == "open"));

    // Mistakes found before any Scan: wrong key type, missing index, GSI consistency.
    let (status, body, _) = call(&streamer, "index=nope-index").await;
    assert_eq!(
        (status, body[0]["error"]["code"].as_str()),
        (404, Some("IndexNotFound"))
    );
    let (status, body, _) = call(&streamer, "index=by-status&consistent=true").await;
    assert_eq!(status, 400, "{body:?}");
}

#[tokio::test]
async fn several_invocations_split_one_table() {
    let client = local_client().await;
    let table = seeded_table(&client, "split", 21, 700).await;
    let streamer = streamer(&client, &table).await;
    let mut all = Vec::new();
    for offset in [0, 3, 6, 9] {
        let (status, items, trailer) = call(
            &streamer,
            &format!("total_segments=12&segment_offset={offset}&segments=3&limit=50"),
        )
        .await;
        assert_eq!(status, 200, "{items:?}");
        let trailer = trailer.expect("trailer");
        assert!(trailer.complete);
        let segments: Vec<u32> = trailer.segments.iter().map(|s| s.segment).collect();
        assert_eq!(segments, [offset, offset + 1, offset + 2]);
        all.extend(ids(&items));
    }
    all.sort();
    assert_same_ids(
        &all,
        &expected_ids(21, 700),
        "four invocations cover the table once",
    );
}

/// An index created while the function is warm is found: the cached table description
/// is refreshed when a request names an index it does not hold.
#[tokio::test]
async fn an_index_created_after_the_first_request_is_found() {
    let client = local_client().await;
    let table = seeded_table(&client, "late-index", 5, 50).await;
    let streamer = streamer(&client, &table).await;
    let (status, body, _) = call(&streamer, "index=late-index&pk=x").await;
    assert_eq!(status, 404, "{body:?}");
    assert_eq!(body[0]["error"]["code"], "IndexNotFound");
    add_global_index(
        &client,
        &table,
        "late-index",
        ("id", ScalarAttributeType::S),
        ProjectionType::All,
    )
    .await;
    let id = scanstream::generate::record::record_id(5, 7);
    let (status, items, trailer) = call(&streamer, &format!("index=late-index&pk={id}")).await;
    assert_eq!(status, 200, "{items:?}");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id.as_str());
    assert!(trailer.expect("trailer").complete);
}
