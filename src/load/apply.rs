//! `seeder --apply`: a table's change lines ([`crate::format::change`]) applied to another
//! table, each key's changes in file order.
//!
//! One thread reads the lines and hands each change to a worker chosen by its key's
//! hash, so a key's changes always go to the same worker, in order. A worker writes one
//! batch at a time (25 distinct keys at most: a later change of a key already in the
//! batch replaces it, since applying a change writes the key's whole state), and starts
//! the next only when it is written; different keys are applied by different workers at
//! once. Applying the same lines twice leaves the same table.
//!
//! A file is checked whole first (every line a change of the table's key schema) and
//! nothing is applied if a line is bad; a stream is applied as it arrives, stops at a bad
//! line, and must end with its trailer to count as whole. `--checkpoint` (files) records
//! the line through which every change is applied: the lowest line still in flight,
//! less one.

use super::checkpoint::{self, Keeper};
use super::input::{Line, MAX_LINE_BYTES, Source, read_line};
use super::pass::{Tally, file_incomplete, stream_incomplete};
use super::{LoadError, Observer};
use crate::dynamo::client::Dynamo;
use crate::dynamo::writer::{BatchWriter, WriteReport};
use crate::format::change::{Change, parse_change_line};
use crate::format::key::{IndexKeys, ItemKey, KeySchema};
use crate::format::limits::MAX_BATCH_WRITE_ITEMS;
use crate::format::trailer::Trailer;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What to apply, and where.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The table written into.
    pub table: String,
    /// The change lines.
    pub source: Source,
    /// Where to keep how far a file is applied.
    pub checkpoint: Option<PathBuf>,
    /// Workers, each writing one batch at a time.
    pub workers: usize,
    /// Apply a file whose trailer says it is not whole (or counts other lines).
    pub allow_incomplete: bool,
}

/// What applying did.
#[derive(Debug, Default)]
pub struct ApplyOutcome {
    /// What the writer did.
    pub report: WriteReport,
    /// Changes handed to the workers (after the resume point).
    pub changes: u64,
    /// Of them, puts and deletes.
    pub puts: u64,
    /// Deletes.
    pub deletes: u64,
    /// Lines a checkpoint said were applied by an earlier run.
    pub resumed_through: Option<u64>,
    /// A stream stopped at this bad line.
    pub stopped: Option<String>,
    /// Why the input is not a whole set of changes, if it is not.
    pub incomplete: Option<String>,
    /// A failure to keep the checkpoint.
    pub checkpoint_error: Option<String>,
    /// Applying stopped short for a reason of its own (a worker lost, a file that changed
    /// since it was checked): what was applied is not all.
    pub aborted: Option<String>,
}

/// One change on its way to a worker.
struct Routed {
    line: u64,
    key: ItemKey,
    change: Change,
}

/// What the reading thread and the workers share.
struct Shared {
    /// Lines handed to a worker and not yet written, and the last line handed over: one
    /// lock, so that a line is never seen handed over and not pending.
    pending: Mutex<(BTreeSet<u64>, u64)>,
    /// A batch failed: no more lines are read.
    failed: AtomicBool,
    /// Every batch's report, added up.
    report: Mutex<WriteReport>,
    /// Changes handed to the workers.
    handed: std::sync::atomic::AtomicU64,
}

/// What every change line is checked against: the table's key schema and its indexes'.
#[derive(Debug, Clone)]
struct Check {
    schema: KeySchema,
    indexes: IndexKeys,
}

