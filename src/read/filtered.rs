//! Filtered reads under `max_items`: whole pages, cut after the last item the budget
//! allows.
//!
//! DynamoDB's `Limit` counts the items it reads, before the filter drops any. Sizing a
//! page's `Limit` by what the budget has left, exact for an unfiltered read, turns the end
//! of a filtered one into calls of one item that mostly match nothing: about
//! 1/selectivity calls for each item sent. So a filtered read asks for about what it
//! takes to match its reservation at the rate seen so far (whole pages for a rare match),
//! reserves about what such a page matches, tops the reservation up from the free budget
//! when a page matched more, and cuts only what the budget cannot give. The segment then resumes after the last item sent, at a key made of that
//! item's key attributes: the table's, and an index's too, as DynamoDB's own
//! `LastEvaluatedKey` holds them. The items after that key are read again, the filtered-out
//! ones among them, and none can come twice. Keys are only made once one of DynamoDB's
//! own `LastEvaluatedKey`s has shown the described key fits; a key that does not fit
//! drops the page unsent and turns the stream back to pages sized by the budget.

use super::budget::Reservation;
use crate::dynamo::source::{Page, PageSource};
use crate::format::error::UpstreamError;
use crate::format::item::{Item, Value};
use crate::format::shape::ReadShape;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Cleared when the key schema turns out not to fit the items.
    active: AtomicBool,
    /// A LastEvaluatedKey of DynamoDB's has shown that the key fits: only then are keys
    /// made from items.
    verified: AtomicBool,
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
            active: AtomicBool::new(true),
            verified: AtomicBool::new(false),
        })
    }

    /// The shape every page is read with.
    pub fn shape(&self) -> &Arc<ReadShape> {
        &self.shape
    }

    /// Whether pages are still read whole and cut. A key schema found not to fit the
    /// items turns it off for the rest of the stream ([`Fitted::Misfit`]).
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
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

    /// The `Limit` of a page that reserved `reserved` items: about what it takes to match
    /// them at the rate seen so far, at most `limit`. Asking for `limit` whatever the
    /// reservation made a filter that matches most items read a whole page to send a few
    /// and the next call read the rest again. Before anything was read the rate is taken
    /// as 1 (the reservation itself, as budget-sized pages read); a filter that matches
    /// little grows to whole pages after its first.
    pub fn page_limit(&self, limit: u32, reserved: u32) -> u32 {
        let scanned = self.scanned.load(Ordering::Relaxed);
        let matched = self.matched.load(Ordering::Relaxed);
        if scanned == 0 {
            return reserved.min(limit);
        }
        if matched == 0 {
            return limit;
        }
        let wanted = (u128::from(reserved) * u128::from(scanned)).div_ceil(u128::from(matched));
        u32::try_from(wanted).map_or(limit, |wanted| wanted.clamp(1, limit))
    }

    /// Fits a fetched `page` to `reservation`: tops the reservation up from what nobody
    /// holds when the page matched more, cuts the page after the last item the budget
    /// allows, and takes the added key attributes out of every item. A page it does not
    /// return [`Fitted::Sent`] for must not be sent: its position is still the one it was
    /// read from, so reading it again loses nothing.
    pub fn fit(&self, page: &mut Page, reservation: &mut Reservation) -> Fitted {
        self.matched
            .fetch_add(page.items.len() as u64, Ordering::Relaxed);
        self.scanned
            .fetch_add(page.scanned_count, Ordering::Relaxed);
        if let Some(last) = &page.last_evaluated_key {
            // DynamoDB's own key names the attributes of a position. One that differs from
            // ours (a stale description, a recreated table) would make our cut keys ones
            // it refuses, or items without them: stop cutting for this stream.
            if !self.is_key(last) {
                self.turn_off("DynamoDB's LastEvaluatedKey is not the described key");
                return Fitted::Misfit;
            }
            self.verified.store(true, Ordering::Relaxed);
        }
        let have = u32::try_from(page.items.len()).unwrap_or(u32::MAX);
        if have > reservation.items() {
            reservation.top_up(have - reservation.items());
        }
        let allowed = usize::try_from(reservation.items().max(1)).unwrap_or(usize::MAX);
        if page.items.len() > allowed {
            if !self.verified.load(Ordering::Relaxed) {
                // No LastEvaluatedKey has shown the key yet (every page so far was a
                // segment's last): a key made from the described schema might not be one
                // DynamoDB takes.
                return Fitted::Unverified;
            }
            let Some(key) = self.key_of(&page.items[allowed - 1]) else {
                self.turn_off("an item without the described key attributes");
                return Fitted::Misfit;
            };
            page.items.truncate(allowed);
            page.count = allowed as u64;
            page.last_evaluated_key = Some(key);
        }
        if !self.added.is_empty() {
            for item in &mut page.items {
                for name in &self.added {
                    item.remove(name);
                }
            }
        }
        Fitted::Sent
    }

    /// Learns from a page read without [`FullPages::fit`] (a budget-sized re-read): its
    /// `LastEvaluatedKey` confirms the described key, or shows it does not fit, as a
    /// fitted page's does. Without this a re-read could never unblock the next cut.
    pub fn observe(&self, last_evaluated_key: Option<&crate::format::item::Item>) {
        if let Some(last) = last_evaluated_key {
            if self.is_key(last) {
                self.verified.store(true, Ordering::Relaxed);
            } else {
                self.turn_off("DynamoDB's LastEvaluatedKey is not the described key");
            }
        }
    }

    fn turn_off(&self, why: &str) {
        if self.active.swap(false, Ordering::Relaxed) {
            warn!(key = ?self.key, why, "key schema does not fit: filtered pages sized by max_items");
        }
    }

    /// Whether `key` holds exactly the position's attributes, each a key type.
    fn is_key(&self, key: &Item) -> bool {
        key.len() == self.key.len()
            && self
                .key
                .iter()
                .all(|name| key.get(name).is_some_and(is_key_value))
    }

    /// `item`'s key: its values of the key attributes; `None` if one is missing or of a
    /// type no key has.
    fn key_of(&self, item: &Item) -> Option<Item> {
        self.key
            .iter()
            .map(|name| {
                let value = item.get(name).filter(|value| is_key_value(value))?;
                Some((name.clone(), value.clone()))
            })
            .collect()
    }
}

