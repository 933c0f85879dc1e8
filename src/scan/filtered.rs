//! Filtered reads under `max_items`: whole pages, cut after the last item the budget
//! allows.
//!
//! DynamoDB's `Limit` counts the items it reads, before the filter drops any. Sizing a
//! page's `Limit` by what the budget has left, exact for an unfiltered read, turns the end
//! of a filtered one into calls of one item that mostly match nothing: about
//! 1/selectivity calls for each item sent. So a filtered read asks for whole pages,
//! reserves about what such a page matches, and cuts a page that matched more than its
//! reservation. The segment then resumes after the last item sent, at a key made of that
//! item's key attributes: the table's, and an index's too, as DynamoDB's own
//! `LastEvaluatedKey` holds them. The items after that key are read again, the filtered-out
//! ones among them, and none can come twice.

use super::{Item, Page, PageSource, ReadShape};
use crate::error::UpstreamError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::warn;

/// The attributes of an item's position in a read of the table or of `index`: the
/// table's key, then the index's key attributes the table's does not have.
pub async fn position_key<S: PageSource>(
    source: &S,
    index: Option<&str>,
) -> Result<Vec<String>, UpstreamError> {
    let mut schemas = vec![source.key_schema(None).await?];
    if let Some(index) = index {
        schemas.push(source.key_schema(Some(index)).await?);
    }
    let mut names: Vec<String> = Vec::new();
    for schema in &schemas {
        for attribute in std::iter::once(&schema.partition).chain(&schema.sort) {
            if !names.contains(&attribute.name) {
                names.push(attribute.name.clone());
            }
        }
    }
    Ok(names)
}

/// How the pages of one filtered stream under `max_items` are read and cut, shared by
/// its segment tasks.
#[derive(Debug)]
pub struct FullPages {
    /// The attributes of an item's position (see [`position_key`]).
    key: Vec<String>,
    /// Key attributes the projection leaves out: asked for all the same, to cut a page
    /// at any item, and taken out of the items before they are sent.
    added: Vec<String>,
    /// The shape pages are read with: the read's own, its projection widened by `added`.
    /// The cursor keeps the read's own.
    shape: Arc<ReadShape>,
    /// Items the filter let through so far, over every segment of the stream.
    matched: AtomicU64,
    /// Items read so far, over every segment of the stream.
    scanned: AtomicU64,
}

impl FullPages {
    /// For a read of `shape` whose positions are keyed by `key`; `None` when pages need
    /// no cutting: no filter (a page's `Limit` is then exactly its items), a count (no
    /// items to cut at), or no key known.
    pub fn new(shape: &Arc<ReadShape>, key: Vec<String>) -> Option<Self> {
        if shape.filter.is_none() || shape.count || key.is_empty() {
            return None;
        }
        let added: Vec<String> = if shape.fields.is_empty() {
            Vec::new()
        } else {
            key.iter()
                .filter(|name| !shape.fields.contains(name))
                .cloned()
                .collect()
        };
        let shape = if added.is_empty() {
            shape.clone()
        } else {
            let mut widened = (**shape).clone();
            widened.fields.extend(added.iter().cloned());
            Arc::new(widened)
        };
        Some(Self {
            key,
            added,
            shape,
            matched: AtomicU64::new(0),
            scanned: AtomicU64::new(0),
        })
    }

    /// The shape every page is read with.
    pub fn shape(&self) -> &Arc<ReadShape> {
        &self.shape
    }

    /// Items to reserve for a page of `limit` reads: twice what a page has matched on
    /// average, plus one, so a page seldom matches more than it reserved and the segments
    /// do not wait for each other's unused reservations; the whole page until something
    /// was read.
    pub fn reservation(&self, limit: u32) -> u32 {
        let scanned = self.scanned.load(Ordering::Relaxed);
        if scanned == 0 {
            return limit;
        }
        let matched = self.matched.load(Ordering::Relaxed);
        let expected = (u128::from(limit) * u128::from(matched)).div_ceil(u128::from(scanned));
        u32::try_from(expected * 2 + 1).map_or(limit, |want| want.min(limit))
    }

