//! Settings of the streamer and of the seeder function, read from the environment and
//! validated once at cold start.
//!
//! A bad setting stops the function before it serves anything, with a message naming the
//! variable, rather than surfacing later as a confusing per-request error.

use crate::dynamo::client::CallSettings;
use crate::format::limits::{
    LAMBDA_MAX_RESPONSE_BYTES, MAX_TOTAL_SEGMENTS, MIN_PART_BYTES, STREAMER_RESPONSE_BUDGET,
};
use crate::format::location::S3Location;
use std::env;
use std::str::FromStr;
use std::time::Duration;

/// `MAX_CURSOR_BYTES` when unset: room for the worst-case cursor of 64 segments and of a
/// Query fan-out over 100 partitions (see [`crate::format::cursor::worst::worst_case_len`] and
/// [`crate::format::cursor::worst::worst_case_query_len`]), sent in a POST body.
pub const DEFAULT_MAX_CURSOR_BYTES: usize = 2 << 20;

/// The largest `MAX_PARTITIONS`: every partition is a position in the cursor.
const MAX_PARTITIONS_CEILING: u32 = 1000;

/// A setting that could not be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{name} must be an integer in {min}..={max}, got {value:?}")]
    OutOfRange {
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
        value: u64,
        max_name: &'static str,
        max: u64,
    },
    #[error("{name}: {why}")]
    Invalid { name: &'static str, why: String },
    #[error("{name} must be a decimal number of capacity units in (0, {max}], got {value:?}")]
    NotARate {
        name: &'static str,
        value: String,
        max: f64,
    },
    #[error(
        "MAX_CURSOR_BYTES ({max_cursor_bytes}) is too small for MAX_SEGMENTS ({max_segments}): \
         a cursor over that many segments can take {needed} bytes; raise MAX_CURSOR_BYTES \
         (at most {MAX_CURSOR_BYTES_CEILING}) or lower MAX_SEGMENTS"
    )]
    CursorCapTooSmall {
        max_cursor_bytes: usize,
        max_segments: u32,
        needed: usize,
    },
    #[error(
        "MAX_CURSOR_BYTES ({max_cursor_bytes}) is too small for MAX_PARTITIONS ({max_partitions}): \
         a cursor over that many partitions can take {needed} bytes; raise MAX_CURSOR_BYTES \
         (at most {MAX_CURSOR_BYTES_CEILING}) or lower MAX_PARTITIONS"
    )]
    PartitionCursorTooLarge {
        max_cursor_bytes: usize,
        max_partitions: u32,
        needed: usize,
    },
    #[error(
        "MAX_SEGMENTS ({max_segments}) pages in flight can take {needed_mb} MB at worst \
         ({WORST_PAGE_MB} MB each), more than {PAGES_SHARE_PERCENT}% of the function's \
         memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, {memory_mb} MB); give the function at \
         least {least_memory_mb} MB or lower MAX_SEGMENTS to at most {most_segments}"
    )]
    MemoryTooSmall {
        max_segments: u32,
        memory_mb: u64,
        needed_mb: u64,
        least_memory_mb: u64,
        most_segments: u64,
    },
}

/// The most memory one segment holds, in MB: its page as DynamoDB sent it, the items
/// parsed from it and its encoded lines, fetched or parked in the merge. Measured with
/// 212 segments (`bench-results/rss.md`): 9.3 MB a segment for 1.2 MB pages of control
/// characters only (6 bytes each as JSON). The worst page is 1.4 MB (DynamoDB stops
/// after the item that crosses 1 MB, and an item may be 400 KB): 10.9 MB, and a quarter
/// more for what the allocator keeps.
pub const WORST_PAGE_MB: u64 = 14;

/// The share of the function's memory that pages in flight may take: the rest is the
/// process (25 MB idle), the response being written and its compressor, and what the
/// allocator does not give back at once.
const PAGES_SHARE_PERCENT: u64 = 75;

/// The largest `MAX_CURSOR_BYTES`: a Function URL request carries at most 6 MB.
const MAX_CURSOR_BYTES_CEILING: u64 = 4 << 20;

