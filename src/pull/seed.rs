//! `scanstream seed URL --count N`: seeding through the seeder function, in parallel.
//!
//! `[0, N)` is split into K ranges, one worker each; a worker calls the function with
//! `count`, `seed` and `start` (at most `per_call` records a call) and follows the
//! summary's `next_start` when an invocation stops early. Records are a function of
//! (seed, index) and writes are idempotent, so a range written twice is written once: the
//! table ends up holding exactly what `seeder --count N --seed S` writes.

use super::sign::Signer;
use crate::format::backoff::Backoff;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::warn;

/// Running totals for the progress bar, shared by the workers.
#[derive(Debug, Default)]
pub struct SeedCounters {
    /// Records of finished calls: their ranges are written.
    pub written: AtomicU64,
    /// Records the calls under way have reported written so far (their progress lines).
    pub in_calls: AtomicU64,
    /// Calls under way.
    pub running: AtomicU64,
    /// Calls made again.
    pub retries: AtomicU64,
}

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// The seeder's Function URL.
    pub url: String,
    /// Records in all.
    pub count: u64,
    /// The data set.
    pub seed: u64,
    /// Concurrent invocations.
    pub invocations: u64,
    /// Records asked of one call (the function caps it with `SEED_MAX_COUNT`).
    pub per_call: u64,
    /// Retries of a call that failed or made no progress.
    pub backoff: Backoff,
}

/// A range that could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRange {
    /// The first index not known to be written.
    pub start: u64,
    /// One past the range's last index.
    pub end: u64,
    /// Why.
    pub error: String,
}

/// Seeds every range; returns the ranges that failed (empty: all written).
pub async fn run(
    options: Arc<SeedOptions>,
    signer: Arc<Signer>,
    counters: Arc<SeedCounters>,
) -> Vec<FailedRange> {
    let http = super::call::http_client(std::time::Duration::from_secs(10));
    let k = options.invocations.clamp(1, options.count.max(1));
    let mut workers = tokio::task::JoinSet::new();
    for i in 0..k {
        let (start, end) = (options.count * i / k, options.count * (i + 1) / k);
        let (options, signer, http) = (options.clone(), signer.clone(), http.clone());
        let counters = counters.clone();
        workers.spawn(async move { range(&options, &signer, &http, &counters, start, end).await });
    }
    let mut failed = Vec::new();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(range)) => failed.push(range),
            Err(err) => failed.push(FailedRange {
                start: 0,
                end: options.count,
                error: format!("worker failed: {err}"),
            }),
        }
    }
    failed.sort_by_key(|r| r.start);
    failed
}

/// Writes `[start, end)`, following `next_start`.
async fn range(
    options: &SeedOptions,
    signer: &Signer,
    http: &reqwest::Client,
    counters: &SeedCounters,
    mut start: u64,
    end: u64,
) -> Result<(), FailedRange> {
    let mut attempt = 1;
    while start < end {
        let count = (end - start).min(options.per_call);
        let failed = |error: String| FailedRange { start, end, error };
        if attempt > 1 {
            counters.retries.fetch_add(1, Ordering::Relaxed);
        }
        match call(options, signer, http, counters, start, count).await {
            Ok(next) => {
                let next = next.unwrap_or(start + count);
                if next > start {
                    counters.written.fetch_add(next - start, Ordering::Relaxed);
                    start = next;
                    attempt = 1;
                    continue;
                }
                if attempt >= options.backoff.max_attempts {
                    return Err(failed("no progress: the function wrote nothing".into()));
                }
            }
            Err(Call::Fatal(error)) => return Err(failed(error)),
            Err(Call::Retry(error)) => {
                if attempt >= options.backoff.max_attempts {
                    return Err(failed(format!("gave up after {attempt} attempts: {error}")));
                }
                warn!(start, attempt, cause = %error, "seeding call will be made again");
            }
        }
        tokio::time::sleep(options.backoff.delay(attempt)).await;
        attempt += 1;
    }
    Ok(())
}

enum Call {
    Retry(String),
    Fatal(String),
}

