//! `scanstream pull`'s command line, and the checks of its flags that need no call: the
//! Query, filter and count options, and what an export (`--layout export`) allows.

use crate::cli::args::{Compress, Format, Layout, SigningArgs};
use crate::cli::pull::partitions::Partitions;
use crate::format::key::KeySchema;
use crate::format::location::S3Location;
use anyhow::bail;
use clap::ValueEnum;
use std::path::PathBuf;

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
    /// With --layout export, `s3://BUCKET/PREFIX`: the functions write the data files
    /// there themselves, and the checkpoint is `scanstream-s3-BUCKET-PREFIX.ckpt` here.
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
    /// `seeder --from DIR` restores; needs --format dynamodb.
    #[arg(long, value_enum, default_value_t = Layout::File)]
    pub layout: Layout,
    /// With --layout export: the table's key schema (`pk:S` or `pk:S,sk:N`), recorded in
    /// the export and checked on every item of a directory. Without it the function says
    /// it (a sample call before a directory's first; every call to S3), and an export to
    /// S3 holds --key to what the functions say.
    #[arg(long, value_parser = parse_key)]
    pub key: Option<Box<KeySchema>>,
    /// With -o s3://...: the account (12 digits) that must own the bucket; S3 refuses
    /// every call of this client otherwise.
    #[arg(long, value_parser = parse_account)]
    pub expected_bucket_owner: Option<String>,
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
    #[arg(long, default_value_t = crate::cli::pull::partitions::DEFAULT_PER_CALL, value_parser = clap::value_parser!(u32).range(1..=1000))]
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
pub(crate) struct ReadOptions {
    /// Parameters every first call carries (a cursor fixes them).
    pub(crate) params: Vec<(String, String)>,
    /// `(flag, value)` for the checkpoint's
    /// [`OutputShape`](crate::cli::output::checkpoint::OutputShape).
    pub(crate) shape: Vec<(&'static str, String)>,
    pub(crate) partitions: Option<Partitions>,
}

/// Checks what the client can know is wrong before any call (the streamer checks the
/// rest against the table): one sort-key condition, and only with --pk; --order only with
/// --pk; --names and --values JSON objects, the values typed; --count without --fields or
/// --max-items-per-call; the keys (see [`crate::cli::pull::partitions`]).
pub(crate) fn read_options(args: &PullArgs) -> anyhow::Result<ReadOptions> {
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
        let partitions =
            Partitions::read(&q.pk, q.pk_file.as_deref(), args.invocations, q.pk_per_call)?;
        read.shape.push(("--pk", partitions.digest()));
        read.partitions = Some(partitions);
    }
    Ok(read)
}

/// The flag of a sort-key parameter, as a static name for the shape.
pub(crate) fn flag_name(parameter: &str) -> &'static str {
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
pub(crate) fn json_object(
    flag: &str,
    text: &str,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => bail!("{flag} must be a JSON object, e.g. '{{\"#s\":\"status\"}}'"),
        Err(err) => bail!("{flag} is not JSON: {err}"),
    }
}

fn parse_account(text: &str) -> Result<String, String> {
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_string())
    } else {
        Err("an AWS account id is 12 digits".into())
    }
}

// Boxed: `pull`'s arguments would otherwise dwarf `seed`'s (clippy's large_enum_variant).
pub(crate) fn parse_key(spec: &str) -> Result<Box<KeySchema>, String> {
    KeySchema::parse(spec)
        .map(Box::new)
        .map_err(|e| e.to_string())
}

/// The S3 location `-o s3://BUCKET/PREFIX` names, if it names one; an error when it is
/// not a valid one.
pub(crate) fn export_destination(args: &PullArgs) -> anyhow::Result<Option<S3Location>> {
    let Some(output) = args.output.as_deref().and_then(std::path::Path::to_str) else {
        return Ok(None);
    };
    if !output.starts_with("s3://") {
        return Ok(None);
    }
    if args.no_checkpoint {
        bail!(
            "an export to S3 keeps the records of its files in its checkpoint: it cannot run \
             with --no-checkpoint"
        );
    }
    S3Location::parse(output)
        .map(Some)
        .map_err(|err| anyhow::anyhow!("-o {output}: {err}"))
}

/// The key schema an export records, or why these flags cannot make one; checked before
/// anything else, so a bad combination makes no call and touches no file.
pub(crate) fn export_key(args: &PullArgs) -> anyhow::Result<Option<KeySchema>> {
    let to_s3 = export_destination(args)?.is_some();
    if args.expected_bucket_owner.is_some() && !to_s3 {
        bail!("--expected-bucket-owner is for an export to S3 (-o s3://...)");
    }
    if args.layout != Layout::Export {
        if to_s3 {
            bail!(
                "-o s3://... is an export to S3: it needs --layout export (the functions write \
                 its data files, this client its manifests)"
            );
        }
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
    // Without --key, the functions say the table's key schema: with every export call to
    // S3, and in a sample call before a directory's first (pull::table_key).
    Ok(args.key.as_deref().cloned())
}
