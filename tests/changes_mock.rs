//! The shard walk against a mocked DynamoDB Streams (the faults and lineages DynamoDB
//! Local does not make, it never splits a shard): a root shard split in two, one child
//! split again and listed only once its parent has ended, and an iterator that expires
//! mid-shard. Through the real SDK client and the real walk, in calls cut small and
//! resumed: every record once, every parent's records before any of its children's.

use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::operation::describe_stream::DescribeStreamOutput;
use aws_sdk_dynamodbstreams::operation::get_records::{GetRecordsError, GetRecordsOutput};
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorOutput;
use aws_sdk_dynamodbstreams::primitives::DateTime;
use aws_sdk_dynamodbstreams::types::error::ExpiredIteratorException;
use aws_sdk_dynamodbstreams::types::{
    AttributeValue, OperationType, Record, SequenceNumberRange, Shard, ShardIteratorType,
    StreamDescription, StreamRecord, StreamStatus, StreamViewType,
};
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use futures::StreamExt;
use scanstream::dynamo::streams::Streams;
use scanstream::format::cursor::CursorSeal;
use scanstream::format::cursor::changes::ChangeCursor;
use scanstream::format::trailer::{StopReason, Trailer};
use scanstream::read::changes::walk::{Walk, start};
use scanstream::read::changes::{ChangesRefused, plan_shards};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const ARN: &str = "arn:aws:dynamodb:us-east-1:1:table/t/stream/2026-12-07T00:00:00.000";

/// The lineage: (shard, parent, closed, records). `left-left` is listed only from the
/// second `DescribeStream` on, as a child appears once its parent has closed.
/// A shard: its ID, parent, whether it is closed, and its records (`usize::MAX`: an open
/// shard that always has another full page).
type Spec = (&'static str, Option<&'static str>, bool, usize);

const SHARDS: &[Spec] = &[
    ("root", None, true, 5),
    ("left", Some("root"), true, 6),
    ("right", Some("root"), false, 4),
    ("left-left", Some("left"), false, 3),
];

fn sequence(shard: usize, index: usize) -> String {
    format!("{:02}{:020}", shard + 1, index)
}

/// The start of the minute the timed shard's `since` is.
const SINCE_S: i64 = 1_764_999_960;

/// A record's approximate creation time: the timed shard's are before `since` at 0, 1
/// and 3 (out of order after 2), after it elsewhere; every other shard's are long past.
fn created(shard_name: &str, index: usize) -> i64 {
    match (shard_name, index) {
        ("timed", 0 | 1 | 3) => SINCE_S - 600,
        ("timed", _) => SINCE_S + 60,
        _ => 1_765_000_000,
    }
}

fn record_at(shard: usize, index: usize, created_s: i64) -> Record {
    // Keys move from parent to child, as they do when a shard splits.
    let key = AttributeValue::S(format!("k{}", index % 3));
    Record::builder()
        .event_id(sequence(shard, index))
        .event_name(OperationType::Modify)
        .dynamodb(
            StreamRecord::builder()
                .keys("pk", key.clone())
                .new_image("pk", key)
                .new_image("at", AttributeValue::S(sequence(shard, index)))
                .sequence_number(sequence(shard, index))
                .approximate_creation_date_time(DateTime::from_secs(created_s))
                .stream_view_type(StreamViewType::NewImage)
                .build(),
        )
        .build()
}

fn shard_index(shards: &[Spec], id: &str) -> usize {
    shards
        .iter()
        .position(|(name, ..)| *name == id)
        .expect("a known shard")
}

