//! `scanstream seed URL --from s3://BUCKET/PREFIX`: an export in S3 (ours, or DynamoDB's
//! own) restored into the seeder function's table, one data file a call, K calls at once.
//!
//! The client reads the manifests (checked against each other and the files present, as
//! `seeder --from` does), then hands each file to a call as `from=`, `items=` and `md5=`:
//! the function checks the file before writing any of it. A call that stops at its
//! deadline says how far it wrote (`written_through`), and the next call goes on `after`
//! it. A file counts as restored only when a summary says `complete`; it is then added to
//! the checkpoint, so the same command again (after a failure or a `kill -9`) skips it. A
//! file left half written is written again from its start: puts are idempotent.

use super::{Call, SeedArgs, SeedCounters, progress, summary_of};
use crate::cli::args::backoff;
use crate::cli::output::export::files::write_atomic;
use crate::cli::output::lock::CheckpointLock;
use crate::cli::progress as shown;
use crate::cli::transport::Transport;
use crate::cli::transport::sign::Signer;
use crate::dynamo::client::CallSettings;
use crate::dynamo::s3::S3;
use crate::format::backoff::Backoff;
use crate::format::location::S3Location;
use crate::load::export::Export;
use crate::load::input::{Remote, Source};
use crate::load::object::base64_to_hex;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::warn;

/// The most `--max-wcu` may ask for (DynamoDB's per-table write quota can be raised far
/// past its 40,000 default).
const MAX_WCU: f64 = 1_000_000.0;

/// How long a file's calls wait out 429s in a row (the function's concurrency limit)
/// before the file counts as failed.
const THROTTLE_PATIENCE: Duration = Duration::from_secs(600);

/// `--max-wcu`: a decimal in `1..=1,000,000`.
pub fn parse_wcu(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !(1.0..=MAX_WCU).contains(&value) {
        return Err(format!("{value} is outside 1..={MAX_WCU}"));
    }
    Ok(value)
}

/// A rate as the function's `max_wcu=` takes it: at most six decimals, at least 0.000001.
pub fn wcu_text(wcu: f64) -> String {
    let text = format!("{:.6}", wcu.max(0.000_001));
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One file to restore.
#[derive(Debug, Clone)]
struct FileJob {
    /// Its S3 key.
    key: String,
    /// `s3://BUCKET/KEY`.
    url: String,
    items: u64,
    md5_hex: String,
}

/// The checkpoint's first line: which restore it is of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    version: u32,
    /// The seeder's URL: another function writes another table.
    url: String,
    /// The export's folder.
    export: String,
    /// The manifest's MD5: a changed export is not resumed.
    manifest_md5: String,
}

/// Every later line: a file whose summary said `complete`, and the table it was written
/// into (its ARN and creation time, as the function said).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Done {
    done: String,
    table: Option<String>,
}

const VERSION: u32 = 1;

/// The checkpoint while the run goes: an append-only file, a line a file restored, each
/// synced before the next file counts. A run killed while appending leaves at most a
/// torn last line, which the next run cuts off (that file is restored again).
struct Keeper {
    file: Option<std::fs::File>,
    /// Bytes of whole lines in the file: a failed append is cut back to it.
    length: u64,
    /// An append failed and could not be cut back: nothing more is appended.
    broken: bool,
    done: BTreeSet<String>,
    /// The table the files so far went into.
    table: Option<String>,
}

