//! Helpers shared by the integration tests: the DynamoDB Local client, fresh tables, and
//! seeding. A test that needs DynamoDB Local fails with a clear message when it is not
//! running; it never skips.

#![allow(dead_code)]

pub mod emulator;
pub mod faults;
pub mod keyed;
pub mod relay;
pub mod run;
pub mod s3;
pub mod services;
pub mod stall;
pub mod stub;

use aws_sdk_dynamodb::Client;
use scanstream::dynamo::table;
use scanstream::dynamo::writer::BatchWriter;
use scanstream::format::item::Item;
use scanstream::generate::generated_batches;
use scanstream::generate::record;
use std::sync::atomic::{AtomicU32, Ordering};

/// The client for DynamoDB Local, as `scripts/test.sh` points it there.
pub async fn local_client() -> Client {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://localhost:"),
        "AWS_ENDPOINT_URL_DYNAMODB must point at DynamoDB Local (got {endpoint:?}); \
         run the tests with scripts/test.sh, which starts it"
    );
    let client = scanstream::dynamo::client::dynamodb(&Default::default()).await;
    if let Err(err) = client.list_tables().limit(1).send().await {
        panic!("DynamoDB Local at {endpoint} does not answer: {err:?}");
    }
    client
}

/// A key attribute: its name and type.
pub type KeyAttr<'a> = (&'a str, aws_sdk_dynamodb::types::ScalarAttributeType);

/// A global index: its name, partition key and sort key; it projects everything.
pub type Index<'a> = (&'a str, KeyAttr<'a>, Option<KeyAttr<'a>>);

/// Creates `table` on demand, keyed `hash` (and `range`), with `indexes`.
pub async fn create_keyed_table(
    client: &Client,
    table: &str,
    hash: KeyAttr<'_>,
    range: Option<KeyAttr<'_>>,
    indexes: &[Index<'_>],
) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType,
    };
    let key = |(name, _): &KeyAttr<'_>, kind| {
        KeySchemaElement::builder()
            .attribute_name(*name)
            .key_type(kind)
            .build()
            .expect("key")
    };
    let keys = |hash: &KeyAttr<'_>, range: &Option<KeyAttr<'_>>| {
        std::iter::once(key(hash, KeyType::Hash))
            .chain(range.iter().map(|range| key(range, KeyType::Range)))
            .collect::<Vec<_>>()
    };
    // Every key attribute once, the table's and the indexes'.
    let mut attributes: Vec<&KeyAttr<'_>> = Vec::new();
    for attribute in std::iter::once(&hash).chain(range.as_ref()).chain(
        indexes
            .iter()
            .flat_map(|(_, h, r)| std::iter::once(h).chain(r.as_ref())),
    ) {
        if !attributes.iter().any(|seen| seen.0 == attribute.0) {
            attributes.push(attribute);
        }
    }
    let mut create = client
        .create_table()
        .table_name(table)
        .set_key_schema(Some(keys(&hash, &range)))
        .billing_mode(BillingMode::PayPerRequest);
    for (name, kind) in attributes {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(*name)
                .attribute_type(kind.clone())
                .build()
                .expect("attribute"),
        );
    }
    for (name, hash, range) in indexes {
        create = create.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(*name)
                .set_key_schema(Some(keys(hash, range)))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("index"),
        );
    }
    create.send().await.expect("create table");
}

/// Adds a global index `name` keyed `hash` to the existing `table`, projecting `projection`.
pub async fn add_global_index(
    client: &Client,
    table: &str,
    name: &str,
    (hash, kind): KeyAttr<'_>,
    projection: aws_sdk_dynamodb::types::ProjectionType,
) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate,
        KeySchemaElement, KeyType, Projection,
    };
    client
        .update_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(hash)
                .attribute_type(kind)
                .build()
                .expect("attribute"),
        )
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .create(
                    CreateGlobalSecondaryIndexAction::builder()
                        .index_name(name)
                        .key_schema(
                            KeySchemaElement::builder()
                                .attribute_name(hash)
                                .key_type(KeyType::Hash)
                                .build()
                                .expect("key"),
                        )
                        .projection(Projection::builder().projection_type(projection).build())
                        .build()
                        .expect("index"),
                )
                .build(),
        )
        .send()
        .await
        .expect("create the index");
}

/// A table name no other test (or earlier run against the same database) uses.
pub fn unique_table(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// Creates a fresh table and seeds it with `count` generated records of `seed`.
pub async fn seeded_table(client: &Client, prefix: &str, seed: u64, count: u64) -> String {
    let name = unique_table(prefix);
    table::ensure_table(
        &scanstream::dynamo::client::Dynamo::from(client.clone()),
        &name,
    )
    .await
    .expect("create table");
    write_batches(client, &name, generated_batches(seed, 0, count)).await;
    name
}

/// A new table of `count` seeder records of seed `seed`, each padded to about `size`
/// bytes (DynamoDB's measure): items whose read cost is known, for read-rate tests.
pub async fn sized_table(
    client: &Client,
    prefix: &str,
    seed: u64,
    count: u64,
    size: usize,
) -> String {
    let name = unique_table(prefix);
    table::ensure_table(
        &scanstream::dynamo::client::Dynamo::from(client.clone()),
        &name,
    )
    .await
    .expect("create table");
    let batches = scanstream::generate::sized_batches(seed, 0, count, Some(size));
    write_batches(client, &name, batches).await;
    name
}

/// Writes batches of items and insists that all of them were written.
pub async fn write_batches(
    client: &Client,
    table: &str,
    batches: impl IntoIterator<Item = Vec<Item>>,
) {
    let report = BatchWriter::new(
        scanstream::dynamo::client::Dynamo::from(client.clone()),
        table,
        record::KEY,
    )
    .concurrency(4)
    .write_all(batches, |_| {})
    .await;
    assert!(report.is_complete(), "seeding {table} failed: {report:?}");
}

/// Writes `items` with the SDK's own BatchWriteItem, 25 a call, and insists that every one
/// was processed (DynamoDB Local never throttles): test data that does not pass through
/// the writer under test.
pub async fn put_items(client: &Client, table: &str, items: Vec<Item>) {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    for batch in items.chunks(25) {
        let requests = batch
            .iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(
                        scanstream::dynamo::convert::attributes(item.clone()).expect("sendable"),
                    ))
                    .build()
                    .expect("put");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        let out = client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .expect("write");
        assert!(
            out.unprocessed_items.is_none_or(|u| u.is_empty()),
            "DynamoDB Local never throttles"
        );
    }
}

