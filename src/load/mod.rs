//! Loading: the items of a file, a stream or a DynamoDB export into a table, with memory
//! bounded by the batches in flight whatever the input's size.
//!
//! - [`input`]: what `--from` names (standard input, a file, a stream, a directory) and
//!   its bytes as lines, gzip or zstd decoded as they stream.
//! - [`item`]: a line of typed JSON to an item, by DynamoDB's rules.
//! - [`key`]: the target table's key schema and its indexes' keys, checked on every item.
//! - [`batch`]: items into batches of 25 with no key twice.
//! - [`export`]: DynamoDB's export layout, its manifests and checksums.
//! - [`checkpoint`]: how far a file or export load has been written.
//!
//! A file or an export is read twice: first every line is checked (and an export's files
//! against their manifest), and nothing is written if anything is wrong; then it is read
//! again and written. A stream can be read once only, so it is written as it arrives: a
//! bad line stops it there, and it must end with a complete trailer (the streamer's, or
//! the one `scanstream pull --trailer` writes) to count as a whole copy. One thread reads
//! and parses; a channel as deep as the writer's concurrency hands its batches to the
//! writer, so reading waits for writing instead of piling items up.

pub mod batch;
pub mod checkpoint;
pub mod export;
pub mod input;
pub mod lines;

use crate::dynamo::writer::{BatchWriter, WriteReport};
use crate::error::{ErrorKind, UpstreamError};
use crate::format::key::{IndexKeys, KeySchema};
use crate::scan::trailer::Trailer;
use aws_sdk_dynamodb::Client;
use batch::{Batch, Batcher, Position};
use checkpoint::Keeper;
use export::{Export, ExportError};
use futures::StreamExt;
use input::{Line, MAX_LINE_BYTES, Source, read_line};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Bad lines shown in full; the rest are counted.
pub const SHOWN_ERRORS: usize = 20;

/// What to load, and how.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The table written into.
    pub table: String,
    /// Where the items come from.
    pub source: Source,
    /// Write the valid items even if some lines are bad.
    pub skip_invalid: bool,
    /// Accept a stream without a complete trailer (or a file whose trailer says
    /// incomplete) as a success.
    pub allow_incomplete: bool,
    /// Where to keep the checkpoint (file and export loads only).
    pub checkpoint: Option<PathBuf>,
    /// The key schema to create the table with (and to expect of an existing one).
    pub key: Option<KeySchema>,
    /// Create the table if it does not exist.
    pub create_table: bool,
}

