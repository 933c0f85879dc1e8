//! The summary of a seeding run: one type for the command line's last line and for the
//! seeder function's last NDJSON line, so both say the same things.

use crate::dynamo::writer::WriteReport;
use serde::Serialize;
use std::fmt;
use std::time::Instant;

/// What a run wrote, and where to go on if it did not finish.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Every item asked for was written.
    pub complete: bool,
    /// Items asked for.
    pub requested: u64,
    /// Items DynamoDB accepted.
    pub written: u64,
    /// Batches completed.
    pub batches: u64,
    /// Calls that re-sent something.
    pub retries: u64,
    /// Items handed back unprocessed and sent again.
    pub unprocessed_resent: u64,
    /// Wall-clock time of the run.
    pub elapsed_ms: u64,
    /// Items written per second.
    pub items_per_s: f64,
    /// The index to continue from (`start=` / `--start`), when the run did not finish.
    pub next_start: Option<u64>,
    /// A file's load: every line up to this one (from 1, blank lines too) is written;
    /// the `after` of the call that goes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_through: Option<u64>,
    /// A file's load: the table written (its ARN and creation time), so a caller that
    /// resumes can tell a table created again under the same name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Items never written, all of them counted.
    pub failed: u64,
    /// Keys of the items not written.
    pub failed_keys: Vec<String>,
    /// Write capacity units DynamoDB reported consumed (`null` when it reported none).
    pub capacity: Option<f64>,
    /// Why items were not written.
    pub error: Option<SummaryError>,
}

/// A failure in a summary: a stable code and a fixed message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryError {
    /// See [`crate::format::error::ErrorKind::code`].
    pub code: &'static str,
    /// A fixed, safe description.
    pub message: &'static str,
}

impl Summary {
    /// The summary of `report`, for `requested` items starting at index `start` (each
    /// batch holds [`crate::format::limits::MAX_BATCH_WRITE_ITEMS`] consecutive indexes).
    pub fn new(report: &WriteReport, requested: u64, start: u64, started: Instant) -> Self {
        let batch = crate::format::limits::MAX_BATCH_WRITE_ITEMS as u64;
        Self {
            complete: report.is_complete(),
            requested,
            written: report.written,
            batches: report.batches,
            retries: report.retries,
            unprocessed_resent: report.unprocessed_resent,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            items_per_s: rate(report.written, started).round(),
            next_start: report
                .first_unfinished
                .map(|index| start + (index * batch).min(requested)),
            written_through: None,
            table: None,
            failed: report.failed,
            failed_keys: report.failed_keys.clone(),
            capacity: report.capacity,
            error: report.error.map(|kind| SummaryError {
                code: kind.code(),
                message: kind.message(),
            }),
        }
    }

    /// The summary of loading one file of `items` item lines into `table`: `complete`
    /// when all of it is written, else written up to line `written_through`.
    pub fn of_file(
        report: &WriteReport,
        items: u64,
        complete: bool,
        written_through: Option<u64>,
        table: String,
        started: Instant,
    ) -> Self {
        Self {
            complete,
            next_start: None,
            written_through,
            table: Some(table),
            ..Self::new(report, items, 0, started)
        }
    }
}

/// The command line's summary line.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "written {} of {} items in {:.2} s ({:.0} items/s); batches {}, retries {}, unprocessed re-sent {}",
            self.written,
            self.requested,
            self.elapsed_ms as f64 / 1000.0,
            self.items_per_s,
            self.batches,
            self.retries,
            self.unprocessed_resent,
        )?;
        if let Some(next) = self.next_start {
            write!(f, "; not finished, continue with --start {next}")?;
        }
        Ok(())
    }
}

/// Items per second, for summaries.
pub fn rate(items: u64, since: std::time::Instant) -> f64 {
    let secs = since.elapsed().as_secs_f64();
    if secs > 0.0 { items as f64 / secs } else { 0.0 }
}
