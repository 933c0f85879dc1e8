//! The `scanstream` command line: `scanstream pull URL`.

use super::checkpoint::{Committer, Files};
use super::sign::{SignMode, Signer};
use super::state::OutputShape;
use super::{Counters, PullOptions, PullSummary, forecast, progress};
use crate::format::backoff::Backoff;
use crate::format::key::KeySchema;
use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Read a whole DynamoDB table through the scanstream function, spread over many
/// invocations, exactly once.
#[derive(Debug, Parser)]
#[command(name = "scanstream", version)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read every item of the table behind the streamer at URL into a file.
    Pull(Box<PullArgs>),
    /// Seed the table through the seeder function at URL, several invocations at once.
    Seed(SeedArgs),
    /// Before a big read: what reading the table behind the streamer at URL will take and
    /// cost, from its approximate size and one small sample call.
    Plan(PlanArgs),
}

/// `scanstream plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The streamer's Function URL.
    pub url: String,
    /// The time the read should take: a whole number and s, m or h (30s, 10m, 2h; 1s
    /// to 7 days).
    #[arg(long, default_value = "10m", value_parser = super::forecast::parse_target)]
    pub target: Duration,
    /// The table's read capacity, units a second (provisioned, or the on-demand
    /// throughput you allow); with --share, the suggestion stays within that share.
    #[arg(long, value_parser = positive)]
    pub capacity: Option<f64>,
    /// The percentage of --capacity the read may take.
    #[arg(long, default_value_t = 50, requires = "capacity",
          value_parser = clap::value_parser!(u8).range(1..=100))]
    pub share: u8,
    /// Items in the sample call (`max_items`).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub sample_items: u64,
    /// Compression of the sample, as the pull will use it.
    #[arg(long, value_enum, default_value_t = Compress::Zstd)]
    pub compress: Compress,
    /// Projection, as the pull will use it.
    #[arg(long)]
    pub fields: Option<String>,
    /// Plan strongly consistent reads (twice the read units).
    #[arg(long)]
    pub consistent: bool,
    /// Plan a read of this secondary index.
    #[arg(long)]
    pub index: Option<String>,
    #[command(flatten)]
    pub signing: SigningArgs,
}

/// A finite number above 0.
fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!("{text:?} is not a number above 0")),
    }
}

/// `scanstream seed`.
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// The seeder's Function URL.
    pub url: String,
    /// Records to write, indexes `0..count`.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// The data set.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Invocations at once, each writing one range of indexes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub invocations: u64,
    /// Records asked of one call (the function's SEED_MAX_COUNT caps it).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub per_call: u64,
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Attempts per call before its range counts as failed.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// No progress bar or progress lines.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `scanstream pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The streamer's Function URL.
    pub url: String,
    /// Invocations at once; the table is split into invocations x segments segments.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub invocations: u32,
    /// Segments each invocation scans concurrently.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub segments: u32,
    /// Items per Scan call (`limit`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: Option<u32>,
    /// Projection: comma-separated attribute names.
    #[arg(long)]
    pub fields: Option<String>,
    /// Strongly consistent reads.
    #[arg(long)]
    pub consistent: bool,
    /// Scan this secondary index instead of the table.
    #[arg(long)]
    pub index: Option<String>,
    #[command(flatten)]
    pub query: QueryArgs,
    /// Compression on the wire (decoded here).
    #[arg(long, value_enum, default_value_t = Compress::Zstd)]
    pub compress: Compress,
    /// Line format of the output.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Stop each call after this many items (`max_items`): smaller calls, more often
    /// committed.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_items_per_call: Option<u64>,
    /// Read capacity units a second for the whole read, divided among the invocations.
    #[arg(long)]
    pub max_rcu: Option<f64>,
    /// Write items here (default: standard output). A checkpoint is kept beside it
    /// (FILE.ckpt), so the same command run again resumes; a finished pull removes it.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Record progress here instead of FILE.ckpt, and resume from it when it exists
    /// (needs -o).
    #[arg(long, requires = "output")]
    pub checkpoint: Option<PathBuf>,
    /// Keep no checkpoint: a run that stops cannot be resumed.
    #[arg(long, requires = "output", conflicts_with = "checkpoint")]
    pub no_checkpoint: bool,
    /// Start over: read the table again into a non-empty -o FILE, replacing its checkpoint.
    #[arg(long, requires = "output")]
    pub force: bool,
    /// End the output with a trailer line (`{"@scanstream":{"complete":true,...}}`),
    /// written only when every slice completed, so a reader can tell a finished pull from
    /// a cut one. Without it the output is items only.
    #[arg(long)]
    pub trailer: bool,
    /// Write the summary here as JSON too.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// How -o is laid out: `file`, one file of lines; `export`, a directory in DynamoDB's
    /// export-to-S3 layout (`AWSDynamoDB/<id>/data/*.json.gz` and manifests), which
    /// `seeder --from DIR` restores; needs --format dynamodb and --key.
    #[arg(long, value_enum, default_value_t = Layout::File)]
    pub layout: Layout,
    /// With --layout export: the table's key schema (`pk:S` or `pk:S,sk:N`), recorded in
    /// the export and checked on every item. The streamer does not tell the client the
    /// table's key, so it is asked for here.
    #[arg(long, value_parser = parse_key)]
    pub key: Option<Box<KeySchema>>,
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Attempts per call before its slice counts as failed.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// Seconds a slice waits out Lambda throttling (429s in a row) before it fails; fewer
    /// calls run at once meanwhile.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub throttle_patience: u64,
    /// Seconds a call may wait for the response, or between two chunks of its body, before
    /// it counts as cut off and is made again from its last commit. A count (`--count`),
    /// silent until its trailer, and a filtered read (`--filter`), silent while pages
    /// match nothing, wait at least 960 s, past the function's 900 s timeout.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout: u64,
    /// No progress bar or progress lines (the summary and errors still go to standard
    /// error).
    #[arg(short, long)]
    pub quiet: bool,
}

