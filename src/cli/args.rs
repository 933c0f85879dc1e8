//! What every verb shares on the command line: signing, compression, the line format, the
//! layout of the output, and the retries of a call.

use crate::cli::transport::sign::{SignMode, Signer};
use crate::format::backoff::Backoff;
use clap::ValueEnum;
use std::sync::Arc;
use std::time::Duration;

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

/// `--sign`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Sign {
    Auto,
    Always,
    Never,
}

/// A finite number above 0.
pub(crate) fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!("{text:?} is not a number above 0")),
    }
}

pub(crate) async fn signer(url: &str, signing: &SigningArgs) -> anyhow::Result<Arc<Signer>> {
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

/// The retries of a call: up to `max_attempts` in all, with capped exponential backoff.
pub(crate) fn backoff(max_attempts: u32) -> Backoff {
    Backoff {
        base: Duration::from_millis(250),
        cap: Duration::from_secs(10),
        max_attempts,
    }
}
