//! A source table keyed `pk` (S) + `sk` (N), for the export tests: any table, not our own
//! `id` key.

use super::{table_lines, unique_table, write_batches};
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