/// A mocked stream of [`SHARDS`]: iterators are `shard@next-index`; the first
/// `GetRecords` at `left@2` answers ExpiredIteratorException.
fn client(
    shards: &'static [Spec],
    describes: Arc<AtomicUsize>,
    expired: Arc<AtomicBool>,
) -> Client {
    let describe = mock!(Client::describe_stream).then_compute_output(move |_| {
        let call = describes.fetch_add(1, Ordering::SeqCst);
        let listed = shards
            .iter()
            .enumerate()
            .filter(|(_, (id, ..))| call > 0 || *id != "left-left")
            .map(|(i, (id, parent, closed, records))| {
                let range = SequenceNumberRange::builder()
                    .starting_sequence_number(sequence(i, 0))
                    .set_ending_sequence_number(closed.then(|| sequence(i, records - 1)))
                    .build();
                Shard::builder()
                    .shard_id(*id)
                    .set_parent_shard_id(parent.map(str::to_string))
                    .sequence_number_range(range)
                    .build()
            })
            .collect();
        DescribeStreamOutput::builder()
            .stream_description(
                StreamDescription::builder()
                    .stream_arn(ARN)
                    .stream_status(StreamStatus::Enabled)
                    .stream_view_type(StreamViewType::NewImage)
                    .set_shards(Some(listed))
                    .build(),
            )
            .build()
    });
    let iterator = mock!(Client::get_shard_iterator).then_compute_output(move |input| {
        let id = input.shard_id().expect("shard");
        shard_index(shards, id);
        let next = match input.shard_iterator_type() {
            Some(ShardIteratorType::AfterSequenceNumber) => {
                let after = input.sequence_number().expect("a sequence number");
                after[2..]
                    .parse::<usize>()
                    .expect("a sequence number of ours")
                    + 1
            }
            Some(ShardIteratorType::TrimHorizon) => 0,
            other => panic!("iterator type {other:?}"),
        };
        GetShardIteratorOutput::builder()
            .shard_iterator(format!("{id}@{next}"))
            .build()
    });
    let records = mock!(Client::get_records).then_compute_response(move |input| {
        let iterator = input.shard_iterator().expect("iterator");
        let (id, at) = iterator.split_once('@').expect("ours");
        let at: usize = at.parse().expect("index");
        if iterator == "left@2" && !expired.swap(true, Ordering::SeqCst) {
            return MockResponse::Error(GetRecordsError::ExpiredIteratorException(
                ExpiredIteratorException::builder()
                    .message("expired")
                    .build(),
            ));
        }
        let shard = shard_index(shards, id);
        let (_, _, closed, count) = shards[shard];
        let limit = usize::try_from(input.limit().unwrap_or(1000)).expect("limit");
        let end = at.saturating_add(limit).min(count);
        let next = if closed && end == count {
            None
        } else {
            Some(format!("{id}@{end}"))
        };
        MockResponse::Output(
            GetRecordsOutput::builder()
                .set_records(Some(
                    (at..end)
                        .map(|i| record_at(shard, i, created(id, i)))
                        .collect(),
                ))
                .set_next_shard_iterator(next)
                .build(),
        )
    });
    mock_client!(
        aws_sdk_dynamodbstreams,
        RuleMode::MatchAny,
        [&describe, &iterator, &records]
    )
}

fn seal() -> CursorSeal {
    CursorSeal {
        table: "t".into(),
        secret: Arc::from(&b"k"[..]),
    }
}

/// One call: from `cursor`, at most `max_items` records, pages of 2.
async fn call(
    streams: &Streams,
    cursor: Option<&ChangeCursor>,
    max_items: u64,
) -> (Vec<serde_json::Value>, Trailer) {
    call_until(streams, cursor, max_items, None).await
}

/// [`call`], stopping at `deadline`.
async fn call_until(
    streams: &Streams,
    cursor: Option<&ChangeCursor>,
    max_items: u64,
    deadline: Option<tokio::time::Instant>,
) -> (Vec<serde_json::Value>, Trailer) {
    call_with(streams, cursor, max_items, deadline, None).await
}

/// [`call`], skipping records from before `since` (a fresh read's, or the cursor's).
async fn call_since(
    streams: &Streams,
    cursor: Option<&ChangeCursor>,
    max_items: u64,
    since: Option<u64>,
) -> (Vec<serde_json::Value>, Trailer) {
    call_with(streams, cursor, max_items, None, since).await
}

async fn call_with(
    streams: &Streams,
    cursor: Option<&ChangeCursor>,
    max_items: u64,
    deadline: Option<tokio::time::Instant>,
    since: Option<u64>,
) -> (Vec<serde_json::Value>, Trailer) {
    let listed = streams.describe(ARN).await.expect("describe");
    let plan = match plan_shards(&listed, cursor) {
        Ok(plan) => plan,
        Err(ChangesRefused::Request(err)) => panic!("{err:?}"),
        Err(ChangesRefused::Upstream(err)) => panic!("{err}"),
    };
    let walk = Walk {
        arn: ARN.into(),
        seal: seal(),
        since_ms: since,
        needed_ms: since,
        limit: 2,
        max_items: Some(max_items),
        compression: scanstream::format::compress::Compression::None,
        max_bytes: 1 << 30,
        deadline,
        started_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64,
    };
    let body: Vec<bytes::Bytes> = start(streams.clone(), walk, plan)
        .await
        .expect("starts")
        .collect()
        .await;
    let body = body.concat();
    let text = String::from_utf8(body).expect("UTF-8");
    let mut lines: Vec<&str> = text.lines().collect();
    let trailer = Trailer::parse_line(lines.pop().expect("trailer").as_bytes()).expect("trailer");
    let records = lines
        .iter()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    (records, trailer)
}