    /// Keeps the first `allowed` items of `page` (at least one), which then ends after
    /// the last of them, and takes the added key attributes out of every item.
    pub fn cut(&self, page: &mut Page, allowed: u32) {
        self.matched
            .fetch_add(page.items.len() as u64, Ordering::Relaxed);
        self.scanned
            .fetch_add(page.scanned_count, Ordering::Relaxed);
        let allowed = usize::try_from(allowed.max(1)).unwrap_or(usize::MAX);
        if page.items.len() > allowed {
            match self.key_of(&page.items[allowed - 1]) {
                Some(key) => {
                    page.items.truncate(allowed);
                    page.count = allowed as u64;
                    page.last_evaluated_key = Some(key);
                }
                // Only a key schema that does not fit the items gets here: the page goes
                // whole, past `max_items`, rather than lose the items after the cut.
                None => warn!(
                    items = page.items.len(),
                    allowed, "an item without its key attributes: page sent uncut"
                ),
            }
        }
        if !self.added.is_empty() {
            for item in &mut page.items {
                for name in &self.added {
                    item.remove(name);
                }
            }
        }
    }

    /// `item`'s key: its values of the key attributes; `None` if one is missing.
    fn key_of(&self, item: &Item) -> Option<Item> {
        self.key
            .iter()
            .map(|name| Some((name.clone(), item.get(name)?.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::cursor::{Cursor, Position};
    use crate::scan::memory::MemorySource;
    use crate::scan::stream::{CursorSeal, ScanPlan, start};
    use crate::scan::trailer::{StopReason, split_body};
    use crate::scan::{Filter, KeyValue, QueryShape};
    use aws_sdk_dynamodb::types::AttributeValue;
    use bytes::Bytes;
    use futures::StreamExt;

    const SECRET: &[u8] = b"filtered";

    /// Items `k00000`.. with `n` their number and `tenant` one of four partitions.
    fn table(count: u64) -> Vec<Item> {
        (0..count)
            .map(|i| {
                Item::from([
                    ("id".to_string(), AttributeValue::S(format!("k{i:05}"))),
                    ("n".to_string(), AttributeValue::N(i.to_string())),
                    (
                        "tenant".to_string(),
                        AttributeValue::S(format!("t{}", i % 4)),
                    ),
                ])
            })
            .collect()
    }

    fn n_of(item: &Item) -> u64 {
        match item.get("n") {
            Some(AttributeValue::N(n)) => n.parse().unwrap_or(u64::MAX),
            _ => u64::MAX,
        }
    }

    fn one_in_a_hundred(item: &Item) -> bool {
        n_of(item).is_multiple_of(100)
    }

    fn seven_in_ten(item: &Item) -> bool {
        n_of(item) % 10 < 7
    }

    fn plan(segments: u32, limit: u32, max_items: u64, shape: ReadShape) -> ScanPlan {
        ScanPlan {
            max_items: Some(max_items),
            seal: Some(CursorSeal {
                table: "mem".into(),
                secret: Arc::from(SECRET),
            }),
            shape: Arc::new(ReadShape {
                filter: Some(Filter {
                    expression: "stands in for the source's own".into(),
                    names: Default::default(),
                    values: Default::default(),
                }),
                ..shape
            }),
            position_key: vec!["id".into()],
            ..ScanPlan::segments(segments, limit)
        }
    }

    /// Follows cursors to the end: every item line sent, and the invocations it took.
    /// Each incomplete stream must carry exactly `max_items`.
    async fn follow(source: Arc<MemorySource>, first: ScanPlan) -> (Vec<serde_json::Value>, usize) {
        let max = first.max_items.expect("a budget");
        let mut plan = first.clone();
        let mut all = Vec::new();
        for round in 1.. {
            let chunks: Vec<Bytes> = start(source.clone(), plan.clone())
                .await
                .expect("starts")
                .collect()
                .await;
            let (items, trailer) = split_body(&chunks.concat()).expect("items, then the trailer");
            let got = items.len() as u64;
            all.extend(items);
            if trailer.complete {
                return (all, round);
            }
            assert_eq!(trailer.reason, Some(StopReason::MaxItems), "{trailer:?}");
            assert_eq!(got, max, "an incomplete stream carries exactly max_items");
            let cursor = Cursor::decode(&trailer.cursor.expect("a cursor"), SECRET, 1 << 20)
                .expect("our own cursor decodes");
            plan = ScanPlan {
                total_segments: cursor.total_segments,
                segment_offset: cursor.segment_offset,
                positions: cursor.positions,
                shape: Arc::new(cursor.shape),
                ..first.clone()
            };
            assert!(round < 10_000, "resuming does not end");
        }
        unreachable!()
    }

    fn sorted_n(items: &[serde_json::Value]) -> Vec<u64> {
        let mut n: Vec<u64> = items
            .iter()
            .map(|item| item["n"].as_u64().expect("n"))
            .collect();
        n.sort_unstable();
        n
    }

    #[tokio::test]
    async fn a_filtered_read_under_max_items_reads_whole_pages() {
        // 5,000 items, 1% match, 10 a call, pages of 100: the whole table is 50 pages.
        // Pages sized by the budget read at most 10 items a call (500 calls at least),
        // and one item a call at the end of each.
        let source = Arc::new(MemorySource::new(table(5000), "id").with_filter(one_in_a_hundred));
        let (items, rounds) = follow(source.clone(), plan(4, 100, 10, ReadShape::default())).await;
        assert_eq!(
            sorted_n(&items),
            (0..50).map(|i| i * 100).collect::<Vec<_>>()
        );
        assert!(
            (5..=6).contains(&rounds),
            "50 items, 10 a call: {rounds} calls"
        );
        let calls = source.calls();
        assert!(calls <= 60, "{calls} Scan calls for 50 pages of items");
    }

    #[tokio::test]
    async fn cut_pages_resume_after_the_last_item_sent_none_lost_none_twice() {
        let expected: Vec<u64> = (0..3000).filter(|n| n % 10 < 7).collect();
        // Most pages match more than is left: cut, resumed from an item's key, and the
        // projection (without the key) widened to cut and narrowed back.
        for (segments, limit, max) in [(5, 40, 37), (1, 100, 3), (8, 7, 50), (3, 1000, 999)] {
            let source = Arc::new(MemorySource::new(table(3000), "id").with_filter(seven_in_ten));
            let shape = ReadShape {
                fields: vec!["n".into()],
                ..ReadShape::default()
            };
            let (items, _) = follow(source, plan(segments, limit, max, shape)).await;
            assert!(
                items
                    .iter()
                    .all(|item| item.as_object().map(|o| o.len()) == Some(1)),
                "only the fields asked for"
            );
            assert_eq!(
                sorted_n(&items),
                expected,
                "segments {segments} limit {limit} max {max}"
            );
        }
        // A Query of four partitions, two at a time: each partition in its own order.
        let source = Arc::new(MemorySource::new(table(3000), "id").with_filter(seven_in_ten));
        let shape = ReadShape {
            query: Some(QueryShape {
                key: "tenant".into(),
                partitions: (0..4).map(|t| KeyValue::S(format!("t{t}"))).collect(),
                concurrency: 2,
                sort: None,
                descending: false,
            }),
            ..ReadShape::default()
        };
        let first = ScanPlan {
            total_segments: 4,
            positions: vec![Position::Start; 4],
            ..plan(1, 30, 41, shape)
        };
        let (items, _) = follow(source, first).await;
        for t in 0..4u64 {
            let of_t: Vec<u64> = items
                .iter()
                .filter(|item| item["tenant"] == format!("t{t}").as_str())
                .map(|item| item["n"].as_u64().expect("n"))
                .collect();
            let want: Vec<u64> = expected.iter().copied().filter(|n| n % 4 == t).collect();
            assert_eq!(of_t, want, "partition t{t} in order, once");
        }
        assert_eq!(items.len(), expected.len());
    }

    #[test]
    fn a_page_is_cut_after_an_item_with_its_whole_key_and_never_loses_one_without() {
        let shape = Arc::new(ReadShape {
            fields: vec!["n".into()],
            filter: plan(1, 1, 1, ReadShape::default()).shape.filter.clone(),
            ..ReadShape::default()
        });
        let full = FullPages::new(&shape, vec!["id".into(), "tenant".into()]).expect("filtered");
        assert_eq!(full.shape().fields, ["n", "id", "tenant"]);
        assert_eq!(
            full.reservation(100),
            100,
            "a whole page before anything was read"
        );
        let mut page = Page {
            items: table(10),
            scanned_count: 50,
            ..Page::default()
        };
        full.cut(&mut page, 4);
        assert_eq!(page.items.len(), 4);
        assert_eq!(
            page.last_evaluated_key,
            Some(Item::from([
                ("id".to_string(), AttributeValue::S("k00003".into())),
                ("tenant".to_string(), AttributeValue::S("t3".into())),
            ]))
        );
        assert!(
            page.items.iter().all(|item| item.len() == 1),
            "the key taken out again"
        );
        // 10 of 50 matched: twice what a page matches (20 of 100, 2 of 10), plus one.
        assert_eq!(full.reservation(100), 41);
        assert_eq!(full.reservation(10), 5);
        assert_eq!(full.reservation(1), 1);
        let mut keyless = Page {
            items: table(5)
                .into_iter()
                .map(|mut item| {
                    item.remove("tenant");
                    item
                })
                .collect(),
            ..Page::default()
        };
        full.cut(&mut keyless, 2);
        assert_eq!(keyless.items.len(), 5, "sent whole rather than lost");
        assert_eq!(keyless.last_evaluated_key, None);
        assert!(FullPages::new(&Arc::new(ReadShape::default()), vec!["id".into()]).is_none());
    }
}
