//! One slice's worker: calls the streamer from the slice's last committed cursor until the
//! slice is complete, spooling each call's items and committing them when its trailer
//! arrives.

use crate::cli::output::checkpoint::{Committed, SliceState};
use crate::cli::output::commit::Committer;
use crate::cli::output::export::s3::layout::file_line_items;
use crate::cli::output::spool::Spool;
use crate::cli::pace::Pace;
use crate::cli::pace::concurrency::Concurrency;
use crate::cli::pull::attempts::{Attempts, Throttled};
use crate::cli::pull::options::{Counters, PullOptions};
use crate::cli::pull::size::CallSize;
use crate::cli::transport::lines::Lines;
use crate::cli::transport::{Failure, Request, Transport, approximate_size};
use crate::format::compress::Decompressor;
use crate::format::error::ErrorKind;
use crate::format::export::{KEY_SCHEMA_HEADER, RecordedKeySchema};
use crate::format::trailer::{StopReason, Trailer};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::time::Instant;
use tracing::{debug, warn};

/// The least a count (`--count`) or a filtered read (`--filter`) waits for its response
/// and between two chunks, whatever `--idle-timeout` says: a count's body is silent until
/// the trailer, and a filter that matches little sends nothing for page after page. So
/// this is above the function's 900 s timeout, and such a call is never cut by the client
/// (the invocation ends by then anyway, with its trailer or cut off by Lambda).
const COUNT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(960);

/// How long a call may wait for its response, or its body for the next chunk
/// (`--idle-timeout`, default 600 s). The streamer sends a page at a time; under a low
/// `max_rcu` share a page may wait minutes for the bucket (a first page assumes a 400 KB
/// item), so the default is well above that, and below Lambda's 15-minute invocation.
fn idle_timeout(may_be_silent: bool, configured: std::time::Duration) -> std::time::Duration {
    if may_be_silent {
        configured.max(COUNT_IDLE_TIMEOUT)
    } else {
        configured
    }
}

/// A slice's call size, `None` for a count: the streamer refuses `max_items` with
/// `select=count` (400), and a count sends no items a smaller call would fit under a cap,
/// so a cut count is made again as it was.
fn call_size(count: bool, user: Option<u64>) -> Option<CallSize> {
    (!count).then(|| CallSize::new(user))
}

/// Whether a call that ended on an error moved the slice on: it sent items, or its
/// cursor is not the one it started from (cursors are sealed deterministically, so the
/// same positions give the same token). Not its pages or `scanned`: a filtered page the
/// streamer read and dropped (a key schema that did not fit) is counted there without
/// moving anything, and a call that only did that must count against the attempts. A
/// count or a filter that matched nothing still moved its cursor.
fn made_progress(from: Option<&str>, trailer: &Trailer) -> bool {
    trailer.items > 0 || trailer.cursor.as_deref() != from
}

/// Reads one slice.
pub struct Worker {
    pub(crate) options: Arc<PullOptions>,
    pub(crate) transport: Transport,
    pub(crate) committer: Arc<Mutex<Committer>>,
    pub(crate) counters: Arc<Counters>,
    /// Calls at once over all slices: fewer after a 429.
    pub(crate) concurrency: Arc<Concurrency>,
    /// The slice's place in the checkpoint.
    pub(crate) index: usize,
    pub(crate) total_segments: u32,
    /// Where its calls are spooled (beside the output).
    pub(crate) spool_path: PathBuf,
    /// Raised when the output failed: no further call.
    pub(crate) halt: Arc<AtomicBool>,
}

/// A call whose trailer arrived, to commit.
struct Whole<'a> {
    spool: Spool,
    trailer: Box<Trailer>,
    items: u64,
    arriving: Arriving<'a>,
}