/// A load refused before anything was written.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The options do not fit the input.
    #[error("{0}")]
    Usage(String),
    /// The table cannot be used as asked.
    #[error("{0}")]
    Table(String),
    /// DynamoDB failed.
    #[error("table {table}")]
    Upstream {
        /// The table.
        table: String,
        /// What DynamoDB said.
        #[source]
        source: UpstreamError,
    },
    /// Some lines are bad; nothing was written.
    #[error(
        "{count} invalid lines in {name} (first: {first}); nothing written (--skip-invalid writes the valid ones)"
    )]
    Invalid {
        /// The input.
        name: String,
        /// Bad lines.
        count: u64,
        /// The first, named by its line.
        first: String,
        /// The first [`SHOWN_ERRORS`] of them.
        shown: Vec<String>,
    },
    /// A file's trailer says it holds part of a table; nothing was written.
    #[error("{name} is incomplete: {why}; nothing written (--allow-incomplete writes it anyway)")]
    Incomplete {
        /// The input.
        name: String,
        /// Why.
        why: String,
    },
    /// The export is not whole; nothing was written.
    #[error("export refused, nothing written")]
    Export(#[from] ExportError),
    /// The checkpoint cannot be used.
    #[error("{0}")]
    Checkpoint(String),
    /// Reading the input failed.
    #[error("reading {name}")]
    Io {
        /// The input.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What a load did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// What the writer did.
    pub report: WriteReport,
    /// Items this run set out to write (for a stream: the valid items read).
    pub requested: u64,
    /// A refused write stopped a stream's reading, so `requested` counts only what had
    /// arrived by then: the input held at least that many.
    pub requested_at_least: bool,
    /// Items a checkpoint said were written by earlier runs, skipped now.
    pub resumed: u64,
    /// Bad lines skipped (with `--skip-invalid`).
    pub skipped: u64,
    /// The first [`SHOWN_ERRORS`] bad lines.
    pub shown: Vec<String>,
    /// A stream stopped at this bad line.
    pub stopped: Option<String>,
    /// Why a stream is not a whole copy, if it is not.
    pub incomplete: Option<String>,
    /// A failure to keep the checkpoint.
    pub checkpoint_error: Option<String>,
    /// The key schema the items were checked against.
    pub schema: Option<KeySchema>,
    /// Whether this run created the table.
    pub created: bool,
}

/// What a load tells its user while it runs.
pub trait Observer {
    /// Writing starts: `total` items to write when known (files), `resumed` skipped.
    fn start(&mut self, total: Option<u64>, resumed: u64);
    /// Running totals after a batch.
    fn written(&mut self, report: &WriteReport);
}

/// Loads `options.source` into `options.table` through `writer`.
pub async fn run(
    client: &Client,
    writer: BatchWriter,
    options: &LoadOptions,
    observer: &mut dyn Observer,
) -> Result<Outcome, LoadError> {
    let name = options.source.name();
    if options.checkpoint.is_some() && options.source.is_stream() {
        return Err(LoadError::Usage(format!(
            "--checkpoint needs a file or an export directory: {name} is read once, as it \
             streams, and cannot be resumed (running the copy again is safe: puts are idempotent)"
        )));
    }
    let export = match &options.source {
        Source::Directory(dir) => Some(Export::open(dir)?),
        _ => None,
    };
    let (schema, indexes, create) = resolve_schema(
        client,
        options,
        export.as_ref().and_then(|e| e.key_schema.clone()),
    )
    .await?;
    let writer = writer.key_attributes(schema.names());
    let pass = Pass {
        schema: schema.clone(),
        indexes,
        stop_on_error: options.source.is_stream() && !options.skip_invalid,
        trailers: export.is_none(),
        cut_off_tail: options.source.is_stream(),
    };
    let sources: Vec<Source> = match &export {
        Some(export) => export
            .files
            .iter()
            .map(|f| Source::File(f.path.clone()))
            .collect(),
        None => vec![options.source.clone()],
    };
    if options.source.is_stream() {
        let created = create_if_needed(client, options, &schema, create).await?;
        observer.start(None, 0);
        let (report, tally) = write_pass(&writer, pass, sources, None, None, observer).await?;
        let incomplete = if tally.stopped.is_some() {
            None
        } else {
            stream_incomplete(&tally)
        };
        return Ok(Outcome {
            requested: tally.valid,
            requested_at_least: tally.abandoned && !report.is_complete(),
            skipped: tally.error_count,
            shown: tally.errors,
            stopped: tally.stopped,
            incomplete,
            report,
            schema: Some(schema),
            created,
            ..Outcome::default()
        });
    }

    // A file or an export: everything is checked before anything is written.
    let fingerprint = match &export {
        Some(export) => {
            export.verify_checksums()?;
            format!("export manifest md5 {}", export.manifest_md5)
        }
        None => match &options.source {
            Source::File(path) => {
                checkpoint::file_fingerprint(path).map_err(LoadError::Checkpoint)?
            }
            _ => String::new(),
        },
    };
    let keeper = match &options.checkpoint {
        Some(path) => Some(
            Keeper::open(path, &options.table, &name, &fingerprint)
                .map_err(LoadError::Checkpoint)?,
        ),
        None => None,
    };
    let resume = keeper.as_ref().and_then(|k| k.record().written_through);
    let resumed = keeper.as_ref().map_or(0, |k| k.record().items);
    if keeper.as_ref().is_some_and(|k| k.record().complete) {
        return Ok(Outcome {
            resumed,
            schema: Some(schema),
            incomplete: None,
            ..Outcome::default()
        });
    }
    // A second pass that counts other lines is called a change only if these moved.
    let stamps: Vec<Option<String>> = sources.iter().map(Source::stamp).collect();
    let checked = {
        let (pass, sources) = (pass.clone(), sources.clone());
        tokio::task::spawn_blocking(move || read_pass(&pass, &sources, resume, None))
            .await
            .map_err(|e| LoadError::Checkpoint(format!("the checking pass failed: {e}")))??
    };
    if let Some(export) = &export {
        for (file, lines) in export.files.iter().zip(&checked.per_file) {
            if *lines != file.entry.item_count {
                return Err(ExportError::Count {
                    file: file.path.clone(),
                    expected: file.entry.item_count,
                    actual: *lines,
                }
                .into());
            }
        }
    }
    if let Some(first) = checked.errors.first()
        && !options.skip_invalid
    {
        return Err(LoadError::Invalid {
            name,
            count: checked.error_count,
            first: first.clone(),
            shown: checked.errors.clone(),
        });
    }
    if let Some(why) = file_incomplete(&checked)
        && !options.allow_incomplete
    {
        return Err(LoadError::Incomplete { name, why });
    }
    let created = create_if_needed(client, options, &schema, create).await?;
    observer.start(Some(checked.valid), resumed);
    let (report, written) =
        write_pass(&writer, pass, sources.clone(), resume, keeper, observer).await?;
    // A write DynamoDB refused stops the writer, and so the reading: the report says why.
    let refused = written.abandoned && !report.is_complete();
    if !refused && (written.valid != checked.valid || written.error_count != checked.error_count) {
        let changed = sources.iter().map(Source::stamp).ne(stamps);
        let how = if changed {
            "changed while it was loaded"
        } else {
            "read otherwise when written than when checked (its size and modification time \
             are the same)"
        };
        return Err(LoadError::Usage(format!(
            "{name} {how}: {} valid and {} bad lines when checked, {} and {} when written",
            checked.valid, checked.error_count, written.valid, written.error_count
        )));
    }
    let incomplete = file_incomplete(&checked);
    Ok(Outcome {
        report,
        requested: checked.valid,
        resumed,
        skipped: checked.error_count,
        shown: checked.errors,
        checkpoint_error: written.checkpoint_error,
        incomplete,
        schema: Some(schema),
        created,
        ..Outcome::default()
    })
}

/// The key schema and index keys to check items against, and whether the table must be
/// created (without indexes).
async fn resolve_schema(
    client: &Client,
    options: &LoadOptions,
    recorded: Option<KeySchema>,
) -> Result<(KeySchema, IndexKeys, bool), LoadError> {
    let table = &options.table;
    match crate::dynamo::schema::describe_with_indexes(client, table).await {
        Ok((schema, indexes)) => {
            if let Some(asked) = &options.key
                && *asked != schema
            {
                return Err(LoadError::Table(format!(
                    "table {table} exists, keyed {schema}, not {asked} as --key says"
                )));
            }
            Ok((schema, indexes, false))
        }
        Err(err) if err.kind == ErrorKind::NotFound => {
            if !options.create_table {
                return Err(LoadError::Table(format!(
                    "table {table} does not exist; --create-table creates it (with --key NAME:TYPE[,NAME:TYPE], \
                     or the export's recorded key, or seed-data/table.json's id:S)"
                )));
            }
            let schema = match options.key.clone().or(recorded) {
                Some(schema) => schema,
                None => crate::dynamo::table::default_key_schema()
                    .map_err(|e| LoadError::Table(e.to_string()))?,
            };
            Ok((schema, IndexKeys::default(), true))
        }
        Err(source) => Err(LoadError::Upstream {
            table: table.clone(),
            source,
        }),
    }
}

async fn create_if_needed(
    client: &Client,
    options: &LoadOptions,
    schema: &KeySchema,
    create: bool,
) -> Result<bool, LoadError> {
    if !create {
        return Ok(false);
    }
    crate::dynamo::table::ensure_table_keyed(client, &options.table, schema)
        .await
        .map_err(|source| LoadError::Upstream {
            table: options.table.clone(),
            source,
        })
}

/// Why a stream is not a whole copy: no trailer, a trailer that says so, or one that
/// counts other items than arrived.
fn stream_incomplete(tally: &Tally) -> Option<String> {
    if let Some((line, why)) = &tally.cut_by {
        return Some(format!(
            "reading it failed after line {line} ({why}), without a trailer: the stream was \
             cut off (a whole copy is `scanstream pull --trailer`)"
        ));
    }
    if let Some(line) = tally.cut_mid_line {
        return Some(format!(
            "it ends inside line {line}, without a trailer: the stream was cut off"
        ));
    }
    match &tally.trailer {
        None => Some(
            "it ends without a trailer: the stream was cut off, or was not written by the \
             streamer or `scanstream pull --trailer`"
                .to_string(),
        ),
        Some(trailer) => trailer_incomplete(trailer, tally.item_lines),
    }
}

/// A file without a trailer is a data set; one with a trailer is checked like a stream.
fn file_incomplete(tally: &Tally) -> Option<String> {
    tally
        .trailer
        .as_ref()
        .and_then(|t| trailer_incomplete(t, tally.item_lines))
}

fn trailer_incomplete(trailer: &Trailer, item_lines: u64) -> Option<String> {
    if !trailer.complete {
        return Some(format!(
            "its trailer says complete:false (reason {}): it holds only part of the table; \
             resume the read with the trailer's cursor",
            trailer
                .reason
                .map_or("unknown".to_string(), |r| format!("{r:?}"))
        ));
    }
    if trailer.items != item_lines {
        return Some(format!(
            "its trailer counts {} items but {item_lines} item lines came before it: lines \
             were lost or added",
            trailer.items
        ));
    }
    None
}

/// How lines are read in a pass.
#[derive(Debug, Clone)]
struct Pass {
    schema: KeySchema,
    /// Checked on the items that carry them, so DynamoDB refuses no batch for them.
    indexes: IndexKeys,
    /// A stream stops at its first bad line.
    stop_on_error: bool,
    /// Whether a last line may be a trailer (not in an export's data files).
    trailers: bool,
    /// A last line that does not parse and has no `\n` was cut off (streams).
    cut_off_tail: bool,
}

/// What a pass over the input found.
#[derive(Debug, Default)]
struct Tally {
    /// Non-blank lines that are not the trailer.
    item_lines: u64,
    /// Item lines of each source.
    per_file: Vec<u64>,
    /// Valid items (after the resume position).
    valid: u64,
    /// Bad lines, all of them counted.
    error_count: u64,
    /// The first of them.
    errors: Vec<String>,
    /// The trailer, when the input ends with one.
    trailer: Option<Trailer>,
    /// The bad line a stream stopped at.
    stopped: Option<String>,
    /// The stream ended inside this line.
    cut_mid_line: Option<u64>,
    /// Reading the stream failed (its decoder, at a cut) after this many lines, and why.
    cut_by: Option<(u64, String)>,
    /// A failure to keep the checkpoint.
    checkpoint_error: Option<String>,
    /// The writer stopped taking batches (DynamoDB refused one), so reading stopped.
    abandoned: bool,
}

impl Tally {
    fn bad(&mut self, message: String) {
        self.error_count += 1;
        if self.errors.len() < SHOWN_ERRORS {
            self.errors.push(message);
        }
    }
}

/// Reads every source in order: checks each line, and, given `send`, hands the valid
/// items after `resume` to the writer in batches. Runs on a blocking thread.
fn read_pass(
    pass: &Pass,
    sources: &[Source],
    resume: Option<Position>,
    send: Option<&mpsc::Sender<Batch>>,
) -> Result<Tally, LoadError> {
    let mut tally = Tally::default();
    let mut batcher = Batcher::default();
    let mut buf = Vec::new();
    let several = sources.len() > 1;
    'sources: for (index, source) in sources.iter().enumerate() {
        let file = u32::try_from(index).unwrap_or(u32::MAX);
        let io = |source_err| LoadError::Io {
            name: source.name(),
            source: source_err,
        };
        let mut reader = source.open().map_err(io)?;
        let mut lines_here = 0u64;
        let mut line = 0u64;
        // A trailer seen, and its line: the input must end there.
        let mut trailer: Option<(u64, Trailer)> = None;
        loop {
            let read = match read_line(&mut *reader, &mut buf, MAX_LINE_BYTES) {
                Ok(read) => read,
                // A cut-off gzip or zstd stream fails to decode at the cut: like a stream
                // that ends inside a line, its whole lines so far are written, then the
                // load is reported incomplete.
                Err(err) if pass.cut_off_tail => {
                    tally.cut_by = Some((line, err.to_string()));
                    break 'sources;
                }
                Err(err) => return Err(io(err)),
            };
            let Some(read) = read else { break };
            line += 1;
            let at = |message: &str| {
                if several {
                    format!("{}: line {line}: {message}", source.name())
                } else {
                    format!("line {line}: {message}")
                }
            };
            let unended = read == Line::Unended;
            let text = match read {
                Line::TooLong(bytes) => Err(format!(
                    "a line of {bytes} bytes, over the {MAX_LINE_BYTES}-byte limit"
                )),
                Line::Read | Line::Unended => Ok(&buf),
            };
            if let Ok(bytes) = &text
                && bytes.iter().all(u8::is_ascii_whitespace)
            {
                continue;
            }
            if let Some((trailer_line, _)) = trailer.take() {
                let message = format!(
                    "line {trailer_line}: a trailer before the last line: streams were joined"
                );
                tally.bad(message.clone());
                if pass.stop_on_error {
                    tally.stopped = Some(message);
                    break 'sources;
                }
            }
            if pass.trailers
                && let Ok(bytes) = &text
                && let Some(found) = Trailer::parse_line(bytes)
            {
                trailer = Some((line, found));
                continue;
            }
            tally.item_lines += 1;
            lines_here += 1;
            let position = Position { file, line };
            let resumed = resume.is_some_and(|r| position <= r);
            if resumed && send.is_some() {
                continue;
            }
            let length = text.as_ref().map_or(0, |bytes| bytes.len());
            let parsed = text.and_then(|bytes| {
                let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
                let (item, key) = lines::parse_line(text, &pass.schema)?;
                pass.indexes.check(&item)?;
                Ok((item, key))
            });
            let pushed = match parsed {
                Ok(_) if resumed => Ok(None),
                Ok((item, key)) => batcher
                    .push_at(position, item, key, length)
                    .inspect(|_| tally.valid += 1),
                Err(message) => Err(message),
            };
            match pushed {
                Ok(Some(batch)) => {
                    if let Some(tx) = send
                        && tx.blocking_send(batch).is_err()
                    {
                        tally.abandoned = true;
                        break 'sources;
                    }
                }
                Ok(None) => {}
                Err(_) if unended && pass.cut_off_tail => {
                    // The stream ended inside a line: cut off, not a bad line.
                    tally.cut_mid_line = Some(line);
                }
                Err(message) => {
                    let message = at(&message);
                    tally.bad(message.clone());
                    if pass.stop_on_error {
                        tally.stopped = Some(message);
                        break 'sources;
                    }
                }
            }
        }
        tally.per_file.push(lines_here);
        if let Some((_, found)) = trailer {
            tally.trailer = Some(found);
        }
    }
    // Before a stream's bad line, every item is valid: they are written.
    if let Some(batch) = batcher.finish()
        && let Some(tx) = send
        && tx.blocking_send(batch).is_err()
    {
        tally.abandoned = true;
    }
    Ok(tally)
}