impl Keeper {
    /// The checkpoint at `path` (made with `header` when there is none), or one kept in
    /// memory; one of another restore is an error.
    fn open(path: Option<&Path>, header: &Header) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self {
                file: None,
                length: 0,
                broken: false,
                done: BTreeSet::new(),
                table: None,
            });
        };
        let name = path.display();
        let text = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let mut line = serde_json::to_vec(header)?;
                line.push(b'\n');
                write_atomic(path, &line).with_context(|| format!("checkpoint {name}"))?;
                line
            }
            Err(err) => return Err(err).with_context(|| format!("checkpoint {name}")),
        };
        // Whole lines only: a torn last one is cut off before anything is appended.
        let whole = text
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1);
        let mut lines = text[..whole]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty());
        let saved: Header = lines
            .next()
            .and_then(|line| serde_json::from_slice(line).ok())
            .with_context(|| format!("checkpoint {name}: not a restore's checkpoint"))?;
        if saved.version != VERSION
            || (&saved.url, &saved.export, &saved.manifest_md5)
                != (&header.url, &header.export, &header.manifest_md5)
        {
            bail!(
                "checkpoint {name} is of restoring {} (manifest MD5 {}) through {}, not {} \
                 (manifest MD5 {}) through {}; delete it to start over",
                saved.export,
                saved.manifest_md5,
                saved.url,
                header.export,
                header.manifest_md5,
                header.url
            );
        }
        let (mut done, mut table) = (BTreeSet::new(), None);
        for line in lines {
            let entry: Done = serde_json::from_slice(line)
                .with_context(|| format!("checkpoint {name}: a line that is not a file's"))?;
            done.insert(entry.done);
            table = entry.table.or(table);
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("checkpoint {name}"))?;
        file.set_len(whole as u64)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("checkpoint {name}"))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("checkpoint {name}"))?;
        Ok(Self {
            file: Some(file),
            length: whole as u64,
            broken: false,
            done,
            table,
        })
    }

    /// Records `key` as restored into `table`: appended and synced.
    fn done(&mut self, key: &str, table: Option<String>) -> std::io::Result<()> {
        if self.broken {
            return Err(std::io::Error::other(
                "an earlier append failed and could not be undone",
            ));
        }
        if let Some(file) = &mut self.file {
            let mut line = serde_json::to_vec(&Done {
                done: key.to_string(),
                table: table.clone(),
            })?;
            line.push(b'\n');
            let appended = std::io::Write::write_all(file, &line).and_then(|()| file.sync_data());
            if let Err(err) = appended {
                // Half a line must not stay for the next append to follow: cut it off.
                if file
                    .set_len(self.length)
                    .and_then(|()| file.sync_all())
                    .is_err()
                {
                    self.broken = true;
                }
                return Err(err);
            }
            self.length += line.len() as u64;
        }
        self.done.insert(key.to_string());
        self.table = table.or(self.table.take());
        Ok(())
    }
}

/// What every worker shares.
struct Shared {
    url: String,
    transport: Transport,
    counters: Arc<SeedCounters>,
    queue: Mutex<VecDeque<FileJob>>,
    keeper: Mutex<Keeper>,
    failed: Mutex<Vec<(String, String)>>,
    backoff: Backoff,
    max_wcu: Option<f64>,
    /// Calls made, 429s, and the write units the summaries reported (thousandths).
    calls: AtomicU64,
    throttled: AtomicU64,
    milli_units: AtomicU64,
    /// Set when the function refused a request as such: no file starts after it.
    stop: std::sync::atomic::AtomicBool,
}

