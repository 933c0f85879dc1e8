//! The seeder: a command-line tool, or a Lambda function when the Lambda runtime
//! environment (`AWS_LAMBDA_RUNTIME_API`) is present.

use anyhow::{Context, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use lambda_http::{Request, RequestExt, service_fn};
use scanstream::encode::Item;
use scanstream::http::seeder::{Seeder, SeederConfig};
use scanstream::seed::writer::{Backoff, BatchWriter, MAX_BATCH, WriteReport, rate};
use scanstream::seed::{MAX_ITEM_BYTES, generate, ndjson, sized_batches, table};
use std::convert::Infallible;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Fill a DynamoDB table with deterministic fake records, or with the items of a file.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The table to write into.
    #[arg(long, env = "TABLE_NAME")]
    table: String,
    /// How many records to generate.
    #[arg(long, required_unless_present = "from", conflicts_with = "from")]
    count: Option<u64>,
    /// The data set: the same seed always gives the same records.
    #[arg(long, default_value_t = 42, conflicts_with = "from")]
    seed: u64,
    /// Index of the first record, to continue an earlier run.
    #[arg(long, default_value_t = 0, conflicts_with = "from")]
    start: u64,
    /// Pad each record to about this many bytes (DynamoDB's measure; at most 400 KB).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_ITEM_BYTES as u64 - 1024), conflicts_with = "from")]
    item_size: Option<u64>,
    /// Write the items of this NDJSON file (DynamoDB typed JSON, one item per line)
    /// instead of generated records. Every line is checked before anything is written.
    #[arg(long)]
    from: Option<PathBuf>,
    /// With --from: write the valid lines even if some are invalid (still exits non-zero).
    #[arg(long, requires = "from")]
    skip_invalid: bool,
    /// `BatchWriteItem` calls in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Create the table (key `id`, type S, on demand) if it does not exist.
    #[arg(long)]
    create_table: bool,
    /// Calls per batch before its remaining items count as failed.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    max_attempts: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return lambda_mode().await;
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();

    // Everything that can be wrong with the input is found before the first write.
    let (batches, total, invalid): (Box<dyn Iterator<Item = Vec<Item>>>, u64, usize) = match &args
        .from
    {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let parsed = ndjson::parse(&text, generate::KEY);
            for error in parsed.errors.iter().take(20) {
                eprintln!("{}: {error}", path.display());
            }
            if !parsed.errors.is_empty() && !args.skip_invalid {
                bail!(
                    "{} invalid lines in {} (first: {}); nothing written (--skip-invalid writes the valid ones)",
                    parsed.errors.len(),
                    path.display(),
                    parsed.errors[0]
                );
            }
            let items: Vec<Item> = parsed.items.into_iter().map(|(_, item)| item).collect();
            let total = items.len() as u64;
            let batches: Vec<Vec<Item>> = items.chunks(MAX_BATCH).map(<[Item]>::to_vec).collect();
            (Box::new(batches.into_iter()), total, parsed.errors.len())
        }
        None => {
            let count = args.count.unwrap_or_default();
            let size = args
                .item_size
                .map(|s| usize::try_from(s).unwrap_or(MAX_ITEM_BYTES));
            (
                Box::new(sized_batches(args.seed, args.start, count, size)),
                count,
                0,
            )
        }
    };

    let client = scanstream::client::dynamodb(&Default::default()).await;
    if args.create_table {
        let created = table::ensure_table(&client, &args.table)
            .await
            .with_context(|| format!("creating table {}", args.table))?;
        eprintln!(
            "table {} {}",
            args.table,
            if created { "created" } else { "exists" }
        );
    }
    let writer = BatchWriter::new(client, &args.table, generate::KEY)
        .concurrency(usize::from(args.concurrency))
        .backoff(Backoff {
            max_attempts: args.max_attempts,
            ..Backoff::default()
        });

    let started = Instant::now();
    let mut progress = Progress::new(total);
    let report = writer
        .write_all(batches, |report| progress.update(report))
        .await;
    progress.finish();
    println!(
        "written {} of {} items into {} in {:.2} s ({:.0} items/s); batches {}, retries {}, unprocessed re-sent {}",
        report.written,
        total,
        args.table,
        started.elapsed().as_secs_f64(),
        rate(report.written, started),
        report.batches,
        report.retries,
        report.unprocessed_resent,
    );
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
            report.error.map_or("unknown", |kind| kind.message()),
            shown.join(", ")
        );
    }
    if invalid > 0 {
        bail!("{invalid} invalid lines were skipped");
    }
    Ok(())
}

/// A progress bar on a terminal; a plain line every second otherwise (logs, CI).
enum Progress {
    Bar(ProgressBar),
    Lines { total: u64, last: Instant },
}

impl Progress {
    fn new(total: u64) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{bar:40} {pos}/{len} items, {elapsed} elapsed, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            Self::Bar(bar)
        } else {
            Self::Lines {
                total,
                last: Instant::now(),
            }
        }
    }

    fn update(&mut self, report: &WriteReport) {
        match self {
            Self::Bar(bar) => bar.set_position(report.written),
            Self::Lines { total, last } => {
                if last.elapsed() >= Duration::from_secs(1) {
                    *last = Instant::now();
                    eprintln!("written {} of {total}", report.written);
                }
            }
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// Serves `GET /?count=&seed=&start=` through the Function URL, streaming progress.
async fn lambda_mode() -> anyhow::Result<()> {
    lambda_http::tracing::init_default_subscriber();
    let config = SeederConfig::from_env()?;
    let client = scanstream::client::dynamodb(&config.calls).await;
    let writer = BatchWriter::new(client, &config.table_name, generate::KEY);
    let seeder = Arc::new(Seeder::new(config, writer));
    scanstream::http::serve(|| {
        let seeder = seeder.clone();
        lambda_http::run_with_streaming_response(service_fn(move |request: Request| {
            let seeder = seeder.clone();
            async move {
                let deadline = request
                    .lambda_context_ref()
                    .map(|context| context.deadline());
                Ok::<_, Infallible>(
                    seeder
                        .handle(request.method(), request.uri(), deadline)
                        .await,
                )
            }
        }))
    })
    .await
    .map_err(|err| anyhow::anyhow!(err))
}