/// Reads `sources` on a blocking thread and writes what it hands over; keeps the
/// checkpoint as batches finish.
async fn write_pass(
    writer: &BatchWriter,
    pass: Pass,
    sources: Vec<Source>,
    resume: Option<Position>,
    mut keeper: Option<Keeper>,
    observer: &mut dyn Observer,
) -> Result<(WriteReport, Tally), LoadError> {
    // As deep as the writer's concurrency: the reader stays one round of batches ahead.
    let (tx, rx) = mpsc::channel::<Batch>(writer.concurrency_level());
    let reading =
        tokio::task::spawn_blocking(move || read_pass(&pass, &sources, resume, Some(&tx)));
    // Batch index (in the order handed over) to its last position and size.
    let handed: Mutex<HashMap<u64, (Option<Position>, u64)>> = Mutex::new(HashMap::new());
    let mut next_index = 0u64;
    let batches = ReceiverStream::new(rx).map(|batch| {
        if let Ok(mut handed) = handed.lock() {
            handed.insert(next_index, (batch.last(), batch.items.len() as u64));
        }
        next_index += 1;
        batch.items
    });
    let mut checkpoint_error = None;
    let report = writer
        .write_stream(batches, None, |done| {
            observer.written(done.total);
            let entry = handed.lock().ok().and_then(|mut h| h.remove(&done.index));
            if let (Some(keeper), Some((last, items))) = (keeper.as_mut(), entry)
                && let Err(err) = keeper.finished(done.index, done.complete, last, items)
            {
                checkpoint_error.get_or_insert(err);
            }
        })
        .await;
    let mut tally = reading
        .await
        .map_err(|e| LoadError::Usage(format!("the reading thread failed: {e}")))??;
    if let Some(keeper) = keeper.as_mut()
        && report.is_complete()
        && let Err(err) = keeper.complete()
    {
        checkpoint_error.get_or_insert(err);
    }
    tally.checkpoint_error = checkpoint_error;
    Ok((report, tally))
}
