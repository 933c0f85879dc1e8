//! The seeder function's `from=` in process, against the local S3 server and DynamoDB
//! Local: a file that does not fit in one invocation is written in several, each going
//! on `after` the line the last one wrote through, and `max_wcu` holds the write rate.

mod common;

use common::keyed::{keyed_items, keyed_table};
use common::s3::{fresh_bucket, local_s3, put_native_export};
use common::*;
use lambda_http::http::Uri;
use scanstream::lambda::config::{BucketPlace, SeederConfig};
use scanstream::lambda::http::Invocation;
use scanstream::lambda::seeder::Seeder;
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime};

/// A seeder function writing `table` and reading `bucket/imports`.
async fn seeder(ddb: &aws_sdk_dynamodb::Client, table: &str, bucket: &str) -> Seeder {
    let import = BucketPlace {
        location: scanstream::format::location::S3Location::parse(&format!(
            "s3://{bucket}/imports"
        ))
        .expect("location"),
        expected_owner: None,
    };
    let config = SeederConfig {
        table_name: table.to_string(),
        max_count: 100_000,
        concurrency: 4,
        deadline_reserve: Duration::from_millis(1000),
        calls: Default::default(),
        import: Some(import),
        max_wcu: 40_000.0,
    };
    let s3 = scanstream::dynamo::s3::S3::connect(&config.calls).await;
    Seeder::new(
        config,
        scanstream::dynamo::client::Dynamo::from(ddb.clone()),
    )
    .with_bucket(s3.bucket(bucket, None))
}

/// One call: its summary line.
async fn call(seeder: &Seeder, query: &str, deadline: Option<SystemTime>) -> Value {
    let uri: Uri = format!("/?{query}").parse().expect("uri");
    let response = seeder
        .handle(Invocation {
            deadline,
            ..Invocation::get(&uri)
        })
        .await;
    let status = response.status().as_u16();
    let body = body_of(response).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "{text}");
    let last: Value = serde_json::from_str(text.lines().last().expect("summary")).expect("JSON");
    last["summary"].clone()
}

/// The one data file of an export of `items`, and the query that loads it.
async fn one_file(s3: &aws_sdk_s3::Client, bucket: &str, count: u64) -> String {
    let root = put_native_export(
        s3,
        bucket,
        "imports/one",
        "src",
        &keyed_items(91, count),
        100_000,
    )
    .await;
    let manifest = String::from_utf8(
        common::s3::object(s3, bucket, &format!("{root}/manifest-files.json")).await,
    )
    .expect("utf-8");
    let entry: scanstream::format::export::DataFileEntry =
        serde_json::from_str(manifest.lines().next().expect("one file")).expect("entry");
    format!(
        "from=s3://{bucket}/{}&items={}&md5={}",
        entry.data_file_s3_key,
        entry.item_count,
        scanstream::load::object::base64_to_hex(&entry.md5_checksum)
    )
}

/// GIVEN a file of 3,000 items and invocations that each get 1.5 s to check and write
/// it, under a cap of 1,000 write units a second WHEN each call goes on `after` the line the last
/// one wrote through THEN several calls write the file, each moving on, and the table
/// holds exactly its items.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_too_long_for_one_invocation_is_written_in_several() {
    let ddb = local_client().await;
    let s3 = local_s3().await;
    let bucket = fresh_bucket(&s3, "object").await;
    let table = keyed_table(&ddb, "object-after", Vec::new()).await;
    let seeder = seeder(&ddb, &table, &bucket).await;
    let file = one_file(&s3, &bucket, 3000).await;
    let mut after: Option<u64> = None;
    let (mut calls, mut moved) = (0, 0);
    loop {
        calls += 1;
        assert!(calls < 100, "no end in sight");
        let query = match after {
            Some(after) => format!("{file}&max_wcu=1000&after={after}"),
            None => format!("{file}&max_wcu=1000"),
        };
        let summary = call(
            &seeder,
            &query,
            Some(SystemTime::now() + Duration::from_millis(2500)),
        )
        .await;
        assert!(summary["failed"].as_u64() == Some(0), "{summary}");
        if summary["complete"] == true {
            break;
        }
        // A call whose checks took its whole 1.5 s (a loaded machine) moves nothing.
        let through = summary["written_through"].as_u64();
        assert!(through >= after, "never back: {summary}");
        if through > after {
            moved += 1;
        }
        after = through;
    }
    assert!(
        moved >= 1 && calls >= 2,
        "the file took {calls} calls, {moved} moved on"
    );
    let mut want = std::collections::BTreeSet::new();
    let reference = keyed_table(&ddb, "object-want", Vec::new()).await;
    put_items(&ddb, &reference, keyed_items(91, 3000)).await;
    want.extend(table_lines(&ddb, &reference).await);
    assert!(
        table_lines(&ddb, &table).await == want,
        "the table is the file"
    );
}

/// GIVEN a file of 600 items (a write unit each) WHEN it is loaded with max_wcu=200
/// THEN the writes take at least the time the cap allows (less a quarter second saved
/// up and the batches in flight), and the summary reports the units DynamoDB charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_wcu_holds_the_write_rate() {
    let ddb = local_client().await;
    let s3 = local_s3().await;
    let bucket = fresh_bucket(&s3, "object-wcu").await;
    let table = keyed_table(&ddb, "object-wcu", Vec::new()).await;
    let seeder = seeder(&ddb, &table, &bucket).await;
    let file = one_file(&s3, &bucket, 600).await;
    let started = Instant::now();
    let summary = call(&seeder, &format!("{file}&max_wcu=200"), None).await;
    let took = started.elapsed();
    assert_eq!(summary["complete"], true, "{summary}");
    assert_eq!(summary["written"], 600, "{summary}");
    let units = summary["capacity"].as_f64().expect("capacity reported");
    assert!((600.0..=1200.0).contains(&units), "{summary}");
    // Units charged beyond a quarter second saved (50) and four batches in flight.
    let least = (units - 50.0 - 4.0 * 25.0 * units / 600.0) / 200.0;
    assert!(
        took.as_secs_f64() >= least,
        "{units} units in {took:?}: faster than 200 a second allows ({least:.2} s)"
    );
    let bad = call_status(&seeder, &format!("{file}&max_wcu=40001")).await;
    assert_eq!(bad, 400, "over MAX_WCU");
}

async fn call_status(seeder: &Seeder, query: &str) -> u16 {
    let uri: Uri = format!("/?{query}").parse().expect("uri");
    seeder.handle(Invocation::get(&uri)).await.status().as_u16()
}