/// Applies `options.source` to `options.table`. A batch DynamoDB does not take stops
/// the run at once (a stream is not read further, even if it is waiting for input).
pub async fn apply(
    client: &Dynamo,
    writer: BatchWriter,
    options: &ApplyOptions,
    observer: &mut dyn Observer,
) -> Result<ApplyOutcome, LoadError> {
    let name = options.source.name();
    let stream = options.source.is_stream();
    if options.checkpoint.is_some() && stream {
        return Err(LoadError::Usage(format!(
            "--checkpoint needs a file: {name} is read once, as it streams (applying it \
             again is safe: every change writes a key's whole state)"
        )));
    }
    let (schema, indexes) = crate::dynamo::schema::describe_with_indexes(client, &options.table)
        .await
        .map_err(|source| LoadError::Upstream {
            table: options.table.clone(),
            source,
        })?;
    let check = Check { schema, indexes };
    let writer = writer.key_attributes(check.schema.names());
    let mut keeper = match &options.checkpoint {
        Some(path) => {
            let fingerprint = match &options.source {
                Source::File(path) => {
                    checkpoint::file_fingerprint(path).map_err(LoadError::Checkpoint)?
                }
                _ => String::new(),
            };
            // Named as an apply's: a load's checkpoint of the same file is another's.
            Some(
                Keeper::open(path, &options.table, &format!("apply {name}"), &fingerprint)
                    .map_err(LoadError::Checkpoint)?,
            )
        }
        None => None,
    };
    let resume = keeper
        .as_ref()
        .and_then(|k| k.record().written_through)
        .map(|p| p.line);
    if keeper.as_ref().is_some_and(|k| k.record().complete) {
        return Ok(ApplyOutcome {
            resumed_through: resume,
            ..ApplyOutcome::default()
        });
    }
    if !stream {
        // A file: every line checked before any is applied.
        let (source, check) = (options.source.clone(), check.clone());
        let checked = tokio::task::spawn_blocking(move || read(&source, &check, None, None))
            .await
            .map_err(|e| LoadError::Usage(format!("the checking pass failed: {e}")))??;
        if let Some(first) = checked.tally.errors.first() {
            return Err(LoadError::Invalid {
                name,
                count: checked.tally.error_count,
                first: first.clone(),
                shown: checked.tally.errors.clone(),
            });
        }
        // A change lost is a key left wrong: a file that says it is not whole is not
        // applied unless asked.
        if let Some(why) = file_incomplete(&checked.tally)
            && !options.allow_incomplete
        {
            return Err(LoadError::Incomplete { name, why });
        }
    }
    let workers = options.workers.max(1);
    let shared = Arc::new(Shared {
        pending: Mutex::new((BTreeSet::new(), resume.unwrap_or(0))),
        failed: AtomicBool::new(false),
        report: Mutex::new(WriteReport::default()),
        handed: std::sync::atomic::AtomicU64::new(0),
    });
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers)
        .map(|_| mpsc::channel::<Routed>(MAX_BATCH_WRITE_ITEMS * 2))
        .unzip();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<()>();
    let mut tasks = tokio::task::JoinSet::new();
    for receiver in receivers {
        let (writer, shared, done_tx) = (writer.clone(), shared.clone(), done_tx.clone());
        tasks.spawn(async move { worker(receiver, &writer, &shared, &done_tx).await });
    }
    drop(done_tx);
    observer.start(None, 0);
    let reading = {
        let (source, check, shared) = (options.source.clone(), check.clone(), shared.clone());
        tokio::task::spawn_blocking(move || {
            read(&source, &check, resume, Some((&senders, &shared)))
        })
    };
    // As batches are written: the progress, and the checkpoint at the lowest line still
    // in flight.
    let mut checkpoint_error = None;
    while done_rx.recv().await.is_some() {
        if shared.failed.load(Ordering::Relaxed) {
            // Stop now: a stream may be waiting for input that never comes.
            let report = std::mem::take(&mut *lock(&shared.report));
            return Ok(ApplyOutcome {
                report,
                changes: shared.handed.load(Ordering::Relaxed),
                resumed_through: resume,
                checkpoint_error,
                ..ApplyOutcome::default()
            });
        }
        let report = lock(&shared.report).clone();
        observer.written(&report);
        let through = {
            let pending = lock(&shared.pending);
            pending.0.first().map_or(pending.1, |first| first - 1)
        };
        if let Some(keeper) = keeper.as_mut()
            && through > 0
            && let Err(err) = keeper.advance(through)
        {
            checkpoint_error.get_or_insert(err);
        }
    }
    let mut aborted = None;
    while let Some(joined) = tasks.join_next().await {
        if let Err(err) = joined {
            aborted.get_or_insert(format!("a worker failed: {err}"));
        }
    }
    let read = reading
        .await
        .map_err(|e| LoadError::Usage(format!("the reading thread failed: {e}")))??;
    let report = std::mem::take(&mut *lock(&shared.report));
    if read.tally.abandoned && report.is_complete() {
        aborted.get_or_insert("a worker stopped taking changes".to_string());
    }
    if !stream && let Some(line) = &read.tally.stopped {
        // It was checked whole: a bad line now means it changed.
        aborted.get_or_insert(format!("{name} changed since it was checked ({line})"));
    }
    let incomplete = if read.tally.stopped.is_some() {
        None
    } else if stream {
        stream_incomplete(&read.tally)
    } else {
        file_incomplete(&read.tally)
    };
    if let Some(keeper) = keeper.as_mut()
        && let Some(last) = read.last_line
        && lock(&shared.pending).0.is_empty()
        && !shared.failed.load(Ordering::Relaxed)
        && aborted.is_none()
        && read.tally.stopped.is_none()
    {
        let saved = keeper.advance(last).and_then(|()| {
            if incomplete.is_none() {
                keeper.complete()
            } else {
                Ok(())
            }
        });
        if let Err(err) = saved {
            checkpoint_error.get_or_insert(err);
        }
    }
    Ok(ApplyOutcome {
        report,
        changes: read.tally.valid,
        puts: read.puts,
        deletes: read.deletes,
        resumed_through: resume,
        stopped: read.tally.stopped,
        incomplete,
        checkpoint_error,
        aborted,
    })
}

