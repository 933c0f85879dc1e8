//! Progress of a seeding run or a load on the command line, with the figures and the
//! look of `scanstream`'s ([`crate::cli::progress`]): a bar on a terminal (a counter
//! when the total is not known, as for a stream), otherwise (logs, CI) a plain line every
//! few seconds on standard error.

use crate::cli::progress::{self as shown, Sample, Total, Window};
use crate::dynamo::writer::WriteReport;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

/// Shows how many of `total` items (when known) are written.
#[derive(Debug)]
pub struct Progress {
    /// On a terminal.
    bar: Option<ProgressBar>,
    /// Items to write, when known.
    total: Option<u64>,
    /// When the run started, for the rates.
    started: Instant,
    /// Recent totals, for items/s and the ETA.
    window: Window,
    /// When the last plain line went out.
    last: Instant,
}

impl Progress {
    /// A bar when standard error is a terminal, lines otherwise.
    pub fn new(total: Option<u64>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| match total {
            Some(total) => ProgressBar::new(total).with_style(shown::bar_style()),
            None => ProgressBar::no_length().with_style(
                ProgressStyle::with_template("{spinner} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        });
        Self {
            bar,
            total,
            started: Instant::now(),
            window: Window::default(),
            last: Instant::now(),
        }
    }

    /// Shows the running totals.
    pub fn update(&mut self, report: &WriteReport) {
        let sample = Sample {
            done: report.written,
            total: self.total.map(|items| Total { items, exact: true }),
            retries: report.retries,
            ..Sample::default()
        };
        self.window
            .push(self.started.elapsed().as_secs_f64(), report.written, 0);
        let rates = self.window.rates(false);
        match &self.bar {
            Some(bar) if sample.total.is_some() => {
                bar.set_position(report.written);
                bar.set_prefix(shown::head(&sample, &rates));
                bar.set_message(shown::tail(&sample, &rates));
            }
            Some(bar) => {
                bar.set_position(report.written);
                bar.set_message(shown::line(&sample, &rates));
            }
            None => {
                if self.last.elapsed() >= shown::PLAIN_INTERVAL {
                    self.last = Instant::now();
                    eprintln!("{}", shown::line(&sample, &rates));
                }
            }
        }
    }

    /// Clears the bar, so the summary line stands alone.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
