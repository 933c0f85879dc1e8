//! The seeder: a command-line tool, or a Lambda function when the Lambda runtime
//! environment (`AWS_LAMBDA_RUNTIME_API`) is present.

use anyhow::{Context, bail};
use clap::Parser;
use lambda_http::{Request, RequestExt, service_fn};
use scanstream::http::seeder::{Seeder, SeederConfig};
use scanstream::seed::writer::{Backoff, BatchWriter, rate};
use scanstream::seed::{generate, generated_batches, table};
use std::convert::Infallible;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Fill a DynamoDB table with deterministic fake records.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The table to write into.
    #[arg(long, env = "TABLE_NAME")]
    table: String,
    /// How many records to write.
    #[arg(long)]
    count: u64,
    /// The data set: the same seed always gives the same records.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Index of the first record, to continue an earlier run.
    #[arg(long, default_value_t = 0)]
    start: u64,
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
    let client = scanstream::client::dynamodb().await;
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
    let mut last_report = Instant::now();
    let interactive = std::io::stderr().is_terminal();
    let report = writer
        .write_all(
            generated_batches(args.seed, args.start, args.count),
            |progress| {
                if last_report.elapsed() >= Duration::from_secs(1) {
                    last_report = Instant::now();
                    let line = format!("written {} of {}", progress.written, args.count);
                    if interactive {
                        eprint!("\r{line}");
                    } else {
                        eprintln!("{line}");
                    }
                }
            },
        )
        .await;
    if interactive {
        eprintln!();
    }
    println!(
        "written {} of {} items into {} in {:.2} s ({:.0} items/s); batches {}, retries {}, unprocessed re-sent {}",
        report.written,
        args.count,
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
    Ok(())
}

/// Serves `GET /?count=&seed=&start=` through the Function URL, streaming progress.
async fn lambda_mode() -> anyhow::Result<()> {
    lambda_http::tracing::init_default_subscriber();
    let config = SeederConfig::from_env().map_err(anyhow::Error::msg)?;
    let client = scanstream::client::dynamodb().await;
    let writer = BatchWriter::new(client, &config.table_name, generate::KEY);
    let seeder = Arc::new(Seeder::new(config, writer));
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
    .await
    .map_err(|err| anyhow::anyhow!(err))
}
