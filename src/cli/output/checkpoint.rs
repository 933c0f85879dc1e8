//! What a checkpoint records, apart from how it is kept: the run's state (its slices'
//! cursors, the committed length and totals, the output's shape), what a call commits, and
//! the errors of committing. A leaf module: the committer ([`crate::cli::output::commit`]), the
//! checkpoint's files ([`crate::cli::output::stored`]) and the export writer all read it.

use crate::cli::output::CommitError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The checkpoint format's version. 2 added the output's shape and the totals a
/// `--trailer` reports; 3 keeps long cursors apart ([`crate::cli::output::stored`]) and marks a first
/// call being committed.
pub const VERSION: u32 = 3;

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// [`VERSION`].
    pub version: u32,
    /// The streamer's URL: a checkpoint resumes only the same read.
    pub url: String,
    /// `TotalSegments` of the read.
    pub total_segments: u32,
    /// Segments per slice.
    pub segments: u32,
    /// The options that decide which items, and which bytes per item, the output holds.
    pub shape: OutputShape,
    /// One per invocation.
    pub slices: Vec<SliceState>,
    /// Bytes of the output that are whole committed calls.
    pub committed_bytes: u64,
    /// Items in those bytes.
    pub committed_items: u64,
    /// Items DynamoDB read for them (the trailers' `scanned`).
    pub committed_scanned: u64,
    /// Pages they took (the trailers' `pages`).
    pub committed_pages: u64,
    /// Read capacity their trailers reported, when any did.
    pub committed_capacity: Option<f64>,
    /// SHA-256 (hex) of the output's last up-to-[`TAIL_BYTES`] bytes before
    /// `committed_bytes`, read back after the write: binds the checkpoint to the output it
    /// was saved for, so one resumed against a file another run wrote is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tail_sha256: Option<String>,
    /// While the first call with items is being committed: its length and the SHA-256 of
    /// its last up-to-[`TAIL_BYTES`] bytes, saved before the output is written. A run
    /// killed before its checkpoint committed that call knows those bytes as its own;
    /// any other bytes in an output whose checkpoint committed nothing are another run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_call: Option<(u64, String)>,
    /// `T0`: the client's clock (milliseconds since the epoch) when the fresh read was
    /// planned, before its first call. Every item is as it was at T0 or later, so the
    /// table's changes from T0 on, applied to the output, bring it up to date. A resumed
    /// run keeps the first run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
}

/// How many bytes before the committed length [`Checkpoint::output_tail_sha256`] covers.
pub const TAIL_BYTES: u64 = 64 * 1024;

/// The options that shape the output, by their flag's name (`--format`), each with its
/// value as given. An option left at its default is absent, so an option added later
/// (Query's `--pk`, `--sk-*`, `--filter`) is a new key: checkpoints written before it
/// existed still match a run that does not use it, and no format change is needed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OutputShape(BTreeMap<String, String>);

impl OutputShape {
    /// Records `flag` (with its dashes) as set to `value`.
    pub fn with(mut self, flag: &str, value: impl Into<String>) -> Self {
        self.0.insert(flag.to_string(), value.into());
        self
    }

    /// Whether `flag` is set.
    pub fn has(&self, flag: &str) -> bool {
        self.0.contains_key(flag)
    }

    /// The value recorded for `flag`, if any.
    pub fn get(&self, flag: &str) -> Option<&str> {
        self.0.get(flag).map(String::as_str)
    }

    /// Every option whose value differs, as `--flag: old -> new` (`not set` for an
    /// option absent on one side); empty when the shapes are the same.
    pub fn differences(&self, new: &Self) -> Vec<String> {
        let shown =
            |value: Option<&String>| value.map_or("not set".to_string(), |v| format!("{v:?}"));
        let mut flags: Vec<&String> = self.0.keys().chain(new.0.keys()).collect();
        flags.sort();
        flags.dedup();
        flags
            .into_iter()
            .filter(|flag| self.0.get(*flag) != new.0.get(*flag))
            .map(|flag| {
                format!(
                    "{flag}: the checkpoint has {}, this run asks for {}",
                    shown(self.0.get(flag)),
                    shown(new.0.get(flag))
                )
            })
            .collect()
    }
}

/// Where one slice stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SliceState {
    /// Its first segment.
    pub segment_offset: u32,
    /// The cursor of its last committed call, if it has one and is not done.
    pub cursor: Option<String>,
    /// Read to its end.
    pub done: bool,
}

/// What one committed call adds to the totals.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Committed {
    /// Item lines in its spool.
    pub items: u64,
    /// Its trailer's `scanned`.
    pub scanned: u64,
    /// Its trailer's `pages`.
    pub pages: u64,
    /// Its trailer's `consumed_capacity`.
    pub consumed_capacity: Option<f64>,
}

impl Committed {
    /// The totals of a call of `items` lines that ended with `trailer`.
    pub fn of(trailer: &crate::format::trailer::Trailer, items: u64) -> Self {
        Self {
            items,
            scanned: trailer.scanned,
            pages: trailer.pages,
            consumed_capacity: trailer.consumed_capacity,
        }
    }
}

/// A checkpoint resumes only the read it was made for.
pub(crate) fn check_same_read(
    saved: &Checkpoint,
    fresh: &Checkpoint,
    path: &Path,
) -> Result<(), CommitError> {
    // The shape first: another `--pk` set also cuts other slices, and is what to name.
    let differences = saved.shape.differences(&fresh.shape);
    if !differences.is_empty() {
        return Err(CommitError::Refused(format!(
            "the checkpoint {} is for another read of the table ({}): resuming would mix \
             two outputs in one file; run with the checkpoint's options, or --force to \
             start over",
            path.display(),
            differences.join("; ")
        )));
    }
    // A Scan has a slice per invocation; a Query's slices are its keys cut by
    // --invocations and --pk-per-call, and may be more or fewer than the invocations.
    let query = fresh.shape.has("--pk");
    let (slices, flags) = if query {
        ("slices", "--invocations, --pk-per-call")
    } else {
        ("--invocations", "--invocations")
    };
    let read = |c: &Checkpoint| {
        OutputShape::default()
            .with("URL", c.url.clone())
            .with(slices, c.slices.len().to_string())
            .with("--segments", c.segments.to_string())
    };
    let differences = read(saved).differences(&read(fresh));
    if !differences.is_empty() {
        return Err(CommitError::Refused(format!(
            "the checkpoint {} is for another read ({}): run with the same URL, \
             {flags} and --segments, or --force to start over",
            path.display(),
            differences.join("; ")
        )));
    }
    // A Query's slices are cuts of its sorted keys, which --invocations and --pk-per-call
    // decide: the same count of slices may still cut elsewhere.
    let offsets = |c: &Checkpoint| {
        c.slices
            .iter()
            .map(|s| s.segment_offset)
            .collect::<Vec<_>>()
    };
    if offsets(saved) != offsets(fresh) {
        return Err(CommitError::Refused(format!(
            "the checkpoint {} cuts the read into other slices: run with the same \
             --invocations and --pk-per-call, or --force to start over",
            path.display()
        )));
    }
    Ok(())
}
