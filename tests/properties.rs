//! Property tests: following cursors always yields every item exactly once (in memory and
//! on DynamoDB Local), and the request and cursor parsers never panic on any input.

mod common;

use futures::StreamExt;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use scanstream::dynamo::memory::MemorySource;
use scanstream::dynamo::source::DynamoSource;
use scanstream::dynamo::source::PageSource;
use scanstream::format::cursor::{Cursor, CursorSeal};
use scanstream::format::item::Item;
use scanstream::format::item::Value;
use scanstream::format::shape::{Filter, ReadShape};
use scanstream::format::trailer::Trailer;
use scanstream::lambda::config::Config;
use scanstream::lambda::http::Invocation;
use scanstream::lambda::streamer::{bounds, request_of};
use scanstream::read::stream::{ScanPlan, start};
use std::sync::Arc;

const SECRET: &[u8] = b"prop";

fn seal(table: &str) -> Option<CursorSeal> {
    Some(CursorSeal {
        table: table.into(),
        secret: Arc::from(SECRET),
    })
}

/// Reads everything by following cursors; returns the sorted ids and the number of rounds.
/// `filtered`: with a filter (the source's own) and the `id` key, so pages are read whole
/// and cut to the budget.
async fn read_all<S: PageSource>(
    source: Arc<S>,
    table: &str,
    segments: u32,
    limit: u32,
    max_items: Option<u64>,
    filtered: bool,
) -> (Vec<String>, usize) {
    let mut plan = ScanPlan {
        max_items,
        seal: seal(table),
        ..ScanPlan::segments(segments, limit)
    };
    if filtered {
        plan.shape = Arc::new(ReadShape {
            filter: Some(Filter {
                expression: "stands in for the source's own".into(),
                names: Default::default(),
                values: Default::default(),
            }),
            ..ReadShape::default()
        });
        plan.position_key = vec!["id".into()];
    }
    let mut ids = Vec::new();
    for round in 1.. {
        let stream = start(source.clone(), plan.clone()).await.expect("starts");
        let body: Vec<u8> = stream.collect::<Vec<_>>().await.concat();
        let (items, trailer): (Vec<serde_json::Value>, Trailer) = common::split_body(&body);
        ids.extend(
            items
                .iter()
                .map(|i| i["id"].as_str().expect("id").to_string()),
        );
        if trailer.complete {
            ids.sort();
            return (ids, round);
        }
        assert!(
            !items.is_empty(),
            "a resumed read makes progress: {trailer:?}"
        );
        if let Some(max) = max_items {
            // Budget left over by short pages is handed on: an incomplete stream is short
            // of max_items only if another stop (none here) intervened.
            assert_eq!(
                items.len() as u64,
                max,
                "exactly max_items per incomplete stream: {trailer:?}"
            );
        }
        let cursor =
            Cursor::decode(&trailer.cursor.expect("cursor"), SECRET, 1 << 20).expect("decodes");
        plan = ScanPlan {
            total_segments: cursor.total_segments,
            segment_offset: cursor.segment_offset,
            positions: cursor.positions,
            ..plan
        };
        assert!(round < 100_000, "cursor loop does not end");
    }
    unreachable!()
}

fn table(count: usize) -> Vec<Item> {
    (0..count)
        .map(|i| Item::from([("id".to_string(), Value::S(format!("k{i:05}")))]))
        .collect()
}

fn ids(count: usize) -> Vec<String> {
    let mut ids: Vec<String> = (0..count).map(|i| format!("k{i:05}")).collect();
    ids.sort();
    ids
}

/// Filters the in-memory source applies, by the number in the id: a third, one in 17,
/// none.
const FILTERS: [fn(&Item) -> bool; 3] = [
    |i| number(i).is_multiple_of(3),
    |i| number(i) % 17 == 5,
    |_| false,
];

fn number(item: &Item) -> usize {
    match item.get("id") {
        Some(Value::S(id)) => id[1..].parse().unwrap_or(usize::MAX),
        _ => usize::MAX,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn following_cursors_yields_every_item_once_in_memory(
        count in 0usize..400,
        segments in 1u32..9,
        limit in 1u32..60,
        max_items in proptest::option::of(1u64..150),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (got, _) = runtime.block_on(read_all(
            Arc::new(MemorySource::new(table(count), "id")),
            "mem",
            segments,
            limit,
            max_items,
            false,
        ));
        prop_assert_eq!(got, ids(count));
    }

    /// Filtered, with max_items: whole pages cut after the last item the budget allows,
    /// resumed from that item's key.
    #[test]
    fn following_cursors_of_a_filtered_read_yields_every_match_once_in_memory(
        count in 0usize..600,
        segments in 1u32..9,
        limit in 1u32..60,
        max_items in 1u64..40,
        filter in 0usize..FILTERS.len(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let keep = FILTERS[filter];
        let (got, _) = runtime.block_on(read_all(
            Arc::new(MemorySource::new(table(count), "id").with_filter(keep)),
            "mem",
            segments,
            limit,
            Some(max_items),
            true,
        ));
        let mut want: Vec<String> = table(count).iter().filter(|i| keep(i)).map(|i| match &i["id"] {
            Value::S(id) => id.clone(),
            _ => String::new(),
        }).collect();
        want.sort();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn the_request_parser_never_panics(query in ".{0,300}", body in proptest::collection::vec(any::<u8>(), 0..300), post in any::<bool>()) {
        let config = Config::from_lookup(|name| (name == "TABLE_NAME").then(|| "t".to_string())).expect("config");
        let uri = format!("/?{}", query.replace(|c: char| c.is_whitespace() || c == '#', "+"));
        if let Ok(uri) = uri.parse() {
            let method = if post { lambda_http::http::Method::POST } else { lambda_http::http::Method::GET };
            let invocation = Invocation { method: &method, uri: &uri, content_type: None, body: &body, deadline: None };
            let _ = request_of(&invocation, &bounds(&config));
        }
    }

    #[test]
    fn the_cursor_decoder_never_panics(token in "[0-9A-Za-z._\\-]{0,400}", raw in ".{0,200}") {
        let _ = Cursor::decode(&token, SECRET, 1 << 20);
        let _ = Cursor::decode(&raw, SECRET, 1 << 20);
        // A well-formed envelope around arbitrary JSON exercises the payload checks.
        use base64::Engine as _;
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_bytes());
        let _ = Cursor::decode(&format!("1.{body}.AAAA"), SECRET, 1 << 20);
    }
}

#[tokio::test]
async fn following_cursors_yields_every_item_once_on_dynamodb_local() {
    let client = common::local_client().await;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(24));
    let cases = (
        0u64..300,
        1u32..6,
        1u32..80,
        proptest::option::of(1u64..120),
    );
    let mut tried = Vec::new();
    for _ in 0..24 {
        let case = cases.new_tree(&mut runner).expect("case").current();
        tried.push(case);
    }
    for (count, segments, limit, max_items) in tried {
        let table = common::seeded_table(&client, "prop", 5, count).await;
        let source = Arc::new(DynamoSource::new(
            scanstream::dynamo::client::Dynamo::from(client.clone()),
            &table,
        ));
        let (got, rounds) = read_all(source, &table, segments, limit, max_items, false).await;
        common::assert_same_ids(
            &got,
            &common::expected_ids(5, count),
            &format!(
                "count={count} segments={segments} limit={limit} max_items={max_items:?} rounds={rounds}"
            ),
        );
    }
}
