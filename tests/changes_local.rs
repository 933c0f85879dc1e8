//! `changes=true` through the streamer's own handler against DynamoDB Local, which serves
//! DynamoDB Streams on its port: a run of random puts, updates and deletes read back in
//! calls cut small and resumed from their cursors, each record once, folding into the
//! table as it is; and every refusal before any line (no stream, a view type without new
//! images, a stream re-created under a cursor, a `since` past the retention, the wrong
//! kind of cursor).

mod common;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::StreamViewType;
use common::keyed::{keyed_table, random_writes, set_stream};
use common::*;
use scanstream::dynamo::client::Dynamo;
use scanstream::dynamo::source::DynamoSource;
use scanstream::dynamo::streams::Streams;
use scanstream::format::change::{Change, parse_change_line};
use scanstream::format::trailer::{StopReason, Trailer};
use scanstream::lambda::config::Config;
use scanstream::lambda::streamer::Streamer;
use scanstream::read::changes::ChangeReader;
use std::collections::{BTreeMap, BTreeSet};

async fn streamer(client: &Client, table: &str) -> Streamer<DynamoSource> {
    let table = table.to_string();
    let config =
        Config::from_lookup(|name| (name == "TABLE_NAME").then(|| table.clone())).expect("config");
    let dynamo = Dynamo::from(client.clone());
    let streamer = Streamer::new(config, DynamoSource::new(dynamo.clone(), table.clone()));
    let streams = Streams::connect(&Default::default()).await;
    let reader = ChangeReader::new(dynamo, streams, streamer.seal(), 6 << 20);
    streamer.with_changes(reader)
}

/// Follows the changes from `query` call by call until one is caught up: the lines in
/// order and the trailers.
async fn follow(
    streamer: &Streamer<DynamoSource>,
    query: &str,
    max_calls: usize,
) -> (Vec<String>, Vec<Trailer>) {
    let (mut lines, mut trailers) = (Vec::new(), Vec::new());
    let mut next = query.to_string();
    for _ in 0..max_calls {
        let (status, body) = get_via_handler(streamer, &next).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let text = String::from_utf8(body.to_vec()).expect("UTF-8");
        let mut body_lines: Vec<&str> = text.lines().collect();
        let trailer = Trailer::parse_line(body_lines.pop().expect("a trailer").as_bytes())
            .expect("the last line is the trailer");
        lines.extend(body_lines.iter().map(|line| line.to_string()));
        assert_eq!(trailer.items, body_lines.len() as u64, "{trailer:?}");
        let cursor = trailer
            .cursor
            .clone()
            .expect("a change read always has a cursor");
        let caught_up = trailer.reason == Some(StopReason::CaughtUp);
        assert_eq!(trailer.complete, caught_up, "{trailer:?}");
        trailers.push(trailer);
        if caught_up {
            return (lines, trailers);
        }
        next = format!("changes=true&limit=7&max_items=40&cursor={cursor}");
    }
    panic!("not caught up after {max_calls} calls: {trailers:?}");
}

/// The table as its change lines leave it: each key's last change.
fn fold(lines: &[String]) -> BTreeSet<Vec<u8>> {
    let mut state = BTreeMap::new();
    for line in lines {
        let read = parse_change_line(line).expect("a change line");
        let key = format!("{:?}", (&read.keys["pk"], &read.keys["sk"]));
        match read.change {
            Change::Put(item) => state.insert(key, scanstream::format::json::to_line(&item)),
            Change::Delete(_) => state.remove(&key),
        };
    }
    state.into_values().collect()
}

