//! `scanstream changes`: the table's changes from a time on (`changes=true`), called again
//! from each cursor until the function says it has caught up, every record committed
//! exactly once, with the same checkpoint, spool and lock as `pull` (one slice, whose
//! cursor is the change stream's). `--follow` keeps polling.
//!
//! The time is `--since`, or the `changes_since` a snapshot's `--summary-json` recorded
//! (`--since-snapshot`). The function is asked for it and for `--margin` (5 minutes by
//! default): it refuses a time its stream cannot serve (older than the stream, or than 23
//! hours), and sends the records from the time less the margin, since clocks differ and
//! DynamoDB rounds a record's time. Records from before T0 that are replayed converge,
//! since applying a change writes the key's whole state.
//!
//! A caught-up run keeps its checkpoint (the cursor is where the next run goes on), so
//! the same command run again appends the changes made since.

use crate::cli::args::{Compress, SigningArgs, backoff, signer};
use crate::cli::output::checkpoint::OutputShape;
use crate::cli::output::commit::Committer;
use crate::cli::output::paths::Files;
use crate::cli::pull::options::{Counters, PullOptions};
use crate::cli::pull::slices::{self, Finish};
use crate::format::time::{iso8601, parse_rfc3339};
use anyhow::{Context, bail};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The longest wait between polls of `--follow` when nothing comes.
const MAX_IDLE_INTERVAL: Duration = Duration::from_secs(30);

/// `scanstream changes`.
#[derive(Debug, clap::Args)]
pub struct ChangesArgs {
    /// The streamer's Function URL.
    pub url: String,
    /// Read the changes made from this time on (RFC 3339, e.g. 2026-12-07T10:00:00Z), and
    /// those of the --margin before it.
    #[arg(
        long,
        conflicts_with = "since_snapshot",
        required_unless_present = "since_snapshot"
    )]
    pub since: Option<String>,
    /// Read the changes made since the snapshot whose `scanstream pull --summary-json`
    /// FILE this is (its `changes_since`), and those of the --margin before it.
    #[arg(long, value_name = "FILE")]
    pub since_snapshot: Option<PathBuf>,
    /// Seconds before the time whose changes are read too, for clock skew and DynamoDB's
    /// rounding of a record's time: older changes replayed converge.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub margin: u64,
    /// Keep polling once caught up, every --interval seconds (longer while nothing comes,
    /// up to 30 s); stop with Ctrl-C or a signal.
    #[arg(long)]
    pub follow: bool,
    /// Seconds between polls of --follow.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=30))]
    pub interval: u64,
    /// Records a `GetRecords` call asks for (`limit`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Stop each call after this many records (`max_items`): smaller calls, more often
    /// committed.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_items_per_call: Option<u64>,
    /// Compression on the wire (decoded here).
    #[arg(long, value_enum, default_value_t = Compress::Zstd)]
    pub compress: Compress,
    /// Write the change lines here (default: standard output). A checkpoint is kept beside
    /// it (FILE.ckpt): the same command run again goes on from it.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Record progress here instead of FILE.ckpt (needs -o).
    #[arg(long, requires = "output")]
    pub checkpoint: Option<PathBuf>,
    /// Keep no checkpoint: a run that stops cannot go on.
    #[arg(long, requires = "output", conflicts_with = "checkpoint")]
    pub no_checkpoint: bool,
    /// Start over into a non-empty -o FILE, replacing its checkpoint.
    #[arg(long, requires = "output")]
    pub force: bool,
    /// Write the summary of the (last) run here as JSON too.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Attempts per call before the run fails.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// Seconds the run waits out Lambda throttling (429s in a row) before it fails.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub throttle_patience: u64,
    /// Seconds a call may wait for its response, or between two chunks of its body.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout: u64,
    /// No summary line per poll of --follow (errors still go to standard error).
    #[arg(short, long)]
    pub quiet: bool,
}

