//! A source table keyed `pk` (S) + `sk` (N), for the export tests: any table, not our own
//! `id` key.

use super::{table_lines, unique_table, write_batches};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, StreamSpecification, StreamViewType};
use rand::{RngExt, SeedableRng};
use scanstream::format::item::{Item, Value};
use scanstream::format::key::KeySchema;

/// The key schema of [`source_table`].
pub const KEY: &str = "pk:S,sk:N";

/// Seeder records keyed `pk` (S) + `sk` (N), seven to a partition.
pub fn keyed_items(seed: u64, count: u64) -> Vec<Item> {
    (0..count)
        .map(|i| {
            let mut item = scanstream::generate::record::record(seed, i);
            item.remove("id");
            item.insert("pk".into(), Value::S(format!("p{}", i / 7)));
            item.insert("sk".into(), Value::N(format!("{}.5", i % 7)));
            item
        })
        .collect()
}

/// A new table keyed `KEY` holding `count` items; its canonical lines.
pub async fn source_table(
    ddb: &aws_sdk_dynamodb::Client,
    prefix: &str,
    seed: u64,
    count: u64,
) -> (String, std::collections::BTreeSet<Vec<u8>>) {
    let schema = KeySchema::parse(KEY).expect("schema");
    let table = unique_table(prefix);
    scanstream::dynamo::table::ensure_table_keyed(
        &scanstream::dynamo::client::Dynamo::from(ddb.clone()),
        &table,
        &schema,
    )
    .await
    .expect("source table");
    let items = keyed_items(seed, count);
    write_batches(ddb, &table, items.chunks(25).map(<[_]>::to_vec)).await;
    let lines = table_lines(ddb, &table).await;
    assert_eq!(lines.len() as u64, count);
    (table, lines)
}

/// A new table keyed `KEY` holding `items` (none: empty).
pub async fn keyed_table(ddb: &aws_sdk_dynamodb::Client, prefix: &str, items: Vec<Item>) -> String {
    let table = unique_table(prefix);
    scanstream::dynamo::table::ensure_table_keyed(
        &scanstream::dynamo::client::Dynamo::from(ddb.clone()),
        &table,
        &KeySchema::parse(KEY).expect("schema"),
    )
    .await
    .expect("table");
    if !items.is_empty() {
        super::put_items(ddb, &table, items).await;
    }
    table
}

/// Turns the table's stream on (or off, with `None`).
pub async fn set_stream(client: &Client, table: &str, view: Option<StreamViewType>) {
    let specification = match view {
        Some(view) => StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(view)
            .build(),
        None => StreamSpecification::builder().stream_enabled(false).build(),
    }
    .expect("specification");
    client
        .update_table()
        .table_name(table)
        .stream_specification(specification)
        .send()
        .await
        .expect("UpdateTable");
}

pub fn key(pk: u32, sk: u32) -> [(String, AttributeValue); 2] {
    [
        ("pk".to_string(), AttributeValue::S(format!("p{pk}"))),
        ("sk".to_string(), AttributeValue::N(format!("{sk}.5"))),
    ]
}

/// `count` random puts, updates and deletes over a pool of `pool.0` partitions of `pool.1`
/// sort keys each, keyed as [`keyed_items`] keys: half puts, a third updates, the rest deletes.
pub async fn random_writes(
    client: &Client,
    table: &str,
    seed: u64,
    count: usize,
    pool: (u32, u32),
) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for i in 0..count {
        let (pk, sk) = (rng.random_range(0..pool.0), rng.random_range(0..pool.1));
        match rng.random_range(0..10) {
            0..=4 => {
                let mut item: std::collections::HashMap<_, _> = key(pk, sk).into_iter().collect();
                item.insert("n".into(), AttributeValue::N(i.to_string()));
                item.insert(
                    "s".into(),
                    AttributeValue::Ss(vec![format!("v{i}"), "w".into()]),
                );
                client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(item))
                    .send()
                    .await
                    .expect("put");
            }
            5..=7 => {
                client
                    .update_item()
                    .table_name(table)
                    .set_key(Some(key(pk, sk).into_iter().collect()))
                    .update_expression("ADD c :one")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .send()
                    .await
                    .expect("update");
            }
            _ => {
                client
                    .delete_item()
                    .table_name(table)
                    .set_key(Some(key(pk, sk).into_iter().collect()))
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
}
