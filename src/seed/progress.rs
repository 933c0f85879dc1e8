//! Progress of a seeding run or a load on the command line: a bar on a terminal (a
//! counter when the total is not known, as for a stream), otherwise (logs, CI) a plain
//! line every second on standard error.

use super::writer::WriteReport;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Shows how many of `total` items (when known) are written.
#[derive(Debug)]
pub enum Progress {
    /// On a terminal.
    Bar(ProgressBar),
    /// Anywhere else: a line a second at most.
    Lines {
        /// Items to write, when known.
        total: Option<u64>,
        /// When the last line went out.
        last: Instant,
    },
}

impl Progress {
    /// A bar when standard error is a terminal, lines otherwise.
    pub fn new(total: Option<u64>) -> Self {
        if std::io::stderr().is_terminal() {
            let (bar, template) = match total {
                Some(total) => (
                    ProgressBar::new(total),
                    "{bar:40} {pos}/{len} items, {elapsed} elapsed, eta {eta}",
                ),
                None => (
                    ProgressBar::no_length(),
                    "{spinner} {pos} items, {elapsed} elapsed",
                ),
            };
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            Self::Bar(bar)
        } else {
            Self::Lines {
                total,
                last: Instant::now(),
            }
        }
    }

    /// Shows the running totals.
    pub fn update(&mut self, report: &WriteReport) {
        match self {
            Self::Bar(bar) => bar.set_position(report.written),
            Self::Lines { total, last } => {
                if last.elapsed() >= Duration::from_secs(1) {
                    *last = Instant::now();
                    match total {
                        Some(total) => eprintln!("written {} of {total}", report.written),
                        None => eprintln!("written {}", report.written),
                    }
                }
            }
        }
    }

    /// Clears the bar, so the summary line stands alone.
    pub fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