/// GIVEN a table with a stream and 400 random writes, WHEN its changes are read in calls
/// of at most 40 records (pages of 7) resumed from each cursor, THEN every record comes
/// once (no sequence number twice), the last call says `caught_up`, the lines fold into
/// the table item for item, and a call from the last cursor brings nothing new; after 50
/// more writes it brings exactly those.
#[tokio::test]
async fn changes_read_in_small_calls_come_once_and_fold_into_the_table() {
    let client = local_client().await;
    let table = keyed_table(&client, "changes", Vec::new()).await;
    set_stream(&client, &table, Some(StreamViewType::NewAndOldImages)).await;
    random_writes(&client, &table, 7, 400, (12, 5)).await;
    let streamer = streamer(&client, &table).await;
    let (lines, trailers) = follow(&streamer, "changes=true&limit=7&max_items=40", 100).await;
    assert!(
        trailers.len() >= 5,
        "cut into several calls: {}",
        trailers.len()
    );
    assert!(
        trailers[..trailers.len() - 1]
            .iter()
            .all(|t| t.reason == Some(StopReason::MaxItems)),
        "{trailers:?}"
    );
    let sequences: BTreeSet<String> = lines
        .iter()
        .map(|line| parse_change_line(line).expect("line").sequence)
        .collect();
    assert_eq!(sequences.len(), lines.len(), "a record came twice");
    assert!(
        lines.len() >= 300,
        "most writes change the table: {}",
        lines.len()
    );
    assert_eq!(fold(&lines), table_lines(&client, &table).await);
    let first: serde_json::Value = serde_json::from_str(&lines[0]).expect("JSON");
    assert_eq!(first["eventSource"], "aws:dynamodb");
    assert!(
        first["dynamodb"]["ApproximateCreationDateTime"].is_number(),
        "{first}"
    );
    assert_eq!(first["dynamodb"]["StreamViewType"], "NEW_AND_OLD_IMAGES");

    let cursor = trailers
        .last()
        .and_then(|t| t.cursor.clone())
        .expect("cursor");
    let (none, _) = follow(&streamer, &format!("changes=true&cursor={cursor}"), 1).await;
    assert!(none.is_empty(), "caught up, then nothing new: {none:?}");
    random_writes(&client, &table, 8, 50, (12, 5)).await;
    let (more, _) = follow(&streamer, &format!("changes=true&cursor={cursor}"), 10).await;
    let mut all = lines.clone();
    all.extend(more.iter().cloned());
    assert!(!more.is_empty());
    assert_eq!(fold(&all), table_lines(&client, &table).await);
    let again: BTreeSet<String> = more
        .iter()
        .map(|line| parse_change_line(line).expect("line").sequence)
        .collect();
    assert!(
        again.is_disjoint(&sequences),
        "a resumed read sent an old record"
    );
}

/// GIVEN a stream's records, WHEN `since` is later than all of them (within the clock
/// skew taken), THEN they are read but none is sent, and the call is caught up.
#[tokio::test]
async fn since_skips_what_came_before_it() {
    let client = local_client().await;
    let table = keyed_table(&client, "changes-since", Vec::new()).await;
    set_stream(&client, &table, Some(StreamViewType::NewImage)).await;
    random_writes(&client, &table, 9, 30, (12, 5)).await;
    let streamer = streamer(&client, &table).await;
    // DynamoDB Local rounds creation times to the minute: two minutes on is after all.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(120);
    let millis = later
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let since = scanstream::format::time::iso8601(millis);
    let (lines, trailers) = follow(&streamer, &format!("changes=true&since={since}"), 1).await;
    assert!(lines.is_empty(), "{lines:?}");
    assert!(trailers[0].scanned >= 15, "{:?}", trailers[0]);
    let (all, _) = follow(&streamer, "changes=true", 1).await;
    assert_eq!(all.len() as u64, trailers[0].scanned);
}