/// What to read instead of every item: a Query of some partitions, a filter, a count.
#[derive(Debug, Default, clap::Args)]
pub struct QueryArgs {
    /// Query this partition (the table's or --index's partition key) instead of scanning;
    /// repeat it for more. Numbers as written, binary keys in base64.
    #[arg(long = "pk", value_name = "KEY", allow_negative_numbers = true)]
    pub pk: Vec<String>,
    /// Query the partitions in FILE too, one key a line (at most 100,000 keys, 16 MiB, and
    /// 1,000 slices of --pk-per-call keys); they are spread over calls of at most
    /// --pk-per-call keys.
    #[arg(long, value_name = "FILE")]
    pub pk_file: Option<PathBuf>,
    /// Partitions one call queries at most. The streamer refuses (400) a call with more
    /// than its MAX_PARTITIONS (default 100, at most 1000), failing the slice: lower this
    /// for a streamer configured lower.
    #[arg(long, default_value_t = super::partitions::DEFAULT_PER_CALL, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pk_per_call: u32,
    /// Sort key equal to VALUE (with --pk).
    #[arg(long, value_name = "VALUE", allow_negative_numbers = true)]
    pub sk_eq: Option<String>,
    /// Sort key less than VALUE.
    #[arg(long, value_name = "VALUE", allow_negative_numbers = true)]
    pub sk_lt: Option<String>,
    /// Sort key at most VALUE.
    #[arg(long, value_name = "VALUE", allow_negative_numbers = true)]
    pub sk_le: Option<String>,
    /// Sort key greater than VALUE.
    #[arg(long, value_name = "VALUE", allow_negative_numbers = true)]
    pub sk_gt: Option<String>,
    /// Sort key at least VALUE.
    #[arg(long, value_name = "VALUE", allow_negative_numbers = true)]
    pub sk_ge: Option<String>,
    /// Sort key beginning with VALUE (string and binary keys).
    #[arg(long, value_name = "VALUE", allow_negative_numbers = true)]
    pub sk_prefix: Option<String>,
    /// Sort key from VALUE to --sk-to, both included (BETWEEN).
    #[arg(long, value_name = "VALUE", allow_negative_numbers = true)]
    pub sk_from: Option<String>,
    /// The upper bound of --sk-from.
    #[arg(long, value_name = "VALUE", allow_negative_numbers = true)]
    pub sk_to: Option<String>,
    /// Sort-key order of each partition (with --pk): desc is largest first.
    #[arg(long, value_enum)]
    pub order: Option<Order>,
    /// A DynamoDB filter expression, with #name and :value placeholders: items that do not
    /// match are not sent (but are still read, and paid for).
    #[arg(long, value_name = "EXPRESSION")]
    pub filter: Option<String>,
    /// The filter's name placeholders, a JSON object: '{"#s":"status"}'.
    #[arg(long, value_name = "JSON", requires = "filter")]
    pub names: Option<String>,
    /// The filter's value placeholders, a JSON object of DynamoDB typed values:
    /// '{":v":{"S":"open"}}'.
    #[arg(long, value_name = "JSON", requires = "filter")]
    pub values: Option<String>,
    /// Count the items (that match --filter) instead of reading them: the output is one
    /// trailer line, whose items and scanned are the counts.
    #[arg(long)]
    pub count: bool,
}

