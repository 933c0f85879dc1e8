//! What a load says when DynamoDB refuses something, against DynamoDB Local: a batch
//! refused half way is reported with DynamoDB's error, the batch's keys and the count
//! written (not as a changed file); a line that breaks an index key refuses the file
//! whole; and DynamoDB's code and message are printed once, without the SDK's debug form.

mod common;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType,
};
use common::*;
use scanstream::dynamo::writer::{BatchWriter, WriteReport};
use scanstream::format::error::ErrorKind;
use scanstream::format::key::KeySchema;
use scanstream::load::input::Source;
use scanstream::load::{LoadOptions, Observer};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn seeder(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_seeder"))
        .args(args)
        // Warnings log the SDK's error in full, by design: only the error line is judged.
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("seeder runs")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn temp(name: &str, lines: &[String]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("load-refusals");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, lines.concat()).expect("file");
    path
}

/// Line `i` of a file keyed `pk` (S): `k0000`, `k0001`, ...
fn line(i: usize, extra: &str) -> String {
    format!("{{\"pk\":{{\"S\":\"k{i:04}\"}},\"n\":{{\"N\":\"{i}\"}}{extra}}}\n")
}

async fn count(client: &aws_sdk_dynamodb::Client, table: &str) -> usize {
    table_lines(client, table).await.len()
}

/// Runs `then` once, after the first batch is written. The writer has one batch in
/// flight, so the next batch is sent only after `then` returns.
struct AfterFirstBatch<F: FnMut()>(Option<F>);

impl<F: FnMut()> Observer for AfterFirstBatch<F> {
    fn start(&mut self, _total: Option<u64>, _resumed: u64) {}

    fn written(&mut self, _report: &WriteReport) {
        if let Some(mut then) = self.0.take() {
            then();
        }
    }
}

fn options(table: &str, path: PathBuf) -> LoadOptions {
    LoadOptions {
        table: table.to_string(),
        source: Source::File(path),
        skip_invalid: false,
        allow_incomplete: false,
        checkpoint: None,
        key: None,
        create_table: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_dynamodb_refuses_is_reported_with_its_error_keys_and_count() {
    let client = local_client().await;
    let table = unique_table("refused");
    let keyed = |spec: &str| KeySchema::parse(spec).expect("key");
    scanstream::dynamo::table::ensure_table_keyed(
        &scanstream::dynamo::client::Dynamo::from(client.clone()),
        &table,
        &keyed("pk:S"),
    )
    .await
    .expect("table");
    let lines: Vec<String> = (0..400).map(|i| line(i, "")).collect();
    let path = temp(&format!("{table}.ndjson"), &lines);
    // After the first batch the table is made anew, keyed by another attribute: DynamoDB
    // refuses every later batch (ValidationException: the key is missing), a refusal no
    // retry mends, as AccessDenied would be.
    let rekey = || {
        let (client, table) = (client.clone(), table.clone());
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                client
                    .delete_table()
                    .table_name(&table)
                    .send()
                    .await
                    .expect("delete");
                scanstream::dynamo::table::ensure_table_keyed(
                    &scanstream::dynamo::client::Dynamo::from(client.clone()),
                    &table,
                    &keyed("other:S"),
                )
                .await
                .expect("table keyed otherwise");
            });
        });
    };
    let writer = BatchWriter::new(
        scanstream::dynamo::client::Dynamo::from(client.clone()),
        &table,
        "pk",
    )
    .concurrency(1);
    let outcome = scanstream::load::run(
        &scanstream::dynamo::client::Dynamo::from(client.clone()),
        writer,
        &options(&table, path),
        &mut AfterFirstBatch(Some(rekey)),
    )
    .await
    .expect("a refused write is the writer's report, not a refused load");
    let report = &outcome.report;
    assert_eq!(outcome.requested, 400);
    assert_eq!((report.written, report.failed), (25, 25), "{report:?}");
    assert_eq!(report.error, Some(ErrorKind::InvalidRequest), "{report:?}");
    let detail = report.error_detail.as_deref().unwrap_or_default();
    assert!(
        detail.starts_with("DynamoDB rejected the request: ValidationException: ")
            && detail.contains("keys")
            && !detail.contains("Error {"),
        "{detail}"
    );
    let keys: Vec<String> = (25..50).map(|i| format!("k{i:04}")).collect();
    assert_eq!(report.failed_keys, keys, "the refused batch's keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_grows_while_it_is_written_is_said_to_have_changed() {
    let client = local_client().await;
    let table = unique_table("grown");
    let schema = KeySchema::parse("pk:S").expect("key");
    scanstream::dynamo::table::ensure_table_keyed(
        &scanstream::dynamo::client::Dynamo::from(client.clone()),
        &table,
        &schema,
    )
    .await
    .expect("table");
    let lines: Vec<String> = (0..400).map(|i| line(i, "")).collect();
    let path = temp(&format!("{table}.ndjson"), &lines);
    let appended = path.clone();
    let grow = move || {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&appended)
            .expect("open to append");
        file.write_all(line(400, "").as_bytes()).expect("append");
    };
    let writer = BatchWriter::new(
        scanstream::dynamo::client::Dynamo::from(client.clone()),
        &table,
        "pk",
    )
    .concurrency(1);
    let err = scanstream::load::run(
        &scanstream::dynamo::client::Dynamo::from(client.clone()),
        writer,
        &options(&table, path),
        &mut AfterFirstBatch(Some(grow)),
    )
    .await
    .expect_err("a file that changed is refused");
    let text = err.to_string();
    assert!(
        text.contains("changed while it was loaded")
            && text.contains("400 valid and 0 bad lines when checked, 401 and 0 when written"),
        "{text}"
    );
}

