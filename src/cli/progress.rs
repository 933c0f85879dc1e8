//! Progress of a long read (`scanstream pull`) or write (`scanstream seed`, `seeder`) on
//! standard error: an `indicatif` bar on a terminal, one plain line every few seconds
//! anywhere else (logs, CI: no ANSI codes), nothing with `--quiet`.
//!
//! The workers keep atomic counters; a ticker samples them, and the pure [`line`] turns a
//! [`Sample`] and its [`Rates`] into the text both the bar and the plain lines show, so
//! the arithmetic (percent capped at 100, the estimate passed, the ETA) is unit-tested
//! without a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a plain line goes out off a terminal: often enough to show a run is alive,
/// seldom enough not to flood a CI log.
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

/// How often the counters are sampled (and the bar redrawn).
const TICK: Duration = Duration::from_millis(500);

/// The span the rates are measured over: long enough to smooth one call's burst, short
/// enough that the ETA follows a run that slows down (a throttled link, fewer calls).
const RATE_WINDOW: Duration = Duration::from_secs(15);

/// The least time between two samples a [`Window`] keeps, in seconds.
const MIN_SPACING: f64 = 0.2;

/// The table's approximate size, as the streamer's headers report it (DynamoDB's
/// `ItemCount` and `TableSizeBytes`, refreshed about every six hours). Set by whichever
/// call sees it first; all calls of a pull read the same table.
#[derive(Debug, Default)]
pub struct Estimate {
    known: AtomicBool,
    items: AtomicU64,
    bytes: AtomicU64,
}

impl Estimate {
    /// Records a reported size.
    pub fn set(&self, items: u64, bytes: u64) {
        self.items.store(items, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
        self.known.store(true, Ordering::Release);
    }

    /// `(items, bytes)`, once a call has reported them.
    pub fn get(&self) -> Option<(u64, u64)> {
        self.known.load(Ordering::Acquire).then(|| {
            (
                self.items.load(Ordering::Relaxed),
                self.bytes.load(Ordering::Relaxed),
            )
        })
    }
}

/// A total to show progress against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    /// Items.
    pub items: u64,
    /// Exactly known (`seed --count`), or DynamoDB's approximation (a pull): shown as
    /// `~N`, and it may be passed.
    pub exact: bool,
}

/// The counters at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    /// Items so far: for a pull, arrived (committed or still in a call's spool); for
    /// seeding, written.
    pub done: u64,
    /// Items committed to the output (a pull), when that differs from `done`.
    pub committed: Option<u64>,
    /// What `done` goes towards, when known.
    pub total: Option<Total>,
    /// Body bytes received so far, when there is a wire to speak of.
    pub wire_bytes: Option<u64>,
    /// Calls (invocations) in progress.
    pub running: Option<u64>,
    /// Calls made again so far.
    pub retries: u64,
}

/// Rates over the last [`RATE_WINDOW`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rates {
    /// Items a second (of `done`).
    pub items_per_s: f64,
    /// Wire bytes a second.
    pub wire_bytes_per_s: Option<f64>,
}

/// The percentage of `total` that `done` is, never above 100 and 100 only when reached;
/// `true` when `done` went past the total (an approximate count that was low).
pub fn percent(done: u64, total: u64) -> (u64, bool) {
    if total == 0 {
        return (100, done > 0);
    }
    let percent = (u128::from(done) * 100 / u128::from(total)).min(100);
    (percent as u64, done > total)
}

/// When `done` reaches `total` at `items_per_s`; `None` when that cannot be said (no
/// rate yet, or the total already passed).
pub fn eta(done: u64, total: u64, items_per_s: f64) -> Option<Duration> {
    if done == total {
        return Some(Duration::ZERO);
    }
    if done > total || !(items_per_s.is_finite() && items_per_s > 0.0) {
        return None;
    }
    let seconds = (total - done) as f64 / items_per_s;
    // Beyond a year is no estimate worth showing.
    (seconds < 3.2e7).then(|| Duration::from_secs_f64(seconds.ceil()))
}