/// GIVEN a root shard split in two, one child split again (listed only after its
/// parent ends), and an iterator expiring mid-shard, WHEN the changes are read in calls
/// of at most `max_items` records resumed from each cursor, THEN every record comes
/// exactly once, no child's record comes before its parent's last, the expired
/// iterator is renewed where it stood, and the last call is caught up with a cursor that
/// holds no finished ancestor.
#[tokio::test]
async fn a_split_lineage_is_read_parents_first_and_exactly_once_across_calls() {
    for max_items in [3, 7, 1000] {
        let describes = Arc::new(AtomicUsize::new(0));
        let expired = Arc::new(AtomicBool::new(false));
        let streams = Streams::from(client(SHARDS, describes.clone(), expired.clone()));
        let (mut order, mut cursor, mut renewals) = (Vec::new(), None, 0);
        let mut calls = 0;
        loop {
            calls += 1;
            assert!(calls < 50, "never caught up");
            let (records, trailer) = call(&streams, cursor.as_ref(), max_items).await;
            assert_eq!(trailer.items, records.len() as u64);
            renewals += trailer.retries;
            order.extend(records.iter().map(|r| {
                r["dynamodb"]["SequenceNumber"]
                    .as_str()
                    .expect("sequence")
                    .to_string()
            }));
            let token = trailer.cursor.clone().expect("cursor");
            cursor = Some(ChangeCursor::decode(&token, b"k", 65_536).expect("our cursor"));
            if trailer.reason == Some(StopReason::CaughtUp) {
                break;
            }
            assert_eq!(trailer.reason, Some(StopReason::MaxItems), "{trailer:?}");
        }
        let expected: usize = SHARDS.iter().map(|s| s.3).sum();
        let unique: std::collections::BTreeSet<&String> = order.iter().collect();
        assert_eq!(
            (order.len(), unique.len()),
            (expected, expected),
            "max_items {max_items}: {order:?}"
        );
        let place = |seq: &str| order.iter().position(|s| s == seq).expect("sent");
        for (child, (_, parent, ..)) in SHARDS.iter().enumerate() {
            let Some(parent) = parent else { continue };
            let parent = shard_index(SHARDS, parent);
            let parent_last = place(&sequence(parent, SHARDS[parent].3 - 1));
            let child_first = place(&sequence(child, 0));
            assert!(
                parent_last < child_first,
                "max_items {max_items}: {order:?}"
            );
        }
        // Each shard in its own order.
        for (shard, (.., count)) in SHARDS.iter().enumerate() {
            let places: Vec<usize> = (0..*count).map(|i| place(&sequence(shard, i))).collect();
            assert!(places.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        }
        assert!(expired.load(Ordering::SeqCst), "the expiry was met");
        // A renewal is counted in the trailer of the call that takes its event: a call
        // cut first (max_items) drops the count, never the records.
        assert!(renewals <= 1);
        if max_items == 1000 {
            assert_eq!(renewals, 1, "one renewal, in the one call");
        }
        let cursor = cursor.expect("cursor");
        assert!(
            !cursor.shards.contains_key("root") && !cursor.shards.contains_key("left"),
            "finished ancestors are implied: {cursor:?}"
        );
        assert!(
            describes.load(Ordering::SeqCst) >= 2,
            "listed again after a shard ended"
        );
        // Every shard read (the open ones caught up with nothing new): the oldest record
        // the next call may need is from about now, not from the stream's start.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        let needed = cursor.needed_ms.expect("a cursor that needs nothing old");
        assert!(
            needed + 120_000 >= now && needed <= now,
            "needed_ms {needed}, now {now}"
        );
    }
}

/// Seventeen shards that always have another full page, and a quiet one listed last.
const BUSY: &[Spec] = &[
    ("busy-00", None, false, usize::MAX),
    ("busy-01", None, false, usize::MAX),
    ("busy-02", None, false, usize::MAX),
    ("busy-03", None, false, usize::MAX),
    ("busy-04", None, false, usize::MAX),
    ("busy-05", None, false, usize::MAX),
    ("busy-06", None, false, usize::MAX),
    ("busy-07", None, false, usize::MAX),
    ("busy-08", None, false, usize::MAX),
    ("busy-09", None, false, usize::MAX),
    ("busy-10", None, false, usize::MAX),
    ("busy-11", None, false, usize::MAX),
    ("busy-12", None, false, usize::MAX),
    ("busy-13", None, false, usize::MAX),
    ("busy-14", None, false, usize::MAX),
    ("busy-15", None, false, usize::MAX),
    ("busy-16", None, false, usize::MAX),
    ("quiet", None, false, 3),
];

/// GIVEN more busy shards than are read at once, and a quiet one, WHEN one call reads
/// until its deadline THEN the quiet shard's records come too: shards take turns, so no
/// shard waits behind busy ones until its records age out.
#[tokio::test]
async fn shards_take_turns_so_none_waits_behind_busy_ones() {
    let streams = Streams::from(client(
        BUSY,
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(true)),
    ));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    let (records, trailer) = call_until(&streams, None, u64::MAX, Some(deadline)).await;
    assert_eq!(trailer.reason, Some(StopReason::TimeBudget), "{trailer:?}");
    let quiet = shard_index(BUSY, "quiet");
    let sent: std::collections::BTreeSet<String> = records
        .iter()
        .map(|r| {
            r["dynamodb"]["SequenceNumber"]
                .as_str()
                .expect("sequence")
                .to_string()
        })
        .collect();
    for i in 0..3 {
        assert!(
            sent.contains(&sequence(quiet, i)),
            "the quiet shard's record {i} was never read"
        );
    }
}

