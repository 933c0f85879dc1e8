//! `scanstream plan`: what a full read will take and cost, before it starts, from the
//! table's approximate size and one small sample call ([`forecast`]).

pub mod forecast;

use crate::cli::args::{Compress, Sign, SigningArgs, positive, signer};
use crate::cli::transport::lines::Lines;
use crate::cli::transport::sign::Signer;
use crate::cli::transport::{Failure, Request, Transport, approximate_size};
use crate::format::export::{KEY_SCHEMA_HEADER, RecordedKeySchema};
use crate::format::key::KeySchema;
use anyhow::bail;
use forecast::SampleCall;
use std::sync::Arc;
use std::time::Duration;

/// `scanstream plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The streamer's Function URL.
    pub url: String,
    /// The time the read should take: a whole number and s, m or h (30s, 10m, 2h; 1s
    /// to 7 days).
    #[arg(long, default_value = "10m", value_parser = forecast::parse_target)]
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

/// Runs `scanstream plan`.
pub async fn run(args: PlanArgs) -> anyhow::Result<()> {
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
    let mut sampled = sample(&args.url, &signer, params.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    if sampled.size.is_none() {
        // A cold function answers before its table-size lookup is back, lets the lookup
        // finish after the response and caches it: the next call has it.
        let again = sample(&args.url, &signer, params)
            .await
            .map_err(anyhow::Error::msg)?;
        if again.size.is_some() {
            sampled = again;
        }
    }
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
pub(crate) fn pull_options(args: &PlanArgs) -> Vec<String> {
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

/// The longest the sample call may wait for its response or between two chunks: a cold
/// start and one page of 1,000 items take seconds, so this only stops a call that went
/// silent (a half-open connection) from holding the plan for good.
const SAMPLE_SILENCE: Duration = Duration::from_secs(120);

/// What the sample call found.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampled {
    /// The table's approximate `(items, bytes)`, from the headers.
    pub size: Option<(u64, u64)>,
    /// The sample.
    pub call: SampleCall,
    /// The table's key schema, from the headers.
    pub key: Option<KeySchema>,
}

/// Makes the sample call: a GET of `url` with `params` (sorted and encoded as a pull's
/// first call is), signed, its body decoded and counted line by line.
pub async fn sample(
    url: &str,
    signer: &Arc<Signer>,
    params: Vec<(String, String)>,
) -> Result<Sampled, String> {
    let silent = || {
        format!(
            "the sample call was silent for {} s",
            SAMPLE_SILENCE.as_secs()
        )
    };
    let transport = Transport::new(signer.clone(), Duration::from_secs(10));
    let request = Request {
        url,
        form: params,
        post: false,
        idle: SAMPLE_SILENCE,
        refusal_wait: SAMPLE_SILENCE,
    };
    let mut response = transport.send(request).await.map_err(|why| match why {
        Failure::Url { .. } | Failure::Credentials(_) | Failure::Signing(_) => why.to_string(),
        Failure::Silent(_) => silent(),
        Failure::Send(e) => format!("the sample call failed: {e}"),
        why => format!("the sample call: {why}"),
    })?;
    let size = approximate_size(response.headers());
    let key = response
        .headers()
        .get(KEY_SCHEMA_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| RecordedKeySchema::from_header(value).ok());
    let mut decoder = crate::format::compress::Decompressor::for_headers(response.headers())
        .map_err(|e| format!("decoder: {e}"))?;
    let mut lines = Lines::default();
    let mut call = SampleCall::default();
    while let Some(chunk) = tokio::time::timeout(SAMPLE_SILENCE, response.chunk())
        .await
        .map_err(|_| silent())?
        .map_err(|e| format!("the sample's body was cut off: {e}"))?
    {
        call.wire_bytes += chunk.len() as u64;
        let plain = decoder
            .decode(&chunk)
            .map_err(|e| format!("the sample's body does not decode: {e}"))?;
        call.plain_bytes += plain.len() as u64;
        let items = lines
            .push(&plain)
            .map_err(|e| format!("reading the sample: {e}"))?;
        call.plain_item_bytes += items.len() as u64;
    }
    let trailer = lines
        .finish()
        .ok_or("the sample's body ended without a trailer (cut off)")?;
    call.items = lines.items;
    call.consumed = trailer.consumed_capacity;
    call.complete = trailer.complete;
    Ok(Sampled { size, call, key })
}