/// Splits an NDJSON body into its item lines and its last line, which must be a trailer.
pub fn split_body(body: &[u8]) -> (Vec<serde_json::Value>, scanstream::format::trailer::Trailer) {
    scanstream::format::trailer::split_body(body).unwrap_or_else(|err| {
        let tail = &body[body.len().saturating_sub(300)..];
        panic!("{err}; the body ends: {}", String::from_utf8_lossy(tail))
    })
}

/// The `id` of every item, sorted, duplicates kept (so a duplicate shows).
pub fn ids(items: &[serde_json::Value]) -> Vec<String> {
    let mut ids: Vec<String> = items
        .iter()
        .map(|item| item["id"].as_str().expect("id is a string").to_string())
        .collect();
    ids.sort();
    ids
}

/// The ids `seed` generates for indexes `0..count`, sorted.
pub fn expected_ids(seed: u64, count: u64) -> Vec<String> {
    let mut ids: Vec<String> = (0..count).map(|i| record::record_id(seed, i)).collect();
    ids.sort();
    ids
}

/// Asserts two sorted id lists are equal, reporting counts and a few differences rather
/// than thousands of ids.
pub fn assert_same_ids(got: &[String], expected: &[String], context: &str) {
    if got == expected {
        return;
    }
    let got_set: std::collections::BTreeSet<&String> = got.iter().collect();
    let want_set: std::collections::BTreeSet<&String> = expected.iter().collect();
    let missing: Vec<&&String> = want_set.difference(&got_set).take(5).collect();
    let extra: Vec<&&String> = got_set.difference(&want_set).take(5).collect();
    panic!(
        "{context}: got {} ids ({} distinct), expected {}; missing e.g. {missing:?}; unexpected e.g. {extra:?}",
        got.len(),
        got_set.len(),
        expected.len()
    );
}

/// A whole response body, collected.
pub async fn body_of(
    response: lambda_http::http::Response<scanstream::lambda::http::ResponseBody>,
) -> bytes::Bytes {
    use http_body_util::BodyExt;
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

/// `GET /?query` through the streamer's own handler (no Lambda): status and body.
pub async fn get_via_handler<S: scanstream::dynamo::source::PageSource>(
    streamer: &scanstream::lambda::streamer::Streamer<S>,
    query: &str,
) -> (u16, bytes::Bytes) {
    let uri: lambda_http::http::Uri = format!("/?{query}").parse().expect("uri");
    let invocation = scanstream::lambda::http::Invocation::get(&uri);
    let response = streamer.handle(invocation).await;
    let status = response.status().as_u16();
    (status, body_of(response).await)
}

/// Every item of `table`, read with the SDK's own paginated Scan, each as its canonical
/// line (keys and set members sorted): equal sets mean equal tables, item for item.
pub async fn table_lines(client: &Client, table: &str) -> std::collections::BTreeSet<Vec<u8>> {
    let items: Vec<_> = client
        .scan()
        .table_name(table)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap_or_else(|err| panic!("scanning {table}: {err:?}"));
    items
        .into_iter()
        .map(|item| scanstream::format::json::to_line(&scanstream::dynamo::convert::item(item)))
        .collect()
}

/// Every item a Query returns, read with the SDK's own paginator and moved into the
/// library's items: what the streamer's Query is compared with.
pub async fn query_items(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> Vec<Item> {
    let items: Vec<_> = query
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("SDK query");
    items
        .into_iter()
        .map(scanstream::dynamo::convert::item)
        .collect()
}

/// Runs the seeder binary with `args`, nothing on its standard input.
pub fn seeder(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_seeder"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("seeder runs")
}

/// Runs the seeder binary with `args`, `stdin` as its standard input.
pub fn seeder_with_input(args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_seeder"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("seeder runs");
    let mut input = child.stdin.take().expect("stdin");
    // A seeder that refuses early may close its input: that is its answer, not an error.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("seeder ends")
}

/// The environment a function under the emulator needs to reach DynamoDB Local's `table`,
/// as `scripts/test.sh` set it for the tests.
pub fn function_env(table: &str) -> Vec<(&'static str, String)> {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    vec![
        ("TABLE_NAME", table.to_string()),
        (
            "AWS_ENDPOINT_URL_DYNAMODB",
            var("AWS_ENDPOINT_URL_DYNAMODB"),
        ),
        ("AWS_REGION", var("AWS_REGION")),
        ("AWS_ACCESS_KEY_ID", var("AWS_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY", var("AWS_SECRET_ACCESS_KEY")),
        ("RUST_LOG", "info".to_string()),
    ]
}

/// [`function_env`], but the functions reach DynamoDB Local through `dynamodb`: a proxy
/// in front of it.
pub fn function_env_via(table: &str, dynamodb: &str) -> Vec<(&'static str, String)> {
    let mut env = function_env(table);
    for (name, value) in &mut env {
        if *name == "AWS_ENDPOINT_URL_DYNAMODB" {
            *value = dynamodb.to_string();
        }
    }
    env
}
