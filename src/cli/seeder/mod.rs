//! The seeder's command line: fill a table with generated records, or load the items of a
//! file, a stream or a DynamoDB export ([`crate::load`]), with progress on standard error
//! and the summary line on standard output. Only assembly lives here.

mod apply;
pub mod progress;

use crate::cli::seeder::progress::Progress;
use crate::dynamo::client::{CallSettings, Dynamo};
use crate::dynamo::s3::S3;
use crate::dynamo::table;
use crate::dynamo::writer::{BatchWriter, WriteReport};
use crate::format::backoff::Backoff;
use crate::format::key::KeySchema;
use crate::format::limits::MAX_ITEM_BYTES;
use crate::format::location::S3Location;
use crate::generate::Input;
use crate::generate::record as generate;
use crate::generate::summary::Summary;
use crate::load::input::Remote;
use crate::load::input::Source;
use crate::load::{LoadError, LoadOptions, Observer, Outcome};
use anyhow::{Context, bail};
use clap::Parser;
use std::path::PathBuf;
use std::time::Instant;

/// Fill a DynamoDB table with deterministic fake records, or with the items of a file.
#[derive(Debug, Parser)]
#[command(name = "seeder", version)]
pub struct Args {
    /// The table to write into (required but with --print).
    #[arg(
        long,
        env = "TABLE_NAME",
        default_value = "",
        hide_default_value = true
    )]
    pub table: String,
    /// How many records to generate.
    #[arg(long, required_unless_present_any = ["from", "apply"], conflicts_with_all = ["from", "apply"])]
    pub count: Option<u64>,
    /// The data set: the same seed always gives the same records.
    #[arg(long, default_value_t = 42, conflicts_with = "from")]
    pub seed: u64,
    /// Index of the first record, to continue an earlier run.
    #[arg(long, default_value_t = 0, conflicts_with = "from")]
    pub start: u64,
    /// Pad each record to about this many bytes (DynamoDB's measure; at most 400 KB).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_ITEM_BYTES as u64 - 1024), conflicts_with = "from")]
    pub item_size: Option<u64>,
    /// Load items instead of generating them: an NDJSON file of DynamoDB typed JSON (one
    /// item a line, bare or as `{"Item":{...}}`, plain, gzip or zstd), a DynamoDB export
    /// directory, or a stream (`-` for standard input, a FIFO, `/dev/stdin`, `<(...)`),
    /// such as the streamer's `format=dynamodb` output, or an export in S3
    /// (`s3://BUCKET/PREFIX/AWSDynamoDB/<ExportId>`, ours or DynamoDB's own). A file or
    /// export is checked whole (every file's MD5 and item count against its manifest)
    /// before anything is written; a stream is written as it arrives and must end with a
    /// complete trailer.
    #[arg(long, conflicts_with = "apply")]
    pub from: Option<PathBuf>,
    /// Apply a table's changes instead: lines in DynamoDB Streams' record shape (as AWS
    /// delivers them to a Lambda function), a file or `-`. INSERT and MODIFY put the whole new
    /// image, REMOVE deletes the key; each key's changes in file order, different keys in
    /// parallel (`--concurrency` workers). A file is checked whole first; applying it twice
    /// leaves the same table.
    #[arg(long, conflicts_with_all = ["create_table", "key", "skip_invalid", "print", "seed", "start", "item_size"])]
    pub apply: Option<PathBuf>,
    /// With --from: write the valid lines even if some are invalid (still exits non-zero).
    #[arg(long, requires = "from", conflicts_with = "count")]
    pub skip_invalid: bool,
    /// With --from: exit 0 for a stream that ends without a complete trailer (cut off), or
    /// a file whose trailer says it is incomplete, writing what it holds.
    #[arg(long, conflicts_with = "count")]
    pub allow_incomplete: bool,
    /// With --from FILE or DIR, or --apply FILE: record here how far the load has
    /// written, and resume from it when run again.
    #[arg(long, conflicts_with = "count")]
    pub checkpoint: Option<PathBuf>,
    /// With --create-table and --from: the key schema to create the table with,
    /// `HASH:TYPE[,RANGE:TYPE]`, types S, N or B (for example `pk:S,sk:N`).
    #[arg(long, requires = "create_table", conflicts_with = "count", value_parser = parse_key)]
    pub key: Option<KeySchema>,
    /// `BatchWriteItem` calls in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Create the table (on demand) if it does not exist: keyed by --key, else by an
    /// export's recorded key, else as seed-data/table.json (`id`, S).
    #[arg(long)]
    pub create_table: bool,
    /// Write the generated records to standard output instead, one plain JSON line each,
    /// as the streamer sends them: what a table seeded with this --seed and --count holds
    /// (scripts/aws-smoke.sh compares a pull with it). No table is needed.
    #[arg(long, conflicts_with_all = ["from", "create_table", "item_size"])]
    pub print: bool,
    /// Calls per batch before its remaining items count as failed.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
}

