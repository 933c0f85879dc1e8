//! The seeder binary against DynamoDB Local, run as a user runs it.

mod common;

use common::*;

async fn count_items(client: &aws_sdk_dynamodb::Client, table: &str) -> i64 {
    let mut total = 0;
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("count scan");
        total += i64::from(page.count);
        start = page.last_evaluated_key;
        if start.is_none() {
            return total;
        }
    }
}

#[tokio::test]
async fn writes_as_many_items_as_asked_and_reseeding_overwrites() {
    let client = local_client().await;
    let table = unique_table("cli");
    let run = |extra: &[&str]| {
        let mut args = vec!["--table", &table, "--create-table"];
        args.extend_from_slice(extra);
        seeder(&args)
    };
    let out = run(&["--count", "1234", "--seed", "3", "--concurrency", "8"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("written 1234 of 1234 items"), "{stdout}");
    assert_eq!(count_items(&client, &table).await, 1234);

    // Same seed again: the same ids, so the table does not grow. A later start adds.
    assert!(run(&["--count", "1234", "--seed", "3"]).status.success());
    assert_eq!(count_items(&client, &table).await, 1234);
    assert!(
        run(&["--count", "100", "--seed", "3", "--start", "1234"])
            .status
            .success()
    );
    assert_eq!(count_items(&client, &table).await, 1334);
}

#[tokio::test]
async fn a_missing_table_fails_with_a_nonzero_exit_and_the_keys() {
    local_client().await;
    let table = unique_table("absent");
    let out = seeder(&["--table", &table, "--count", "30", "--max-attempts", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must fail: {stderr}");
    assert!(stderr.contains("30 items not written"), "{stderr}");
    assert!(
        stderr.contains(&scanstream::generate::record::record_id(42, 0)),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_are_rejected_before_any_work() {
    for args in [
        &["--table", "t"][..],
        &["--table", "t", "--count", "x"],
        &["--table", "t", "--count", "5", "--concurrency", "0"],
    ] {
        let out = seeder(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
