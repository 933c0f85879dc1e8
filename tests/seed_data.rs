//! `seed-data/` through the real parts: the seeder binary loads the hard cases with
//! `--from`, the streamer reads them back from DynamoDB Local, byte for byte as the
//! encoder renders the file's items. And the seeder function's deadline hand-over.

mod common;

use common::*;
use lambda_http::http::Uri;
use scanstream::dynamo::source::DynamoSource;
use scanstream::format::json::to_line;
use scanstream::generate::record;
use scanstream::lambda::config::{Config, SeederConfig};
use scanstream::lambda::http::Invocation;
use scanstream::lambda::seeder::Seeder;
use scanstream::lambda::streamer::Streamer;
use scanstream::load::lines as ndjson;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

const HARD_CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/seed-data/hard-cases.ndjson");

async fn stream_lines(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> (BTreeSet<Vec<u8>>, scanstream::format::trailer::Trailer) {
    let config = Config::from_lookup(|name| (name == "TABLE_NAME").then(|| table.to_string()))
        .expect("config");
    let streamer = Streamer::new(
        config,
        DynamoSource::new(
            scanstream::dynamo::client::Dynamo::from(client.clone()),
            table,
        ),
    );
    let (status, body) = get_via_handler(&streamer, "segments=3&limit=2").await;
    assert_eq!(status, 200);
    let (items, trailer) = split_body(&body);
    let lines: BTreeSet<Vec<u8>> = body
        .split_inclusive(|&b| b == b'\n')
        .take(items.len())
        .map(<[u8]>::to_vec)
        .collect();
    (lines, trailer)
}

#[tokio::test]
async fn the_hard_cases_load_and_stream_back_unchanged() {
    let client = local_client().await;
    let table = unique_table("hard");
    let out = seeder(&["--table", &table, "--create-table", "--from", HARD_CASES]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let text = std::fs::read_to_string(HARD_CASES).expect("seed data");
    let parsed = ndjson::parse(&text, record::KEY);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert!(parsed.items.len() >= 9);
    assert!(
        stdout.contains(&format!("written {n} of {n} items", n = parsed.items.len())),
        "{stdout}"
    );
    let expected: BTreeSet<Vec<u8>> = parsed.items.iter().map(|(_, item)| to_line(item)).collect();

    let (got, trailer) = stream_lines(&client, &table).await;
    assert!(trailer.complete);
    let differ: Vec<String> = got
        .symmetric_difference(&expected)
        .map(|l| String::from_utf8_lossy(&l[..l.len().min(200)]).into_owned())
        .collect();
    assert!(differ.is_empty(), "lines that differ: {differ:#?}");
}

#[tokio::test]
async fn a_bad_line_stops_the_load_before_any_write() {
    let client = local_client().await;
    let table = unique_table("badfile");
    let path = std::env::temp_dir().join(format!("{table}.ndjson"));
    std::fs::write(&path, "{\"id\":{\"S\":\"a\"}}\n{\"id\":{\"S\":\"b\"},\"n\":{\"N\":\"x\"}}\n{\"id\":{\"S\":\"c\"}}\n")
        .expect("write file");
    let path = path.to_string_lossy().into_owned();
    let out = seeder(&["--table", &table, "--create-table", "--from", &path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("line 2: n: N must be a number"), "{stderr}");
    assert!(stderr.contains("nothing written"), "{stderr}");
    // The table was not even created: validation comes first.
    let described = client.describe_table().table_name(&table).send().await;
    assert!(described.is_err(), "no table, no writes");

    // Asked to, it writes the valid lines and still reports the bad one.
    let out = seeder(&[
        "--table",
        &table,
        "--create-table",
        "--from",
        &path,
        "--skip-invalid",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("written 2 of 2 items"));
    let (lines, _) = stream_lines(&client, &table).await;
    assert_eq!(lines.len(), 2);
}

#[tokio::test]
async fn the_seeder_function_stops_before_its_deadline_and_says_where_to_go_on() {
    let client = local_client().await;
    let table = unique_table("deadline");
    scanstream::dynamo::table::ensure_table(
        &scanstream::dynamo::client::Dynamo::from(client.clone()),
        &table,
    )
    .await
    .expect("table");
    let config = SeederConfig {
        table_name: table.clone(),
        max_count: 100_000,
        concurrency: 2,
        deadline_reserve: Duration::from_millis(1000),
        calls: Default::default(),
        import: None,
        max_wcu: 40_000.0,
    };
    let seeder = Seeder::new(
        config,
        scanstream::dynamo::client::Dynamo::from(client.clone()),
    );
    let run = |query: String, deadline: Option<SystemTime>| {
        let seeder = &seeder;
        async move {
            let uri: Uri = format!("/?{query}").parse().expect("uri");
            let response = seeder
                .handle(Invocation {
                    deadline,
                    ..Invocation::get(&uri)
                })
                .await;
            assert_eq!(response.status().as_u16(), 200);
            let body = body_of(response).await;
            let text = String::from_utf8_lossy(&body).into_owned();
            let last: Value =
                serde_json::from_str(text.lines().last().expect("summary")).expect("JSON");
            last["summary"].clone()
        }
    };
    // 1.3 s to the deadline, 1 s kept in reserve: only a slice of 50,000 gets written.
    let first = run(
        "count=50000&seed=8".into(),
        Some(SystemTime::now() + Duration::from_millis(1300)),
    )
    .await;
    assert_eq!(first["complete"], false, "{first}");
    let next = first["next_start"].as_u64().expect("next_start");
    assert!(next > 0 && next < 50_000, "{first}");
    assert_eq!(
        first["written"].as_u64(),
        Some(next),
        "everything before next_start is written"
    );
    let rest = run(format!("count={}&seed=8&start={next}", 50_000 - next), None).await;
    assert_eq!(rest["complete"], true, "{rest}");
    assert_eq!(rest["written"].as_u64(), Some(50_000 - next));
}