/// Everything the streamer needs to know before its first request.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The table every request scans (`TABLE_NAME`); requests cannot pick another one.
    pub table_name: String,
    /// Upper bound of `?segments=` (`MAX_SEGMENTS`): each segment is one task and one
    /// page of memory, so this bounds both per invocation; on Lambda, checked at cold
    /// start against the function's memory ([`WORST_PAGE_MB`] a segment).
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
    /// Attempts and timeouts of every DynamoDB call.
    pub calls: CallSettings,
    /// Longest cursor accepted (`MAX_CURSOR_BYTES`, default 2 MiB); checked at cold start
    /// against the largest cursor `max_segments` can produce.
    pub max_cursor_bytes: usize,
    /// Keys the cursors' HMAC (`CURSOR_SECRET`); empty means anyone can mint a cursor,
    /// which selects nothing the caller could not scan anyway.
    pub cursor_secret: Vec<u8>,
    /// Ask DynamoDB for consumed capacity (`RETURN_CONSUMED_CAPACITY`, `TOTAL` or `NONE`;
    /// default `TOTAL`). DynamoDB Local scans about a tenth slower with it.
    pub consumed_capacity: bool,
    /// Upper bound of `?max_rcu=` (`MAX_RCU`, default 40,000: DynamoDB's default table
    /// read quota for on-demand tables).
    pub max_rcu: f64,
    /// `max_rcu` when the request does not say (`DEFAULT_MAX_RCU`; default none, no cap).
    pub default_max_rcu: Option<f64>,
    /// Most `pk` values one request may Query (`MAX_PARTITIONS`, default 100): each is
    /// a position in the cursor, so it is checked against `MAX_CURSOR_BYTES` at cold
    /// start as `MAX_SEGMENTS` is.
    pub max_partitions: u32,
    /// Where `to=` may write, and how; `None` (no `EXPORT_BUCKET`) turns `to=` off.
    pub export: Option<ExportSettings>,
}

/// The streamer's exports to S3 (`to=`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSettings {
    /// The one folder exports may be written under: `EXPORT_BUCKET`, and `EXPORT_PREFIX`
    /// (default the bucket's root).
    pub location: S3Location,
    /// The account that must own the bucket (`EXPORT_BUCKET_OWNER`, 12 digits): S3
    /// refuses every call otherwise, so a bucket re-created by another account after a
    /// deletion is never written to.
    pub expected_owner: Option<String>,
    /// A file is completed once it holds this many bytes (`EXPORT_FILE_BYTES`, default
    /// 64 MiB, 64 KiB to 4 GiB: it overshoots by at most a page, and the client copies
    /// it with CopyObject, which takes 5 GiB at most).
    pub file_bytes: u64,
    /// A part is uploaded once this many bytes are ready (`EXPORT_PART_BYTES`, default
    /// 8 MiB, S3's 5 MiB to 64 MiB): about what a call holds of its file in memory.
    pub part_bytes: usize,
    /// Time kept free before the deadline, beyond `DEADLINE_RESERVE_MS`, to upload the
    /// open file's last part and complete it (`EXPORT_RESERVE_MS`, default 5000, at least
    /// 1000).
    pub reserve: Duration,
}

impl ExportSettings {
    /// Reads the export settings; `None` when `EXPORT_BUCKET` is unset or empty.
    pub fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(BucketPlace {
            location,
            expected_owner,
        }) = BucketPlace::from_lookup(lookup, BucketNames::EXPORT)?
        else {
            return Ok(None);
        };
        let file_bytes = setting(lookup, "EXPORT_FILE_BYTES", 64 << 20, 64 << 10, 4 << 30)?;
        let part_bytes: u64 = setting(
            lookup,
            "EXPORT_PART_BYTES",
            8 << 20,
            MIN_PART_BYTES as u64,
            64 << 20,
        )?;
        Ok(Some(Self {
            location,
            expected_owner,
            file_bytes,
            part_bytes: usize::try_from(part_bytes).unwrap_or(MIN_PART_BYTES),
            // At least a second: with none, a read stopped by its deadline leaves no time
            // to complete its file, and a call that fills no file makes no progress.
            reserve: millis(
                lookup,
                "EXPORT_RESERVE_MS",
                Duration::from_secs(5),
                1000,
                600_000,
            )?,
        }))
    }
}

/// The names of a bucket's three settings.
#[derive(Debug, Clone, Copy)]
pub struct BucketNames {
    bucket: &'static str,
    prefix: &'static str,
    both: &'static str,
    owner: &'static str,
}

