//! The batch writer against mocked DynamoDB responses: the faults DynamoDB Local never
//! produces (`UnprocessedItems`, throttling). Time is paused, so backoff costs nothing real.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::batch_write_item::{
    BatchWriteItemError, BatchWriteItemInput, BatchWriteItemOutput,
};
use aws_sdk_dynamodb::types::WriteRequest;
use aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use scanstream::dynamo::writer::BatchWriter;
use scanstream::format::backoff::Backoff;
use scanstream::format::error::ErrorKind;
use scanstream::generate::generated_batches;
use scanstream::generate::record;
use std::collections::HashSet;
use std::time::Duration;

const TABLE: &str = "mocked";

fn sent(input: &BatchWriteItemInput) -> Vec<WriteRequest> {
    input
        .request_items()
        .and_then(|tables| tables.get(TABLE))
        .cloned()
        .unwrap_or_default()
}

fn unprocessed(requests: Vec<WriteRequest>) -> BatchWriteItemOutput {
    let mut output = BatchWriteItemOutput::builder();
    if !requests.is_empty() {
        output = output.unprocessed_items(TABLE, requests);
    }
    output.build()
}

fn writer(client: Client, max_attempts: u32) -> BatchWriter {
    BatchWriter::new(
        scanstream::dynamo::client::Dynamo::from(client),
        TABLE,
        record::KEY,
    )
    .concurrency(3)
    .backoff(Backoff {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(500),
        max_attempts,
    })
}

#[tokio::test(start_paused = true)]
async fn unprocessed_items_are_resent_until_written() {
    // Any call with more than five puts gets its last three handed back unprocessed.
    let rule = mock!(Client::batch_write_item).then_compute_output(|input| {
        let requests = sent(input);
        let back = if requests.len() > 5 {
            requests[requests.len() - 3..].to_vec()
        } else {
            vec![]
        };
        unprocessed(back)
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]);
    let report = writer(client, 5)
        .write_all(generated_batches(9, 0, 110), |_| {})
        .await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.written, 110, "count written equals count asked");
    assert_eq!(report.batches, 5);
    assert_eq!(
        report.unprocessed_resent,
        5 * 3,
        "three re-sent from each batch"
    );
    assert_eq!(report.retries, 5);
    assert_eq!(rule.num_calls(), 10);
}

#[tokio::test(start_paused = true)]
async fn items_never_processed_are_reported_by_key() {
    let rule =
        mock!(Client::batch_write_item).then_compute_output(|input| unprocessed(sent(input)));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]);
    let started = tokio::time::Instant::now();
    let report = writer(client, 4)
        .write_all(generated_batches(3, 100, 30), |_| {})
        .await;
    assert!(!report.is_complete());
    assert_eq!(report.written, 0);
    assert_eq!(report.error, Some(ErrorKind::Throttled));
    // Four calls per batch, three of them re-sends of the 15 items handed back.
    assert_eq!(report.unprocessed_resent, 2 * 3 * 15);
    assert_eq!(report.first_unfinished, Some(0));
    let failed: HashSet<String> = report.failed_keys.iter().cloned().collect();
    let asked: HashSet<String> = (100..130).map(|i| record::record_id(3, i)).collect();
    assert_eq!(failed, asked, "every unwritten item is named");
    assert_eq!(rule.num_calls(), 2 * 4, "two batches, four attempts each");
    // Full jitter never waits longer than the capped ceilings: 20 + 40 + 80 ms per batch.
    assert!(
        started.elapsed() <= Duration::from_millis(140),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn throttled_batches_are_retried() {
    let throttled = || {
        BatchWriteItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .meta(
                    ErrorMetadata::builder()
                        .code("ProvisionedThroughputExceededException")
                        .build(),
                )
                .build(),
        )
    };
    let rule = mock!(Client::batch_write_item)
        .sequence()
        .error(throttled)
        .times(4)
        .output(|| unprocessed(vec![]))
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule], |config| {
        // Leave every retry to the writer, so its counts are exact.
        config.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
    });
    let report = writer(client, 10)
        .concurrency(1)
        .write_all(generated_batches(5, 0, 50), |_| {})
        .await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.written, 50);
    assert_eq!(report.retries, 4);
    assert_eq!(rule.num_calls(), 6);
}

#[test]
fn backoff_doubles_up_to_its_cap_and_jitters_below_it() {
    let backoff = Backoff {
        base: Duration::from_millis(10),
        cap: Duration::from_millis(100),
        max_attempts: 10,
    };
    let ceilings: Vec<u128> = (1..=6).map(|r| backoff.ceiling(r).as_millis()).collect();
    assert_eq!(ceilings, [10, 20, 40, 80, 100, 100]);
    assert_eq!(
        backoff.ceiling(1000),
        Duration::from_millis(100),
        "no overflow"
    );
    let delays: Vec<Duration> = (0..200).map(|_| backoff.delay(4)).collect();
    assert!(delays.iter().all(|d| *d <= Duration::from_millis(80)));
    let distinct: HashSet<Duration> = delays.into_iter().collect();
    assert!(distinct.len() > 50, "delays are spread, not fixed");
}

fn internal_error() -> BatchWriteItemError {
    BatchWriteItemError::generic(
        ErrorMetadata::builder()
            .code("InternalServerError")
            .message("try again")
            .build(),
    )
}