/// `1h02m`, `4m05s`, `12s`; `10m` and `2h` when that is all.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, 0, _) if s.is_multiple_of(3600) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// `1.2 MB/s`, or `48 kB/s` below a megabyte a second.
pub fn per_second(bytes_per_s: f64) -> String {
    if bytes_per_s >= 1e6 {
        format!("{:.1} MB/s", bytes_per_s / 1e6)
    } else {
        format!("{:.0} kB/s", bytes_per_s / 1e3)
    }
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The figures of `sample`, one line, plain ASCII: what the plain lines say, and the
/// bar's two lines ([`head`] beside the bar, [`tail`] under it) put together.
pub fn line(sample: &Sample, rates: &Rates) -> String {
    format!("{}, {}", head(sample, rates), tail(sample, rates))
}

/// How far, and how long is left: `35% 7,136 of ~20,000 items, ETA 11s`; without a
/// total, `7,136 items`. At most about 60 characters, so it fits beside a bar.
pub fn head(sample: &Sample, rates: &Rates) -> String {
    let Some(total) = sample.total else {
        return format!("{} items", thousands(sample.done));
    };
    let (percent, passed) = percent(sample.done, total.items);
    let about = if total.exact { "" } else { "~" };
    let mut head = format!(
        "{percent}% {} of {about}{} items",
        thousands(sample.done),
        thousands(total.items)
    );
    if passed {
        head.push_str(" (estimate passed)");
    }
    head.push_str(&match eta(sample.done, total.items, rates.items_per_s) {
        Some(left) => format!(", ETA {}", duration(left)),
        None if passed => ", ETA unknown".to_string(),
        None => ", ETA -".to_string(),
    });
    head
}

/// How fast, and the calls: rates, committed items, calls running, retries.
pub fn tail(sample: &Sample, rates: &Rates) -> String {
    let mut parts = vec![format!(
        "{} items/s",
        thousands(rates.items_per_s.round() as u64)
    )];
    if let Some(bytes_per_s) = rates.wire_bytes_per_s {
        parts.push(format!("{} on the wire", per_second(bytes_per_s)));
    }
    if let Some(committed) = sample.committed {
        parts.push(format!("{} committed", thousands(committed)));
    }
    if let Some(running) = sample.running {
        let calls = if running == 1 { "call" } else { "calls" };
        parts.push(format!("{running} {calls} running"));
    }
    let retries = if sample.retries == 1 {
        "retry"
    } else {
        "retries"
    };
    parts.push(format!("{} {retries}", sample.retries));
    parts.join(", ")
}

/// Rates over a sliding window of samples.
#[derive(Debug, Default)]
pub struct Window {
    /// (seconds since the start, done, wire bytes), oldest first.
    samples: VecDeque<(f64, u64, u64)>,
}

impl Window {
    /// Adds the sample taken `at` seconds into the run, and forgets those older than
    /// the window (keeping one at or before its start, so the span is the whole window).
    pub fn push(&mut self, at: f64, done: u64, wire_bytes: u64) {
        // Samples closer together than [`MIN_SPACING`] replace the newest one: a caller
        // that pushes per batch keeps the window at a few hundred samples.
        let len = self.samples.len();
        if len >= 2 && at - self.samples[len - 2].0 < MIN_SPACING {
            self.samples.pop_back();
        }
        self.samples.push_back((at, done, wire_bytes));
        let start = at - RATE_WINDOW.as_secs_f64();
        while self.samples.len() > 2 && self.samples[1].0 <= start {
            self.samples.pop_front();
        }
    }

    /// Items and wire bytes a second between the oldest sample kept and the newest. A
    /// count that went down (a cut-off call's items given up) is a rate of 0, not less.
    pub fn rates(&self, wire: bool) -> Rates {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return Rates::default();
        };
        let span = last.0 - first.0;
        if span <= 0.0 {
            return Rates {
                items_per_s: 0.0,
                wire_bytes_per_s: wire.then_some(0.0),
            };
        }
        let per_s = |a: u64, b: u64| b.saturating_sub(a) as f64 / span;
        Rates {
            items_per_s: per_s(first.1, last.1),
            wire_bytes_per_s: wire.then(|| per_s(first.2, last.2)),
        }
    }
}

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An `indicatif` bar (standard error is a terminal).
    Bar,
    /// A plain line every [`PLAIN_INTERVAL`].
    Lines,
    /// Nothing (`--quiet`).
    Quiet,
}