impl BucketNames {
    /// The streamer's `to=`.
    pub const EXPORT: Self = Self {
        bucket: "EXPORT_BUCKET",
        prefix: "EXPORT_PREFIX",
        both: "EXPORT_BUCKET/EXPORT_PREFIX",
        owner: "EXPORT_BUCKET_OWNER",
    };
    /// The seeder's `from=`.
    pub const IMPORT: Self = Self {
        bucket: "IMPORT_BUCKET",
        prefix: "IMPORT_PREFIX",
        both: "IMPORT_BUCKET/IMPORT_PREFIX",
        owner: "IMPORT_BUCKET_OWNER",
    };
}

/// The one folder a function may use in S3, and the account that must own its bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketPlace {
    /// The bucket and its prefix (default the bucket's root).
    pub location: S3Location,
    /// The account that must own the bucket (12 digits): S3 refuses every call otherwise,
    /// so a bucket re-created by another account after a deletion is never used.
    pub expected_owner: Option<String>,
}

impl BucketPlace {
    /// Reads a bucket's settings; `None` when its bucket is unset or empty.
    pub fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
        names: BucketNames,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(bucket) = lookup(names.bucket).filter(|b| !b.trim().is_empty()) else {
            return Ok(None);
        };
        let prefix = lookup(names.prefix).unwrap_or_default();
        let location = S3Location::parse(&format!("s3://{}/{}", bucket.trim(), prefix.trim()))
            .map_err(|why| ConfigError::Invalid {
                name: names.both,
                why,
            })?;
        let expected_owner = lookup(names.owner).filter(|o| !o.trim().is_empty());
        if let Some(owner) = &expected_owner
            && !(owner.len() == 12 && owner.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ConfigError::Invalid {
                name: names.owner,
                why: format!("an account id is 12 digits, got {owner:?}"),
            });
        }
        Ok(Some(Self {
            location,
            expected_owner,
        }))
    }
}

impl Config {
    /// What is allowed but deserves a line in the log at cold start.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut warnings = Vec::new();
        if self.cursor_secret.is_empty() {
            warnings.push(
                "CURSOR_SECRET is empty: anyone can make a cursor this function accepts (it \
                 still reads only TABLE_NAME, within MAX_SEGMENTS and MAX_CURSOR_BYTES); set \
                 a secret so that only this deployment can",
            );
        }
        warnings
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table_name = table_name(&lookup)?;
        let max_segments = setting(&lookup, "MAX_SEGMENTS", 64, 1, MAX_TOTAL_SEGMENTS)?;
        // A Limit past 10,000 only makes DynamoDB's 1 MB page cap the real limit.
        let max_limit = setting(&lookup, "MAX_LIMIT", 1000, 1, 10_000)?;
        let default_segments =
            bounded_default(&lookup, "DEFAULT_SEGMENTS", 4, max_segments, "MAX_SEGMENTS")?;
        let default_limit = bounded_default(&lookup, "DEFAULT_LIMIT", 100, max_limit, "MAX_LIMIT")?;
        // Below 4 MiB a single 1 MB page, base64-inflated, might not fit.
        let max_response_bytes = setting(
            &lookup,
            "MAX_RESPONSE_BYTES",
            STREAMER_RESPONSE_BUDGET,
            4 << 20,
            LAMBDA_MAX_RESPONSE_BYTES,
        )?;
        let deadline_reserve_ms = setting(&lookup, "DEADLINE_RESERVE_MS", 2000, 0, 600_000)?;
        let max_cursor_bytes: u64 = setting(
            &lookup,
            "MAX_CURSOR_BYTES",
            DEFAULT_MAX_CURSOR_BYTES as u64,
            1 << 10,
            MAX_CURSOR_BYTES_CEILING,
        )?;
        // At most 4 MiB by the bound just checked.
        let max_cursor_bytes =
            usize::try_from(max_cursor_bytes).unwrap_or(DEFAULT_MAX_CURSOR_BYTES);
        let max_rcu = rcu(&lookup, "MAX_RCU", 1_000_000.0)?.unwrap_or(40_000.0);
        let default_max_rcu = rcu(&lookup, "DEFAULT_MAX_RCU", max_rcu)?;
        let needed = crate::format::cursor::worst::worst_case_len(max_segments);
        if needed > max_cursor_bytes {
            return Err(ConfigError::CursorCapTooSmall {
                max_cursor_bytes,
                max_segments,
                needed,
            });
        }
        pages_fit_memory(&lookup, max_segments)?;
        let max_partitions = setting(&lookup, "MAX_PARTITIONS", 100, 1, MAX_PARTITIONS_CEILING)?;
        let needed = crate::format::cursor::worst::worst_case_query_len(max_partitions);
        if needed > max_cursor_bytes {
            return Err(ConfigError::PartitionCursorTooLarge {
                max_cursor_bytes,
                max_partitions,
                needed,
            });
        }
        Ok(Self {
            table_name,
            max_segments,
            max_limit,
            default_segments,
            default_limit,
            max_response_bytes,
            deadline_reserve_ms,
            calls: call_settings(&lookup)?,
            max_cursor_bytes,
            cursor_secret: lookup("CURSOR_SECRET").unwrap_or_default().into_bytes(),
            max_rcu,
            default_max_rcu,
            max_partitions,
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
            export: ExportSettings::from_lookup(&lookup)?,
        })
    }
}

