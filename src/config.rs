//! Settings of the streamer and of the seeder function, read from the environment and
//! validated once at cold start.
//!
//! A bad setting stops the function before it serves anything, with a message naming the
//! variable, rather than surfacing later as a confusing per-request error.

use std::env;
use std::time::Duration;

/// The hard ceiling DynamoDB puts on `TotalSegments`.
pub const DYNAMODB_MAX_TOTAL_SEGMENTS: u32 = 1_000_000;

/// A setting that could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{name} must be an integer in {min}..={max}, got {value:?}")]
    OutOfRange {
        name: &'static str,
        value: String,
        min: u32,
        max: u32,
    },
    #[error("{name} must be an integer in {min}..={max}, got {value:?}")]
    OutOfRangeU64 {
        name: &'static str,
        value: String,
        min: u64,
        max: u64,
    },
    #[error("{name} must be one of {allowed}, got {value:?}")]
    NotOneOf {
        name: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error("{name} ({value}) must not exceed {max_name} ({max})")]
    DefaultAboveMax {
        name: &'static str,
        value: u32,
        max_name: &'static str,
        max: u32,
    },
}

/// Everything the streamer needs to know before its first request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The table every request scans (`TABLE_NAME`); requests cannot pick another one.
    pub table_name: String,
    /// Upper bound of `?segments=` (`MAX_SEGMENTS`): each segment is one task and one
    /// page of memory, so this bounds both per invocation.
    pub max_segments: u32,
    /// Upper bound of `?limit=` (`MAX_LIMIT`): with `max_segments` it bounds the memory
    /// a request can hold.
    pub max_limit: u32,
    /// `segments` when the request does not say (`DEFAULT_SEGMENTS`).
    pub default_segments: u32,
    /// `limit` when the request does not say (`DEFAULT_LIMIT`).
    pub default_limit: u32,
    /// The byte budget of one response (`MAX_RESPONSE_BYTES`, default 150 MB): Lambda
    /// cuts a streamed response at 200 MB, so the stream stops first, with a cursor.
    pub max_response_bytes: u64,
    /// Time kept free before the invocation's deadline (`DEADLINE_RESERVE_MS`, default
    /// 2000): enough to send the trailer before Lambda stops the function.
    pub deadline_reserve_ms: u64,
    /// Attempts per DynamoDB call, the first included (`MAX_ATTEMPTS`, default 5): the
    /// SDK retries throttling and transient errors with backoff up to this many.
    pub max_attempts: u32,
    /// Longest cursor accepted (`MAX_CURSOR_BYTES`, default 256 KiB).
    pub max_cursor_bytes: usize,
    /// Seals cursors (`CURSOR_SECRET`); empty means cursors carry a plain checksum.
    pub cursor_secret: Vec<u8>,
    /// Ask DynamoDB for consumed capacity (`RETURN_CONSUMED_CAPACITY`, `TOTAL` or `NONE`;
    /// default `TOTAL`). DynamoDB Local scans about a tenth slower with it.
    pub consumed_capacity: bool,
}

impl Config {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table_name = table_name(&lookup)?;
        let max_segments = bounded(&lookup, "MAX_SEGMENTS", 64, DYNAMODB_MAX_TOTAL_SEGMENTS)?;
        // A Limit past 10,000 only makes DynamoDB's 1 MB page cap the real limit.
        let max_limit = bounded(&lookup, "MAX_LIMIT", 1000, 10_000)?;
        let default_segments = bounded(&lookup, "DEFAULT_SEGMENTS", 4, max_segments)?;
        let default_limit = bounded(&lookup, "DEFAULT_LIMIT", 100, max_limit)?;
        // Below 4 MiB a single 1 MB page, base64-inflated, might not fit.
        let max_response_bytes = bounded_u64(
            &lookup,
            "MAX_RESPONSE_BYTES",
            150_000_000,
            4 << 20,
            200_000_000,
        )?;
        let deadline_reserve_ms = bounded_u64(&lookup, "DEADLINE_RESERVE_MS", 2000, 0, 600_000)?;
        let max_attempts = bounded(&lookup, "MAX_ATTEMPTS", 5, 20)?;
        let max_cursor_bytes =
            bounded_u64(&lookup, "MAX_CURSOR_BYTES", 256 << 10, 1 << 10, 1 << 20)?;
        Ok(Self {
            table_name,
            max_segments,
            max_limit,
            default_segments,
            default_limit,
            max_response_bytes,
            deadline_reserve_ms,
            max_attempts,
            max_cursor_bytes: usize::try_from(max_cursor_bytes).unwrap_or(1 << 20),
            cursor_secret: lookup("CURSOR_SECRET").unwrap_or_default().into_bytes(),
            consumed_capacity: match lookup("RETURN_CONSUMED_CAPACITY").as_deref() {
                None | Some("TOTAL") => true,
                Some("NONE") => false,
                Some(other) => {
                    return Err(ConfigError::NotOneOf {
                        name: "RETURN_CONSUMED_CAPACITY",
                        value: other.to_string(),
                        allowed: "TOTAL, NONE",
                    });
                }
            },
        })
    }
}