/// The time the changes are read from (milliseconds), before the margin.
fn since_ms(args: &ChangesArgs) -> anyhow::Result<u64> {
    if let Some(text) = &args.since {
        return parse_rfc3339(text).map_err(|why| anyhow::anyhow!("--since: {why}"));
    }
    let Some(path) = &args.since_snapshot else {
        bail!("give --since TIME or --since-snapshot FILE");
    };
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let summary: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a --summary-json file", path.display()))?;
    let Some(since) = summary.get("changes_since").and_then(|v| v.as_str()) else {
        bail!(
            "{} has no changes_since: it is not the --summary-json of a `scanstream pull` \
             (one of this version or later)",
            path.display()
        );
    };
    if summary.get("complete") != Some(&serde_json::Value::Bool(true)) {
        bail!(
            "{} is the summary of a snapshot that did not complete: finish it (run the same \
             pull again) before following its changes",
            path.display()
        );
    }
    parse_rfc3339(since).map_err(|why| anyhow::anyhow!("{}: changes_since: {why}", path.display()))
}

/// The read's options: one slice, `changes=true&since=...` on its first call.
fn options(args: &ChangesArgs, since: &str) -> PullOptions {
    let mut delivery = vec![(
        "compress".to_string(),
        format!("{:?}", args.compress).to_lowercase(),
    )];
    if let Some(limit) = args.limit {
        delivery.push(("limit".into(), limit.to_string()));
    }
    if let Some(max_items) = args.max_items_per_call {
        delivery.push(("max_items".into(), max_items.to_string()));
    }
    PullOptions {
        url: args.url.clone(),
        invocations: 1,
        segments: 1,
        delivery,
        shape: vec![
            ("changes".into(), "true".into()),
            ("since".into(), since.to_string()),
            ("margin".into(), args.margin.to_string()),
        ],
        backoff: backoff(args.max_attempts),
        rcu_share: None,
        max_items_per_call: args.max_items_per_call,
        throttle_patience: Duration::from_secs(args.throttle_patience),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        trailer: false,
        partitions: None,
        count: false,
        export: None,
        changes: true,
    }
}

/// Runs `scanstream changes`.
pub async fn run(args: ChangesArgs) -> anyhow::Result<()> {
    let since_ms = since_ms(&args)?;
    let from = iso8601(since_ms);
    if from.is_empty() {
        bail!("the time is past what RFC 3339 writes");
    }
    let options = Arc::new(options(&args, &from));
    // A checkpoint goes on only for the same stream read from the same time.
    let shape = OutputShape::default()
        .with("changes", "true")
        .with("--since", from.clone())
        .with("--margin", args.margin.to_string());
    let fresh = slices::plan(&args.url, 1, 1, shape);
    let files = Files {
        output: args.output.clone(),
        checkpoint: match (&args.output, &args.checkpoint) {
            (_, Some(path)) => Some(path.clone()),
            (Some(output), None) if !args.no_checkpoint => Some(Files::default_checkpoint(output)),
            _ => None,
        },
        force: args.force,
    };
    let signer = signer(&args.url, &args.signing).await?;
    let mut committer = Committer::open(&files, fresh)?;
    let already = committer.checkpoint().committed_items;
    if already > 0 {
        eprintln!("going on: {already} changes already in the output");
    }
    committer.reopen();
    let committer = Arc::new(Mutex::new(committer));
    let mut wait = Duration::from_secs(args.interval);
    loop {
        let counters = Arc::new(Counters::default());
        let summary = slices::run_shared(
            options.clone(),
            signer.clone(),
            committer.clone(),
            counters,
            Finish::Keep,
        )
        .await;
        if summary.broken_pipe {
            return Ok(());
        }
        let quiet_poll = args.follow && (args.quiet || summary.items == 0);
        if !quiet_poll {
            eprintln!("{}", summary.line_of("changes"));
        }
        if let Some(path) = &args.summary_json {
            std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(error) = &summary.output_error {
            bail!("the output failed: {error}");
        }
        if let Some(first) = summary.failed_slices.first() {
            bail!("the changes could not be read: {}", first.error);
        }
        if !args.follow {
            return Ok(());
        }
        // Nothing new: poll less often, up to a bound; anything new: back to --interval.
        wait = if summary.items == 0 {
            (wait * 2).min(MAX_IDLE_INTERVAL.max(Duration::from_secs(args.interval)))
        } else {
            Duration::from_secs(args.interval)
        };
        tokio::time::sleep(wait).await;
        committer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reopen();
    }
}
