//! `scanstream seed URL`: seeding through the seeder function, in parallel. Two jobs:
//!
//! - `--count N`: generated records. `[0, N)` is split into K ranges, one worker each; a
//!   worker calls the function with `count`, `seed` and `start` (at most `per_call`
//!   records a call) and follows the summary's `next_start` when an invocation stops
//!   early. Records are a function of (seed, index) and writes are idempotent, so a range
//!   written twice is written once: the table ends up holding exactly what
//!   `seeder --count N --seed S` writes.
//! - `--from s3://BUCKET/PREFIX`: an export in S3 restored into the function's table,
//!   one data file a call ([`restore`]).

pub mod restore;

use crate::cli::args::{SigningArgs, backoff, signer};
use crate::cli::progress::{self as shown, Sample, Total};
use crate::cli::transport::sign::Signer;
use crate::cli::transport::{Failure, Request, Transport};
use crate::format::backoff::Backoff;
use anyhow::bail;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::warn;

/// `scanstream seed`.
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// The seeder's Function URL.
    pub url: String,
    /// Records to write, indexes `0..count`.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..),
          required_unless_present = "from", conflicts_with = "from")]
    pub count: Option<u64>,
    /// The data set.
    #[arg(long, default_value_t = 42, conflicts_with = "from")]
    pub seed: u64,
    /// An export in S3 to restore into the function's table: the export's folder
    /// (`s3://BUCKET/PREFIX/AWSDynamoDB/<ExportId>`) or a prefix holding one. Ours or
    /// DynamoDB's own.
    #[arg(long)]
    pub from: Option<String>,
    /// Invocations at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub invocations: u64,
    /// Records asked of one call (the function's SEED_MAX_COUNT caps it).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..),
          conflicts_with = "from")]
    pub per_call: u64,
    /// Write capacity units a second for the whole run, split evenly between the
    /// invocations (each gets R / K).
    #[arg(long, value_parser = restore::parse_wcu)]
    pub max_wcu: Option<f64>,
    /// With --from: the files restored so far (default: `scanstream-restore-<ExportId>.ckpt`
    /// in the working directory). The same command again skips them.
    // Conflicting with --count, which is required without --from: so only with --from
    // (clap's `requires` was not enforced here).
    #[arg(long, conflicts_with_all = ["no_checkpoint", "count"])]
    pub checkpoint: Option<PathBuf>,
    /// With --from: keep no checkpoint (a second run restores every file again, which
    /// is harmless: puts are idempotent).
    #[arg(long, conflicts_with = "count")]
    pub no_checkpoint: bool,
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Attempts per call before its range (or file) counts as failed.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// No progress bar or progress lines.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `scanstream seed`.
pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let signer = signer(&args.url, &args.signing).await?;
    let Some(count) = args.count else {
        return restore::run(args, signer).await;
    };
    let options = Arc::new(SeedOptions {
        url: args.url,
        count,
        seed: args.seed,
        invocations: args.invocations,
        per_call: args.per_call,
        max_wcu: args
            .max_wcu
            .map(|wcu| wcu / args.invocations.min(count) as f64),
        backoff: backoff(args.max_attempts),
    });
    let started = Instant::now();
    let counters = Arc::new(SeedCounters::default());
    let shown = shown::show(shown::Mode::detect(args.quiet), {
        let counters = counters.clone();
        move || progress(&counters, count)
    });
    let failed = ranges(options, signer, counters).await;
    shown.finish();
    for range in &failed {
        eprintln!(
            "range {}..{} failed: {}",
            range.start, range.end, range.error
        );
    }
    if !failed.is_empty() {
        bail!("{} ranges were not written in full", failed.len());
    }
    eprintln!(
        "seeded {} records of seed {} in {:.2} s",
        count,
        args.seed,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

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
    /// Write capacity units a second for each invocation.
    pub max_wcu: Option<f64>,
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
pub async fn ranges(
    options: Arc<SeedOptions>,
    signer: Arc<Signer>,
    counters: Arc<SeedCounters>,
) -> Vec<FailedRange> {
    let transport = Transport::new(signer, std::time::Duration::from_secs(10));
    let k = options.invocations.clamp(1, options.count.max(1));
    let mut workers = tokio::task::JoinSet::new();
    for i in 0..k {
        let (start, end) = (options.count * i / k, options.count * (i + 1) / k);
        let (options, transport) = (options.clone(), transport.clone());
        let counters = counters.clone();
        workers.spawn(async move { range(&options, &transport, &counters, start, end).await });
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
    transport: &Transport,
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
        match call(options, transport, counters, start, count).await {
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
            Err(Call::Fatal(error) | Call::Refused(error)) => return Err(failed(error)),
            Err(Call::Retry(error) | Call::Throttled(error)) => {
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
    /// Made again, counted against the attempts.
    Retry(String),
    /// A 429: made again later, counted in time.
    Throttled(String),
    /// Trying again cannot cure it.
    Fatal(String),
    /// The function refused the request (`400`, `403`): so it will every other like it.
    Refused(String),
}

/// One call; `Ok(None)` when it wrote everything asked, `Ok(Some(next_start))` otherwise.
async fn call(
    options: &SeedOptions,
    transport: &Transport,
    counters: &SeedCounters,
    start: u64,
    count: u64,
) -> Result<Option<u64>, Call> {
    let mut form: Vec<(String, String)> =
        [("count", count), ("seed", options.seed), ("start", start)]
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .into();
    if let Some(wcu) = options.max_wcu {
        form.push(("max_wcu".into(), restore::wcu_text(wcu)));
    }
    let started = Instant::now();
    let summary = summary_of(&options.url, transport, counters, form).await?;
    tokio::time::sleep(owed(options.max_wcu, started, &summary)).await;
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

/// What holds a worker to its write rate across calls: each call's bucket starts afresh
/// and forgets what its last batches owe, so what a call consumed beyond `rate` over its
/// own time is waited out before the worker's next call.
fn owed(rate: Option<f64>, started: Instant, summary: &serde_json::Value) -> std::time::Duration {
    let (Some(rate), Some(units)) = (rate, summary["capacity"].as_f64()) else {
        return std::time::Duration::ZERO;
    };
    let owed = units - rate * started.elapsed().as_secs_f64();
    if owed > 0.0 && rate > 0.0 {
        std::time::Duration::from_secs_f64(owed / rate)
    } else {
        std::time::Duration::ZERO
    }
}

/// One call to the seeder function with `form`: its summary line, its progress lines
/// counted in `counters` as they pass.
async fn summary_of(
    url: &str,
    transport: &Transport,
    counters: &SeedCounters,
    form: Vec<(String, String)>,
) -> Result<serde_json::Value, Call> {
    let request = Request {
        url,
        form,
        post: false,
        // A call that goes silent (a half-open connection) is made again, not waited on
        // for good: progress lines come as batches complete, seconds apart.
        idle: SILENCE,
        refusal_wait: REFUSAL_WAIT,
    };
    counters.running.fetch_add(1, Ordering::Relaxed);
    let mut progress = Progress {
        counters,
        reported: 0,
    };
    let response = transport.send(request).await.map_err(|why| match why {
        Failure::Url { url, error } => Call::Fatal(format!("{url}: {error}")),
        Failure::Throttled(why) => Call::Throttled(why),
        // The request itself refused: every call like it will be.
        Failure::Refused(why) if why.starts_with("400") || why.starts_with("403") => {
            Call::Refused(why)
        }
        // As for `pull`: credentials that did not load now may load on the next try.
        why if why.retry() => Call::Retry(why.to_string()),
        why => Call::Fatal(why.to_string()),
    })?;
    let body = progress
        .read(response)
        .await
        .map_err(|e| Call::Retry(format!("body cut off: {e}")))?;
    drop(progress);
    body.last
        .and_then(|line| serde_json::from_slice::<serde_json::Value>(&line).ok())
        .and_then(|line| line.get("summary").cloned())
        .ok_or_else(|| Call::Retry("no summary line: the call was cut off".into()))
}

/// The longest a seeding call may wait for its response, or between two lines of its
/// body, before it is given up and made again: past the function's 900 s timeout, since
/// a restore's call says nothing while it checks its file or waits for the write cap, and
/// a call given up while it still runs would have more invocations writing than asked.
const SILENCE: std::time::Duration = std::time::Duration::from_secs(960);

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

/// `scanstream seed`'s figures: the records of finished calls and those the calls under
/// way reported, of the exact count asked for.
pub fn progress(counters: &SeedCounters, count: u64) -> Sample {
    let done = counters.written.load(Ordering::Relaxed) + counters.in_calls.load(Ordering::Relaxed);
    Sample {
        done: done.min(count),
        committed: None,
        total: Some(Total {
            items: count,
            exact: true,
        }),
        wire_bytes: None,
        running: Some(counters.running.load(Ordering::Relaxed)),
        retries: counters.retries.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_counts_finished_calls_and_those_under_way_up_to_the_count() {
        let counters = SeedCounters::default();
        counters.written.store(600, Ordering::Relaxed);
        counters.in_calls.store(150, Ordering::Relaxed);
        let sample = progress(&counters, 1_000);
        assert_eq!(sample.done, 750);
        assert_eq!(
            sample.total,
            Some(Total {
                items: 1_000,
                exact: true
            })
        );
        counters.in_calls.store(900, Ordering::Relaxed);
        assert_eq!(
            progress(&counters, 1_000).done,
            1_000,
            "never past the count"
        );
    }
}