/// How a call ended.
#[derive(Debug)]
enum Outcome {
    /// The trailer arrived and the lines counted agree with it: `items` lines are in the
    /// spool.
    Whole { trailer: Box<Trailer>, items: u64 },
    /// Lambda throttled the call (429): too many at once.
    Throttled(String),
    /// The body ended, or broke, before its trailer, after `delivered` whole lines.
    Cut { why: String, delivered: u64 },
    /// Worth trying again: a transport error, 5xx, credentials that did not load, a
    /// trailer that does not match the lines.
    Retry(String),
    /// Not worth trying again: another 4xx.
    Fatal(String),
}

/// Trailer error codes after which a slice cannot go on, whatever the attempts: a read
/// of changes whose stream no longer keeps them, or whose cursor would be too long.
const FATAL_CODES: &[&str] = &["ChangesGone", "TooManyShards"];

impl Worker {
    /// Calls until the slice is done, or a call fails for good; the error names why.
    pub async fn run(self, mut slice: SliceState) -> Result<(), String> {
        let spool_path = self.spool_path.clone();
        let result = self.calls(&mut slice, &spool_path).await;
        let _ = std::fs::remove_file(&spool_path);
        result
    }

    async fn calls(
        &self,
        slice: &mut SliceState,
        spool_path: &std::path::Path,
    ) -> Result<(), String> {
        let mut attempts = Attempts::new(self.options.backoff);
        let mut throttled = Throttled::default();
        let mut size = call_size(self.options.count, self.options.max_items_per_call);
        let mut pace = self.options.rcu_share.map(Pace::new);
        while !slice.done {
            if let Some(pace) = &pace {
                tokio::time::sleep(pace.wait()).await;
            }
            if self.halt.load(Ordering::SeqCst) {
                return Err("stopped: the output failed".into());
            }
            let waiting = Instant::now();
            let permit = self.concurrency.acquire().await;
            // Patience counts time being refused, not time queued behind the other
            // slices for a place: a slice that waited ten minutes for a place must not
            // give up on its first 429 after it.
            if let Some(since) = &mut throttled.since {
                *since += waiting.elapsed();
            }
            let mut spool = Spool::start(spool_path);
            self.counters.calls.fetch_add(1, Ordering::Relaxed);
            let called = Instant::now();
            // Until this iteration ends (committed, given up on, or aborted), the call
            // is running and its items count as arrived.
            let mut arriving = Arriving::new(&self.counters);
            let outcome = self
                .call(
                    slice,
                    &mut spool,
                    size.as_ref().and_then(CallSize::max_items),
                    &mut arriving,
                )
                .await;
            if let Some(pace) = &mut pace {
                match &outcome {
                    Outcome::Whole { trailer, .. } => {
                        pace.reported(trailer.consumed_capacity, called.elapsed());
                    }
                    _ => pace.unknown(called.elapsed()),
                }
            }
            if let Outcome::Throttled(why) = &outcome {
                drop(arriving);
                permit.throttled();
                self.on_throttled(slice, &mut throttled, called, why)
                    .await?;
                continue;
            }
            throttled = Throttled::default();
            let why = match outcome {
                Outcome::Whole { trailer, items } => {
                    permit.got_through();
                    if let Some(size) = &mut size {
                        size.whole();
                    }
                    let whole = Whole {
                        spool,
                        trailer,
                        items,
                        arriving,
                    };
                    self.on_whole(slice, whole, &mut attempts).await?;
                    continue;
                }
                Outcome::Fatal(why) => return Err(why),
                Outcome::Throttled(why) | Outcome::Retry(why) => why,
                Outcome::Cut { why, delivered } => match &mut size {
                    // The same request would be cut at the same place: ask for less.
                    Some(size) => {
                        size.cut(delivered);
                        format!(
                            "{why}; next call asks for at most {} items",
                            size.max_items().unwrap_or(0)
                        )
                    }
                    None => format!("{why}; a count is made again as it was"),
                },
            };
            drop((permit, arriving));
            self.on_failure(slice, &mut attempts, &why).await?;
        }
        Ok(())
    }

