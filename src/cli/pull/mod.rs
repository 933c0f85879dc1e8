//! `scanstream pull`: one table read over many invocations of the streamer, every item
//! written exactly once.
//!
//! The table is split into `invocations x segments` segments; slice `k` is segments
//! `k*S..(k+1)*S`, read by one worker that calls the function again from the slice's last
//! cursor until the slice is complete. Lambda is the distributed engine: each invocation
//! is a worker with its own bandwidth. A Query (`--pk`, `--pk-file`) is sliced by its
//! keys instead, a call's worth a slice, `invocations` slices at once ([`partitions`]).
//!
//! Every item reaches the output exactly once:
//! - a call's items are spooled to disk beside the output ([`spool`](crate::cli::output::spool)) and committed to the
//!   output only when its trailer arrives ([`worker`]); a call cut off mid-stream is
//!   discarded and made again from the slice's last committed cursor;
//! - failed calls (5xx, transport errors, credentials that did not load, a trailer whose
//!   `items` differ from the lines counted) are retried with capped exponential backoff
//!   and full jitter, a bounded number of times; a call cut off is made again smaller
//!   ([`size`]);
//! - throttled calls (429) are waited out for `--throttle-patience`, with fewer calls at
//!   once ([`concurrency`](crate::cli::pace::concurrency));
//! - the checkpoint ([`output`](crate::cli::output)) records each slice's cursor and the output's committed length
//!   after every commit, so a client killed and started again cuts the output back to
//!   that length and goes on; a checkpoint is for one read: another `--format`,
//!   `--fields`, `--index`, `--consistent`, key set, sort-key condition, order, filter or
//!   `--count` is refused before any call;
//! - the first failed write to the output stops every worker (no further call) and cuts
//!   the output back to the committed length; a closed standard output ends the run
//!   quietly, as `| head` expects.
//!
//! - [`args`]: the command line, and the checks of its flags that need no call.
//! - [`slices`]: the engine: the read cut into slices, each read by a [`worker`] from its
//!   last committed cursor until it is complete.
//! - [`options`]: what the workers share: the read's options, its running totals.
//! - [`attempts`]: when a worker tries again, and when it gives up.
//! - [`worker`]: one slice's calls, spooled, committed when their trailer arrives.
//! - [`partitions`]: a Query's `--pk` keys, cut into slices of calls (`--pk-file`).
//! - [`size`]: a slice's call size, smaller after a cut-off.

pub mod args;
pub mod attempts;
pub mod options;
pub mod partitions;
pub mod size;
pub mod slices;
pub mod worker;

use crate::cli::args::{Layout, backoff, signer};
use crate::cli::output::checkpoint::{Checkpoint, OutputShape};
use crate::cli::output::commit::Committer;
use crate::cli::output::export;
use crate::cli::output::export::s3;
use crate::cli::output::paths::Files;
use crate::cli::progress;
use crate::dynamo::client::CallSettings;
use crate::dynamo::s3::S3;
use crate::format::key::KeySchema;
use crate::format::location::S3Location;
use anyhow::{Context, bail};
use args::{PullArgs, export_destination, export_key, read_options};
use options::{Counters, PullOptions};
use partitions::Partitions;
use slices::PullSummary;
use std::sync::Arc;
use std::time::Duration;

/// A pull's flags, checked and worked out once.
#[derive(Debug)]
pub struct Pull {
    /// What to read and how.
    pub options: PullOptions,
    /// The read's checkpoint before any call: what a saved one must match.
    pub fresh: Checkpoint,
    /// The output and its checkpoint.
    pub files: Files,
    /// `--layout export`'s key schema.
    pub export_key: Option<KeySchema>,
    /// `-o s3://BUCKET/PREFIX`: an export to S3.
    pub export_to: Option<S3Location>,
}