/// One call; `Ok(None)` when it wrote everything asked, `Ok(Some(next_start))` otherwise.
async fn call(
    options: &SeedOptions,
    signer: &Signer,
    http: &reqwest::Client,
    counters: &SeedCounters,
    start: u64,
    count: u64,
) -> Result<Option<u64>, Call> {
    // Sorted, as a SigV4 canonical query is.
    let url = format!(
        "{}{}count={count}&seed={}&start={start}",
        options.url,
        if options.url.contains('?') { '&' } else { '?' },
        options.seed
    );
    let mut request = http::Request::get(&url)
        .body(())
        .map_err(|e| Call::Fatal(format!("{url}: {e}")))?;
    signer.sign(&mut request, b"").await.map_err(|e| match e {
        // As for `pull`: credentials that did not load now may load on the next try.
        super::sign::SignError::Credentials(_) => Call::Retry(e.to_string()),
        super::sign::SignError::Signing(_) => Call::Fatal(e.to_string()),
    })?;
    let mut builder = http.get(&url);
    for (name, value) in request.headers() {
        builder = builder.header(name, value);
    }
    counters.running.fetch_add(1, Ordering::Relaxed);
    let mut progress = Progress {
        counters,
        reported: 0,
    };
    // A call that goes silent (a half-open connection) is made again, not waited on for
    // good: progress lines come as batches complete, seconds apart.
    let response = tokio::time::timeout(SILENCE, builder.send())
        .await
        .map_err(|_| Call::Retry(format!("no response in {} s", SILENCE.as_secs())))?
        .map_err(|e| Call::Retry(format!("request failed: {e}")))?;
    let mut response = response;
    let status = response.status().as_u16();
    if let Some(why) = super::call::redirected(status, response.headers()) {
        return Err(Call::Fatal(why));
    }
    if status != 200 {
        // A refusal's body is not progress: read only its first few KB, for a while.
        let text = super::call::refusal_text(&mut response, REFUSAL_WAIT).await;
        return Err(if status == 429 || status >= 500 {
            Call::Retry(format!("{status}: {text}"))
        } else {
            Call::Fatal(super::call::refused(status, &text))
        });
    }
    let body = progress
        .read(response)
        .await
        .map_err(|e| Call::Retry(format!("body cut off: {e}")))?;
    drop(progress);
    let summary = body
        .last
        .and_then(|line| serde_json::from_slice::<serde_json::Value>(&line).ok())
        .and_then(|line| line.get("summary").cloned())
        .ok_or_else(|| Call::Retry("no summary line: the call was cut off".into()))?;
    if summary["complete"] == true {
        return Ok(None);
    }
    match summary["next_start"].as_u64() {
        Some(next) => Ok(Some(next)),
        None => Err(Call::Retry(format!(
            "incomplete without next_start: {summary}"
        ))),
    }
}

/// The longest a seeding call may wait for its response, or between two lines of its
/// body, before it is given up and made again: well above the seconds between progress
/// lines, and below the function's 15 minutes.
const SILENCE: std::time::Duration = std::time::Duration::from_secs(600);

/// Why a call's body stopped before its end.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("{0}")]
    Cut(#[source] reqwest::Error),
    #[error("silent for {} s", SILENCE.as_secs())]
    Silent,
    #[error("a line longer than {} bytes: not the seeder's", MAX_LINE)]
    LongLine,
}

/// The longest line kept whole: the seeder's progress and summary lines are short.
const MAX_LINE: usize = 1 << 20;

/// How long a refused call's body is read for its message: it is not progress, and a
/// body that trickles must not hold the call for [`SILENCE`].
const REFUSAL_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// What a call needs of its body: the last line (the summary); the progress lines before
/// it are counted as they pass, not kept.
#[derive(Debug, Default)]
struct Kept {
    last: Option<Vec<u8>>,
}

/// One call's body, read as it arrives: its progress lines (`{"progress":{"written":N}}`)
/// count in `in_calls` until the call ends, when its range's summary takes over.
struct Progress<'a> {
    counters: &'a SeedCounters,
    /// What this call's last progress line said.
    reported: u64,
}

impl Progress<'_> {
    /// Reads the body to its end; each whole line is looked at as it completes, and
    /// only what [`Kept`] says is kept.
    async fn read(&mut self, mut response: reqwest::Response) -> Result<Kept, BodyError> {
        let mut partial = Vec::new();
        let mut last = None;
        loop {
            let Ok(next) = tokio::time::timeout(SILENCE, response.chunk()).await else {
                return Err(BodyError::Silent);
            };
            let Some(chunk) = next.map_err(BodyError::Cut)? else {
                break;
            };
            let mut rest: &[u8] = &chunk;
            while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                partial.extend_from_slice(&rest[..end]);
                self.line(&partial);
                last = Some(std::mem::take(&mut partial));
                rest = &rest[end + 1..];
            }
            partial.extend_from_slice(rest);
            if partial.len() > MAX_LINE {
                return Err(BodyError::LongLine);
            }
        }
        Ok(Kept {
            last: if partial.is_empty() {
                last
            } else {
                Some(partial)
            },
        })
    }

    fn line(&mut self, line: &[u8]) {
        let written = serde_json::from_slice::<serde_json::Value>(line)
            .ok()
            .and_then(|value| value["progress"]["written"].as_u64());
        if let Some(written) = written
            && written > self.reported
        {
            let more = written - self.reported;
            self.counters.in_calls.fetch_add(more, Ordering::Relaxed);
            self.reported = written;
        }
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        self.counters
            .in_calls
            .fetch_sub(self.reported, Ordering::Relaxed);
        self.counters.running.fetch_sub(1, Ordering::Relaxed);
    }
}