/// `--order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Order {
    Asc,
    Desc,
}

/// The Query, filter and count options, checked: what a first call carries, what the
/// output's shape records, and the partitions.
#[derive(Debug, Default)]
struct ReadOptions {
    /// Parameters every first call carries (a cursor fixes them).
    params: Vec<(String, String)>,
    /// `(flag, value)` for the checkpoint's [`OutputShape`].
    shape: Vec<(&'static str, String)>,
    partitions: Option<super::partitions::Partitions>,
}

/// Checks what the client can know is wrong before any call (the streamer checks the
/// rest against the table): one sort-key condition, and only with --pk; --order only with
/// --pk; --names and --values JSON objects, the values typed; --count without --fields or
/// --max-items-per-call; the keys (see [`super::partitions`]).
fn read_options(args: &PullArgs) -> anyhow::Result<ReadOptions> {
    let q = &args.query;
    let mut read = ReadOptions::default();
    let query = !q.pk.is_empty() || q.pk_file.is_some();
    let conditions: Vec<(&'static str, &Option<String>)> = vec![
        ("sk_eq", &q.sk_eq),
        ("sk_lt", &q.sk_lt),
        ("sk_le", &q.sk_le),
        ("sk_gt", &q.sk_gt),
        ("sk_ge", &q.sk_ge),
        ("sk_prefix", &q.sk_prefix),
        ("sk_from", &q.sk_from),
    ];
    let flag = |name: &str| format!("--{}", name.replace('_', "-"));
    let given: Vec<String> = conditions
        .iter()
        .filter(|(_, value)| value.is_some())
        .map(|(name, _)| flag(name))
        .collect();
    if given.len() > 1 {
        bail!(
            "only one sort-key condition at a time, got {}",
            given.join(" and ")
        );
    }
    match (&q.sk_from, &q.sk_to) {
        (Some(_), None) => bail!("--sk-from needs --sk-to (BETWEEN, both included)"),
        (None, Some(_)) => bail!("--sk-to needs --sk-from (BETWEEN, both included)"),
        _ => {}
    }
    if let Some(first) = given.first()
        && !query
    {
        bail!("{first} needs --pk or --pk-file: a sort-key condition applies to a Query");
    }
    if q.order.is_some() && !query {
        bail!("--order needs --pk or --pk-file: a Scan has no order");
    }
    for (name, value) in conditions.iter().chain([&("sk_to", &q.sk_to)]) {
        if let Some(value) = value {
            if value.is_empty() {
                bail!("{} must not be empty", flag(name));
            }
            read.params.push((name.to_string(), value.clone()));
            read.shape.push((flag_name(name), value.clone()));
        }
    }
    if q.order == Some(Order::Desc) {
        read.params.push(("order".into(), "desc".into()));
        read.shape.push(("--order", "desc".into()));
    }
    if let Some(filter) = &q.filter {
        if filter.trim().is_empty() {
            bail!("--filter must not be empty");
        }
        read.params.push(("filter".into(), filter.clone()));
        read.shape.push(("--filter", filter.clone()));
    }
    if let Some(names) = &q.names {
        let object = json_object("--names", names)?;
        if let Some((placeholder, _)) = object.iter().find(|(_, v)| !v.is_string()) {
            bail!("--names: {placeholder:?} must stand for an attribute name, a JSON string");
        }
        read.params.push(("names".into(), names.clone()));
        read.shape.push(("--names", names.clone()));
    }
    if let Some(values) = &q.values {
        for (placeholder, value) in json_object("--values", values)? {
            if let Err(why) = crate::format::json::typed_value(&value) {
                bail!(
                    "--values: {placeholder:?} is not a DynamoDB typed value ({why}), e.g. \
                     {{\"S\":\"text\"}} or {{\"N\":\"1\"}}"
                );
            }
        }
        read.params.push(("values".into(), values.clone()));
        read.shape.push(("--values", values.clone()));
    }
    if q.count {
        if args.fields.is_some() {
            bail!("--count cannot be combined with --fields: a count returns no attributes");
        }
        if args.max_items_per_call.is_some() {
            bail!("--count cannot be combined with --max-items-per-call: a count sends no items");
        }
        read.params.push(("select".into(), "count".into()));
        read.shape.push(("--count", "true".into()));
    }
    if query {
        let partitions = super::partitions::Partitions::read(
            &q.pk,
            q.pk_file.as_deref(),
            args.invocations,
            q.pk_per_call,
        )?;
        read.shape.push(("--pk", partitions.digest()));
        read.partitions = Some(partitions);
    }
    Ok(read)
}

/// The flag of a sort-key parameter, as a static name for the shape.
fn flag_name(parameter: &str) -> &'static str {
    match parameter {
        "sk_eq" => "--sk-eq",
        "sk_lt" => "--sk-lt",
        "sk_le" => "--sk-le",
        "sk_gt" => "--sk-gt",
        "sk_ge" => "--sk-ge",
        "sk_prefix" => "--sk-prefix",
        "sk_from" => "--sk-from",
        _ => "--sk-to",
    }
}