/// Runs `scanstream seed URL --from s3://...`.
pub async fn run(args: SeedArgs, signer: Arc<Signer>) -> anyhow::Result<()> {
    let from = args.from.clone().unwrap_or_default();
    let location = S3Location::parse(&from).map_err(|why| anyhow::anyhow!("--from: {why}"))?;
    let s3 = S3::connect(&CallSettings::default()).await;
    let remote = Remote {
        bucket: s3.bucket(&location.bucket, None),
        location,
        handle: tokio::runtime::Handle::current(),
        etag: None,
    };
    let export = tokio::task::spawn_blocking(move || Export::open_s3(&remote))
        .await
        .context("reading the export")?
        .context("export refused, nothing written")?;
    let folder = export.dir.to_string_lossy().into_owned();
    let export_id = folder.rsplit('/').next().unwrap_or("export").to_string();
    let path = match (&args.checkpoint, args.no_checkpoint) {
        (_, true) => None,
        (Some(path), false) => Some(path.clone()),
        (None, false) => Some(PathBuf::from(format!(
            "scanstream-restore-{export_id}.ckpt"
        ))),
    };
    let _lock = path.as_deref().map(CheckpointLock::take).transpose()?;
    let header = Header {
        version: VERSION,
        url: args.url.clone(),
        export: folder.clone(),
        manifest_md5: export.manifest_md5.clone(),
    };
    let keeper = Keeper::open(path.as_deref(), &header)?;
    let mut jobs = VecDeque::new();
    let (mut resumed_files, mut resumed_items) = (0u64, 0u64);
    for file in &export.files {
        let Source::Object(object) = &file.source else {
            bail!("{}: not an object in S3", file.path.display());
        };
        let key = object.location.prefix.clone();
        if keeper.done.contains(&key) {
            resumed_files += 1;
            resumed_items += file.entry.item_count;
            continue;
        }
        jobs.push_back(FileJob {
            url: object.location.to_string(),
            key,
            items: file.entry.item_count,
            md5_hex: base64_to_hex(&file.entry.md5_checksum),
        });
    }
    if resumed_files > 0 {
        eprintln!(
            "resuming: {resumed_files} files ({resumed_items} items) already restored into {}, \
             {} to go",
            keeper.table.as_deref().unwrap_or("the seeder's table"),
            jobs.len()
        );
    }
    let total: u64 = jobs.iter().map(|job| job.items).sum();
    let files = jobs.len() as u64;
    let k = args.invocations.clamp(1, files.max(1));
    let shared = Arc::new(Shared {
        url: args.url.clone(),
        transport: Transport::new(signer, Duration::from_secs(10)),
        counters: Arc::new(SeedCounters::default()),
        queue: Mutex::new(jobs),
        keeper: Mutex::new(keeper),
        failed: Mutex::new(Vec::new()),
        backoff: backoff(args.max_attempts),
        max_wcu: args.max_wcu.map(|wcu| wcu / k as f64),
        calls: AtomicU64::new(0),
        throttled: AtomicU64::new(0),
        milli_units: AtomicU64::new(0),
        stop: std::sync::atomic::AtomicBool::new(false),
    });
    let started = Instant::now();
    let shown = shown::show(shown::Mode::detect(args.quiet), {
        let counters = shared.counters.clone();
        move || progress(&counters, total)
    });
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..k {
        let shared = shared.clone();
        workers.spawn(async move { worker(&shared).await });
    }
    while let Some(joined) = workers.join_next().await {
        if let Err(err) = joined {
            lock(&shared.failed).push(("a worker".into(), err.to_string()));
        }
    }
    shown.finish();
    let written = shared.counters.written.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    let units = shared.milli_units.load(Ordering::Relaxed) as f64 / 1000.0;
    eprintln!(
        "{written} items of {files} files in {secs:.2} s ({:.0} items/s); {} calls, {} retries, \
         {} throttled; {units:.1} write units ({:.1}/s)",
        written as f64 / secs.max(1e-9),
        shared.calls.load(Ordering::Relaxed),
        shared.counters.retries.load(Ordering::Relaxed),
        shared.throttled.load(Ordering::Relaxed),
        units / secs.max(1e-9),
    );
    let failed = std::mem::take(&mut *lock(&shared.failed));
    for (file, why) in &failed {
        eprintln!("{file}: {why}");
    }
    let left = lock(&shared.queue).len();
    if !failed.is_empty() || left > 0 {
        bail!(
            "{} of {files} files were not restored ({} named above{}); run the same command \
             again to go on",
            failed.len() + left,
            failed.len(),
            if left > 0 {
                format!(", {left} not started after the function refused a request")
            } else {
                String::new()
            }
        );
    }
    eprintln!("restored {folder}");
    Ok(())
}

/// Takes files off the queue until it is empty.
async fn worker(shared: &Shared) {
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let Some(job) = lock(&shared.queue).pop_front() else {
            return;
        };
        let (table, owed) = match file(shared, &job).await {
            Ok(done) => done,
            Err(why) => {
                lock(&shared.failed).push((job.url.clone(), why));
                continue;
            }
        };
        shared
            .counters
            .written
            .fetch_add(job.items, Ordering::Relaxed);
        if let Err(why) = record(shared, &job, table) {
            // Not known restored across a restart: no more files start.
            shared.stop.store(true, Ordering::Relaxed);
            lock(&shared.failed).push((job.url.clone(), why));
            continue;
        }
        // The write cap: what the file's last call owes, waited out once it is recorded.
        tokio::time::sleep(owed).await;
    }
}

/// Adds a restored file to the checkpoint, unless it went into another table than the
/// checkpoint's files did (one deleted and created again under the name, or another
/// function's): those are not in this one.
fn record(shared: &Shared, job: &FileJob, table: Option<String>) -> Result<(), String> {
    let mut keeper = lock(&shared.keeper);
    if let (Some(was), Some(now)) = (&keeper.table, &table)
        && was != now
    {
        return Err(format!(
            "written into {now}, but the checkpoint's files went into {was}: the table was \
             created again, or the URL writes another table; delete the checkpoint to start over"
        ));
    }
    keeper
        .done(&job.key, table)
        .map_err(|err| format!("restored, but the checkpoint could not be saved: {err}"))
}