fn parse_key(spec: &str) -> Result<KeySchema, String> {
    KeySchema::parse(spec).map_err(|e| e.to_string())
}

/// Runs the command line; an error (printed by `main`) means a non-zero exit status.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.print {
        return print(&args);
    }
    if args.table.is_empty() {
        bail!("--table (or TABLE_NAME) is required: the table to write into");
    }
    let source = match &args.from {
        Some(path) => match path.to_str().filter(|p| p.starts_with("s3://")) {
            // An export in S3: read as it streams, through the standard credential chain.
            Some(url) => {
                let location = S3Location::parse(url).map_err(|e| anyhow::anyhow!("--from {e}"))?;
                let bucket = S3::connect(&CallSettings::default())
                    .await
                    .bucket(&location.bucket, None);
                Some(Source::S3(Remote {
                    bucket,
                    location,
                    handle: tokio::runtime::Handle::current(),
                    etag: None,
                }))
            }
            None => Some(Source::of(path).with_context(|| format!("--from {}", path.display()))?),
        },
        None => None,
    };
    let client = Dynamo::connect(&CallSettings::default()).await;
    let writer = BatchWriter::new(client.clone(), &args.table, generate::KEY)
        .concurrency(usize::from(args.concurrency))
        .backoff(Backoff {
            max_attempts: args.max_attempts,
            ..Backoff::default()
        });
    if let Some(path) = &args.apply {
        let source = Source::of(path).with_context(|| format!("--apply {}", path.display()))?;
        return apply::apply(&args, &client, writer, source).await;
    }
    match source {
        Some(source) => load(&args, &client, writer, source).await,
        None => seed(&args, &client, writer).await,
    }
}

/// `--print`: the generated records as plain JSON lines, without a table.
fn print(args: &Args) -> anyhow::Result<()> {
    use std::io::Write;
    let count = args.count.unwrap_or_default();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut line = Vec::new();
    for index in args.start..args.start.saturating_add(count) {
        line.clear();
        crate::format::json::write_line(&mut line, &generate::record(args.seed, index));
        out.write_all(&line).context("writing standard output")?;
    }
    out.flush().context("writing standard output")
}

/// Generated records.
async fn seed(args: &Args, client: &Dynamo, writer: BatchWriter) -> anyhow::Result<()> {
    let input = Input::Generated {
        seed: args.seed,
        start: args.start,
        count: args.count.unwrap_or_default(),
        item_size: args
            .item_size
            .map(|s| usize::try_from(s).unwrap_or(MAX_ITEM_BYTES)),
    };
    if args.create_table {
        let created = table::ensure_table(client, &args.table)
            .await
            .with_context(|| format!("creating table {}", args.table))?;
        let state = if created { "created" } else { "exists" };
        eprintln!("table {} {state}", args.table);
    }
    let started = Instant::now();
    let (requested, start) = (input.len(), input.start().unwrap_or_default());
    let mut progress = Progress::new(Some(requested));
    let report = writer
        .write_all(input.batches(), |report| progress.update(report))
        .await;
    progress.finish();
    let summary = Summary::new(&report, requested, start, started);
    println!("{}: {summary}", args.table);
    unwritten(&report, &summary, false)
}

/// Fails naming the items not written, if any: how many, what DynamoDB said, and the
/// keys of the batches that failed. A batch DynamoDB refused stops the run, so the items
/// never sent count as not written too.
fn unwritten(report: &WriteReport, summary: &Summary, at_least: bool) -> anyhow::Result<()> {
    if report.is_complete() {
        return Ok(());
    }
    let shown: Vec<&str> = report
        .failed_keys
        .iter()
        .take(20)
        .map(String::as_str)
        .collect();
    let why = report
        .error_detail
        .as_deref()
        .or(summary.error.as_ref().map(|e| e.message))
        .unwrap_or("unknown");
    // A stream stopped by the refusal was not read to its end: what it still held is
    // unknown, so its counts are lower bounds.
    let at_least = if at_least { "at least " } else { "" };
    bail!(
        "{at_least}{} items not written, {} of {at_least}{} written ({why}); keys of the {} in \
         failed batches, first: {}",
        summary.requested.saturating_sub(summary.written),
        summary.written,
        summary.requested,
        report.failed,
        shown.join(", ")
    );
}

