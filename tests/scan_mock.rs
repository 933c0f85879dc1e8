//! The DynamoDB page source against mocked responses: the faults DynamoDB Local cannot
//! produce (throttling, a segment failing mid-scan), through the real SDK client, its
//! retry policy and our merge.

mod common;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::scan::{ScanError, ScanInput, ScanOutput};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::error::{InternalServerError, ProvisionedThroughputExceededException};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use common::{assert_same_ids, split_body};
use futures::StreamExt;
use scanstream::dynamo::source::DynamoSource;
use scanstream::format::cursor::{Cursor, CursorSeal};
use scanstream::format::trailer::StopReason;
use scanstream::read::stream::{ScanPlan, start};
use std::sync::Arc;

const TABLE: &str = "mocked";
const ITEMS: usize = 90;

/// The pages of a table the mock serves: item `i` lives in segment `i % total`, and each
/// page continues after the previous page's last key. One entry per Scan call:
/// (segment, exclusive start id, output).
fn pages(total: usize, limit: usize) -> Vec<(i32, Option<String>, ScanOutput)> {
    let mut pages = Vec::new();
    for segment in 0..total {
        let ids: Vec<String> = (0..ITEMS)
            .filter(|i| i % total == segment)
            .map(|i| format!("item-{i:03}"))
            .collect();
        let chunks: Vec<&[String]> = if ids.is_empty() {
            vec![&[]]
        } else {
            ids.chunks(limit).collect()
        };
        let mut start: Option<String> = None;
        for (n, chunk) in chunks.iter().enumerate() {
            let items: Vec<_> = chunk.iter().map(|id| key(id)).collect();
            let last = (n + 1 < chunks.len()).then(|| key(&chunk[chunk.len() - 1]));
            let output = ScanOutput::builder()
                .set_items(Some(items))
                .set_last_evaluated_key(last)
                .count(chunk.len() as i32)
                .scanned_count(chunk.len() as i32)
                .build();
            pages.push((segment as i32, start.clone(), output));
            start = chunk.last().cloned();
        }
    }
    pages
}

fn key(id: &str) -> std::collections::HashMap<String, AttributeValue> {
    std::collections::HashMap::from([("id".to_string(), AttributeValue::S(id.to_string()))])
}

/// A rule answering exactly one page request; `first` responses come before the page.
fn page_rule(
    segment: i32,
    start: Option<String>,
    output: ScanOutput,
    first: Vec<fn() -> ScanError>,
    forever: bool,
) -> Rule {
    let matches = move |input: &ScanInput| {
        let at = input
            .exclusive_start_key()
            .and_then(|k| k.get("id"))
            .and_then(|id| id.as_s().ok())
            .cloned();
        input.segment() == Some(segment) && at == start
    };
    let mut sequence = mock!(Client::scan).match_requests(matches).sequence();
    for error in first {
        sequence = sequence.error(error);
    }
    if forever {
        return sequence.error(broken).repeatedly().build();
    }
    sequence.output(move || output.clone()).build()
}

fn throttled() -> ScanError {
    ScanError::ProvisionedThroughputExceededException(
        ProvisionedThroughputExceededException::builder()
            .message("slow down")
            .meta(
                ErrorMetadata::builder()
                    .code("ProvisionedThroughputExceededException")
                    .build(),
            )
            .build(),
    )
}

fn broken() -> ScanError {
    ScanError::InternalServerError(
        InternalServerError::builder()
            .message("internal detail that must not leak")
            .meta(ErrorMetadata::builder().code("InternalServerError").build())
            .build(),
    )
}

fn plan(segments: u32, limit: u32) -> ScanPlan {
    ScanPlan {
        seal: Some(CursorSeal {
            table: TABLE.into(),
            secret: Arc::from(&b"k"[..]),
        }),
        ..ScanPlan::segments(segments, limit)
    }
}

fn expected() -> Vec<String> {
    (0..ITEMS).map(|i| format!("item-{i:03}")).collect()
}

async fn read(
    client: Client,
    plan: ScanPlan,
) -> (Vec<String>, scanstream::format::trailer::Trailer) {
    let source = Arc::new(DynamoSource::new(
        scanstream::dynamo::client::Dynamo::from(client),
        TABLE,
    ));
    let stream = start(source, plan).await.expect("starts");
    let body: Vec<u8> = stream.collect::<Vec<_>>().await.concat();
    let (items, trailer) = split_body(&body);
    let mut ids: Vec<String> = items
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    (ids, trailer)
}

#[tokio::test(start_paused = true)]
async fn throttled_pages_are_retried_into_a_complete_stream() {
    // Every third page is throttled twice; the SDK's retries get each one through.
    let rules: Vec<Rule> = pages(3, 7)
        .into_iter()
        .enumerate()
        .map(|(n, (segment, start, output))| {
            let errors = if n % 3 == 0 {
                vec![throttled as fn() -> ScanError, throttled]
            } else {
                vec![]
            };
            page_rule(segment, start, output, errors, false)
        })
        .collect();
    let expected_retries = rules.iter().step_by(3).count() as u64 * 2;
    let client = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        rules.iter(),
        |config| { config.retry_config(RetryConfig::standard().with_max_attempts(4)) }
    );
    let (ids, trailer) = read(client, plan(3, 7)).await;
    assert_same_ids(&ids, &expected(), "complete despite throttling");
    assert!(trailer.complete, "{trailer:?}");
    assert_eq!(trailer.retries, expected_retries, "{trailer:?}");
    assert_eq!(trailer.pages as usize, rules.len());
}

#[tokio::test(start_paused = true)]
async fn a_segment_failing_mid_scan_leaves_a_cursor_that_resumes_exactly() {
    // Segment 1 fails on its third page, every attempt, until retries run out.
    let rules: Vec<Rule> = pages(3, 3)
        .into_iter()
        .map(|(segment, start, output)| {
            let fails = segment == 1 && start.as_deref() == Some("item-016");
            page_rule(segment, start, output, vec![], fails)
        })
        .collect();
    let client = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        rules.iter(),
        |config| { config.retry_config(RetryConfig::standard().with_max_attempts(3)) }
    );
    let (first, trailer) = read(client, plan(3, 3)).await;
    assert!(!trailer.complete, "{trailer:?}");
    assert_eq!(trailer.reason, Some(StopReason::Error));
    let error = trailer.error.clone().expect("error");
    assert_eq!(
        (error.code.as_str(), error.segment),
        ("Unavailable", Some(1))
    );
    assert!(
        !format!("{trailer:?}").contains("internal detail"),
        "no upstream text"
    );
    let token = trailer.cursor.expect("cursor");

    // Resume against a healthy table.
    let healthy: Vec<Rule> = pages(3, 3)
        .into_iter()
        .map(|(segment, start, output)| page_rule(segment, start, output, vec![], false))
        .collect();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, healthy.iter());
    let cursor = Cursor::decode(&token, b"k", 1 << 20).expect("cursor decodes");
    let resumed = ScanPlan {
        total_segments: cursor.total_segments,
        segment_offset: cursor.segment_offset,
        positions: cursor.positions,
        ..plan(3, 3)
    };
    let (rest, trailer) = read(client, resumed).await;
    assert!(trailer.complete, "{trailer:?}");
    let mut all: Vec<String> = first.into_iter().chain(rest).collect();
    all.sort();
    assert_same_ids(&all, &expected(), "none lost, none twice");
}
