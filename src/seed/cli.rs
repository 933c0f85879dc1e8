//! The seeder's command line: fill a table with generated records or a file's items,
//! with progress on standard error and the summary line on standard output.

use super::progress::Progress;
use super::writer::{Backoff, BatchWriter};
use super::{Input, MAX_ITEM_BYTES, Summary, generate, ndjson, table};
use crate::config::CallSettings;
use anyhow::{Context, bail};
use clap::Parser;
use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

/// Fill a DynamoDB table with deterministic fake records, or with the items of a file.
#[derive(Debug, Parser)]
#[command(name = "seeder", version)]
pub struct Args {
    /// The table to write into.
    #[arg(long, env = "TABLE_NAME")]
    pub table: String,
    /// How many records to generate.
    #[arg(long, required_unless_present = "from", conflicts_with = "from")]
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
    /// Write the items of this NDJSON file (DynamoDB typed JSON, one item per line, bare
    /// or as `{"Item":{...}}`), or of standard input with `-` (a streamer's
    /// `format=dynamodb` output, gzip or zstd compressed or not), instead of generated
    /// records. Every line is checked before anything is written.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// With --from: write the valid lines even if some are invalid (still exits non-zero).
    #[arg(long, requires = "from")]
    pub skip_invalid: bool,
    /// With --from: write a stream even when its trailer is missing (cut off; required on
    /// standard input) or says it is incomplete.
    #[arg(long, requires = "from")]
    pub allow_incomplete: bool,
    /// `BatchWriteItem` calls in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Create the table (key `id`, type S, on demand) if it does not exist.
    #[arg(long)]
    pub create_table: bool,
    /// Calls per batch before its remaining items count as failed.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
}

/// Runs the command line; an error (printed by `main`) means a non-zero exit status.
pub async fn run(args: Args) -> anyhow::Result<()> {
    // Everything that can be wrong with the input is found before the first write.
    let (input, invalid) = input(&args)?;
    let client = crate::client::dynamodb(&CallSettings::default()).await;
    if args.create_table {
        let created = table::ensure_table(&client, &args.table)
            .await
            .with_context(|| format!("creating table {}", args.table))?;
        let state = if created { "created" } else { "exists" };
        eprintln!("table {} {state}", args.table);
    }
    let writer = BatchWriter::new(client, &args.table, generate::KEY)
        .concurrency(usize::from(args.concurrency))
        .backoff(Backoff {
            max_attempts: args.max_attempts,
            ..Backoff::default()
        });
    let started = Instant::now();
    let (requested, start) = (input.len(), input.start());
    let mut progress = Progress::new(requested);
    let report = writer
        .write_all(input.batches(), |report| progress.update(report))
        .await;
    progress.finish();
    let mut summary = Summary::new(&report, requested, start.unwrap_or_default(), started);
    if start.is_none() {
        summary.next_start = None;
    }
    println!("{}: {summary}", args.table);
    if !report.is_complete() {
        let shown: Vec<&str> = report
            .failed_keys
            .iter()
            .take(20)
            .map(String::as_str)
            .collect();
        bail!(
            "{} items not written ({}); first keys: {}",
            report.failed_keys.len(),
            summary.error.as_ref().map_or("unknown", |e| e.message),
            shown.join(", ")
        );
    }
    if invalid > 0 {
        bail!("{invalid} invalid lines were skipped");
    }
    Ok(())
}

/// The bytes of a gzip or zstd stream decoded (recognised by their magic numbers), others
/// as they are: so `curl ...?compress=zstd | seeder --from -` needs no decoder between.
fn decompress(raw: Vec<u8>) -> std::io::Result<Vec<u8>> {
    const GZIP: &[u8] = &[0x1f, 0x8b];
    const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
    if raw.starts_with(GZIP) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice()).read_to_end(&mut out)?;
        Ok(out)
    } else if raw.starts_with(ZSTD) {
        zstd::stream::decode_all(raw.as_slice())
    } else {
        Ok(raw)
    }
}

/// The run's input and how many invalid lines it skipped.
fn input(args: &Args) -> anyhow::Result<(Input, usize)> {
    let Some(path) = &args.from else {
        let input = Input::Generated {
            seed: args.seed,
            start: args.start,
            count: args.count.unwrap_or_default(),
            item_size: args
                .item_size
                .map(|s| usize::try_from(s).unwrap_or(MAX_ITEM_BYTES)),
        };
        return Ok((input, 0));
    };
    let stdin = path.as_os_str() == "-";
    let name = if stdin {
        "standard input".to_string()
    } else {
        path.display().to_string()
    };
    let raw = if stdin {
        let mut raw = Vec::new();
        std::io::stdin()
            .read_to_end(&mut raw)
            .context("reading standard input")?;
        raw
    } else {
        std::fs::read(path).with_context(|| format!("reading {name}"))?
    };
    let text = String::from_utf8(decompress(raw).with_context(|| format!("decompressing {name}"))?)
        .with_context(|| format!("{name} is not UTF-8"))?;
    let parsed = ndjson::parse(&text, generate::KEY);
    for error in parsed.errors.iter().take(20) {
        eprintln!("{name}: {error}");
    }
    if let Some(first) = parsed.errors.first()
        && !args.skip_invalid
    {
        bail!(
            "{} invalid lines in {name} (first: {first}); nothing written (--skip-invalid writes the valid ones)",
            parsed.errors.len(),
        );
    }
    // A streamer's output always ends with its trailer: without one it was cut off.
    // A file without any trailer is a data set (seed-data/, an S3 export) and is read as is.
    let incomplete = match &parsed.trailer {
        Some(trailer) if !trailer.complete => Some(format!(
            "its trailer says complete:false (reason {}): it holds only part of the table; \
             resume the read with the trailer's cursor",
            trailer
                .reason
                .map_or("unknown".to_string(), |r| format!("{r:?}"))
        )),
        None if stdin => Some("it has no trailer: the stream was cut off".to_string()),
        _ => None,
    };
    if let Some(why) = incomplete
        && !args.allow_incomplete
    {
        bail!("{name} is incomplete: {why}; nothing written (--allow-incomplete writes it anyway)");
    }
    let items = parsed.items.into_iter().map(|(_, item)| item).collect();
    Ok((Input::Items(items), parsed.errors.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn help_says_what_the_seeder_is_for() {
        let about = Args::command().get_about().map(ToString::to_string);
        assert!(
            about.is_some_and(|a| a.starts_with("Fill a DynamoDB table")),
            "the doc comment, not the package's description"
        );
    }
}