    /// A 429: waited out for `--throttle-patience` from the first of the 429s in a row,
    /// with a backoff that grows with them; an error once the patience is spent.
    async fn on_throttled(
        &self,
        slice: &SliceState,
        throttled: &mut Throttled,
        called: Instant,
        why: &str,
    ) -> Result<(), String> {
        self.counters.throttled.fetch_add(1, Ordering::Relaxed);
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
        let since = *throttled.since.get_or_insert(called);
        let patience = self.options.throttle_patience;
        if since.elapsed() >= patience {
            return Err(format!(
                "throttled (429) for {} s, the --throttle-patience: {why}",
                patience.as_secs()
            ));
        }
        throttled.in_a_row += 1;
        warn!(
            slice = slice.segment_offset,
            throttled_in_a_row = throttled.in_a_row,
            concurrency = self.concurrency.limit(),
            "throttled: fewer calls at once, and this one again later"
        );
        tokio::time::sleep(self.options.backoff.delay(throttled.in_a_row)).await;
        Ok(())
    }

    /// A call whose trailer arrived: its items committed and the slice moved to its
    /// cursor; an error when the trailer leaves nothing to go on from, the commit failed,
    /// or the function kept ending calls on an error without moving the slice.
    async fn on_whole(
        &self,
        slice: &mut SliceState,
        whole: Whole<'_>,
        attempts: &mut Attempts,
    ) -> Result<(), String> {
        let Whole {
            spool,
            trailer,
            items,
            arriving,
        } = whole;
        // A reason or code this client does not know may mean anything but "done": read
        // as incomplete, from the cursor.
        let unknown = unknown_value(&trailer);
        if let Some(value) = &unknown {
            warn!(slice = slice.segment_offset, value = %value, "a trailer this client does not know in full: going on from its cursor");
        }
        let next = SliceState {
            segment_offset: slice.segment_offset,
            cursor: trailer.cursor.clone(),
            done: trailer.complete && unknown.is_none(),
        };
        // A read of changes whose stream no longer keeps what it needs cannot go on: what
        // the call sent is committed (with its cursor), and the run stops saying why.
        let fatal = trailer
            .error
            .as_ref()
            .filter(|e| FATAL_CODES.contains(&e.code.as_str()))
            .map(|e| format!("{}: {}", e.code, e.message));
        if let Some(why) = &fatal
            && next.cursor.is_none()
        {
            return Err(why.clone());
        }
        if !next.done && next.cursor.is_none() {
            return Err(match unknown {
                Some(value) => format!(
                    "a trailer with {value}, which this client does not know, and no cursor to go on from"
                ),
                None => "an incomplete trailer without a cursor".into(),
            });
        }
        // Copying the spool into the output and syncing the checkpoint is blocking file
        // work: off the runtime's threads, so the other slices' bodies keep flowing
        // meanwhile.
        let (committer, index, state) = (self.committer.clone(), self.index, next.clone());
        let call = Committed::of(&trailer, items);
        let progressed = made_progress(slice.cursor.as_deref(), &trailer);
        tokio::task::spawn_blocking(move || {
            let mut spool = spool.into_file().map_err(|e| e.to_string())?;
            committer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .commit(index, &mut spool, call, state)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|err| format!("committing: {err}"))??;
        arriving.committed(items);
        if let Some(units) = trailer.consumed_capacity {
            self.counters.add_consumed(units);
        }
        *slice = next;
        if let Some(why) = fatal {
            return Err(why);
        }
        // A stream the function ended on an error made progress; it is retried from its
        // cursor, but only a call that sent nothing and left the cursor where it was
        // counts against the attempts.
        if trailer.reason == Some(StopReason::Error) || unknown.is_some() {
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            if !progressed {
                let Some(delay) = attempts.fail() else {
                    return Err(format!(
                        "the function kept failing: {}",
                        unknown.unwrap_or_else(|| format!(
                            "{:?}",
                            trailer.error.as_ref().map(|e| &e.code)
                        ))
                    ));
                };
                tokio::time::sleep(delay).await;
            }
        } else {
            attempts.reset();
        }
        Ok(())
    }

    /// A call that failed (`why`): made again after a backoff, or given up on once the
    /// attempts are spent.
    async fn on_failure(
        &self,
        slice: &SliceState,
        attempts: &mut Attempts,
        why: &str,
    ) -> Result<(), String> {
        let Some(delay) = attempts.fail() else {
            return Err(format!("gave up after {} attempts: {why}", attempts.failed));
        };
        warn!(slice = slice.segment_offset, attempt = attempts.failed, cause = %why, "call will be made again");
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// One request: from the slice's cursor (a POST form: cursors can be long) or from its
    /// start (a GET), its body decoded and spooled line by line.
    async fn call(
        &self,
        slice: &SliceState,
        spool: &mut Spool,
        max_items: Option<u64>,
        arriving: &mut Arriving<'_>,
    ) -> Outcome {
        let options = &self.options;
        let mut form: Vec<(String, String)> = options.delivery.clone();
        // The slice's own call size ([`CallSize`]), the user's or smaller.
        form.retain(|(name, _)| name != "max_items");
        if let Some(max_items) = max_items {
            form.push(("max_items".into(), max_items.to_string()));
        }
        // An export to S3: every call writes into the export's `data/`, gzip as
        // DynamoDB's own exports are (ImportTable reads them).
        if let Some(export) = &options.export {
            form.retain(|(name, _)| name != "compress");
            form.push(("compress".into(), "gzip".into()));
            form.push(("to".into(), export.to_param()));
        }
        match &slice.cursor {
            Some(cursor) => {
                if options.changes {
                    form.push(("changes".into(), "true".into()));
                }
                form.push(("cursor".into(), cursor.clone()));
            }
            None if options.changes => form.extend(options.shape.iter().cloned()),
            None => {
                form.extend(options.shape.iter().cloned());
                match &options.partitions {
                    // A Query: the slice's keys, up to `segments` of them at once.
                    Some(partitions) => {
                        let keys = partitions.slice(slice.segment_offset);
                        let at_once = options.segments.min(keys.len().max(1) as u32);
                        form.extend(keys.iter().map(|key| ("pk".to_string(), key.clone())));
                        form.push(("segments".into(), at_once.to_string()));
                    }
                    None => {
                        form.push(("segments".into(), options.segments.to_string()));
                        form.push(("total_segments".into(), self.total_segments.to_string()));
                        form.push(("segment_offset".into(), slice.segment_offset.to_string()));
                    }
                }
            }
        }
        // A streamer that accepts the connection and never answers would hold this call,
        // and its place among the calls at once, for good.
        let filtered = options.shape.iter().any(|(name, _)| name == "filter");
        // An export call sends nothing until it completes a file, which under a read-rate
        // cap may take most of the invocation: it is waited for as a count is.
        // A read of changes sends nothing while it skips records from before `since`.
        let silent = options.count || filtered || options.export.is_some() || options.changes;
        let idle = idle_timeout(silent, options.idle_timeout);
        let request = Request {
            url: &options.url,
            form,
            // A POST body for a cursor or a Query's keys: either can be longer than a URL.
            post: slice.cursor.is_some() || options.partitions.is_some(),
            idle,
            refusal_wait: idle,
        };
        let mut response = match self.transport.send(request).await {
            Ok(response) => response,
            Err(Failure::Url { .. }) => {
                return Outcome::Fatal(format!("{} is not a valid URL", options.url));
            }
            Err(why @ Failure::Throttled(_)) => return Outcome::Throttled(why.to_string()),
            Err(why) if why.retry() => return Outcome::Retry(why.to_string()),
            Err(why) => return Outcome::Fatal(why.to_string()),
        };
        if let Some((items, bytes)) = approximate_size(response.headers()) {
            self.counters.estimate.set(items, bytes);
        }
        if let Some(export) = &options.export
            && let Some(key) = response
                .headers()
                .get(KEY_SCHEMA_HEADER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| RecordedKeySchema::from_header(value).ok())
        {
            export.learned.set(key);
        }
        let file_prefix = options.export.as_ref().map(|e| e.staging_prefix());
        // An export call's lines are files: its items are theirs.
        let mut file_items = 0u64;
        let mut decoder = match Decompressor::for_headers(response.headers()) {
            Ok(decoder) => decoder,
            Err(err) => return Outcome::Fatal(format!("decoder: {err}")),
        };
        let mut lines = Lines::default();
        // Why the body stopped early, if it did: a trailer that arrived whole before the
        // transport broke still makes the call whole.
        let broke = loop {
            // A body that goes silent (a half-open connection) is a cut, not a wait
            // without end: once 429s have shrunk the calls at once, one hung call would
            // hold a place every other slice waits for.
            let next = tokio::time::timeout(idle, response.chunk()).await;
            let chunk = match next {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => break None,
                Ok(Err(err)) => break Some(format!("body cut off: {err}")),
                Err(_) => {
                    break Some(format!("body silent for {} s: cut off", idle.as_secs()));
                }
            };
            self.counters
                .wire_bytes
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            let plain = match decoder.decode(&chunk) {
                Ok(plain) => plain,
                Err(err) => break Some(format!("body does not decode: {err}")),
            };
            self.counters
                .decoded_bytes
                .fetch_add(plain.len() as u64, Ordering::Relaxed);
            let before = lines.items;
            let ready = match lines.push(&plain) {
                Ok(ready) => ready,
                Err(err) => return Outcome::Fatal(format!("reading the body: {err}")),
            };
            match &file_prefix {
                Some(prefix) => match file_line_items(&ready, prefix) {
                    Ok(items) => {
                        file_items += items;
                        arriving.add(items);
                    }
                    Err(err) => return Outcome::Fatal(err),
                },
                None => arriving.add(lines.items - before),
            }
            // A spool that cannot be written (a full disk) fails this call, not the slice.
            if let Err(err) = spool.write(ready).await {
                return Outcome::Retry(format!("spool: {err}"));
            }
        };
        if let Err(err) = spool.finish().await {
            return Outcome::Retry(format!("spool: {err}"));
        }
        // A count (`select=count`) sends no lines: its trailer's items are the count. An
        // export's lines are files, whose items must add up to the trailer's.
        let expected = |trailer: &Trailer| if options.count { 0 } else { trailer.items };
        let arrived = if file_prefix.is_some() {
            file_items
        } else {
            lines.items
        };
        match lines.finish() {
            Some(trailer) if expected(&trailer) != arrived => Outcome::Retry(format!(
                "the trailer says {} items but {arrived} {} arrived",
                trailer.items,
                if file_prefix.is_some() {
                    "in the files announced"
                } else {
                    "lines"
                }
            )),
            Some(trailer) => {
                debug!(
                    slice = slice.segment_offset,
                    items = lines.items,
                    after_the_trailer = broke.as_deref(),
                    "call whole"
                );
                Outcome::Whole {
                    items: if options.count {
                        trailer.items
                    } else {
                        arrived
                    },
                    trailer: Box::new(trailer),
                }
            }
            None => Outcome::Cut {
                why: broke.unwrap_or_else(|| "body ended without a trailer (cut off)".into()),
                delivered: arrived,
            },
        }
    }
}

/// A call under way: counted as running, its items so far as arrived (`in_flight`),
/// until it is dropped: by then its items are committed (and counted in `items`), or
/// given up on.
pub(crate) struct Arriving<'a> {
    counters: &'a Counters,
    items: u64,
}

impl<'a> Arriving<'a> {
    fn new(counters: &'a Counters) -> Self {
        counters.running.fetch_add(1, Ordering::Relaxed);
        Self { counters, items: 0 }
    }