impl PullArgs {
    /// Checks the flags (all that can be known wrong before any call) and works out what
    /// they ask for: the calls' options, the read's fresh checkpoint, and its files.
    pub fn resolve(&self) -> anyhow::Result<Pull> {
        let args = self;
        let export_key = export_key(args)?;
        let export_to = export_destination(args)?;
        if args.layout == Layout::Export && args.query.count {
            bail!(
                "--count writes one trailer line, not items: it cannot be an export (--layout export)"
            );
        }
        let read = read_options(args)?;
        let mut options = options(args)?;
        options.shape.extend(read.params);
        options.count = args.query.count;
        // A count's output is its trailer line.
        options.trailer |= args.query.count;
        let mut shape = shape(args);
        if let Some(to) = &export_to {
            shape = shape.with("-o", to.to_string());
        }
        for (flag, value) in read.shape {
            shape = shape.with(flag, value);
        }
        let fresh = match &read.partitions {
            Some(partitions) => {
                slices::plan_partitions(&args.url, partitions, args.segments, shape)
            }
            None => slices::plan(&args.url, args.invocations, args.segments, shape),
        };
        options.partitions = read.partitions.map(Arc::new);
        let files = match &export_to {
            // The records of the files, and the checkpoint, are local.
            Some(to) => {
                let checkpoint = args
                    .checkpoint
                    .clone()
                    .unwrap_or_else(|| s3::layout::default_checkpoint(to));
                Files {
                    output: Some(s3::layout::records_path(&checkpoint)),
                    checkpoint: Some(checkpoint),
                    force: args.force,
                }
            }
            None => Files {
                output: args.output.clone(),
                checkpoint: match (&args.output, &args.checkpoint) {
                    (_, Some(path)) => Some(path.clone()),
                    (Some(output), None) if !args.no_checkpoint => {
                        Some(Files::default_checkpoint(output))
                    }
                    _ => None,
                },
                force: args.force,
            },
        };
        Ok(Pull {
            options,
            fresh,
            files,
            export_key,
            export_to,
        })
    }
}

/// Runs `scanstream pull`: its flags checked and worked out once ([`PullArgs::resolve`]),
/// then every slice read into the output.
pub async fn run(args: PullArgs) -> anyhow::Result<()> {
    let Pull {
        mut options,
        mut fresh,
        files,
        mut export_key,
        export_to,
    } = args.resolve()?;
    let partitions = options.partitions.clone();
    let signer = signer(&args.url, &args.signing).await?;
    if args.layout == Layout::Export && export_to.is_none() && export_key.is_none() {
        // A directory's items are checked against the key before each commit: it is asked
        // for before the first call, and a checkpoint resumes only under the same key.
        let key = table_key(&args.url, &signer).await?;
        fresh.shape = fresh.shape.with("--key", key.to_string());
        export_key = Some(key);
    }
    let committer = match (&export_to, &export_key) {
        (Some(to), key) => {
            let bucket = S3::connect(&CallSettings::default())
                .await
                .bucket(&to.bucket, args.expected_bucket_owner.as_deref());
            let (committer, export) = s3::open(&files, fresh, to, key.clone(), bucket).await?;
            options.export = Some(export);
            committer
        }
        (None, Some(key)) => export::open(&files, fresh, key)?,
        (None, None) => Committer::open(&files, fresh)?,
    };
    let export = options.export.clone();
    let options = Arc::new(options);
    let already = committer.checkpoint().committed_items;
    if already > 0 {
        eprintln!("resuming: {already} items already in the output");
    }
    let counters = Arc::new(Counters::default());
    let shown = progress::show(progress::Mode::detect(args.quiet), {
        let counters = counters.clone();
        move || options::progress(&counters, already)
    });
    let summary = slices::run(options, signer, committer, counters).await;
    shown.finish();
    if summary.broken_pipe {
        // `| head` has what it wanted: no error, no summary (as ripgrep does).
        return Ok(());
    }
    report(&summary, args.summary_json.as_deref())?;
    if let Some(export) = &export
        && summary.complete
    {
        // The checkpoint is gone: so go the records it committed, and the key kept.
        if let Some(records) = &files.output {
            let _ = std::fs::remove_file(s3::layout::said_key_path(records));
            let _ = std::fs::remove_file(records);
        }
        println!("{}", export.url());
    }
    if let Some(error) = &summary.output_error {
        bail!("the output failed, every slice stopped: {error}");
    }
    if let Some(first) = summary.failed_slices.first() {
        bail!(
            "{} slices could not be completed; first: {}: {}",
            summary.failed_slices.len(),
            slice_name(partitions.as_deref(), first.segment_offset, args.segments),
            first.error
        );
    }
    Ok(())
}

/// The table's key schema, as the function says it in a one-item sample call's headers
/// (`x-scanstream-key-schema`). A cold function may answer before its `DescribeTable` is
/// back, and has it cached for the next call: asked up to three times.
async fn table_key(
    url: &str,
    signer: &Arc<crate::cli::transport::sign::Signer>,
) -> anyhow::Result<KeySchema> {
    let params = vec![
        ("max_items".to_string(), "1".to_string()),
        ("compress".to_string(), "none".to_string()),
    ];
    let mut last = None;
    for attempt in 0..4u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
        }
        // A throttled (429) or failing (5xx) function is asked again, as a pull's calls
        // are; so is one that answered before its DescribeTable was back.
        match crate::cli::plan::sample(url, signer, params.clone()).await {
            Ok(sampled) => match sampled.key {
                Some(key) => return Ok(key),
                None => last = None,
            },
            Err(err) => last = Some(err),
        }
    }
    if let Some(err) = last {
        bail!("asking the function for the table's key schema: {err}");
    }
    bail!(
        "the function did not say the table's key schema (a streamer older than this client, \
         or one whose DescribeTable fails): give --key NAME:TYPE[,NAME:TYPE]"
    )
}