/// Seeder function settings, read once at cold start.
#[derive(Debug, Clone, PartialEq)]
pub struct SeederConfig {
    /// The table written to (`TABLE_NAME`).
    pub table_name: String,
    /// Most records one invocation may be asked for (`SEED_MAX_COUNT`, default 100,000).
    pub max_count: u64,
    /// Batches in flight (`SEED_CONCURRENCY`, default 4: DynamoDB Local gains nothing past it).
    pub concurrency: usize,
    /// Time kept free before the deadline (`DEADLINE_RESERVE_MS`, default 3000).
    pub deadline_reserve: Duration,
    /// Attempts and timeouts of every DynamoDB call.
    pub calls: CallSettings,
    /// Where `from=` may read (`IMPORT_BUCKET`, `IMPORT_PREFIX`, `IMPORT_BUCKET_OWNER`);
    /// `None` turns `from=` off.
    pub import: Option<BucketPlace>,
    /// Upper bound of `?max_wcu=` (`MAX_WCU`, default 40,000: DynamoDB's default table
    /// write quota for on-demand tables).
    pub max_wcu: f64,
}

impl SeederConfig {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let max_count = setting(&lookup, "SEED_MAX_COUNT", 100_000, 1, 10_000_000)?;
        let concurrency: u64 = setting(&lookup, "SEED_CONCURRENCY", 4, 1, 64)?;
        let reserve = millis(
            &lookup,
            "DEADLINE_RESERVE_MS",
            Duration::from_secs(3),
            0,
            600_000,
        )?;
        Ok(Self {
            table_name: table_name(&lookup)?,
            max_count,
            concurrency: usize::try_from(concurrency).unwrap_or(4),
            deadline_reserve: reserve,
            calls: call_settings(&lookup)?,
            import: BucketPlace::from_lookup(&lookup, BucketNames::IMPORT)?,
            max_wcu: rcu(&lookup, "MAX_WCU", 1_000_000.0)?.unwrap_or(40_000.0),
        })
    }
}