/// One open shard whose records' times go back past `since` after it was passed.
const TIMED: &[Spec] = &[("timed", None, false, 8)];

/// GIVEN a shard whose first records are from before `since` and whose fourth reads
/// earlier than the third, WHEN it is read with `since` in calls of one record, and from
/// cursors that say the shard passed `since` or not THEN the records before it are
/// skipped, every record after the first one past it is sent (the out-of-order one too),
/// each once; a cursor whose shard is still skipping skips, one that passed does not.
#[tokio::test]
async fn once_a_shard_passes_since_every_later_record_is_sent_across_calls() {
    let streams = Streams::from(client(
        TIMED,
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(true)),
    ));
    let since = Some(SINCE_S as u64 * 1000);
    let (mut sent, mut cursor) = (Vec::new(), None::<ChangeCursor>);
    for _ in 0..20 {
        let (records, trailer) = call_since(&streams, cursor.as_ref(), 1, since).await;
        sent.extend(records.iter().map(|r| {
            r["dynamodb"]["SequenceNumber"]
                .as_str()
                .expect("sequence")
                .to_string()
        }));
        let token = trailer.cursor.clone().expect("cursor");
        cursor = Some(ChangeCursor::decode(&token, b"k", 65_536).expect("ours"));
        if trailer.reason == Some(StopReason::CaughtUp) {
            break;
        }
    }
    let want: Vec<String> = (2..8).map(|i| sequence(0, i)).collect();
    assert_eq!(
        sent, want,
        "the records from the first past since on, once each"
    );
    // A cursor after record 0 whose shard has not passed since skips record 1 (and, past
    // since at 2, sends 3); one whose shard passed sends 1 too.
    let base = ChangeCursor {
        table: "t".into(),
        stream: ARN.into(),
        since_ms: since,
        needed_ms: since,
        skipping: ["timed".to_string()].into(),
        shards: [(
            "timed".to_string(),
            scanstream::format::cursor::changes::ShardPosition::After(sequence(0, 0)),
        )]
        .into(),
    };
    let (records, _) = call_since(&streams, Some(&base), 100, since).await;
    let first = |records: &[serde_json::Value]| {
        records[0]["dynamodb"]["SequenceNumber"]
            .as_str()
            .expect("sequence")
            .to_string()
    };
    assert_eq!(
        first(&records),
        sequence(0, 2),
        "still skipping: 1 is not sent"
    );
    assert_eq!(records.len(), 6);
    let passed = ChangeCursor {
        skipping: Default::default(),
        ..base
    };
    let (records, _) = call_since(&streams, Some(&passed), 100, since).await;
    assert_eq!(first(&records), sequence(0, 1), "passed: 1 is sent");
}