/// Seeder function settings, read once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeederConfig {
    /// The table written to (`TABLE_NAME`).
    pub table_name: String,
    /// Most records one invocation may be asked for (`SEED_MAX_COUNT`, default 100,000).
    pub max_count: u64,
    /// Batches in flight (`SEED_CONCURRENCY`, default 4: DynamoDB Local gains nothing past it).
    pub concurrency: usize,
    /// Time kept free before the deadline (`DEADLINE_RESERVE_MS`, default 3000).
    pub deadline_reserve: Duration,
}

impl SeederConfig {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let max_count = bounded_u64(&lookup, "SEED_MAX_COUNT", 100_000, 1, 10_000_000)?;
        let concurrency = bounded_u64(&lookup, "SEED_CONCURRENCY", 4, 1, 64)?;
        let reserve_ms = bounded_u64(&lookup, "DEADLINE_RESERVE_MS", 3000, 0, 600_000)?;
        Ok(Self {
            table_name: table_name(&lookup)?,
            max_count,
            concurrency: usize::try_from(concurrency).unwrap_or(4),
            deadline_reserve: Duration::from_millis(reserve_ms),
        })
    }
}

fn table_name(lookup: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    lookup("TABLE_NAME")
        .filter(|name| !name.trim().is_empty())
        .ok_or(ConfigError::Missing("TABLE_NAME"))
}

/// Reads `name` as an integer in `1..=max`, or `default` when unset.
fn bounded(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u32,
    max: u32,
) -> Result<u32, ConfigError> {
    let Some(raw) = lookup(name) else {
        return if default <= max {
            Ok(default)
        } else {
            Err(ConfigError::DefaultAboveMax {
                name,
                value: default,
                max_name: "its maximum",
                max,
            })
        };
    };
    match raw.trim().parse::<u32>() {
        Ok(value) if (1..=max).contains(&value) => Ok(value),
        _ => Err(ConfigError::OutOfRange {
            name,
            value: raw,
            min: 1,
            max,
        }),
    }
}

/// Reads `name` as an integer in `min..=max`, or `default` when unset.
fn bounded_u64(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = lookup(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(ConfigError::OutOfRangeU64 {
            name,
            value: raw,
            min,
            max,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_only_the_table_is_set() {
        let c = config(&[("TABLE_NAME", "t")]).expect("valid");
        assert_eq!(
            (
                c.max_segments,
                c.max_limit,
                c.default_segments,
                c.default_limit
            ),
            (64, 1000, 4, 100)
        );
    }

    #[test]
    fn the_table_is_required() {
        assert_eq!(config(&[]), Err(ConfigError::Missing("TABLE_NAME")));
        assert_eq!(
            config(&[("TABLE_NAME", " ")]),
            Err(ConfigError::Missing("TABLE_NAME"))
        );
    }

    #[test]
    fn bounds_are_enforced_and_named() {
        let err = config(&[("TABLE_NAME", "t"), ("MAX_LIMIT", "0")]).unwrap_err();
        assert!(err.to_string().contains("MAX_LIMIT"), "{err}");
        let err = config(&[("TABLE_NAME", "t"), ("MAX_SEGMENTS", "x")]).unwrap_err();
        assert!(err.to_string().contains("MAX_SEGMENTS"), "{err}");
        let err = config(&[("TABLE_NAME", "t"), ("MAX_RESPONSE_BYTES", "1000")]).unwrap_err();
        assert!(err.to_string().contains("MAX_RESPONSE_BYTES"), "{err}");
        let c = config(&[
            ("TABLE_NAME", "t"),
            ("DEADLINE_RESERVE_MS", "0"),
            ("CURSOR_SECRET", "k"),
        ])
        .expect("valid");
        assert_eq!(
            (c.deadline_reserve_ms, c.cursor_secret.as_slice()),
            (0, &b"k"[..])
        );
    }

    #[test]
    fn seeder_settings_are_bounded_too() {
        let vars = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let read = |pairs: &[(&str, &str)]| {
            let vars = vars(pairs);
            SeederConfig::from_lookup(|name| vars.get(name).cloned())
        };
        let c = read(&[("TABLE_NAME", "t")]).expect("valid");
        assert_eq!(
            (c.max_count, c.concurrency, c.deadline_reserve),
            (100_000, 4, Duration::from_secs(3))
        );
        assert_eq!(read(&[]), Err(ConfigError::Missing("TABLE_NAME")));
        let err = read(&[("TABLE_NAME", "t"), ("SEED_CONCURRENCY", "0")]).unwrap_err();
        assert!(err.to_string().contains("SEED_CONCURRENCY"), "{err}");
    }

    #[test]
    fn a_default_cannot_exceed_its_maximum() {
        let err = config(&[("TABLE_NAME", "t"), ("MAX_SEGMENTS", "2")]).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::DefaultAboveMax {
                name: "DEFAULT_SEGMENTS",
                ..
            }
        ));
        let c = config(&[
            ("TABLE_NAME", "t"),
            ("MAX_SEGMENTS", "2"),
            ("DEFAULT_SEGMENTS", "2"),
        ])
        .expect("valid");
        assert_eq!(c.default_segments, 2);
    }
}