    fn add(&mut self, items: u64) {
        self.items += items;
        self.counters.in_flight.fetch_add(items, Ordering::Relaxed);
    }

    /// The call's `items` are in the output. Taken out of `in_flight` before they are
    /// added to `items`, and the add is a Release: a sampler that loads `items` with
    /// Acquire and then `in_flight` ([`crate::cli::progress::of_pull`]) and sees the add also
    /// sees the subtraction, so it counts too few in between, never an item twice (on
    /// weakly ordered machines too).
    fn committed(mut self, items: u64) {
        self.counters
            .in_flight
            .fetch_sub(std::mem::take(&mut self.items), Ordering::Relaxed);
        self.counters.items.fetch_add(items, Ordering::Release);
    }
}

impl Drop for Arriving<'_> {
    fn drop(&mut self) {
        self.counters
            .in_flight
            .fetch_sub(self.items, Ordering::Relaxed);
        self.counters.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The stop reason or error code of `trailer` this client does not know, named for a
/// message; `None` when it knows them all.
fn unknown_value(trailer: &Trailer) -> Option<String> {
    if let Some(StopReason::Unknown(text)) = trailer.reason {
        return Some(format!("stop reason {:?}", text.as_str()));
    }
    let code = &trailer.error.as_ref()?.code;
    let known =
        KNOWN_ERRORS.iter().any(|kind| kind.code() == code) || FATAL_CODES.contains(&code.as_str());
    (!known).then(|| format!("error code {code:?}"))
}

/// The error kinds whose codes a trailer may carry and this client knows.
const KNOWN_ERRORS: [ErrorKind; 8] = [
    ErrorKind::NotFound,
    ErrorKind::IndexNotFound,
    ErrorKind::AccessDenied,
    ErrorKind::Throttled,
    ErrorKind::Unavailable,
    ErrorKind::TimedOut,
    ErrorKind::InvalidRequest,
    ErrorKind::Internal,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_never_asks_for_max_items_even_after_a_cut() {
        assert!(call_size(true, None).is_none(), "a count has no call size");
        // A count is refused with --max-items-per-call; even so, none is sent.
        assert!(call_size(true, Some(40)).is_none());
        let mut size = call_size(false, None).expect("a read has one");
        size.cut(10);
        assert_eq!(
            size.max_items(),
            Some(5),
            "a read asks for less after a cut"
        );
        let told = std::time::Duration::from_secs(5);
        assert!(idle_timeout(true, told) > std::time::Duration::from_secs(900));
        assert_eq!(idle_timeout(true, told * 1000), told * 1000);
        assert_eq!(idle_timeout(false, told), told);
    }

    #[test]
    fn an_error_trailer_made_progress_if_it_sent_items_or_moved_the_cursor() {
        let trailer = |pages: u64, scanned: u64, cursor: Option<&str>| {
            Trailer {
            complete: false,
            items: 0,
            scanned,
            pages,
            cursor: cursor.map(str::to_string),
            reason: Some(StopReason::Error),
            ..Trailer::parse_line(br#"{"@scanstream":{"complete":true,"items":0,"scanned":0,"pages":0,"consumed_capacity":null,"rcu_per_s":null,"retries":0,"segments":[],"elapsed_ms":1,"ttfb_ms":1}}"#).expect("trailer")
        }
        };
        // A filter or count that matched nothing (items 0) but read on: its cursor moved.
        assert!(made_progress(Some("c1"), &trailer(3, 300, Some("c2"))));
        assert!(made_progress(None, &trailer(1, 100, Some("c1"))));
        assert!(
            made_progress(Some("c1"), &trailer(0, 0, Some("c2"))),
            "cursor moved"
        );
        assert!(
            !made_progress(Some("c1"), &trailer(0, 0, Some("c1"))),
            "nothing read"
        );
        assert!(
            !made_progress(Some("c1"), &trailer(2, 200, Some("c1"))),
            "pages read and dropped, the cursor where it was"
        );
        assert!(!made_progress(None, &trailer(0, 0, None)));
        // Items sent are progress, whatever the cursor says.
        let sent = Trailer {
            items: 5,
            ..trailer(1, 5, Some("c1"))
        };
        assert!(made_progress(Some("c1"), &sent), "items sent");
    }
}