/// `text` as a JSON object, or an error naming `flag`.
fn json_object(
    flag: &str,
    text: &str,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => bail!("{flag} must be a JSON object, e.g. '{{\"#s\":\"status\"}}'"),
        Err(err) => bail!("{flag} is not JSON: {err}"),
    }
}

/// How requests are signed, for both commands.
#[derive(Debug, clap::Args)]
pub struct SigningArgs {
    /// Sign requests with SigV4: auto signs all but loopback URLs.
    #[arg(long, value_enum, default_value_t = Sign::Auto)]
    pub sign: Sign,
    /// The region to sign for (default: from the URL's host, then AWS_REGION).
    #[arg(long)]
    pub region: Option<String>,
}

/// `--compress`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Compress {
    None,
    Gzip,
    Zstd,
}

/// `--format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Dynamodb,
}

/// `--layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    File,
    Export,
}

// Boxed: `pull`'s arguments would otherwise dwarf `seed`'s (clippy's large_enum_variant).
fn parse_key(spec: &str) -> Result<Box<KeySchema>, String> {
    KeySchema::parse(spec)
        .map(Box::new)
        .map_err(|e| e.to_string())
}

/// The key schema an export records, or why these flags cannot make one; checked before
/// anything else, so a bad combination makes no call and touches no file.
fn export_key(args: &PullArgs) -> anyhow::Result<Option<KeySchema>> {
    if args.layout != Layout::Export {
        if args.key.is_some() {
            bail!("--key is recorded in an export: it needs --layout export");
        }
        if let Some(output) = &args.output
            && output.is_dir()
        {
            bail!(
                "-o {} is a directory: --layout export writes an export into one",
                output.display()
            );
        }
        return Ok(None);
    }
    if !matches!(args.format, Format::Dynamodb) {
        bail!(
            "--layout export writes DynamoDB's export format, {{\"Item\":{{...}}}} lines: it \
             needs --format dynamodb"
        );
    }
    if args.output.is_none() {
        bail!("--layout export needs -o DIR: an export is a directory, not a stream");
    }
    if args.trailer {
        bail!(
            "--trailer has no place in an export: its data files hold items only, and its \
             manifest-summary.json, written last, is what says the export is whole"
        );
    }
    // A restore puts each item whole under its key: a projection, or an index's (sparse,
    // projected) items, would overwrite the table's items with parts of them.
    if let Some(index) = &args.index {
        bail!(
            "--index {index} cannot be an export (--layout export): an export is of the whole \
             table, as DynamoDB's is, and an index's items are sparse and projected, so a \
             restore would overwrite the table's items with parts of them"
        );
    }
    // A filter or a Query reads part of the table, and its manifest would count the part
    // as the whole: a restore from it would pass for a backup that lost items.
    let q = &args.query;
    let subset: Vec<&str> = [
        ("--filter", q.filter.is_some()),
        ("--pk", !q.pk.is_empty()),
        ("--pk-file", q.pk_file.is_some()),
        ("--sk-eq", q.sk_eq.is_some()),
        ("--sk-lt", q.sk_lt.is_some()),
        ("--sk-le", q.sk_le.is_some()),
        ("--sk-gt", q.sk_gt.is_some()),
        ("--sk-ge", q.sk_ge.is_some()),
        ("--sk-prefix", q.sk_prefix.is_some()),
        ("--sk-from", q.sk_from.is_some()),
        ("--sk-to", q.sk_to.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect();
    if !subset.is_empty() {
        bail!(
            "{} cannot be an export (--layout export): they read part of the table, and an \
             export is of the whole table, as DynamoDB's is; its manifest would count the \
             part as the whole, and pass for a backup",
            subset.join(", ")
        );
    }
    if args.fields.is_some() {
        bail!(
            "--fields cannot be an export (--layout export): an export is of the whole table \
             and every attribute, as DynamoDB's is, and a restore of a projection would \
             overwrite the table's items with parts of them"
        );
    }
    match &args.key {
        Some(key) => Ok(Some(KeySchema::clone(key))),
        None => bail!(
            "--layout export needs --key NAME:TYPE[,NAME:TYPE] (the table's key schema, as \
             DescribeTable gives it): the streamer does not say it, and the export records it \
             so that `seeder --from DIR --create-table` can create the table"
        ),
    }
}

/// `--sign`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Sign {
    Auto,
    Always,
    Never,
}

/// Runs a command; an error means a non-zero exit status.
pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Pull(args) => pull(*args).await,
        Command::Seed(args) => seed(args).await,
        Command::Plan(args) => plan(args).await,
    }
}