/// What a pass over the change lines found.
struct Read {
    tally: Tally,
    puts: u64,
    deletes: u64,
    /// The last line read.
    last_line: Option<u64>,
}

/// Reads every line of `source`, checking each; given `route`, hands the changes after
/// line `resume` to the workers. Runs on a blocking thread.
fn read(
    source: &Source,
    check: &Check,
    resume: Option<u64>,
    route: Option<(&[mpsc::Sender<Routed>], &Shared)>,
) -> Result<Read, LoadError> {
    let io = |err| LoadError::Io {
        name: source.name(),
        source: err,
    };
    let mut reader = source.open().map_err(io)?;
    let mut read = Read {
        tally: Tally::default(),
        puts: 0,
        deletes: 0,
        last_line: None,
    };
    let stop_on_error = route.is_some();
    let mut buf = Vec::new();
    let mut line = 0u64;
    let mut trailer: Option<(u64, Trailer)> = None;
    loop {
        let got = match read_line(&mut *reader, &mut buf, MAX_LINE_BYTES) {
            Ok(got) => got,
            Err(err) if source.is_stream() => {
                read.tally.cut_by = Some((line, err.to_string()));
                break;
            }
            Err(err) => return Err(io(err)),
        };
        let Some(got) = got else { break };
        line += 1;
        read.last_line = Some(line);
        if !matches!(got, Line::TooLong(_)) && buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some((at, _)) = trailer.take() {
            let message = format!("line {at}: a trailer before the last line: streams were joined");
            read.tally.bad(message.clone());
            if stop_on_error {
                read.tally.stopped = Some(message);
                break;
            }
        }
        if let Line::Read | Line::Unended = got
            && let Some(found) = Trailer::parse_line(&buf)
        {
            trailer = Some((line, found));
            continue;
        }
        read.tally.item_lines += 1;
        let parsed = match got {
            Line::TooLong(bytes) => Err(format!(
                "a line of {bytes} bytes, over the {MAX_LINE_BYTES}-byte limit"
            )),
            Line::Read | Line::Unended => std::str::from_utf8(&buf)
                .map_err(|_| "not UTF-8".to_string())
                .and_then(parse_change_line)
                .and_then(|read| {
                    let names = check.schema.names();
                    if read.keys.len() != names.len()
                        || names.iter().any(|name| !read.keys.contains_key(name))
                    {
                        let mut held: Vec<&String> = read.keys.keys().collect();
                        held.sort();
                        return Err(format!(
                            "its Keys are {held:?}, the table's key is {}",
                            check.schema
                        ));
                    }
                    let key = check.schema.key_of(&read.keys)?;
                    if let Change::Put(image) = &read.change {
                        if check.schema.key_of(image)? != key {
                            return Err("its NewImage's key is not its Keys".into());
                        }
                        check.indexes.check(image)?;
                    }
                    Ok((key, read.change))
                }),
        };
        let (key, change) = match parsed {
            Ok(parsed) => parsed,
            Err(_) if got == Line::Unended && source.is_stream() => {
                read.tally.cut_mid_line = Some(line);
                break;
            }
            Err(message) => {
                let message = format!("line {line}: {message}");
                read.tally.bad(message.clone());
                if stop_on_error {
                    read.tally.stopped = Some(message);
                    break;
                }
                continue;
            }
        };
        if resume.is_some_and(|through| line <= through) {
            continue;
        }
        let is_put = matches!(change, Change::Put(_));
        let Some((senders, shared)) = route else {
            continue;
        };
        if shared.failed.load(Ordering::Relaxed) {
            read.tally.abandoned = true;
            break;
        }
        let worker = {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            key.hash(&mut hasher);
            (hasher.finish() % senders.len() as u64) as usize
        };
        {
            let mut pending = lock(&shared.pending);
            pending.0.insert(line);
            pending.1 = pending.1.max(line);
        }
        if senders[worker]
            .blocking_send(Routed { line, key, change })
            .is_err()
        {
            lock(&shared.pending).0.remove(&line);
            read.tally.abandoned = true;
            break;
        }
        shared.handed.fetch_add(1, Ordering::Relaxed);
        read.tally.valid += 1;
        if is_put {
            read.puts += 1;
        } else {
            read.deletes += 1;
        }
    }
    if let Some((_, found)) = trailer {
        read.tally.trailer = Some(found);
    }
    Ok(read)
}

