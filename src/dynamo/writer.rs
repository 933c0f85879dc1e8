//! The batch writer: every item written, or reported by key. Generated records (the
//! seeder) and loaded items ([`crate::load`]) both feed it.
//!
//! Items go out in `BatchWriteItem` calls of at most 25 puts, `concurrency` calls in
//! flight. DynamoDB may accept part of a batch and hand the rest back as
//! `UnprocessedItems`, or throttle the whole call; both are re-sent after a capped
//! exponential backoff with full jitter (AWS's recommended scheme: a uniform delay in
//! `0..=min(cap, base * 2^attempt)`, which spreads retrying writers apart). After the last
//! attempt the items still unwritten are reported by key: nothing is dropped silently.
//!
//! Every call asks for the capacity it consumed. Under a write cap (`max_wcu`) each call
//! waits until the shared [`RateLimit`] is out of debt, and is charged what DynamoDB says
//! it consumed (or, where nothing is reported, a unit per started KB of each item sent,
//! DynamoDB's own rule for a standard put).

use crate::dynamo::client::Dynamo;
use crate::dynamo::convert;
use crate::format::backoff::Backoff;
use crate::format::change::Change;
use crate::format::error::ErrorKind;
use crate::format::item::{Item, Value, item_size};
use crate::format::rate::RateLimit;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, PutRequest, ReturnConsumedCapacity, WriteRequest,
};
use futures::{Stream, StreamExt, stream};
use std::sync::Arc;
use tokio::time::Instant;
use tracing::{debug, warn};

/// Keys of unwritten items a report keeps (the seeder shows the first 20).
pub const SHOWN_FAILED_KEYS: usize = 100;

/// What a run (or one batch) achieved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteReport {
    /// Items DynamoDB accepted.
    pub written: u64,
    /// `BatchWriteItem` batches completed (written or given up).
    pub batches: u64,
    /// Calls that re-sent something (after `UnprocessedItems` or a retryable error).
    pub retries: u64,
    /// Items handed back as `UnprocessedItems` and then actually sent again.
    pub unprocessed_resent: u64,
    /// Keys of the first items that were never written, at most [`SHOWN_FAILED_KEYS`]:
    /// a load that fails throughout must not hold every key of its input.
    pub failed_keys: Vec<String>,
    /// Items never written, all of them counted.
    pub failed: u64,
    /// Why the last batch that gave up did: the last error it saw (`Throttled` when
    /// DynamoDB kept handing items back).
    pub error: Option<ErrorKind>,
    /// What DynamoDB said of `error`, when it answered with one: the kind's message, its
    /// code and its message (`DynamoDB rejected the request: ValidationException: ...`).
    /// For an operator (the command line), never for a client of the functions.
    pub error_detail: Option<String>,
    /// The first batch (counted from 0 in the order given) not known to be written in
    /// full: resuming there is safe, since writes are idempotent. `None` when every
    /// batch given was written.
    pub first_unfinished: Option<u64>,
    /// Write capacity units DynamoDB reported consumed; `None` when no answer reported
    /// any (DynamoDB Local does; a mock may not).
    pub capacity: Option<f64>,
}

impl WriteReport {
    /// True when every item given was written.
    pub fn is_complete(&self) -> bool {
        self.failed == 0 && self.error.is_none() && self.first_unfinished.is_none()
    }

    /// Adds another run's (or batch's) report to this one.
    pub fn absorb(&mut self, other: WriteReport) {
        self.written += other.written;
        self.batches += other.batches;
        self.retries += other.retries;
        self.unprocessed_resent += other.unprocessed_resent;
        self.failed += other.failed;
        if let Some(units) = other.capacity {
            *self.capacity.get_or_insert(0.0) += units;
        }
        let room = SHOWN_FAILED_KEYS.saturating_sub(self.failed_keys.len());
        self.failed_keys
            .extend(other.failed_keys.into_iter().take(room));
        // The error that stopped the run is the one to name: batches still in flight may
        // give up later for a passing reason (throttling), which must not hide it.
        let keeps_own = match (self.error, other.error) {
            (_, None) => true,
            (Some(own), Some(theirs)) => !own.is_transient() && theirs.is_transient(),
            (None, Some(_)) => false,
        };
        if !keeps_own {
            self.error = other.error;
            self.error_detail = other.error_detail;
        }
    }
}