/// A load refused before anything was written, as the error to exit with; its bad lines
/// (the first of them) go to standard error first, each named with the input.
pub(super) fn refused(name: &str, err: LoadError) -> anyhow::Error {
    if let LoadError::Invalid { shown, .. } = &err {
        for line in shown {
            eprintln!("{name}: {line}");
        }
    }
    err.into()
}

/// The load's progress on standard error.
pub(super) struct Shown(pub(super) Option<Progress>);

impl Observer for Shown {
    fn start(&mut self, total: Option<u64>, resumed: u64) {
        if resumed > 0 {
            eprintln!("resuming from the checkpoint: {resumed} items written before are skipped");
        }
        self.0 = Some(Progress::new(total));
    }

    fn written(&mut self, report: &WriteReport) {
        if let Some(progress) = &mut self.0 {
            progress.update(report);
        }
    }
}

/// Items of a file, a stream or an export.
async fn load(
    args: &Args,
    client: &Dynamo,
    writer: BatchWriter,
    source: Source,
) -> anyhow::Result<()> {
    let name = source.name();
    let options = LoadOptions {
        table: args.table.clone(),
        source,
        skip_invalid: args.skip_invalid,
        allow_incomplete: args.allow_incomplete,
        checkpoint: args.checkpoint.clone(),
        key: args.key.clone(),
        create_table: args.create_table,
    };
    let started = Instant::now();
    let mut shown = Shown(None);
    let outcome = crate::load::run(client, writer, &options, &mut shown).await;
    if let Some(progress) = &shown.0 {
        progress.finish();
    }
    let outcome: Outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err) => return Err(refused(&name, err)),
    };
    if outcome.created
        && let Some(schema) = &outcome.schema
    {
        eprintln!("table {} created, keyed {schema}", args.table);
    }
    for line in &outcome.shown {
        eprintln!("{name}: {line}");
    }
    let mut summary = Summary::new(&outcome.report, outcome.requested, 0, started);
    summary.next_start = None;
    println!("{}: {summary}", args.table);
    unwritten(&outcome.report, &summary, outcome.requested_at_least)?;
    if let Some(line) = &outcome.stopped {
        bail!(
            "{name}: stopped at a bad line ({line}); the {} items before it were written, the \
             copy is incomplete (running it again is safe: puts are idempotent)",
            outcome.report.written
        );
    }
    if let Some(why) = &outcome.incomplete {
        let written = outcome.report.written;
        if !args.allow_incomplete {
            bail!(
                "{name} is incomplete: {why}. {written} items were written: the copy is \
                 incomplete (running it again is safe: puts are idempotent; \
                 --allow-incomplete accepts a partial copy)"
            );
        }
        eprintln!(
            "{name} is incomplete ({why}); {written} items written, as --allow-incomplete asks"
        );
    }
    if outcome.skipped > 0 {
        bail!("{} invalid lines were skipped", outcome.skipped);
    }
    if let Some(err) = &outcome.checkpoint_error {
        bail!("the load is written, but its checkpoint could not be kept: {err}");
    }
    if outcome.requested == 0 && outcome.resumed > 0 && options.checkpoint.is_some() {
        eprintln!("the checkpoint says this load is complete: nothing left to write");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn unwritten_items_are_counted_with_dynamodbs_words_and_the_failed_keys() {
        let report = WriteReport {
            written: 25,
            batches: 2,
            failed: 25,
            failed_keys: (25..50).map(|i| format!("k{i}")).collect(),
            error: Some(crate::format::error::ErrorKind::InvalidRequest),
            error_detail: Some(
                "DynamoDB rejected the request: ValidationException: Missing the key other".into(),
            ),
            first_unfinished: Some(1),
            ..WriteReport::default()
        };
        let summary = Summary::new(&report, 400, 0, Instant::now());
        let err = unwritten(&report, &summary, false).expect_err("items were not written");
        assert_eq!(
            err.to_string(),
            "375 items not written, 25 of 400 written (DynamoDB rejected the request: \
             ValidationException: Missing the key other); keys of the 25 in failed batches, \
             first: k25, k26, k27, k28, k29, k30, k31, k32, k33, k34, k35, k36, k37, k38, k39, \
             k40, k41, k42, k43, k44"
        );
        // A stream the refusal stopped was not read to its end: its counts are bounds.
        let err = unwritten(&report, &summary, true).expect_err("items were not written");
        assert!(
            err.to_string()
                .starts_with("at least 375 items not written, 25 of at least 400 written"),
            "{err}"
        );
    }

    #[test]
    fn help_says_what_the_seeder_is_for() {
        let about = Args::command().get_about().map(ToString::to_string);
        assert!(
            about.is_some_and(|a| a.starts_with("Fill a DynamoDB table")),
            "the doc comment, not the package's description"
        );
    }
}