/// The most changes one batch stands for (later changes of its keys replacing earlier
/// ones): past it, the batch is written, so a burst of one key's changes cannot put it
/// off for good.
const MAX_LINES_A_BATCH: usize = 1000;

/// One batch being gathered: distinct keys, each with its last change, and every line it
/// covers (the replaced changes' too).
#[derive(Default)]
struct Batch {
    keys: HashMap<ItemKey, usize>,
    changes: Vec<Change>,
    lines: Vec<u64>,
}

impl Batch {
    fn add(&mut self, routed: Routed) {
        self.lines.push(routed.line);
        match self.keys.get(&routed.key) {
            Some(&at) => self.changes[at] = routed.change,
            None => {
                self.keys.insert(routed.key, self.changes.len());
                self.changes.push(routed.change);
            }
        }
    }
}

/// One worker: batches of distinct keys, one at a time, each key's last change kept.
async fn worker(
    mut receiver: mpsc::Receiver<Routed>,
    writer: &BatchWriter,
    shared: &Shared,
    done: &mpsc::UnboundedSender<()>,
) {
    let mut held: Option<Routed> = None;
    loop {
        let first = match held.take() {
            Some(first) => first,
            None => match receiver.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let mut batch = Batch::default();
        batch.add(first);
        // What is already waiting joins the batch, up to 25 keys; the change that would
        // be a 26th waits for the next.
        while batch.lines.len() < MAX_LINES_A_BATCH
            && let Ok(next) = receiver.try_recv()
        {
            if batch.keys.len() == MAX_BATCH_WRITE_ITEMS && !batch.keys.contains_key(&next.key) {
                held = Some(next);
                break;
            }
            batch.add(next);
        }
        let Batch { changes, lines, .. } = batch;
        let report = writer.write_changes(changes, None).await;
        let written = report.as_ref().is_some_and(WriteReport::is_complete);
        if let Some(report) = report {
            lock(&shared.report).absorb(report);
        }
        if written {
            let mut pending = lock(&shared.pending);
            for line in &lines {
                pending.0.remove(line);
            }
        } else {
            // A key's later changes must not be applied past one that was not: stop.
            shared.failed.store(true, Ordering::Relaxed);
        }
        let _ = done.send(());
        if !written {
            return;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