/// A table keyed `pk` (S) and `sk` (N) with a global index on `email` (S) and a local one
/// sorted by `tag` (S).
async fn indexed_table(client: &aws_sdk_dynamodb::Client) -> String {
    let table = unique_table("indexed");
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key element")
    };
    let attribute = |name: &str, kind| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .expect("attribute")
    };
    let all = Projection::builder()
        .projection_type(ProjectionType::All)
        .build();
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attribute("pk", ScalarAttributeType::S))
        .attribute_definitions(attribute("sk", ScalarAttributeType::N))
        .attribute_definitions(attribute("email", ScalarAttributeType::S))
        .attribute_definitions(attribute("tag", ScalarAttributeType::S))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_email")
                .key_schema(key("email", KeyType::Hash))
                .projection(all.clone())
                .build()
                .expect("gsi"),
        )
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("by_tag")
                .key_schema(key("pk", KeyType::Hash))
                .key_schema(key("tag", KeyType::Range))
                .projection(all)
                .build()
                .expect("lsi"),
        )
        .send()
        .await
        .expect("create the indexed table");
    table
}

#[tokio::test]
async fn a_late_line_that_breaks_an_index_key_refuses_the_file_whole() {
    let client = local_client().await;
    // Every fifth line leaves the indexes out (a sparse index takes that).
    let good = |i: usize| {
        if i.is_multiple_of(5) {
            line(i, r#","sk":{"N":"1"}"#)
        } else {
            line(
                i,
                &format!(r#","sk":{{"N":"1"}},"email":{{"S":"u{i}@x"}},"tag":{{"S":"t{i}"}}"#),
            )
        }
    };
    let long = "x".repeat(2049);
    let longer_tag = "x".repeat(1025);
    for (breaking, says) in [
        (
            r#","email":{"S":""}"#.to_string(),
            r#"hash key attribute "email" of index "by_email" must not be empty"#,
        ),
        (
            r#","email":{"N":"5"}"#.to_string(),
            r#"hash key attribute "email" of index "by_email" must be of type S"#,
        ),
        (
            format!(r#","email":{{"S":"{long}"}}"#),
            r#"hash key attribute "email" of index "by_email" is over 2048 bytes"#,
        ),
        (
            format!(r#","tag":{{"S":"{longer_tag}"}}"#),
            r#"range key attribute "tag" of index "by_tag" is over 1024 bytes"#,
        ),
    ] {
        let table = indexed_table(&client).await;
        let mut lines: Vec<String> = (0..300).map(good).collect();
        lines[279] = line(279, &format!(r#","sk":{{"N":"1"}}{breaking}"#));
        let path = temp(&format!("{table}.ndjson"), &lines);
        let out = seeder(&["--table", &table, "--from", &path.to_string_lossy()]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{says}: must fail: {err}");
        assert!(err.contains(&format!("line 280: {says}")), "{says}: {err}");
        assert!(err.contains("nothing written"), "{says}: {err}");
        assert_eq!(count(&client, &table).await, 0, "{says}: {err}");
    }
    // Without the bad line, the file loads whole, sparse lines included.
    let table = indexed_table(&client).await;
    let lines: Vec<String> = (0..300).map(good).collect();
    let path = temp(&format!("{table}.ndjson"), &lines);
    let out = seeder(&["--table", &table, "--from", &path.to_string_lossy()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(&client, &table).await, 300);
}

#[tokio::test]
async fn a_request_dynamodb_refuses_prints_its_code_and_message_once() {
    local_client().await;
    let path = temp("one.ndjson", &[line(0, "")]);
    // A table name of two characters: DynamoDB refuses it (at least three).
    for args in [
        &["--table", "ab", "--from", &path.to_string_lossy()][..],
        &["--table", "ab", "--count", "3", "--create-table"],
    ] {
        let out = seeder(args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}: {err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: ")
                && last.contains(
                    ": InvalidRequest: DynamoDB rejected the request: ValidationException: "
                )
                && last.matches("DynamoDB rejected the request").count() == 1
                && last.matches("ValidationException").count() == 1,
            "{args:?}: {last}"
        );
        for debug in [
            "Error {",
            "service error",
            "unhandled error",
            "aws_request_id",
        ] {
            assert!(!err.contains(debug), "{args:?}: {err}");
        }
    }
}
