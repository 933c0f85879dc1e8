//! An in-memory page source: a table held in a `Vec`, split into segments by key hash.
//!
//! It lets the merge, the trailer and cursors be tested without DynamoDB. In the crate's
//! own tests it can also inject what DynamoDB Local never does: a failure or a panic at
//! a chosen call, or slow pages.

use super::source::{Page, PageRequest, PageSource};
use crate::format::error::{ErrorKind, UpstreamError};
use crate::format::item::{Item, Value};
use crate::format::json::to_line;
use crate::format::key::{KeyAttribute, KeySchema, KeyType};
use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(test)]
use std::time::Duration;

/// A table in memory, keyed by one attribute.
#[derive(Debug)]
pub struct MemorySource {
    /// All items; each belongs to the segment its key hashes to.
    items: Vec<Item>,
    /// The key attribute: `LastEvaluatedKey` holds only this, as DynamoDB's does.
    key: String,
    /// Calls made so far; tests read it to see how far the scan went.
    calls: AtomicUsize,
    /// What a read with a filter keeps, standing in for DynamoDB's evaluation of the
    /// expression; without it a filtered read is refused.
    keep: Option<fn(&Item) -> bool>,
    /// A key schema to describe instead of the items' own: a stale `DescribeTable`.
    reported: Option<KeySchema>,
    /// Faults to inject (tests only).
    #[cfg(test)]
    faults: Faults,
}

/// What the crate's tests make go wrong.
#[cfg(test)]
#[derive(Debug, Default)]
struct Faults {
    /// The call (counted from 0) that fails, and how.
    fail_at: Option<(usize, ErrorKind)>,
    /// The call (counted from 0) that panics, as a bug of ours would.
    panic_at: Option<usize>,
    /// Added to every page, to make arrival order observable.
    delay: Duration,
}

impl MemorySource {
    /// A table of `items` keyed by the attribute `key`.
    pub fn new(items: Vec<Item>, key: impl Into<String>) -> Self {
        Self {
            items,
            key: key.into(),
            calls: AtomicUsize::new(0),
            keep: None,
            reported: None,
            #[cfg(test)]
            faults: Faults::default(),
        }
    }

    /// Reads with a filter (whatever its expression) return the items `keep` accepts of
    /// those each page reads, as DynamoDB applies a filter after `Limit`.
    pub fn with_filter(mut self, keep: fn(&Item) -> bool) -> Self {
        self.keep = Some(keep);
        self
    }

    /// Describes `schema` as the table's key, whatever the items are keyed by: a stale
    /// or wrong description, which reads must survive without losing or repeating items.
    pub fn describing(mut self, schema: KeySchema) -> Self {
        self.reported = Some(schema);
        self
    }

    /// Makes call number `call` (from 0) fail with `kind`.
    #[cfg(test)]
    pub fn failing_at(mut self, call: usize, kind: ErrorKind) -> Self {
        self.faults.fail_at = Some((call, kind));
        self
    }

    /// Makes call number `call` (from 0) panic.
    #[cfg(test)]
    pub fn panicking_at(mut self, call: usize) -> Self {
        self.faults.panic_at = Some(call);
        self
    }

    /// Makes every page take `delay`.
    #[cfg(test)]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.faults.delay = delay;
        self
    }

    #[cfg(test)]
    async fn inject(&self, call: usize) -> Result<(), UpstreamError> {
        if !self.faults.delay.is_zero() {
            tokio::time::sleep(self.faults.delay).await;
        }
        assert!(
            self.faults.panic_at != Some(call),
            "injected panic at call {call}"
        );
        match self.faults.fail_at {
            Some((at, kind)) if at == call => Err(UpstreamError::new(
                kind,
                format!("injected failure at call {call}"),
            )),
            _ => Ok(()),
        }
    }

    /// How many pages have been asked for.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn segment_of(&self, item: &Item, total_segments: u32) -> u32 {
        let key = item.get(&self.key).map(|v| {
            let mut one = Item::new();
            one.insert(self.key.clone(), v.clone());
            to_line(&one)
        });
        let hash = fnv1a(key.as_deref().unwrap_or_default());
        u32::try_from(hash % u64::from(total_segments.max(1))).unwrap_or(0)
    }
}

impl PageSource for MemorySource {
    async fn page(&self, request: PageRequest) -> Result<Page, UpstreamError> {
        #[cfg_attr(not(test), allow(unused_variables))]
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        #[cfg(test)]
        self.inject(call).await?;
        if request.shape.index.is_some() {
            return Err(UpstreamError::new(
                ErrorKind::IndexNotFound,
                "no indexes in memory",
            ));
        }
        let query = request.shape.query.as_ref();
        // A filter without `with_filter`, a sort-key condition and order would be silently
        // wrong here: tests of them run against DynamoDB Local.
        let keep: Option<fn(&Item) -> bool> = match request.shape.filter {
            Some(_) => self.keep,
            None => Some(|_| true),
        };
        let Some(keep) = keep.filter(|_| !query.is_some_and(|q| q.sort.is_some() || q.descending))
        else {
            return Err(UpstreamError::new(
                ErrorKind::InvalidRequest,
                "filters, sort-key conditions and order are not kept in memory",
            ));
        };
        let partition = query.zip(request.partition.as_ref());
        let mut segment = self.items.iter().filter(|item| match partition {
            // A Query reads one partition, unsegmented.
            Some((query, value)) => item.get(&query.key) == Some(&value.to_value()),
            None => self.segment_of(item, request.total_segments) == request.segment,
        });
        if let Some(start) = &request.exclusive_start_key {
            let start_key: Option<&Value> = start.get(&self.key);
            // Skip up to and including the start key, as DynamoDB does.
            if segment
                .by_ref()
                .all(|item| item.get(&self.key) != start_key)
            {
                return Err(UpstreamError::new(
                    ErrorKind::InvalidRequest,
                    "exclusive start key not in segment",
                ));
            }
        }
        let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
        let page: Vec<&Item> = segment.by_ref().take(limit).collect();
        let more = segment.next().is_some();
        let last_evaluated_key = match page.last() {
            Some(last) if more => last
                .get(&self.key)
                .map(|v| Item::from([(self.key.clone(), v.clone())])),
            _ => None,
        };
        let fields = &request.shape.fields;
        let scanned = page.len() as u64;
        let items: Vec<Item> = page
            .into_iter()
            .filter(|item| keep(item))
            .map(|item| {
                item.iter()
                    .filter(|(name, _)| fields.is_empty() || fields.contains(name))
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect()
            })
            .collect();
        let count = items.len() as u64;
        Ok(Page {
            scanned_count: scanned,
            count,
            consumed_capacity: Some(scanned as f64 * 0.5),
            items: if request.shape.count {
                Vec::new()
            } else {
                items
            },
            last_evaluated_key,
            retries: 0,
        })
    }

    async fn key_schema(&self, index: Option<&str>) -> Result<KeySchema, UpstreamError> {
        match &self.reported {
            Some(schema) if index.is_none() => Ok(schema.clone()),
            _ => Ok(KeySchema {
                partition: self.partition_key(index).await?,
                sort: None,
            }),
        }
    }

    async fn partition_key(&self, index: Option<&str>) -> Result<KeyAttribute, UpstreamError> {
        match index {
            Some(_) => Err(UpstreamError::new(
                ErrorKind::IndexNotFound,
                "no indexes in memory",
            )),
            None => Ok(KeyAttribute {
                name: self.key.clone(),
                key_type: KeyType::S,
            }),
        }
    }
}

/// FNV-1a: a stable hash, so an item's segment never changes between runs.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
