//! A table copied as users copy one: the streamer under the real `cargo lambda watch`,
//! its `format=dynamodb` body piped as it arrives into the real seeder binary reading
//! standard input (`curl '...?format=dynamodb' | seeder --from -`), for tables that are
//! not keyed `id`: `pk` (N), and `pk` (S) + `sk` (N). Compared item for item.

mod common;

use common::emulator::Emulator;
use common::*;
use scanstream::format::item::Item;
use scanstream::format::item::Value;
use scanstream::format::key::KeySchema;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Seeder records re-keyed by `schema`.
fn keyed_items(count: u64, range: bool) -> Vec<Item> {
    (0..count)
        .map(|i| {
            let mut item = scanstream::generate::record::record(21, i);
            item.remove("id");
            if range {
                item.insert("pk".into(), Value::S(format!("p{}", i / 7)));
                item.insert("sk".into(), Value::N(format!("{}.5", i % 7)));
            } else {
                item.insert("pk".into(), Value::N(format!("{i}e3")));
            }
            item
        })
        .collect()
}

/// GETs `url` and pipes each chunk of the body into `seeder args` as it arrives.
async fn pipe_into_seeder(url: &str, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seeder"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("seeder runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .expect("http client");
    let mut response = http.get(url).send().await.expect("request");
    assert_eq!(response.status().as_u16(), 200);
    while let Some(chunk) = response.chunk().await.expect("body") {
        stdin.write_all(&chunk).expect("seeder reads");
    }
    drop(stdin);
    child.wait_with_output().expect("seeder ends")
}

#[tokio::test]
async fn tables_keyed_pk_n_and_pk_s_sk_n_copy_through_the_emulator_item_for_item() {
    let ddb = local_client().await;
    for (key, range) in [("pk:N", false), ("pk:S,sk:N", true)] {
        let schema = KeySchema::parse(key).expect("schema");
        let source = unique_table("copy-key-src");
        scanstream::dynamo::table::ensure_table_keyed(
            &scanstream::dynamo::client::Dynamo::from(ddb.clone()),
            &source,
            &schema,
        )
        .await
        .expect("source table");
        let items = keyed_items(3000, range);
        write_batches(&ddb, &source, items.chunks(25).map(<[_]>::to_vec)).await;
        let expected = table_lines(&ddb, &source).await;
        assert_eq!(expected.len(), 3000);

        let emulator = Emulator::start(
            &format!("copy-{}", if range { "range" } else { "hash" }),
            &function_env(&source),
        );
        let copy = unique_table("copy-key-dst");
        for compress in ["none", "zstd"] {
            let url = emulator.url(
                "streamer",
                &format!("compress={compress}&format=dynamodb&limit=100&segments=4"),
            );
            let out = pipe_into_seeder(
                &url,
                &[
                    "--table",
                    &copy,
                    "--from",
                    "-",
                    "--create-table",
                    "--key",
                    key,
                ],
            )
            .await;
            assert!(
                out.status.success(),
                "{key} {compress}: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                emulator.log_text()
            );
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("written 3000 of 3000 items"),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
            let copied = table_lines(&ddb, &copy).await;
            assert!(
                copied == expected,
                "{key} {compress}: the copy differs from the source"
            );
        }
        let described = scanstream::dynamo::schema::describe_keys(
            &scanstream::dynamo::client::Dynamo::from(ddb.clone()),
            &copy,
        )
        .await
        .expect("describe");
        assert_eq!(described, schema, "created with the key asked for");

        // A body cut short: what arrived is written, and the exit says the copy is not whole.
        let url = emulator.url(
            "streamer",
            "format=dynamodb&limit=100&segments=2&max_items=500",
        );
        let partial = unique_table("copy-key-part");
        let out = pipe_into_seeder(
            &url,
            &[
                "--table",
                &partial,
                "--from",
                "-",
                "--create-table",
                "--key",
                key,
            ],
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("complete:false") && stderr.contains("500 items were written"),
            "{stderr}"
        );
        assert_eq!(table_lines(&ddb, &partial).await.len(), 500);
    }
}