/// Restores one file: calls until a summary says it is whole.
async fn file(shared: &Shared, job: &FileJob) -> Result<(Option<String>, Duration), String> {
    let mut after: Option<u64> = None;
    // The table the file's first call wrote into: a later call into another (the table
    // created again meanwhile) starts the file over.
    let mut into: Option<String> = None;
    let mut failures = 0u32;
    let mut throttled_since: Option<Instant> = None;
    loop {
        let mut form = vec![
            ("from".to_string(), job.url.clone()),
            ("items".to_string(), job.items.to_string()),
            ("md5".to_string(), job.md5_hex.clone()),
        ];
        if let Some(after) = after {
            form.push(("after".into(), after.to_string()));
        }
        if let Some(wcu) = shared.max_wcu {
            form.push(("max_wcu".into(), wcu_text(wcu)));
        }
        shared.calls.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let why = match summary_of(&shared.url, &shared.transport, &shared.counters, form).await {
            Ok(summary) => {
                throttled_since = None;
                if let Some(units) = summary["capacity"].as_f64() {
                    shared
                        .milli_units
                        .fetch_add((units * 1000.0) as u64, Ordering::Relaxed);
                }
                let table = summary["table"].as_str().map(str::to_string);
                let owed = super::owed(shared.max_wcu, started, &summary);
                if into.is_some() && table.is_some() && table != into {
                    warn!(file = %job.url, "the table changed under the restore: the file starts over");
                    (after, into, failures) = (None, None, 0);
                    tokio::time::sleep(owed).await;
                    continue;
                }
                into = into.or(table.clone());
                if summary["complete"] == true {
                    return Ok((table, owed));
                }
                tokio::time::sleep(owed).await;
                let through = summary["written_through"].as_u64();
                if through > after {
                    after = through;
                    failures = 0;
                    continue;
                }
                format!("the call wrote nothing: {}", summary["error"])
            }
            Err(Call::Fatal(why)) => return Err(why),
            Err(Call::Refused(why)) => {
                shared.stop.store(true, Ordering::Relaxed);
                return Err(why);
            }
            Err(Call::Throttled(why)) => {
                shared.throttled.fetch_add(1, Ordering::Relaxed);
                let since = *throttled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > THROTTLE_PATIENCE {
                    return Err(format!(
                        "throttled for over {} s: {why}",
                        THROTTLE_PATIENCE.as_secs()
                    ));
                }
                let delay = shared.backoff.delay(6);
                tokio::time::sleep(delay).await;
                continue;
            }
            Err(Call::Retry(why)) => why,
        };
        failures += 1;
        if failures >= shared.backoff.max_attempts {
            return Err(format!("gave up after {failures} attempts: {why}"));
        }
        warn!(file = %job.url, attempt = failures, cause = %why, "restoring call will be made again");
        shared.counters.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(shared.backoff.delay(failures)).await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(export: &str) -> Header {
        Header {
            version: VERSION,
            url: "http://x/".into(),
            export: export.into(),
            manifest_md5: "m".into(),
        }
    }

    #[test]
    fn the_checkpoint_keeps_whole_lines_and_refuses_another_restore() {
        let dir = std::env::temp_dir().join(format!("restore-keeper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("r.ckpt");
        let _ = std::fs::remove_file(&path);
        let mut keeper = Keeper::open(Some(&path), &header("s3://b/e")).expect("fresh");
        keeper.done("k1", Some("t@1".into())).expect("saved");
        keeper.done("k2", Some("t@1".into())).expect("saved");
        drop(keeper);
        // A run killed while appending: half a line.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        std::io::Write::write_all(&mut file, b"{\"done\":\"k3\",\"ta").expect("write");
        drop(file);
        let mut keeper = Keeper::open(Some(&path), &header("s3://b/e")).expect("resumed");
        assert_eq!(keeper.done.iter().collect::<Vec<_>>(), ["k1", "k2"]);
        assert_eq!(keeper.table.as_deref(), Some("t@1"));
        keeper.done("k3", Some("t@1".into())).expect("saved");
        drop(keeper);
        let keeper = Keeper::open(Some(&path), &header("s3://b/e")).expect("resumed");
        assert_eq!(
            keeper.done.len(),
            3,
            "the torn line was cut, the new one whole"
        );
        let err = Keeper::open(Some(&path), &header("s3://b/other"))
            .err()
            .expect("another export")
            .to_string();
        assert!(err.contains("delete it to start over"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rates_go_to_the_function_as_it_parses_them() {
        assert_eq!(wcu_text(100.0), "100");
        assert_eq!(wcu_text(400.0 / 3.0), "133.333333");
        assert_eq!(wcu_text(0.5), "0.5");
        assert_eq!(wcu_text(0.0), "0.000001");
        for text in ["1", "250.5", "1000000"] {
            assert!(parse_wcu(text).is_ok(), "{text}");
        }
        for text in ["0", "0.5", "1000001", "x", "-3", "NaN", "inf"] {
            assert!(parse_wcu(text).is_err(), "{text}");
        }
    }
}