/// Reads the DynamoDB client's settings through `lookup`.
pub fn call_settings(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<CallSettings, ConfigError> {
    let defaults = CallSettings::default();
    Ok(CallSettings {
        max_attempts: setting(lookup, "MAX_ATTEMPTS", defaults.max_attempts, 1, 20)?,
        attempt_timeout: millis(
            lookup,
            "CALL_TIMEOUT_MS",
            defaults.attempt_timeout,
            100,
            60_000,
        )?,
        operation_timeout: millis(
            lookup,
            "OPERATION_TIMEOUT_MS",
            defaults.operation_timeout,
            100,
            900_000,
        )?,
    })
}

/// Refuses a `MAX_SEGMENTS` whose pages in flight, at their worst, would not fit the
/// function's share of memory. Lambda (and `cargo lambda watch`) sets the memory size;
/// elsewhere there is nothing to check against.
fn pages_fit_memory(
    lookup: &impl Fn(&str) -> Option<String>,
    max_segments: u32,
) -> Result<(), ConfigError> {
    const NAME: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
    if lookup(NAME).is_none() {
        return Ok(());
    }
    // Lambda's own range of memory sizes.
    let memory_mb: u64 = setting(lookup, NAME, 0, 128, 10_240)?;
    let pages_mb = memory_mb * PAGES_SHARE_PERCENT / 100;
    let needed_mb = u64::from(max_segments) * WORST_PAGE_MB;
    if needed_mb <= pages_mb {
        return Ok(());
    }
    Err(ConfigError::MemoryTooSmall {
        max_segments,
        memory_mb,
        needed_mb,
        least_memory_mb: (needed_mb * 100).div_ceil(PAGES_SHARE_PERCENT),
        most_segments: pages_mb / WORST_PAGE_MB,
    })
}

fn table_name(lookup: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    lookup("TABLE_NAME")
        .filter(|name| !name.trim().is_empty())
        .ok_or(ConfigError::Missing("TABLE_NAME"))
}

/// Reads `name` as an integer in `min..=max`, or `default` when unset.
fn setting<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + Into<u64> + Copy,
{
    let Some(raw) = lookup(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<T>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(ConfigError::OutOfRange {
            name,
            value: raw,
            min: min.into(),
            max: max.into(),
        }),
    }
}

/// A default that a maximum read just before must admit (`DEFAULT_SEGMENTS` under
/// `MAX_SEGMENTS`, say).
fn bounded_default(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u32,
    max: u32,
    max_name: &'static str,
) -> Result<u32, ConfigError> {
    if lookup(name).is_none() && default > max {
        return Err(ConfigError::DefaultAboveMax {
            name,
            value: default.into(),
            max_name,
            max: max.into(),
        });
    }
    setting(lookup, name, default, 1, max)
}

/// Reads `name` as read capacity units a second: a plain decimal in `(0, max]`.
fn rcu(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    max: f64,
) -> Result<Option<f64>, ConfigError> {
    let Some(raw) = lookup(name) else {
        return Ok(None);
    };
    crate::read::params::decimal(raw.trim(), max)
        .map(Some)
        .ok_or(ConfigError::NotARate {
            name,
            value: raw,
            max,
        })
}

/// Reads `name` as milliseconds in `min..=max`.
fn millis(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Duration,
    min: u64,
    max: u64,
) -> Result<Duration, ConfigError> {
    let default = u64::try_from(default.as_millis()).unwrap_or(max);
    setting(lookup, name, default, min, max).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The streamer's `MemorySize` in template.yml, whose `MaxSegments` goes up to 212.
    const TEMPLATE_MEMORY_MB: &str = "4096";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn exports_are_off_without_a_bucket_and_bounded_with_one() {
        assert_eq!(config(&[("TABLE_NAME", "t")]).expect("valid").export, None);
        assert_eq!(
            config(&[("TABLE_NAME", "t"), ("EXPORT_BUCKET", " ")])
                .expect("valid")
                .export,
            None
        );
        let export = config(&[("TABLE_NAME", "t"), ("EXPORT_BUCKET", "my-bucket")])
            .expect("valid")
            .export
            .expect("on");
        assert_eq!(export.location.to_string(), "s3://my-bucket");
        assert_eq!(
            (
                export.file_bytes,
                export.part_bytes,
                export.reserve,
                export.expected_owner
            ),
            (64 << 20, 8 << 20, Duration::from_secs(5), None)
        );
        let export = config(&[
            ("TABLE_NAME", "t"),
            ("EXPORT_BUCKET", "my-bucket"),
            ("EXPORT_PREFIX", "team/exports"),
            ("EXPORT_BUCKET_OWNER", "123456789012"),
            ("EXPORT_FILE_BYTES", "65536"),
            ("EXPORT_PART_BYTES", "67108864"),
        ])
        .expect("valid")
        .export
        .expect("on");
        assert_eq!(export.location.to_string(), "s3://my-bucket/team/exports");
        assert_eq!(export.expected_owner.as_deref(), Some("123456789012"));
        assert_eq!((export.file_bytes, export.part_bytes), (65536, 64 << 20));
        for (name, value, named) in [
            ("EXPORT_BUCKET", "My_Bucket", "EXPORT_BUCKET/EXPORT_PREFIX"),
            ("EXPORT_PREFIX", "a/../b", "EXPORT_BUCKET/EXPORT_PREFIX"),
            ("EXPORT_BUCKET_OWNER", "12345", "EXPORT_BUCKET_OWNER"),
            ("EXPORT_FILE_BYTES", "65535", "EXPORT_FILE_BYTES"),
            ("EXPORT_FILE_BYTES", "4294967297", "EXPORT_FILE_BYTES"),
            ("EXPORT_PART_BYTES", "5242879", "EXPORT_PART_BYTES"),
            ("EXPORT_PART_BYTES", "67108865", "EXPORT_PART_BYTES"),
            ("EXPORT_RESERVE_MS", "999", "EXPORT_RESERVE_MS"),
        ] {
            let mut vars = vec![("TABLE_NAME", "t"), ("EXPORT_BUCKET", "my-bucket")];
            vars.retain(|(k, _)| *k != name);
            vars.push((name, value));
            let err = config(&vars).expect_err(value).to_string();
            assert!(err.starts_with(named), "{name}={value}: {err}");
        }
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
        assert_eq!(c.calls, CallSettings::default());
        assert_eq!(read(&[]), Err(ConfigError::Missing("TABLE_NAME")));
        let err = read(&[("TABLE_NAME", "t"), ("SEED_CONCURRENCY", "0")]).unwrap_err();
        assert!(err.to_string().contains("SEED_CONCURRENCY"), "{err}");
        assert_eq!((c.import.clone(), c.max_wcu), (None, 40_000.0));
        let c = read(&[
            ("TABLE_NAME", "t"),
            ("IMPORT_BUCKET", "my-bucket"),
            ("IMPORT_PREFIX", "restores/"),
            ("IMPORT_BUCKET_OWNER", "123456789012"),
            ("MAX_WCU", "250.5"),
        ])
        .expect("valid");
        let import = c.import.expect("on");
        assert_eq!(import.location.to_string(), "s3://my-bucket/restores");
        assert_eq!(import.expected_owner.as_deref(), Some("123456789012"));
        assert_eq!(c.max_wcu, 250.5);
        assert_eq!(
            read(&[("TABLE_NAME", "t"), ("IMPORT_BUCKET", "  ")])
                .expect("valid")
                .import,
            None,
            "an empty bucket turns from= off"
        );
        for (name, value) in [
            ("IMPORT_BUCKET", "Bad_Bucket"),
            ("IMPORT_PREFIX", "a/../b"),
            ("IMPORT_BUCKET_OWNER", "12"),
            ("MAX_WCU", "0"),
            ("MAX_WCU", "1000001"),
        ] {
            let mut pairs = vec![("TABLE_NAME", "t"), ("IMPORT_BUCKET", "my-bucket")];
            pairs.retain(|(k, _)| *k != name);
            pairs.push((name, value));
            let err = read(&pairs).expect_err(value).to_string();
            assert!(
                err.contains(name.split('_').next().unwrap_or(name)),
                "{name}: {err}"
            );
        }
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

    #[test]
    fn calls_are_bounded_in_time_by_default() {
        let c = config(&[("TABLE_NAME", "t")]).expect("valid");
        // A stalled DynamoDB must become an error well within a minute.
        assert!(c.calls.attempt_timeout <= Duration::from_secs(10));
        assert!(c.calls.operation_timeout <= Duration::from_secs(45));
        let c = config(&[
            ("TABLE_NAME", "t"),
            ("CALL_TIMEOUT_MS", "1500"),
            ("OPERATION_TIMEOUT_MS", "4000"),
        ])
        .expect("valid");
        assert_eq!(
            (c.calls.attempt_timeout, c.calls.operation_timeout),
            (Duration::from_millis(1500), Duration::from_secs(4))
        );
        for bad in ["0", "99", "60001", "1e3", "-5", "soon"] {
            let err = config(&[("TABLE_NAME", "t"), ("CALL_TIMEOUT_MS", bad)]).unwrap_err();
            assert!(err.to_string().contains("CALL_TIMEOUT_MS"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_cursor_cap_must_admit_the_largest_cursor_of_max_segments() {
        let c = config(&[("TABLE_NAME", "t")]).expect("the defaults agree");
        assert!(crate::format::cursor::worst::worst_case_len(c.max_segments) <= c.max_cursor_bytes);
        let err = config(&[("TABLE_NAME", "t"), ("MAX_CURSOR_BYTES", "262144")]).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::CursorCapTooSmall {
                    max_segments: 64,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("MAX_SEGMENTS"), "{err}");
        // Fewer segments (and partitions) fit a smaller cap.
        config(&[
            ("TABLE_NAME", "t"),
            ("MAX_CURSOR_BYTES", "262144"),
            ("MAX_SEGMENTS", "16"),
            ("MAX_PARTITIONS", "8"),
        ])
        .expect("16 segments fit 256 KiB");
        // A million segments are checked without building a million positions.
        let err = config(&[("TABLE_NAME", "t"), ("MAX_SEGMENTS", "1000000")]).unwrap_err();
        assert!(
            matches!(err, ConfigError::CursorCapTooSmall { .. }),
            "{err}"
        );
    }

    #[test]
    fn the_cursor_cap_must_admit_a_fan_out_over_max_partitions() {
        let c = config(&[("TABLE_NAME", "t")]).expect("the defaults agree");
        assert_eq!(c.max_partitions, 100);
        assert!(crate::format::cursor::worst::worst_case_query_len(100) <= c.max_cursor_bytes);
        // 1 MiB holds 64 segments but not 100 partitions of the largest keys.
        let err = config(&[("TABLE_NAME", "t"), ("MAX_CURSOR_BYTES", "1048576")]).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::PartitionCursorTooLarge {
                    max_partitions: 100,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("MAX_PARTITIONS"), "{err}");
        config(&[
            ("TABLE_NAME", "t"),
            ("MAX_CURSOR_BYTES", "1048576"),
            ("MAX_PARTITIONS", "40"),
        ])
        .expect("40 partitions fit 1 MiB");
        for bad in ["0", "1001", "x"] {
            let err = config(&[("TABLE_NAME", "t"), ("MAX_PARTITIONS", bad)]).unwrap_err();
            assert!(err.to_string().contains("MAX_PARTITIONS"), "{bad}: {err}");
        }
    }

    #[test]
    fn an_empty_cursor_secret_is_warned_about_at_cold_start() {
        let c = config(&[("TABLE_NAME", "t")]).expect("valid");
        let warnings = c.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("CURSOR_SECRET"), "{warnings:?}");
        let c = config(&[("TABLE_NAME", "t"), ("CURSOR_SECRET", "")]).expect("valid");
        assert_eq!(c.warnings().len(), 1);
        let c = config(&[("TABLE_NAME", "t"), ("CURSOR_SECRET", "k")]).expect("valid");
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    }

    #[test]
    fn max_segments_pages_in_flight_must_fit_the_functions_memory() {
        let memory = |mb: &str, segments: &str| {
            config(&[
                ("TABLE_NAME", "t"),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", mb),
                ("MAX_SEGMENTS", segments),
            ])
        };
        // The template's largest MAX_SEGMENTS at the template's memory.
        memory(TEMPLATE_MEMORY_MB, "212").expect("the template's bounds start");
        let err = memory("512", "212").unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::MemoryTooSmall {
                    max_segments: 212,
                    memory_mb: 512,
                    ..
                }
            ),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("MAX_SEGMENTS") && text.contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            "{text}"
        );
        // The fewest megabytes and the most segments the message offers both start.
        let ConfigError::MemoryTooSmall {
            most_segments,
            least_memory_mb,
            ..
        } = err
        else {
            unreachable!()
        };
        memory("512", &most_segments.to_string()).expect("the most segments offered");
        memory(&least_memory_mb.to_string(), "212").expect("the least memory offered");
        assert!(memory("512", &(most_segments + 1).to_string()).is_err());
        assert!(memory(&(least_memory_mb - 1).to_string(), "212").is_err());
        // Off Lambda (no memory size), nothing to check against; a nonsense size is refused.
        config(&[("TABLE_NAME", "t"), ("MAX_SEGMENTS", "212")]).expect("no memory size");
        for bad in ["0", "127", "10241", "lots"] {
            let err = memory(bad, "4").unwrap_err();
            assert!(
                err.to_string().contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn read_rate_settings_are_plain_positive_decimals() {
        let c = config(&[("TABLE_NAME", "t")]).expect("valid");
        assert_eq!((c.max_rcu, c.default_max_rcu), (40_000.0, None));
        let c = config(&[
            ("TABLE_NAME", "t"),
            ("MAX_RCU", "500"),
            ("DEFAULT_MAX_RCU", "12.5"),
        ])
        .expect("valid");
        assert_eq!((c.max_rcu, c.default_max_rcu), (500.0, Some(12.5)));
        for bad in ["0", "-1", "1e3", "NaN", "inf", "x", "600"] {
            let err = config(&[
                ("TABLE_NAME", "t"),
                ("MAX_RCU", "500"),
                ("DEFAULT_MAX_RCU", bad),
            ])
            .unwrap_err();
            assert!(err.to_string().contains("DEFAULT_MAX_RCU"), "{bad}: {err}");
        }
    }
}
