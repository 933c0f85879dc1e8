//! Loading: the items of a file, a stream or a DynamoDB export into a table, with memory
//! bounded by the batches in flight whatever the input's size.
//!
//! - [`input`]: what `--from` names (standard input, a file, a stream, a directory) and
//!   its bytes as lines, gzip or zstd decoded as they stream.
//! - [`lines`]: lines of typed JSON to items keyed by the table's key schema
//!   ([`crate::format::json::read`] reads each line, by DynamoDB's rules).
//! - `pass`: one pass over the input, checking (and on the second, writing) its lines.
//! - [`batch`]: items into batches of 25 with no key twice.
//! - [`export`]: DynamoDB's export layout, its manifests and checksums.
//! - [`checkpoint`]: how far a file or export load has been written.
//! - [`apply`]: a table's change lines applied to another, each key's in order.
//! - [`object`]: one data file of an export in S3, checked against what the caller says
//!   it is, then written until a deadline (the seeder function's `from=`).
//!
//! A file or an export is read twice: first every line is checked (and an export's files
//! against their manifest), and nothing is written if anything is wrong; then it is read
//! again and written. A stream can be read once only, so it is written as it arrives: a
//! bad line stops it there, and it must end with a complete trailer (the streamer's, or
//! the one `scanstream pull --trailer` writes) to count as a whole copy. One thread reads
//! and parses; a channel as deep as the writer's concurrency hands its batches to the
//! writer, so reading waits for writing instead of piling items up.

pub mod apply;
pub mod batch;
pub mod checkpoint;
pub mod export;
pub mod input;
pub mod lines;
pub mod object;
mod pass;

use crate::dynamo::client::Dynamo;
use crate::dynamo::writer::{BatchWriter, WriteReport};
use crate::format::error::{ErrorKind, UpstreamError};
use crate::format::key::{IndexKeys, KeySchema};
use checkpoint::Keeper;
use export::{Export, ExportError};
use input::Source;
use pass::{Pass, file_incomplete, read_pass, stream_incomplete, write_pass};
use std::path::PathBuf;

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
    client: &Dynamo,
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
        // S3 calls made from a blocking thread, as the passes read.
        Source::S3(remote) => {
            let remote = remote.clone();
            Some(
                tokio::task::spawn_blocking(move || Export::open_s3(&remote))
                    .await
                    .map_err(|e| LoadError::Usage(format!("reading the export failed: {e}")))??,
            )
        }
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
        Some(export) => export.files.iter().map(|f| f.source.clone()).collect(),
        None => vec![options.source.clone()],
    };
    if options.source.is_stream() {
        let created = create_if_needed(client, options, &schema, create).await?;
        observer.start(None, 0);
        let (report, tally, _) =
            write_pass(&writer, pass, sources, None, None, None, observer).await?;
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
            let verified = export.clone();
            tokio::task::spawn_blocking(move || verified.verify_checksums())
                .await
                .map_err(|e| LoadError::Usage(format!("checking the export failed: {e}")))??;
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
    let (report, written, _) = write_pass(
        &writer,
        pass,
        sources.clone(),
        resume,
        keeper,
        None,
        observer,
    )
    .await?;
    // A write DynamoDB refused stops the writer, and so the reading: the report says why.
    let refused = written.abandoned && !report.is_complete();
    if !refused && (written.valid != checked.valid || written.error_count != checked.error_count) {
        let changed = sources.iter().map(Source::stamp).ne(stamps);
        let how = if changed {
            "changed while it was loaded"
        } else {
            "read otherwise when written than when checked (its stamp is the same: a file's \
             size and modification time, an object's ETag)"
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
    client: &Dynamo,
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
    client: &Dynamo,
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