/// Key attributes are strings, numbers or binary.
fn is_key_value(value: &Value) -> bool {
    matches!(value, Value::S(_) | Value::N(_) | Value::B(_))
}

/// What [`FullPages::fit`] made of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fitted {
    /// Fits the budget (cut if it had to be): send it.
    Sent,
    /// The key schema does not fit the items: drop the page and read on with pages
    /// sized by the budget, which need no key.
    Misfit,
    /// Had to be cut before any LastEvaluatedKey confirmed the key: drop it and read it
    /// again with one page sized by the budget.
    Unverified,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::memory::MemorySource;
    use crate::format::cursor::{Cursor, CursorSeal, Position};
    use crate::format::item::Value;
    use crate::format::key::KeyValue;
    use crate::format::shape::{Filter, QueryShape};
    use crate::format::trailer::{StopReason, split_body};
    use crate::read::stream::{ScanPlan, start};
    use bytes::Bytes;
    use futures::StreamExt;

    const SECRET: &[u8] = b"filtered";

    /// Items `k00000`.. with `n` their number and `tenant` one of four partitions.
    fn table(count: u64) -> Vec<Item> {
        (0..count)
            .map(|i| {
                Item::from([
                    ("id".to_string(), Value::S(format!("k{i:05}"))),
                    ("n".to_string(), Value::N(i.to_string())),
                    ("tenant".to_string(), Value::S(format!("t{}", i % 4))),
                ])
            })
            .collect()
    }

    fn n_of(item: &Item) -> u64 {
        match item.get("n") {
            Some(Value::N(n)) => n.parse().unwrap_or(u64::MAX),
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
        let (items, trailers) = follow_trailers(source, first).await;
        (items, trailers.len())
    }

    /// [`follow`], with the trailer of every call.
    async fn follow_trailers(
        source: Arc<MemorySource>,
        first: ScanPlan,
    ) -> (Vec<serde_json::Value>, Vec<crate::format::trailer::Trailer>) {
        let max = first.max_items.expect("a budget");
        let mut plan = first.clone();
        let mut all = Vec::new();
        let mut trailers = Vec::new();
        for round in 1.. {
            let chunks: Vec<Bytes> = start(source.clone(), plan.clone())
                .await
                .expect("starts")
                .collect()
                .await;
            let (items, trailer) = split_body(&chunks.concat()).expect("items, then the trailer");
            let got = items.len() as u64;
            all.extend(items);
            trailers.push(trailer.clone());
            if trailer.complete {
                return (all, trailers);
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

    fn nine_in_ten(item: &Item) -> bool {
        !n_of(item).is_multiple_of(10)
    }

    /// Fifty in a row of every thousand: 5% overall, all in bunches.
    fn in_bunches(item: &Item) -> bool {
        n_of(item) % 1000 < 50
    }

    #[tokio::test]
    async fn a_high_match_filter_reads_about_max_items_over_its_rate_not_limit() {
        // 90% match, 10 a call, pages of up to 1,000: a call needs about 11 items read.
        // Pages of `limit` read about 1,000 a call, the rest read again by the next.
        for segments in [1, 4] {
            let source = Arc::new(MemorySource::new(table(5_000), "id").with_filter(nine_in_ten));
            let first = plan(segments, 1000, 10, ReadShape::default());
            let (items, trailers) = follow_trailers(source, first).await;
            assert_eq!(sorted_n(&items).len(), 4_500);
            let calls = trailers.len() as u64;
            let scanned: u64 = trailers.iter().map(|t| t.scanned).sum();
            let worst = trailers.iter().map(|t| t.scanned).max().unwrap_or(0);
            println!("segments {segments}: {calls} calls, {scanned} read, at most {worst} a call");
            assert!(
                scanned <= 5_000 + 5_000 / 2,
                "segments {segments}: {scanned} items read for a table of 5,000 in {calls} calls"
            );
            assert!(
                worst <= 100,
                "segments {segments}: a call read {worst} items to send 10"
            );
        }
    }

    #[tokio::test]
    async fn bunched_matches_are_not_cut_while_the_budget_has_room() {
        // 5% match in bunches of 50, pages of 100, 200 a call: a page in a bunch matches
        // up to 50, far past a reservation of twice the average (11). With the budget
        // free, such a page is sent whole instead of cut at 11 and read again.
        let source = Arc::new(MemorySource::new(table(20_000), "id").with_filter(in_bunches));
        let (items, trailers) =
            follow_trailers(source.clone(), plan(1, 100, 200, ReadShape::default())).await;
        let want: Vec<u64> = (0..20_000).filter(|n| n % 1000 < 50).collect();
        assert_eq!(sorted_n(&items), want);
        let scanned: u64 = trailers.iter().map(|t| t.scanned).sum();
        let calls = source.calls();
        println!(
            "{} calls of the streamer, {calls} Scan calls, {scanned} read",
            trailers.len()
        );
        // 200 pages of 100 at least; the cuts at the end of each call (5 calls) add a few.
        assert!(calls <= 205, "{calls} Scan calls for 200 pages");
        assert!(scanned <= 20_100, "{scanned} read");
    }

    #[tokio::test]
    async fn a_key_schema_that_does_not_fit_the_items_never_over_spends_or_loses_an_item() {
        // The items are keyed by `id`; the description says otherwise (a stale cache, a
        // table recreated): another attribute, or more attributes than the key has.
        use crate::format::key::{KeyAttribute, KeySchema, KeyType};
        let attribute = |name: &str, key_type| KeyAttribute {
            name: name.into(),
            key_type,
        };
        let expected: Vec<u64> = (0..3000).filter(|n| n % 10 < 7).collect();
        for described in [
            KeySchema {
                partition: attribute("tenant", KeyType::S),
                sort: None,
            },
            KeySchema {
                partition: attribute("id", KeyType::S),
                sort: Some(attribute("n", KeyType::N)),
            },
        ] {
            for (segments, limit, max) in [(4, 100, 37), (1, 1000, 10), (3, 40, 200)] {
                let source = Arc::new(
                    MemorySource::new(table(3000), "id")
                        .with_filter(seven_in_ten)
                        .describing(described.clone()),
                );
                let first = ScanPlan {
                    position_key: position_key(&*source, None).await.expect("described"),
                    ..plan(segments, limit, max, ReadShape::default())
                };
                // `follow` holds every incomplete call to exactly `max_items`, and every
                // cursor must be one the source takes.
                let (items, trailers) = follow_trailers(source.clone(), first).await;
                assert_eq!(
                    sorted_n(&items),
                    expected,
                    "{described:?}: segments {segments} limit {limit} max {max}"
                );
                // Pages read and dropped are pages fetched: the trailers count every one,
                // and with it what it read (a client paces by the trailers' capacity).
                let pages: u64 = trailers.iter().map(|t| t.pages).sum();
                let scanned: u64 = trailers.iter().map(|t| t.scanned).sum();
                assert_eq!(
                    pages,
                    source.calls() as u64,
                    "{described:?}: segments {segments} limit {limit} max {max}: every page \
                     fetched is in a trailer"
                );
                assert!(scanned >= 3000, "scanned {scanned}");
            }
        }
    }

    #[tokio::test]
    async fn without_a_key_schema_a_filtered_read_stays_exact() {
        // No position key (DescribeTable failed or slow): pages sized by the budget.
        let expected: Vec<u64> = (0..3000).filter(|n| n % 10 < 7).collect();
        for (segments, limit, max) in [(4, 50, 37), (1, 1000, 10)] {
            let source = Arc::new(MemorySource::new(table(3000), "id").with_filter(seven_in_ten));
            let first = ScanPlan {
                position_key: Vec::new(),
                ..plan(segments, limit, max, ReadShape::default())
            };
            let (items, _) = follow(source, first).await;
            assert_eq!(
                sorted_n(&items),
                expected,
                "segments {segments} limit {limit} max {max}"
            );
        }
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

    fn key(id: &str, tenant: &str) -> Item {
        Item::from([
            ("id".to_string(), Value::S(id.into())),
            ("tenant".to_string(), Value::S(tenant.into())),
        ])
    }

    #[tokio::test]
    async fn a_page_is_cut_after_an_item_with_its_whole_key_and_a_misfit_is_never_sent() {
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
        assert_eq!(
            full.page_limit(100, 7),
            7,
            "at first, the reservation itself"
        );
        // Budget 6: a reservation of 4, 2 held by another page, none left to top up from.
        let budget = crate::read::budget::Budget::new(Some(6));
        let mut reservation = budget.take(4).await.expect("items");
        let _other = budget.take(2).await.expect("items");
        let mut page = Page {
            items: table(10),
            scanned_count: 50,
            last_evaluated_key: Some(key("k00049", "t1")),
            ..Page::default()
        };
        assert_eq!(full.fit(&mut page, &mut reservation), Fitted::Sent);
        assert_eq!(page.items.len(), 4);
        assert_eq!(page.last_evaluated_key, Some(key("k00003", "t3")));
        assert!(
            page.items.iter().all(|item| item.len() == 1),
            "the key taken out again"
        );
        // 10 of 50 matched: twice what a page matches (20 of 100, 2 of 10), plus one.
        assert_eq!(full.reservation(100), 41);
        assert_eq!(full.reservation(10), 5);
        assert_eq!(full.reservation(1), 1);
        // 1 in 5 matches: 8 items reserved take about 40 read.
        assert_eq!(full.page_limit(100, 8), 40);
        assert_eq!(full.page_limit(30, 8), 30);
        // An item without a key attribute, or with one of a type no key has: never sent.
        for spoil in [
            |item: &mut Item| drop(item.remove("tenant")),
            |item: &mut Item| drop(item.insert("tenant".into(), Value::Bool(true))),
        ] {
            let full =
                FullPages::new(&shape, vec!["id".into(), "tenant".into()]).expect("filtered");
            let budget = crate::read::budget::Budget::new(Some(2));
            let mut reservation = budget.take(2).await.expect("items");
            let mut verified = Page {
                items: table(1),
                last_evaluated_key: Some(key("k00000", "t0")),
                ..Page::default()
            };
            assert_eq!(full.fit(&mut verified, &mut reservation), Fitted::Sent);
            let mut spoiled = Page {
                items: table(5)
                    .into_iter()
                    .map(|mut item| {
                        spoil(&mut item);
                        item
                    })
                    .collect(),
                ..Page::default()
            };
            assert_eq!(full.fit(&mut spoiled, &mut reservation), Fitted::Misfit);
            assert!(!full.active(), "pages sized by the budget from now on");
        }
        // A LastEvaluatedKey whose names differ from the described key.
        for last in [
            Item::from([("id".to_string(), Value::S("k1".into()))]),
            Item::from([
                ("id".to_string(), Value::S("k1".into())),
                ("tenant".to_string(), Value::S("t1".into())),
                ("n".to_string(), Value::N("1".into())),
            ]),
        ] {
            let full =
                FullPages::new(&shape, vec!["id".into(), "tenant".into()]).expect("filtered");
            let budget = crate::read::budget::Budget::new(Some(100));
            let mut reservation = budget.take(100).await.expect("items");
            let mut page = Page {
                items: table(1),
                last_evaluated_key: Some(last),
                ..Page::default()
            };
            assert_eq!(full.fit(&mut page, &mut reservation), Fitted::Misfit);
            assert!(!full.active());
        }
        // A cut before any LastEvaluatedKey confirmed the key: read again, budget-sized.
        let full = FullPages::new(&shape, vec!["id".into(), "tenant".into()]).expect("filtered");
        let budget = crate::read::budget::Budget::new(Some(2));
        let mut reservation = budget.take(2).await.expect("items");
        let mut last = Page {
            items: table(5),
            ..Page::default()
        };
        assert_eq!(full.fit(&mut last, &mut reservation), Fitted::Unverified);
        assert!(full.active());
        // That budget-sized re-read's own LastEvaluatedKey confirms the key: the next
        // page that needs a cut is cut, not dropped and read again once more.
        full.observe(Some(&key("k00001", "t1")));
        let mut again = Page {
            items: table(5),
            ..Page::default()
        };
        assert_eq!(full.fit(&mut again, &mut reservation), Fitted::Sent);
        assert_eq!(again.items.len(), 2);
        // One that names other attributes turns cutting off, as a fitted page's does.
        let other = FullPages::new(&shape, vec!["id".into(), "tenant".into()]).expect("filtered");
        other.observe(Some(&Item::from([(
            "id".to_string(),
            Value::S("k1".into()),
        )])));
        assert!(!other.active());
        assert!(FullPages::new(&Arc::new(ReadShape::default()), vec!["id".into()]).is_none());
    }
}