/// A slice as a user knows it: a Scan's by its segments, a Query's by its keys (its
/// `offset` is its first key's place among the sorted keys).
pub(crate) fn slice_name(partitions: Option<&Partitions>, offset: u32, segments: u32) -> String {
    let Some(partitions) = partitions else {
        return format!(
            "segments {offset} to {}",
            offset.saturating_add(segments.max(1) - 1)
        );
    };
    let keys = partitions.slice(offset);
    let (first, total) = (u64::from(offset) + 1, partitions.len());
    match keys {
        [] => format!("the keys from {first} of {total} (sorted)"),
        [key] => format!("the key {first} of {total} (sorted), {key:?}"),
        [low, .., high] => format!(
            "the keys {first} to {} of {total} (sorted), from {low:?} to {high:?}",
            first + keys.len() as u64 - 1
        ),
    }
}

pub(crate) fn options(args: &PullArgs) -> anyhow::Result<PullOptions> {
    let mut delivery = vec![
        (
            "compress".to_string(),
            format!("{:?}", args.compress).to_lowercase(),
        ),
        (
            "format".to_string(),
            format!("{:?}", args.format).to_lowercase(),
        ),
    ];
    if let Some(limit) = args.limit {
        delivery.push(("limit".into(), limit.to_string()));
    }
    if let Some(max_items) = args.max_items_per_call {
        delivery.push(("max_items".into(), max_items.to_string()));
    }
    let mut rcu_share = None;
    if let Some(rcu) = args.max_rcu {
        if !(rcu.is_finite() && rcu > 0.0) {
            bail!("--max-rcu must be a number greater than 0");
        }
        // Each invocation gets its share; the worker's ledger (`pace`) keeps the slice
        // to it across calls, retries and cut-offs.
        let share = (rcu / f64::from(args.invocations)).max(0.000_001);
        delivery.push(("max_rcu".into(), format!("{share:.6}")));
        rcu_share = Some(share);
    }
    let mut shape = Vec::new();
    if let Some(fields) = &args.fields {
        shape.push(("fields".into(), fields.clone()));
    }
    if args.consistent {
        shape.push(("consistent".into(), "true".into()));
    }
    if let Some(index) = &args.index {
        shape.push(("index".into(), index.clone()));
    }
    Ok(PullOptions {
        url: args.url.clone(),
        invocations: args.invocations,
        segments: args.segments,
        delivery,
        shape,
        backoff: backoff(args.max_attempts),
        rcu_share,
        max_items_per_call: args.max_items_per_call,
        throttle_patience: Duration::from_secs(args.throttle_patience),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        trailer: args.trailer,
        partitions: None,
        count: false,
        export: None,
        changes: false,
    })
}

/// The options that decide which items, and which bytes per item, the output holds: a
/// checkpoint resumes only a run that gives the same. `--compress` (decoded on the way),
/// `--limit`, `--max-items-per-call` and `--max-rcu` change how the items come, not which
/// or how they are written, and may change between runs.
pub(crate) fn shape(args: &PullArgs) -> OutputShape {
    let mut shape =
        OutputShape::default().with("--format", format!("{:?}", args.format).to_lowercase());
    if let Some(fields) = &args.fields {
        shape = shape.with("--fields", fields.clone());
    }
    if args.consistent {
        shape = shape.with("--consistent", "true");
    }
    if let Some(index) = &args.index {
        shape = shape.with("--index", index.clone());
    }
    if args.layout == Layout::Export {
        shape = shape.with("--layout", "export");
    }
    // An export to S3 only records --key (its items are the functions' to write): it
    // may be given or changed on a resume.
    if let Some(key) = &args.key
        && !args
            .output
            .as_deref()
            .and_then(std::path::Path::to_str)
            .is_some_and(|o| o.starts_with("s3://"))
    {
        shape = shape.with("--key", key.to_string());
    }
    shape
}

pub(crate) fn report(summary: &PullSummary, json: Option<&std::path::Path>) -> anyhow::Result<()> {
    eprintln!("{}", summary.line());
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