async fn signer(url: &str, signing: &SigningArgs) -> anyhow::Result<Arc<Signer>> {
    let mode = match signing.sign {
        Sign::Auto => SignMode::Auto,
        Sign::Always => SignMode::Always,
        Sign::Never => SignMode::Never,
    };
    Ok(Arc::new(
        Signer::new(url, mode, signing.region.clone())
            .await
            .map_err(anyhow::Error::msg)?,
    ))
}

async fn seed(args: SeedArgs) -> anyhow::Result<()> {
    let signer = signer(&args.url, &args.signing).await?;
    let options = Arc::new(super::seed::SeedOptions {
        url: args.url,
        count: args.count,
        seed: args.seed,
        invocations: args.invocations,
        per_call: args.per_call,
        backoff: backoff(args.max_attempts),
    });
    let started = Instant::now();
    let counters = Arc::new(super::seed::SeedCounters::default());
    let shown = progress::show(progress::Mode::detect(args.quiet), {
        let (counters, count) = (counters.clone(), args.count);
        move || progress::of_seed(&counters, count)
    });
    let failed = super::seed::run(options, signer, counters).await;
    shown.finish();
    for range in &failed {
        eprintln!(
            "range {}..{} failed: {}",
            range.start, range.end, range.error
        );
    }
    if !failed.is_empty() {
        bail!("{} ranges were not written in full", failed.len());
    }
    eprintln!(
        "seeded {} records of seed {} in {:.2} s",
        args.count,
        args.seed,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn plan(args: PlanArgs) -> anyhow::Result<()> {
    let signer = signer(&args.url, &args.signing).await?;
    let compress = format!("{:?}", args.compress).to_lowercase();
    let mut params = vec![
        ("compress".to_string(), compress.clone()),
        ("max_items".to_string(), args.sample_items.to_string()),
    ];
    if let Some(fields) = &args.fields {
        params.push(("fields".into(), fields.clone()));
    }
    if args.consistent {
        params.push(("consistent".into(), "true".into()));
    }
    if let Some(index) = &args.index {
        params.push(("index".into(), index.clone()));
    }
    let sampled = forecast::sample(&args.url, &signer, params)
        .await
        .map_err(anyhow::Error::msg)?;
    let goal = forecast::Goal {
        target: args.target,
        capacity: args
            .capacity
            .map(|capacity| (capacity, f64::from(args.share) / 100.0)),
        consistent: args.consistent,
    };
    let (items, bytes) = sampled.size.unzip();
    let Some(plan) = forecast::Forecast::new(items, bytes, &sampled.call, &goal) else {
        bail!(
            "the streamer did not report the table's size (a streamer older than this \
             client?) and the sample of {} items did not read the whole table: nothing to \
             plan from",
            sampled.call.items
        );
    };
    print!(
        "{}",
        forecast::render(&plan, &goal, &compress, &args.url, &pull_options(&args))
    );
    Ok(())
}

/// The pull's options the plan was made for, as words for its suggested command: what
/// the sample read (`--index`, `--consistent`, `--fields`, `--compress` when not the
/// default) and how it was signed.
fn pull_options(args: &PlanArgs) -> Vec<String> {
    let mut words = Vec::new();
    let mut push = |flag: &str, value: Option<&str>| {
        words.push(flag.to_string());
        words.extend(value.map(str::to_string));
    };
    if let Some(index) = &args.index {
        push("--index", Some(index));
    }
    if args.consistent {
        push("--consistent", None);
    }
    if let Some(fields) = &args.fields {
        push("--fields", Some(fields));
    }
    if !matches!(args.compress, Compress::Zstd) {
        push(
            "--compress",
            Some(&format!("{:?}", args.compress).to_lowercase()),
        );
    }
    if !matches!(args.signing.sign, Sign::Auto) {
        push(
            "--sign",
            Some(&format!("{:?}", args.signing.sign).to_lowercase()),
        );
    }
    if let Some(region) = &args.signing.region {
        push("--region", Some(region));
    }
    words
}

fn backoff(max_attempts: u32) -> Backoff {
    Backoff {
        base: Duration::from_millis(250),
        cap: Duration::from_secs(10),
        max_attempts,
    }
}

async fn pull(args: PullArgs) -> anyhow::Result<()> {
    let export_key = export_key(&args)?;
    if export_key.is_some() && args.query.count {
        bail!(
            "--count writes one trailer line, not items: it cannot be an export (--layout export)"
        );
    }
    let read = read_options(&args)?;
    let mut options = options(&args)?;
    options.shape.extend(read.params);
    options.count = args.query.count;
    // A count's output is its trailer line.
    options.trailer |= args.query.count;
    let mut shape = shape(&args);
    for (flag, value) in read.shape {
        shape = shape.with(flag, value);
    }
    let fresh = match &read.partitions {
        Some(partitions) => super::plan_partitions(&args.url, partitions, args.segments, shape),
        None => super::plan(&args.url, args.invocations, args.segments, shape),
    };
    options.partitions = read.partitions.map(Arc::new);
    let partitions = options.partitions.clone();
    let options = Arc::new(options);
    let signer = signer(&args.url, &args.signing).await?;
    let files = Files {
        output: args.output.clone(),
        checkpoint: match (&args.output, &args.checkpoint) {
            (_, Some(path)) => Some(path.clone()),
            (Some(output), None) if !args.no_checkpoint => Some(Files::default_checkpoint(output)),
            _ => None,
        },
        force: args.force,
    };
    let committer = match &export_key {
        Some(key) => super::export::open(&files, fresh, key)?,
        None => Committer::open(&files, fresh)?,
    };
    let already = committer.checkpoint().committed_items;
    if already > 0 {
        eprintln!("resuming: {already} items already in the output");
    }
    let counters = Arc::new(Counters::default());
    let shown = progress::show(progress::Mode::detect(args.quiet), {
        let counters = counters.clone();
        move || progress::of_pull(&counters, already)
    });
    let summary = super::run(options, signer, committer, counters).await;
    shown.finish();
    if summary.broken_pipe {
        // `| head` has what it wanted: no error, no summary (as ripgrep does).
        return Ok(());
    }
    report(&summary, args.summary_json.as_deref())?;
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

/// A slice as a user knows it: a Scan's by its segments, a Query's by its keys (its
/// `offset` is its first key's place among the sorted keys).
fn slice_name(
    partitions: Option<&super::partitions::Partitions>,
    offset: u32,
    segments: u32,
) -> String {
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

fn options(args: &PullArgs) -> anyhow::Result<PullOptions> {
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
    })
}

/// The options that decide which items, and which bytes per item, the output holds: a
/// checkpoint resumes only a run that gives the same. `--compress` (decoded on the way),
/// `--limit`, `--max-items-per-call` and `--max-rcu` change how the items come, not which
/// or how they are written, and may change between runs.
fn shape(args: &PullArgs) -> OutputShape {
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
    if let Some(key) = &args.key {
        shape = shape.with("--key", key.to_string());
    }
    shape
}

fn report(summary: &PullSummary, json: Option<&std::path::Path>) -> anyhow::Result<()> {
    eprintln!("{}", summary.line());
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn help_says_what_the_client_is_for() {
        let about = Args::command().get_about().map(ToString::to_string);
        assert!(
            about.is_some_and(|a| a.starts_with("Read a whole DynamoDB table")),
            "the doc comment, not the package's description"
        );
    }

    #[test]
    fn quiet_is_a_flag_of_pull_and_seed_and_plan_aims_at_ten_minutes() {
        let parse = |args: &[&str]| Args::try_parse_from(args).expect("valid").command;
        let Command::Pull(pull) = parse(&["scanstream", "pull", "http://x/", "-q"]) else {
            panic!("a pull");
        };
        assert!(pull.quiet);
        let Command::Seed(seed) =
            parse(&["scanstream", "seed", "http://x/", "--count", "5", "--quiet"])
        else {
            panic!("a seed");
        };
        assert!(seed.quiet);
        let Command::Plan(plan) = parse(&["scanstream", "plan", "http://x/"]) else {
            panic!("a plan");
        };
        assert_eq!(plan.target, Duration::from_secs(600));
        assert_eq!(
            (plan.sample_items, plan.share, plan.capacity),
            (1000, 50, None)
        );
    }

    #[test]
    fn the_plan_s_options_go_into_its_suggested_pull_and_pull_takes_them() {
        let parse = |args: &[&str]| Args::try_parse_from(args).expect("valid").command;
        let Command::Plan(plan) = parse(&[
            "scanstream",
            "plan",
            "http://x/",
            "--index",
            "by-status",
            "--consistent",
            "--fields",
            "id,status",
            "--compress",
            "none",
            "--sign",
            "always",
            "--region",
            "eu-west-1",
            "--target",
            "1h",
        ]) else {
            panic!("a plan");
        };
        let words = pull_options(&plan);
        assert_eq!(
            words,
            [
                "--index",
                "by-status",
                "--consistent",
                "--fields",
                "id,status",
                "--compress",
                "none",
                "--sign",
                "always",
                "--region",
                "eu-west-1"
            ]
        );
        let mut pull_args = vec!["scanstream", "pull", "http://x/"];
        pull_args.extend(words.iter().map(String::as_str));
        let Command::Pull(pull) = parse(&pull_args) else {
            panic!("a pull");
        };
        assert_eq!(pull.index.as_deref(), Some("by-status"));
        assert_eq!(pull.fields.as_deref(), Some("id,status"));
        assert!(pull.consistent);
        assert!(matches!(pull.compress, Compress::None));
        assert!(matches!(pull.signing.sign, Sign::Always));
        assert_eq!(pull.signing.region.as_deref(), Some("eu-west-1"));
        // The defaults add nothing.
        let Command::Plan(plain) = parse(&["scanstream", "plan", "http://x/"]) else {
            panic!("a plan");
        };
        assert!(pull_options(&plain).is_empty());
    }

    #[test]
    fn max_rcu_is_shared_between_the_invocations() {
        let args = Args::try_parse_from([
            "scanstream",
            "pull",
            "http://127.0.0.1:9/",
            "--invocations",
            "4",
            "--max-rcu",
            "100",
        ])
        .expect("valid");
        let Command::Pull(pull) = args.command else {
            panic!("a pull");
        };
        let options = options(&pull).expect("options");
        assert_eq!(options.rcu_share, Some(25.0));
        assert!(
            options
                .delivery
                .contains(&("max_rcu".to_string(), "25.000000".to_string()))
        );
    }

    #[test]
    fn negative_numbers_are_keys_and_sort_key_values() {
        let args = Args::try_parse_from([
            "scanstream",
            "pull",
            "http://127.0.0.1:9/",
            "--pk",
            "-5",
            "--sk-from",
            "-30",
            "--sk-to",
            "-1.5",
        ])
        .expect("negative numbers are values");
        let Command::Pull(pull) = args.command else {
            panic!("a pull");
        };
        let read = read_options(&pull).expect("valid");
        assert!(
            read.params
                .contains(&("sk_from".to_string(), "-30".to_string()))
        );
        assert!(
            read.params
                .contains(&("sk_to".to_string(), "-1.5".to_string()))
        );
        assert_eq!(
            read.partitions.map(|p| p.slice(0).to_vec()),
            Some(vec!["-5".to_string()])
        );
    }

    /// A pull of a loopback URL with `extra` flags, and its options when they parse.
    fn pull_with(extra: &[&str]) -> Result<PullOptions, String> {
        let args = Args::try_parse_from(
            ["scanstream", "pull", "http://127.0.0.1:9/"]
                .iter()
                .chain(extra),
        )
        .map_err(|e| e.to_string())?;
        let Command::Pull(pull) = args.command else {
            return Err("not a pull".into());
        };
        options(&pull).map_err(|e| e.to_string())
    }

    #[test]
    fn throttle_patience_is_ten_minutes_unless_told_and_bounded() {
        let patience = |extra: &[&str]| pull_with(extra).map(|o| o.throttle_patience);
        assert_eq!(patience(&[]), Ok(Duration::from_secs(600)));
        for bad in ["0", "86401", "-1", "ten"] {
            assert!(
                patience(&["--throttle-patience", bad]).is_err(),
                "--throttle-patience {bad} is refused"
            );
        }
        assert_eq!(
            patience(&["--throttle-patience", "86400"]),
            Ok(Duration::from_secs(86_400))
        );
    }

    /// `pull`'s arguments from `extra` after a loopback URL.
    fn pull_args(extra: &[&str]) -> PullArgs {
        let args = ["scanstream", "pull", "http://127.0.0.1:9/"]
            .iter()
            .chain(extra);
        match Args::try_parse_from(args).expect("valid").command {
            Command::Pull(pull) => *pull,
            _ => panic!("a pull"),
        }
    }

    #[test]
    fn an_export_of_part_of_the_table_is_refused() {
        let export = [
            "--layout",
            "export",
            "--format",
            "dynamodb",
            "--key",
            "id:S",
            "-o",
            "/nowhere/x",
        ];
        assert!(export_key(&pull_args(&export)).is_ok(), "the whole table");
        let subsets: [&[&str]; 5] = [
            &["--filter", "a = :v"],
            &["--pk", "k1"],
            &["--pk-file", "keys.txt"],
            &["--pk", "k1", "--sk-gt", "5"],
            &["--pk", "k1", "--sk-from", "1", "--sk-to", "2"],
        ];
        for subset in subsets {
            let args: Vec<&str> = export.iter().chain(subset).copied().collect();
            let err = export_key(&pull_args(&args)).expect_err("a subset is no export");
            let text = err.to_string();
            for flag in subset.iter().filter(|word| word.starts_with("--")) {
                assert!(text.contains(flag), "{subset:?}: {text}");
            }
            assert!(text.contains("whole table"), "{text}");
        }
    }

    #[test]
    fn a_values_error_has_no_stray_spaces() {
        let args = pull_args(&["--filter", "a = :v", "--values", r#"{":v":{"X":"1"}}"#]);
        let text = read_options(&args).expect_err("not typed").to_string();
        assert!(!text.contains("  "), "{text:?}");
        assert!(text.contains(r#"e.g. {"S":"text"} or {"N":"1"}"#), "{text}");
    }

    #[test]
    fn a_failed_slice_is_named_by_its_keys_or_its_segments() {
        let keys: Vec<String> = ["b", "a", "c", "d", "e"].map(String::from).to_vec();
        let partitions =
            super::super::partitions::Partitions::read(&keys, None, 2, 2).expect("keys");
        let query = slice_name(Some(&partitions), 2, 2);
        assert_eq!(query, r#"the keys 3 to 4 of 5 (sorted), from "c" to "d""#);
        assert_eq!(slice_name(None, 4, 2), "segments 4 to 5");
        let one = slice_name(Some(&partitions), 4, 2);
        assert_eq!(one, r#"the key 5 of 5 (sorted), "e""#);
    }

    #[test]
    fn idle_timeout_help_names_the_floor_of_a_count_and_a_filter() {
        let command = Args::command();
        let pull = command.find_subcommand("pull").expect("pull");
        let help = pull
            .get_arguments()
            .find(|arg| arg.get_id() == "idle_timeout")
            .and_then(|arg| arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            help.contains("--count") && help.contains("--filter") && help.contains("960 s"),
            "{help}"
        );
    }

    #[test]
    fn idle_timeout_is_ten_minutes_unless_told_and_bounded() {
        let idle = |extra: &[&str]| pull_with(extra).map(|o| o.idle_timeout);
        assert_eq!(idle(&[]), Ok(Duration::from_secs(600)));
        for bad in ["0", "3601", "-1", "1m", ""] {
            assert!(
                idle(&["--idle-timeout", bad]).is_err(),
                "--idle-timeout {bad} is refused"
            );
        }
        assert_eq!(
            idle(&["--idle-timeout", "3600"]),
            Ok(Duration::from_secs(3600))
        );
    }
}