impl Mode {
    /// Nothing when `quiet`, a bar on a terminal, plain lines otherwise.
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            Self::Quiet
        } else if std::io::stderr().is_terminal() {
            Self::Bar
        } else {
            Self::Lines
        }
    }
}

/// The running display; [`Shown::finish`] clears it before the summary.
#[derive(Debug)]
pub struct Shown {
    task: Option<tokio::task::JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

/// Shows the figures `sample` gives, as `mode` says, until [`Shown::finish`].
pub fn show<F>(mode: Mode, sample: F) -> Shown
where
    F: Fn() -> Sample + Send + 'static,
{
    let bar = (mode == Mode::Bar).then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(spinner_style());
        bar
    });
    let task = (mode != Mode::Quiet).then(|| {
        let bar = bar.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut window = Window::default();
            let mut last_line = Instant::now();
            let mut has_length = false;
            loop {
                let now = sample();
                let at = started.elapsed().as_secs_f64();
                window.push(at, now.done, now.wire_bytes.unwrap_or(0));
                let rates = window.rates(now.wire_bytes.is_some());
                match &bar {
                    Some(bar) => match now.total {
                        Some(total) => {
                            if !has_length {
                                bar.set_style(bar_style());
                                has_length = true;
                            }
                            bar.set_length(total.items.max(1));
                            // Never past the end, whatever the approximate total said.
                            bar.set_position(now.done.min(total.items));
                            bar.set_prefix(head(&now, &rates));
                            bar.set_message(tail(&now, &rates));
                        }
                        None => bar.set_message(line(&now, &rates)),
                    },
                    None => {
                        if last_line.elapsed() >= PLAIN_INTERVAL {
                            last_line = Instant::now();
                            eprintln!("{}", line(&now, &rates));
                        }
                    }
                }
                tokio::time::sleep(TICK).await;
            }
        })
    });
    Shown { task, bar }
}