#[tokio::test(start_paused = true)]
async fn a_batch_that_runs_out_of_attempts_reports_its_last_error_kind() {
    let rule = mock!(Client::batch_write_item).then_error(internal_error);
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule], |config| {
        config.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
    });
    let report = writer(client, 3)
        .write_all(generated_batches(1, 0, 25), |_| {})
        .await;
    assert_eq!(report.error, Some(ErrorKind::Unavailable), "{report:?}");
    assert_eq!(report.failed_keys.len(), 25);
    assert_eq!(
        report.unprocessed_resent, 0,
        "nothing came back unprocessed"
    );
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn under_throttling_the_writer_stops_at_its_deadline_and_says_where_to_go_on() {
    // Every call throttled; backoff that would run for many seconds per batch.
    let rule =
        mock!(Client::batch_write_item).then_compute_output(|input| unprocessed(sent(input)));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]);
    let writer = BatchWriter::new(
        scanstream::dynamo::client::Dynamo::from(client),
        TABLE,
        record::KEY,
    )
    .concurrency(4)
    .backoff(Backoff {
        base: Duration::from_millis(400),
        cap: Duration::from_secs(5),
        max_attempts: 20,
    });
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(3);
    let report = writer
        .write_until(generated_batches(7, 1000, 500), Some(deadline), |_| {})
        .await;
    assert!(
        tokio::time::Instant::now() <= deadline,
        "returned {:?} after the start, past the 3 s deadline",
        started.elapsed()
    );
    assert!(!report.is_complete());
    assert_eq!(report.error, Some(ErrorKind::Throttled));
    // The batches started were given up by key; the rest never started.
    assert_eq!(report.failed, report.batches * 25);
    // The keys kept are capped; the count is whole.
    assert_eq!(report.failed_keys.len(), 100);
    assert!(report.batches >= 4, "{} batches", report.batches);
    assert_eq!(report.first_unfinished, Some(0));
    let summary =
        scanstream::generate::summary::Summary::new(&report, 500, 1000, std::time::Instant::now());
    assert_eq!(summary.next_start, Some(1000));
    assert!(!summary.complete);
}

#[tokio::test(start_paused = true)]
async fn next_start_is_the_first_batch_not_known_written_whatever_order_batches_finish_in() {
    // The second batch's first call is throttled away entirely; every other call works.
    let rule = mock!(Client::batch_write_item)
        .match_requests(|input| {
            sent(input)
                .first()
                .and_then(|r| r.put_request())
                .and_then(|p| p.item().get(record::KEY))
                .and_then(|v| v.as_s().ok())
                == Some(&record::record_id(2, 25))
        })
        .then_compute_output(|input| unprocessed(sent(input)));
    let ok = mock!(Client::batch_write_item).then_output(|| unprocessed(vec![]));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule, &ok]);
    let report = writer(client, 2)
        .write_all(generated_batches(2, 0, 100), |_| {})
        .await;
    assert_eq!(report.written, 75);
    assert_eq!(report.first_unfinished, Some(1), "{report:?}");
    let summary =
        scanstream::generate::summary::Summary::new(&report, 100, 0, std::time::Instant::now());
    assert_eq!(summary.next_start, Some(25));
}

#[tokio::test(start_paused = true)]
async fn a_non_transient_error_stops_the_load_at_that_batch_with_its_keys() {
    let denied = || {
        BatchWriteItemError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("no")
                .build(),
        )
    };
    let rule = mock!(Client::batch_write_item).then_error(denied);
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule], |config| {
        config.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
    });
    // 40 batches given, three in flight at once: at most the first three are ever sent.
    let report = writer(client, 3)
        .write_all(generated_batches(1, 0, 1000), |_| {})
        .await;
    assert_eq!(report.error, Some(ErrorKind::AccessDenied), "{report:?}");
    assert!(rule.num_calls() <= 3, "{} calls", rule.num_calls());
    assert_eq!(report.batches, rule.num_calls() as u64);
    assert_eq!(report.failed, report.batches * 25);
    assert_eq!(report.failed_keys.len() as u64, report.failed);
    assert!(report.failed_keys.iter().all(|k| !k.is_empty()));
    assert_eq!(report.first_unfinished, Some(0));
    assert!(!report.is_complete());
}

#[tokio::test(start_paused = true)]
async fn an_item_that_cannot_be_sent_is_counted_failed_by_its_key_and_the_rest_written() {
    use scanstream::format::item::{Item, Value};
    let rule = mock!(Client::batch_write_item).then_compute_output(|_| unprocessed(vec![]));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]);
    let item = |id: &str, inner: Value| {
        Item::from([
            (record::KEY.to_string(), Value::S(id.into())),
            (
                "m".to_string(),
                Value::M([("deep".to_string(), inner)].into()),
            ),
        ])
    };
    let writer = writer(client, 3);
    let batch = vec![
        item("k1", Value::Bool(true)),
        item("k2", Value::L(vec![Value::Unsupported])),
        item("k3", Value::Null(true)),
    ];
    let report = writer.write_batch(batch).await;
    assert_eq!((report.written, report.failed), (2, 1), "{report:?}");
    assert_eq!(report.failed_keys, ["k2"]);
    assert_eq!(report.error, Some(ErrorKind::Internal));
    assert!(!report.is_complete());
    assert_eq!(rule.num_calls(), 1);
    // A batch of nothing sendable makes no call at all.
    let report = writer
        .write_batch(vec![item("k4", Value::Unsupported)])
        .await;
    assert_eq!((report.written, report.failed), (0, 1), "{report:?}");
    assert_eq!(report.failed_keys, ["k4"]);
    assert_eq!(rule.num_calls(), 1);
}