fn refusal(status: u16, body: &[u8]) -> (u16, String, String) {
    let json: serde_json::Value = serde_json::from_slice(body).expect("a JSON error body");
    (
        status,
        json["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        json["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// GIVEN tables without a usable stream, a cursor of a stream since re-created, and
/// requests of the wrong shape, WHEN changes are asked for, THEN each is a 4xx naming
/// the cause before any line.
#[tokio::test]
async fn streams_that_cannot_be_read_are_refused_before_any_line() {
    let client = local_client().await;
    let table = keyed_table(&client, "changes-refused", Vec::new()).await;
    let streamer = streamer(&client, &table).await;
    let (status, body) = get_via_handler(&streamer, "changes=true").await;
    let (status, code, message) = refusal(status, &body);
    assert_eq!(
        (status, code.as_str()),
        (400, "StreamNotReadable"),
        "{message}"
    );
    assert!(
        message.contains("StreamSpecification") && message.contains("NEW_AND_OLD_IMAGES"),
        "{message}"
    );

    set_stream(&client, &table, Some(StreamViewType::KeysOnly)).await;
    let (status, body) = get_via_handler(&streamer, "changes=true").await;
    let (status, code, message) = refusal(status, &body);
    assert_eq!(
        (status, code.as_str()),
        (400, "StreamNotReadable"),
        "{message}"
    );
    assert!(message.contains("KEYS_ONLY"), "{message}");

    // A stream made after `since`: the changes between were never recorded.
    set_stream(&client, &table, None).await;
    set_stream(&client, &table, Some(StreamViewType::NewAndOldImages)).await;
    let before = scanstream::format::time::iso8601(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64
            - 600_000,
    );
    let (status, body) = get_via_handler(&streamer, &format!("changes=true&since={before}")).await;
    let (status, code, message) = refusal(status, &body);
    assert_eq!((status, code.as_str()), (410, "ChangesGone"), "{message}");
    assert!(message.contains("stream began at"), "{message}");

    // A cursor of this stream; the stream turned off, its cursor still drains it (24
    // hours), a fresh read is refused; then the stream re-created: 410.
    random_writes(&client, &table, 10, 5, (12, 5)).await;
    let (_, trailers) = follow(&streamer, "changes=true", 1).await;
    let cursor = trailers[0].cursor.clone().expect("cursor");
    set_stream(&client, &table, None).await;
    let (drained, _) = follow(&streamer, &format!("changes=true&cursor={cursor}"), 1).await;
    assert!(drained.is_empty(), "nothing new: {drained:?}");
    let (status, body) = get_via_handler(&streamer, "changes=true").await;
    assert_eq!(
        refusal(status, &body).0,
        400,
        "a fresh read of a stream turned off"
    );
    set_stream(&client, &table, Some(StreamViewType::NewAndOldImages)).await;
    let (status, body) = get_via_handler(&streamer, &format!("changes=true&cursor={cursor}")).await;
    let (status, code, message) = refusal(status, &body);
    assert_eq!((status, code.as_str()), (410, "ChangesGone"), "{message}");
    assert!(message.contains("re-created"), "{message}");

    for (query, want, says) in [
        ("changes=true&since=2020-01-01T00:00:00Z", 410, "24 hours"),
        ("changes=true&since=tomorrow", 400, "RFC 3339"),
        ("changes=true&segments=2", 400, "does not apply"),
        ("changes=true&limit=1001", 400, "1..=1000"),
        (
            "changes=true&since=2026-01-01T00:00:00Z&margin=3601",
            400,
            "margin",
        ),
        ("since=2026-01-01T00:00:00Z", 400, "only to changes=true"),
        (&format!("cursor={cursor}"), 400, "changes=true"),
    ] {
        let (status, body) = get_via_handler(&streamer, query).await;
        let (status, _, message) = refusal(status, &body);
        assert_eq!(status, want, "{query}: {message}");
        assert!(message.contains(says), "{query}: {message}");
    }
    let (status, body) = get_via_handler(&streamer, "segments=1&limit=1&max_items=1").await;
    assert_eq!(status, 200);
    let scan = Trailer::of_body(&body)
        .and_then(|t| t.cursor)
        .expect("a table read's cursor");
    let (status, body) = get_via_handler(&streamer, &format!("changes=true&cursor={scan}")).await;
    let (status, code, message) = refusal(status, &body);
    assert_eq!((status, code.as_str()), (400, "InvalidCursor"), "{message}");
    assert!(message.contains("table read's"), "{message}");
}