/// Writes batches of items into one table.
#[derive(Debug, Clone)]
pub struct BatchWriter {
    /// Shared by all batches in flight.
    client: Client,
    /// Where every item goes.
    table: String,
    /// The key attributes (hash, then range), read from items to report the ones not
    /// written.
    keys: Vec<String>,
    /// Batches in flight at once.
    concurrency: usize,
    /// Re-send policy for `UnprocessedItems` and retryable errors.
    backoff: Backoff,
    /// The write cap every call waits on and is charged to.
    rate: Option<Arc<RateLimit>>,
}

impl BatchWriter {
    /// A writer into `table`, whose items are keyed by the attribute `key`.
    pub fn new(client: Dynamo, table: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            client: client.sdk().clone(),
            table: table.into(),
            keys: vec![key.into()],
            concurrency: 4,
            backoff: Backoff::default(),
            rate: None,
        }
    }

    /// Sets the key attributes items are reported by (hash key, then range key if any).
    pub fn key_attributes(mut self, names: Vec<String>) -> Self {
        if !names.is_empty() {
            self.keys = names;
        }
        self
    }

    /// Sets how many batches are in flight at once (at least 1).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// How many batches are in flight at once.
    pub fn concurrency_level(&self) -> usize {
        self.concurrency
    }

    /// Sets the re-send policy.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Caps the write rate: every call waits on `rate` and is charged what it consumed.
    pub fn rate(mut self, rate: Option<Arc<RateLimit>>) -> Self {
        self.rate = rate;
        self
    }

    /// Writes every batch (each at most [`crate::format::limits::MAX_BATCH_WRITE_ITEMS`] items with distinct keys), calling
    /// `progress` with the running totals after each batch.
    pub async fn write_all(
        &self,
        batches: impl IntoIterator<Item = Vec<Item>>,
        progress: impl FnMut(&WriteReport),
    ) -> WriteReport {
        self.write_until(batches, None, progress).await
    }

    /// As [`write_all`](Self::write_all), stopping at `deadline`: no batch starts and no
    /// retry is waited for past it. What is then unwritten is reported by key, and
    /// `first_unfinished` says where to go on.
    pub async fn write_until(
        &self,
        batches: impl IntoIterator<Item = Vec<Item>>,
        deadline: Option<Instant>,
        mut progress: impl FnMut(&WriteReport),
    ) -> WriteReport {
        self.write_stream(stream::iter(batches), deadline, |done| progress(done.total))
            .await
    }

    /// Writes the batches of a stream as they come (at most `concurrency` in flight; the
    /// stream is polled only when one finishes, so a bounded producer bounds memory),
    /// calling `on_batch` as each batch finishes, in finishing order.
    pub async fn write_stream(
        &self,
        batches: impl Stream<Item = Vec<Item>>,
        deadline: Option<Instant>,
        mut on_batch: impl FnMut(BatchDone<'_>),
    ) -> WriteReport {
        let mut total = WriteReport::default();
        // Set when the deadline turned a batch away: the first one not started.
        let turned_away = std::sync::OnceLock::new();
        // Set at the first batch that failed with an error retrying cannot cure
        // (AccessDenied, ResourceNotFound, ValidationException): no batch starts after it.
        let refused = std::sync::atomic::AtomicBool::new(false);
        // Set when the write cap could not admit a batch before the deadline: no batch
        // starts after it.
        let deferred = std::sync::atomic::AtomicBool::new(false);
        // Batches finish out of order: the first unfinished one is the lowest index not
        // written in full, whatever finished after it.
        let mut unfinished = std::collections::BTreeSet::new();
        let started = batches
            .zip(stream::iter(0u64..))
            .take_while(|(_, index)| {
                let open = deadline.is_none_or(|at| Instant::now() < at)
                    && !refused.load(std::sync::atomic::Ordering::Relaxed)
                    && !deferred.load(std::sync::atomic::Ordering::Relaxed);
                if !open {
                    let _ = turned_away.set(*index);
                }
                std::future::ready(open)
            })
            .map(|(batch, index)| {
                let deferred = &deferred;
                async move {
                    if let Some(rate) = &self.rate
                        && !rate.admit_before(deadline).await
                    {
                        deferred.store(true, std::sync::atomic::Ordering::Relaxed);
                        return (index, None);
                    }
                    (index, Some(self.write_batch_until(batch, deadline).await))
                }
            });
        let mut done = std::pin::pin!(started.buffer_unordered(self.concurrency));
        while let Some((index, report)) = done.next().await {
            // Not started, for the cap: unwritten, but not failed; resuming writes it.
            let Some(report) = report else {
                unfinished.insert(index);
                on_batch(BatchDone {
                    index,
                    complete: false,
                    total: &total,
                });
                continue;
            };
            let complete = report.is_complete();
            if !complete {
                unfinished.insert(index);
            }
            if report.error.is_some_and(|kind| !kind.is_transient()) {
                refused.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            total.absorb(report);
            on_batch(BatchDone {
                index,
                complete,
                total: &total,
            });
        }
        total.first_unfinished = unfinished.first().copied().or(turned_away.get().copied());
        total
    }

    /// Writes one batch, re-sending what comes back unprocessed until the attempts run out.
    pub async fn write_batch(&self, items: Vec<Item>) -> WriteReport {
        if let Some(rate) = &self.rate {
            rate.admit().await;
        }
        self.write_batch_until(items, None).await
    }

    /// Writes one batch of changes (puts of whole items and deletes of keys, at most one
    /// a key), re-sending what comes back unprocessed, starting no attempt past
    /// `deadline`; under the write cap, the first attempt waits for it as a batch of
    /// [`Self::write_stream`] does.
    pub async fn write_changes(
        &self,
        changes: Vec<Change>,
        deadline: Option<Instant>,
    ) -> Option<WriteReport> {
        if let Some(rate) = &self.rate
            && !rate.admit_before(deadline).await
        {
            return None;
        }
        Some(self.write_requests(changes, deadline).await)
    }

    async fn write_batch_until(&self, items: Vec<Item>, deadline: Option<Instant>) -> WriteReport {
        self.write_requests(items.into_iter().map(Change::Put).collect(), deadline)
            .await
    }

    async fn write_requests(&self, changes: Vec<Change>, deadline: Option<Instant>) -> WriteReport {
        let mut report = WriteReport {
            batches: 1,
            ..WriteReport::default()
        };
        let mut pending: Vec<WriteRequest> = Vec::with_capacity(changes.len());
        // What each request costs by DynamoDB's rule for a put (a delete: its key's size),
        // charged to the cap when DynamoDB reports nothing, in the order of `pending`.
        let mut units: Vec<f64> = Vec::with_capacity(changes.len());
        for change in changes {
            let (item, delete) = match change {
                Change::Put(item) => (item, false),
                Change::Delete(key) => (key, true),
            };
            // An item holding a type this build cannot send (only a page read from
            // DynamoDB can hold one) is not written: it is counted and named by its key,
            // which converting would consume, so it is checked first.
            if !convert::sendable(&item) {
                report.failed += 1;
                report.failed_keys.push(self.key_of_item(&item));
                report.error = Some(ErrorKind::Internal);
                continue;
            }
            let cost = item_size(&item).div_ceil(1024).max(1) as f64;
            let request = convert::attributes(item).ok().and_then(|item| {
                if delete {
                    DeleteRequest::builder()
                        .set_key(Some(item))
                        .build()
                        .ok()
                        .map(|delete| WriteRequest::builder().delete_request(delete).build())
                } else {
                    PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .ok()
                        .map(|put| WriteRequest::builder().put_request(put).build())
                }
            });
            match request {
                Some(request) => {
                    pending.push(request);
                    units.push(cost);
                }
                None => {
                    report.failed += 1;
                    report.failed_keys.push("<no key>".to_string());
                    report.error = Some(ErrorKind::Internal);
                }
            }
        }
        if pending.is_empty() {
            return report;
        }
        // Which items come back unprocessed is not known by cost: each is charged the
        // batch's average when DynamoDB reports nothing.
        let per_item = units.iter().sum::<f64>() / units.len().max(1) as f64;
        let mut attempt = 1;
        // What the last attempt ran into, reported if the batch gives up.
        let mut last_error;
        let mut last_detail;
        let mut resending_unprocessed = false;
        loop {
            if resending_unprocessed {
                report.unprocessed_resent += pending.len() as u64;
            }
            let sent = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending.clone())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            match sent {
                Ok(output) => {
                    let reported: Option<f64> = output
                        .consumed_capacity
                        .as_ref()
                        .map(|all| all.iter().filter_map(|c| c.capacity_units).sum::<f64>());
                    let unprocessed = output
                        .unprocessed_items
                        .and_then(|mut tables| tables.remove(&self.table))
                        .unwrap_or_default();
                    if let Some(rate) = &self.rate {
                        let accepted = pending.len().saturating_sub(unprocessed.len());
                        rate.charge(reported.unwrap_or(per_item * accepted as f64));
                    }
                    if let Some(units) = reported {
                        *report.capacity.get_or_insert(0.0) += units;
                    }
                    report.written += (pending.len() - unprocessed.len().min(pending.len())) as u64;
                    if unprocessed.is_empty() {
                        return report;
                    }
                    debug!(
                        unprocessed = unprocessed.len(),
                        attempt, "items handed back"
                    );
                    pending = unprocessed;
                    resending_unprocessed = true;
                    last_error = ErrorKind::Throttled;
                    last_detail = None;
                }
                Err(err) => {
                    let err = crate::dynamo::error::classify(err);
                    last_error = err.kind;
                    last_detail = Some(format!("{}: {}", err.kind.message(), err.source));
                    if !err.kind.is_transient() {
                        warn!(cause = %err, source = ?err.source, "batch failed");
                        break;
                    }
                    warn!(cause = %err, source = ?err.source, attempt, "batch will be retried");
                    resending_unprocessed = false;
                }
            }
            if attempt >= self.backoff.max_attempts {
                break;
            }
            let delay = self.backoff.delay(attempt);
            if deadline.is_some_and(|at| Instant::now() + delay >= at) {
                // A retry that would end past the deadline is not made: the summary must
                // go out before Lambda stops the function. The error stays the one that
                // kept the items unwritten.
                debug!(attempt, "deadline reached, batch stops retrying");
                break;
            }
            tokio::time::sleep(delay).await;
            if let Some(rate) = &self.rate
                && !rate.admit_before(deadline).await
            {
                debug!(attempt, "the write cap's wait passes the deadline");
                break;
            }
            attempt += 1;
            report.retries += 1;
        }
        // An item refused before sending keeps its error: it is the one no retry cures.
        if report.error.is_none() {
            report.error = Some(last_error);
            report.error_detail = last_detail;
        }
        // The loop only breaks with items unwritten: name them.
        report
            .failed_keys
            .extend(pending.iter().map(|request| self.key_of(request)));
        report.failed += pending.len() as u64;
        warn!(
            unwritten = report.failed,
            attempts = attempt,
            error = last_error.code(),
            "batch gave up"
        );
        report
    }

    /// The item's key as text: the value alone for a hash key, `name=value` pairs when
    /// there is a range key too.
    fn key_of(&self, request: &WriteRequest) -> String {
        let item = request
            .put_request()
            .map(|put| put.item())
            .or_else(|| request.delete_request().map(|delete| delete.key()));
        self.key_text(|name| match item.and_then(|item| item.get(name)) {
            Some(AttributeValue::S(s)) => s.clone(),
            Some(AttributeValue::N(n)) => n.clone(),
            Some(AttributeValue::B(b)) => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(b.as_ref())
            }
            Some(other) => format!("{other:?}"),
            None => "<no key>".to_string(),
        })
    }

    /// As [`Self::key_of`], for an item not (yet) in the SDK's type.
    fn key_of_item(&self, item: &Item) -> String {
        self.key_text(|name| match item.get(name) {
            Some(Value::S(s) | Value::N(s)) => s.clone(),
            Some(Value::B(b)) => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(b)
            }
            Some(other) => format!("{other:?}"),
            None => "<no key>".to_string(),
        })
    }

    fn key_text(&self, value: impl Fn(&String) -> String) -> String {
        match self.keys.as_slice() {
            [only] => value(only),
            keys => keys
                .iter()
                .map(|name| format!("{name}={}", value(name)))
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// One batch finished, as [`BatchWriter::write_stream`] reports it.
#[derive(Debug)]
pub struct BatchDone<'a> {
    /// Its place in the order given, from 0.
    pub index: u64,
    /// Every item of it was written.
    pub complete: bool,
    /// The running totals, this batch included.
    pub total: &'a WriteReport,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gave_up(error: ErrorKind, detail: Option<&str>) -> WriteReport {
        WriteReport {
            failed: 25,
            error: Some(error),
            error_detail: detail.map(str::to_string),
            ..WriteReport::default()
        }
    }

    #[test]
    fn a_refusal_is_not_hidden_by_a_later_batch_that_gave_up_under_throttling() {
        let mut report = WriteReport::default();
        report.absorb(gave_up(
            ErrorKind::InvalidRequest,
            Some("ValidationException: no"),
        ));
        report.absorb(gave_up(ErrorKind::Throttled, None));
        assert_eq!(report.error, Some(ErrorKind::InvalidRequest));
        assert_eq!(
            report.error_detail.as_deref(),
            Some("ValidationException: no")
        );
        assert_eq!(report.failed, 50);
        // A passing error is replaced by the one that cannot pass.
        let mut report = WriteReport::default();
        report.absorb(gave_up(ErrorKind::Throttled, None));
        report.absorb(gave_up(
            ErrorKind::AccessDenied,
            Some("AccessDeniedException: no"),
        ));
        assert_eq!(report.error, Some(ErrorKind::AccessDenied));
    }
}