impl Shown {
    /// Stops the display and clears the bar, so the summary line stands alone.
    pub fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The bar and how far on one line, the rates and calls under it: each fits 80 columns.
pub fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{bar:24.cyan/blue} {prefix}\n{wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_capped_and_says_when_the_estimate_was_passed() {
        assert_eq!(percent(0, 200), (0, false));
        assert_eq!(percent(199, 200), (99, false), "100 only when reached");
        assert_eq!(percent(200, 200), (100, false));
        assert_eq!(percent(260, 200), (100, true), "never above 100");
        assert_eq!(percent(u64::MAX, u64::MAX - 1), (100, true), "no overflow");
        // A table DynamoDB says is empty, that is not.
        assert_eq!(percent(0, 0), (100, false));
        assert_eq!(percent(5, 0), (100, true));
    }

    #[test]
    fn eta_is_what_is_left_at_the_rate() {
        assert_eq!(eta(250, 1000, 50.0), Some(Duration::from_secs(15)));
        assert_eq!(
            eta(999, 1000, 3.0),
            Some(Duration::from_secs(1)),
            "rounded up"
        );
        assert_eq!(eta(1000, 1000, 50.0), Some(Duration::ZERO));
        assert_eq!(
            eta(1000, 1000, 0.0),
            Some(Duration::ZERO),
            "done, rate or not"
        );
        assert_eq!(eta(1001, 1000, 50.0), None, "past the estimate");
        assert_eq!(eta(10, 1000, 0.0), None, "no rate yet");
        assert_eq!(eta(10, 1000, f64::NAN), None);
        assert_eq!(eta(0, u64::MAX, 1.0), None, "beyond a year");
    }

    #[test]
    fn durations_and_counts_read_as_a_person_writes_them() {
        assert_eq!(duration(Duration::from_secs(12)), "12s");
        assert_eq!(duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(duration(Duration::from_secs(3720)), "1h02m");
        assert_eq!(duration(Duration::from_secs(600)), "10m");
        assert_eq!(duration(Duration::from_secs(7200)), "2h");
        assert_eq!(duration(Duration::from_secs(7201)), "2h00m");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(per_second(1_234_567.0), "1.2 MB/s");
        assert_eq!(per_second(48_400.0), "48 kB/s");
    }

    #[test]
    fn a_pull_line_shows_arrived_committed_and_the_rest() {
        let sample = Sample {
            done: 7_300,
            committed: Some(5_000),
            total: Some(Total {
                items: 20_000,
                exact: false,
            }),
            wire_bytes: Some(1),
            running: Some(4),
            retries: 1,
        };
        let rates = Rates {
            items_per_s: 3_650.4,
            wire_bytes_per_s: Some(1_234_567.0),
        };
        assert_eq!(
            line(&sample, &rates),
            "36% 7,300 of ~20,000 items, ETA 4s, 3,650 items/s, 1.2 MB/s on the wire, \
             5,000 committed, 4 calls running, 1 retry"
        );
    }

    #[test]
    fn a_passed_estimate_is_said_and_shows_no_eta() {
        let sample = Sample {
            done: 20_500,
            committed: Some(20_500),
            total: Some(Total {
                items: 20_000,
                exact: false,
            }),
            running: Some(1),
            ..Sample::default()
        };
        let text = line(&sample, &Rates::default());
        assert!(
            text.starts_with("100% 20,500 of ~20,000 items (estimate passed), ETA unknown,"),
            "{text}"
        );
        assert!(text.ends_with("1 call running, 0 retries"), "{text}");
    }

    #[test]
    fn without_a_total_there_is_no_percent_and_no_eta() {
        let sample = Sample {
            done: 12,
            committed: Some(0),
            ..Sample::default()
        };
        let text = line(&sample, &Rates::default());
        assert_eq!(text, "12 items, 0 items/s, 0 committed, 0 retries");
        assert!(!text.contains('%') && !text.contains("ETA"));
    }

    #[test]
    fn an_exact_total_has_no_tilde() {
        let sample = Sample {
            done: 3_000,
            total: Some(Total {
                items: 10_000,
                exact: true,
            }),
            ..Sample::default()
        };
        let rates = Rates {
            items_per_s: 1_000.0,
            wire_bytes_per_s: None,
        };
        assert_eq!(
            line(&sample, &rates),
            "30% 3,000 of 10,000 items, ETA 7s, 1,000 items/s, 0 retries"
        );
    }

    #[test]
    fn rates_come_from_the_window_and_never_go_below_zero() {
        let mut window = Window::default();
        assert_eq!(window.rates(true).items_per_s, 0.0);
        window.push(0.0, 0, 0);
        window.push(1.0, 100, 1_000);
        window.push(2.0, 300, 3_000);
        let rates = window.rates(true);
        assert_eq!(rates.items_per_s, 150.0);
        assert_eq!(rates.wire_bytes_per_s, Some(1_500.0));
        assert_eq!(window.rates(false).wire_bytes_per_s, None);
        // After 30 s at 10 items/s the early burst has left the window.
        for s in 3..=32 {
            window.push(f64::from(s), 300 + 10 * (s as u64 - 2), 3_000);
        }
        let rates = window.rates(true);
        assert!((rates.items_per_s - 10.0).abs() < 1e-9, "{rates:?}");
        // A cut-off call's items given up: fewer than before.
        window.push(33.0, 0, 3_000);
        assert_eq!(window.rates(true).items_per_s, 0.0);
        // Thousands of pushes a second keep a few samples a second.
        let mut busy = Window::default();
        for i in 0..100_000u64 {
            busy.push(i as f64 / 1000.0, i * 25, 0);
        }
        assert!(busy.samples.len() <= 80, "{}", busy.samples.len());
        let rate = busy.rates(false).items_per_s;
        assert!((rate - 25_000.0).abs() < 1.0, "{rate}");
    }

    #[test]
    fn plain_lines_have_no_escape_codes() {
        let sample = Sample {
            done: 1,
            total: Some(Total {
                items: 2,
                exact: false,
            }),
            ..Sample::default()
        };
        assert!(line(&sample, &Rates::default()).is_ascii());
        assert!(!line(&sample, &Rates::default()).contains('\u{1b}'));
    }

    #[test]
    fn an_estimate_is_unknown_until_set() {
        let estimate = Estimate::default();
        assert_eq!(estimate.get(), None);
        estimate.set(0, 0);
        assert_eq!(estimate.get(), Some((0, 0)));
        estimate.set(20_000, 13_000_000);
        assert_eq!(estimate.get(), Some((20_000, 13_000_000)));
    }
}
