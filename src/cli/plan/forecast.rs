//! `scanstream plan URL`: what a full read of the table will take and cost, before it
//! starts, from the table's approximate size (the streamer's headers) and one small
//! sample call.
//!
//! The arithmetic is pure ([`Forecast::new`]) so it is unit-tested; the call is in
//! [`crate::cli`]. Times are what a Function URL's limits alone make of a read in
//! full-size calls: each response [`STREAMER_RESPONSE_BUDGET`] (the streamer's default
//! `MAX_RESPONSE_BYTES`; the last one of a slice the rest), its first [`BURST_BYTES`] at
//! full speed (counted as no time), then [`CAPPED_BYTES_PER_S`]. Not a lower bound: calls
//! cut smaller (`--max-items-per-call`, or a lower `MAX_RESPONSE_BYTES`) each have a
//! burst of their own, so more of the read goes at full speed; and DynamoDB, the function
//! itself and the client's link can make a read slower.

use crate::cli::progress::{duration, thousands};
use crate::format::limits::{
    BURST_BYTES, CAPPED_BYTES_PER_S, READ_UNIT_BYTES, STREAMER_RESPONSE_BUDGET,
};
use std::fmt::Write as _;
use std::time::Duration;

/// The table size per parallel Scan segment AWS suggests (one segment per 2 GB, "Parallel
/// scan", Amazon DynamoDB Developer Guide).
pub const BYTES_PER_SEGMENT: u64 = 2_000_000_000;

/// The invocation counts the table shows.
pub const SHOWN_INVOCATIONS: [u32; 4] = [1, 4, 16, 64];

/// The most invocations a suggestion goes to (`--invocations`' bound).
pub const MAX_INVOCATIONS: u32 = 1000;

/// What the sample call delivered.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SampleCall {
    /// Item lines.
    pub items: u64,
    /// Bytes of the item lines, decoded (the trailer left out).
    pub plain_item_bytes: u64,
    /// Body bytes, as on the wire.
    pub wire_bytes: u64,
    /// Body bytes, decoded (item lines and trailer).
    pub plain_bytes: u64,
    /// Read units the trailer reported, if any.
    pub consumed: Option<f64>,
    /// The sample read the whole table (its trailer says complete).
    pub complete: bool,
}

/// What the plan is asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Goal {
    /// `--target`: the time the read should take.
    pub target: Duration,
    /// `--capacity` and `--share`: the table's read units a second, and the fraction of
    /// them the read may take.
    pub capacity: Option<(f64, f64)>,
    /// `--consistent`: strongly consistent reads cost twice as much.
    pub consistent: bool,
}

/// One row of the table: K invocations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// Invocations.
    pub invocations: u32,
    /// Calls in all (each at most a response budget).
    pub calls: u64,
    /// The time the Function URL's limits give the read in full-size calls.
    pub time: Duration,
    /// The read units a second that time implies (`None` when it is no time: all within
    /// the burst).
    pub rcu_per_s: Option<f64>,
}

/// The suggested options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Suggestion {
    /// `--invocations`.
    pub invocations: u32,
    /// `--segments`.
    pub segments: u32,
    /// `--max-rcu`, when the read should be held to a rate.
    pub max_rcu: Option<u64>,
    /// The time with these options, as [`Row::time`] counts it.
    pub time: Duration,
    /// The target cannot be met even at [`MAX_INVOCATIONS`] (or within the share).
    pub short: bool,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// Items the read will go through (the headers', or the sample's when it read all).
    pub items: u64,
    /// The items figure is DynamoDB's approximation (not an exact count from the sample).
    pub approximate: bool,
    /// DynamoDB's count was stale (0, or below the sample's items) and the sample did not
    /// read the whole table: the total is unknown, `items` is the sample's, a floor.
    pub at_least: bool,
    /// `TableSizeBytes`, when reported.
    pub table_bytes: Option<u64>,
    /// Bytes an item, decoded.
    pub plain_per_item: f64,
    /// Bytes an item on the wire.
    pub wire_per_item: f64,
    /// Bytes of the whole read on the wire.
    pub wire_bytes: u64,
    /// Read units of a full read, eventually and strongly consistent.
    pub units: (f64, f64),
    /// For each of [`SHOWN_INVOCATIONS`].
    pub rows: Vec<Row>,
    /// What to run.
    pub suggestion: Suggestion,
}

/// Calls and time for `slice_bytes` read by one invocation: full calls of the
/// response budget, then the rest; each call's first [`BURST_BYTES`] are free.
pub fn slice_time(slice_bytes: u64) -> (u64, Duration) {
    if slice_bytes == 0 {
        return (1, Duration::ZERO);
    }
    let full = slice_bytes / STREAMER_RESPONSE_BUDGET;
    let rest = slice_bytes % STREAMER_RESPONSE_BUDGET;
    let capped = |bytes: u64| bytes.saturating_sub(BURST_BYTES) as f64 / CAPPED_BYTES_PER_S;
    let seconds = full as f64 * capped(STREAMER_RESPONSE_BUDGET) + capped(rest);
    (full + u64::from(rest > 0), Duration::from_secs_f64(seconds))
}

/// The row for `invocations` over `wire_bytes`: the slices are even, the largest one
/// sets the time.
pub fn row(invocations: u32, wire_bytes: u64, units: f64) -> Row {
    let k = u64::from(invocations.max(1));
    let slice = wire_bytes.div_ceil(k);
    let (calls, time) = slice_time(slice);
    let seconds = time.as_secs_f64();
    Row {
        invocations,
        calls: calls * k,
        time,
        rcu_per_s: (seconds > 0.0).then(|| units / seconds),
    }
}

impl Forecast {
    /// The plan for a table of `table_items` (and `table_bytes`) as reported, from
    /// `sample`; `None` when there is nothing to go on (no size reported and a sample
    /// that did not read the whole table).
    pub fn new(
        table_items: Option<u64>,
        table_bytes: Option<u64>,
        sample: &SampleCall,
        goal: &Goal,
    ) -> Option<Self> {
        // A sample that read everything is an exact count, better than DynamoDB's. One
        // that did not proves at least its own items: a header count below that (0 above
        // all, a table DynamoDB has not counted yet: it refreshes about every six hours)
        // is stale, so the total is unknown and the plan is for the sample's items, a
        // floor. The size that came with a stale count is stale too.
        let (items, approximate, at_least, table_bytes) = if sample.complete {
            (sample.items, false, false, table_bytes)
        } else {
            let reported = table_items?;
            if reported == 0 || reported < sample.items {
                (sample.items, true, true, None)
            } else {
                (reported, true, false, table_bytes)
            }
        };
        let per = |bytes: u64| {
            if sample.items == 0 {
                0.0
            } else {
                bytes as f64 / sample.items as f64
            }
        };
        let plain_per_item = per(sample.plain_item_bytes);
        // The trailer's share of the wire is left out in proportion.
        let item_share = if sample.plain_bytes == 0 {
            1.0
        } else {
            sample.plain_item_bytes as f64 / sample.plain_bytes as f64
        };
        let wire_per_item = per(sample.wire_bytes) * item_share;
        let wire_bytes = (wire_per_item * items as f64).ceil() as u64;
        // DynamoDB's own measure when it gave one; otherwise what the sample cost an item
        // (eventually consistent, unless asked otherwise), scaled.
        let strong = match table_bytes.filter(|&bytes| bytes > 0 || items == 0) {
            Some(bytes) => bytes.div_ceil(READ_UNIT_BYTES) as f64,
            None => match sample.consumed {
                Some(units) if sample.items > 0 => {
                    let per_item = units / sample.items as f64;
                    let per_item = if goal.consistent {
                        per_item
                    } else {
                        per_item * 2.0
                    };
                    (per_item * items as f64).ceil()
                }
                _ => 0.0,
            },
        };
        let units = (strong / 2.0, strong);
        let cost = if goal.consistent { units.1 } else { units.0 };
        let rows = SHOWN_INVOCATIONS
            .iter()
            .map(|&k| row(k, wire_bytes, cost))
            .collect();
        let suggestion = suggest(wire_bytes, table_bytes.unwrap_or(0), cost, goal);
        Some(Self {
            items,
            approximate,
            at_least,
            table_bytes,
            plain_per_item,
            wire_per_item,
            wire_bytes,
            units,
            rows,
            suggestion,
        })
    }
}

/// The fewest invocations that meet the goal, segments for the table's size, and the
/// read rate that spreads the read over the target (or the share of the capacity).
fn suggest(wire_bytes: u64, table_bytes: u64, units: f64, goal: &Goal) -> Suggestion {
    let target = goal.target.as_secs_f64();
    // A share of the capacity may allow less than the target needs: the read then takes
    // as long as that rate makes it.
    let share = goal.capacity.map(|(capacity, share)| capacity * share);
    let by_rate = |rate: f64| if rate > 0.0 { units / rate } else { 0.0 };
    let needed_rate = if target > 0.0 { units / target } else { units };
    let rate = match share {
        Some(share) => needed_rate.min(share),
        None => needed_rate,
    };
    let wanted = target.max(by_rate(rate));
    let mut invocations = MAX_INVOCATIONS;
    for k in 1..=MAX_INVOCATIONS {
        if row(k, wire_bytes, units).time.as_secs_f64() <= wanted {
            invocations = k;
            break;
        }
    }
    let lambda_time = row(invocations, wire_bytes, units).time.as_secs_f64();
    let time = lambda_time.max(by_rate(rate));
    let segments_total = table_bytes.div_ceil(BYTES_PER_SEGMENT).max(1);
    let segments = segments_total.div_ceil(u64::from(invocations)).clamp(2, 64) as u32;
    Suggestion {
        invocations,
        segments,
        max_rcu: (units > 0.0).then(|| rate.ceil().max(1.0) as u64),
        time: Duration::from_secs_f64(time),
        short: time > target * 1.000_001,
    }
}

/// `13.2 MB`, `712 B`.
pub fn bytes(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.1} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        n if n >= 1e4 => format!("{:.1} kB", n / 1e3),
        n => format!("{n:.0} B"),
    }
}

/// A time the limits give, as the table shows it.
fn limit_time(time: Duration) -> String {
    if time.is_zero() {
        "none: within the 6 MB burst".to_string()
    } else {
        duration(time.max(Duration::from_secs(1)))
    }
}

/// The plan as the command prints it.
///
/// `options` are the pull's own options the plan was made for (`--index`, `--fields`...),
/// as words, put into the suggested command after the suggestion's.
pub fn render(
    forecast: &Forecast,
    goal: &Goal,
    compress: &str,
    url: &str,
    options: &[String],
) -> String {
    let mut out = String::new();
    let f = forecast;
    let about = if f.approximate { "~" } else { "" };
    if f.at_least {
        let _ = writeln!(
            out,
            "table: at least {} items (the total is unknown)",
            thousands(f.items)
        );
        let _ = writeln!(
            out,
            "  (DynamoDB has not counted the table yet: its ItemCount, refreshed about every \
             six hours, is below the sample's; the figures below are for the sample's items, \
             a floor)"
        );
    } else {
        let _ = writeln!(
            out,
            "table: {about}{} items{}",
            thousands(f.items),
            match f.table_bytes {
                Some(b) => format!(", {about}{} as DynamoDB counts", bytes(b as f64)),
                None => String::new(),
            }
        );
        if f.approximate {
            let _ = writeln!(
                out,
                "  (DynamoDB's ItemCount and TableSizeBytes, refreshed about every six hours)"
            );
        } else {
            let _ = writeln!(out, "  (counted: the sample read the whole table)");
        }
    }
    let floor = if f.at_least { "at least " } else { "" };
    let ratio = if f.wire_per_item > 0.0 {
        format!(" ({:.2}x)", f.plain_per_item / f.wire_per_item)
    } else {
        String::new()
    };
    if f.plain_per_item > 0.0 {
        let _ = writeln!(
            out,
            "bytes an item: {} plain, {} {compress}{ratio}",
            bytes(f.plain_per_item),
            bytes(f.wire_per_item)
        );
    } else {
        let _ = writeln!(out, "bytes an item: none to measure (the sample was empty)");
    }
    let _ = writeln!(
        out,
        "whole read: {floor}{} on the wire ({compress}), {} plain",
        bytes(f.wire_bytes as f64),
        bytes(f.plain_per_item * f.items as f64)
    );
    let _ = writeln!(
        out,
        "read units: {floor}{} eventually consistent, {} strongly consistent",
        thousands(f.units.0.ceil() as u64),
        thousands(f.units.1.ceil() as u64)
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "invocations  calls  expected time, full 150 MB calls  read rate"
    );
    for row in &f.rows {
        let _ = writeln!(
            out,
            "{:>11}  {:>5}  {:<32}  {}",
            row.invocations,
            thousands(row.calls),
            limit_time(row.time),
            match row.rcu_per_s {
                Some(rate) => format!("{} RCU/s", thousands(rate.ceil() as u64)),
                None => "-".to_string(),
            }
        );
    }
    let s = &f.suggestion;
    let _ = writeln!(out);
    let goal_text = match goal.capacity {
        Some((capacity, share)) => format!(
            "--target {} within {:.0}% of {} RCU",
            duration(goal.target),
            share * 100.0,
            thousands(capacity.round() as u64)
        ),
        None => format!("--target {}", duration(goal.target)),
    };
    let command = pull_command(url, s, options);
    let _ = writeln!(
        out,
        "suggested for {goal_text}: {}{}",
        if s.time.is_zero() {
            "the whole read fits in one response's 6 MB burst".to_string()
        } else {
            format!("about {}", limit_time(s.time))
        },
        if s.short { " (longer than asked)" } else { "" }
    );
    let _ = writeln!(out, "  {command} -o table.ndjson");
    out
}

/// The suggested `scanstream pull`, every word quoted for a POSIX shell where it needs
/// it (a URL's `&` and `?`, a projection's spaces).
pub fn pull_command(url: &str, suggestion: &Suggestion, options: &[String]) -> String {
    let mut words = vec![
        "scanstream".to_string(),
        "pull".to_string(),
        url.to_string(),
        "--invocations".to_string(),
        suggestion.invocations.to_string(),
        "--segments".to_string(),
        suggestion.segments.to_string(),
    ];
    if let Some(rcu) = suggestion.max_rcu {
        words.extend(["--max-rcu".to_string(), rcu.to_string()]);
    }
    words.extend(options.iter().cloned());
    words
        .iter()
        .map(|word| shell_quote(word))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` as one word to a POSIX shell: as it is when it holds only characters no shell
/// treats specially, else in single quotes (a `'` in it as `'\''`).
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Parses `--target`: a whole number and a unit, `s`, `m` or `h` (`30s`, `10m`, `2h`),
/// from 1 second to 7 days.
pub fn parse_target(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{text:?} is not a duration: a whole number and s, m or h (30s, 10m, 2h), from 1s to 7 days"
        )
    };
    let unit = text.chars().last().ok_or_else(bad)?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        _ => return Err(bad()),
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let seconds = n * scale;
    if !(1..=7 * 24 * 3600).contains(&seconds) {
        return Err(bad());
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn goal(target: u64) -> Goal {
        Goal {
            target: Duration::from_secs(target),
            capacity: None,
            consistent: false,
        }
    }

    #[test]
    fn the_limits_are_aws_s_and_the_streamer_stops_under_them() {
        let config = crate::lambda::config::Config::from_lookup(|name| {
            (name == "TABLE_NAME").then(|| "t".to_string())
        })
        .expect("config");
        assert_eq!(
            config.max_response_bytes, STREAMER_RESPONSE_BUDGET,
            "the plan counts calls as the streamer cuts them"
        );
        const { assert!(STREAMER_RESPONSE_BUDGET <= crate::format::limits::LAMBDA_MAX_RESPONSE_BYTES) };
        const { assert!(BURST_BYTES < STREAMER_RESPONSE_BUDGET) };
    }

    #[test]
    fn a_slice_is_free_within_the_burst_then_capped() {
        assert_eq!(slice_time(0), (1, Duration::ZERO));
        assert_eq!(slice_time(BURST_BYTES), (1, Duration::ZERO));
        assert_eq!(
            slice_time(BURST_BYTES + 2_000_000),
            (1, Duration::from_secs(1))
        );
        // One full call: 144 MB after the burst at 2 MB/s.
        assert_eq!(
            slice_time(STREAMER_RESPONSE_BUDGET),
            (1, Duration::from_secs(72))
        );
        // Two full calls and 10 MB: each call has its own burst.
        assert_eq!(
            slice_time(2 * STREAMER_RESPONSE_BUDGET + 10_000_000),
            (3, Duration::from_secs(72 * 2 + 2))
        );
    }

    #[test]
    fn more_invocations_split_the_bytes_and_the_calls() {
        // 1.2 GB on the wire, 100,000 read units.
        let one = row(1, 1_200_000_000, 100_000.0);
        assert_eq!(one.calls, 8);
        assert_eq!(one.time, Duration::from_secs(8 * 72));
        assert!((one.rcu_per_s.expect("a rate") - 100_000.0 / 576.0).abs() < 1e-9);
        let four = row(4, 1_200_000_000, 100_000.0);
        // 300 MB a slice: two calls of 150 MB each.
        assert_eq!((four.calls, four.time), (8, Duration::from_secs(144)));
        let many = row(64, 1_200_000_000, 100_000.0);
        // 18.75 MB a slice: one call, 12.75 MB past the burst.
        assert_eq!(many.calls, 64);
        assert_eq!(many.time, Duration::from_secs_f64(6.375));
        let small = row(4, 1_000_000, 10.0);
        assert_eq!((small.time, small.rcu_per_s), (Duration::ZERO, None));
    }

    #[test]
    fn a_plan_from_the_headers_and_a_sample() {
        let sample = SampleCall {
            items: 1000,
            plain_item_bytes: 700_000,
            wire_bytes: 240_000,
            plain_bytes: 700_000,
            consumed: Some(80.0),
            complete: false,
        };
        let forecast = Forecast::new(Some(10_000_000), Some(6_553_600_000), &sample, &goal(600))
            .expect("a plan");
        assert!(forecast.approximate);
        assert_eq!(forecast.plain_per_item, 700.0);
        assert_eq!(forecast.wire_per_item, 240.0);
        assert_eq!(forecast.wire_bytes, 2_400_000_000);
        // 6.5536 GB / 4 KB = 1.6M strongly consistent units, half eventually.
        assert_eq!(forecast.units, (800_000.0, 1_600_000.0));
        let times: Vec<u64> = forecast.rows.iter().map(|r| r.time.as_secs()).collect();
        // 2.4 GB: 16 calls of 150 MB at 72 s each for one invocation.
        assert_eq!(times[0], 16 * 72);
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
        let s = forecast.suggestion;
        // Two invocations: 1.2 GB each, 8 calls, 576 s <= 600 s.
        assert_eq!(s.invocations, 2);
        assert_eq!(
            s.segments, 2,
            "6.5 GB: 4 segments of 2 GB over 2 invocations"
        );
        assert_eq!(
            s.max_rcu,
            Some(1334),
            "800,000 units over 600 s, rounded up"
        );
        assert!(!s.short);
    }

    #[test]
    fn a_share_of_the_capacity_can_make_the_read_longer() {
        let sample = SampleCall {
            items: 100,
            plain_item_bytes: 100_000,
            wire_bytes: 30_000,
            plain_bytes: 100_000,
            consumed: None,
            complete: false,
        };
        let goal = Goal {
            target: Duration::from_secs(600),
            capacity: Some((1000.0, 0.5)),
            consistent: false,
        };
        // 4,096,000,000 bytes: 500,000 eventually consistent units; at 500/s, 1,000 s.
        let forecast =
            Forecast::new(Some(1_000_000), Some(4_096_000_000), &sample, &goal).expect("plan");
        let s = forecast.suggestion;
        assert_eq!(s.max_rcu, Some(500));
        assert_eq!(s.time, Duration::from_secs(1000));
        assert!(s.short, "longer than the target");
        assert_eq!(s.invocations, 1, "300 MB at one invocation: 2 calls, 144 s");
    }

    #[test]
    fn strongly_consistent_reads_cost_twice() {
        let sample = SampleCall {
            items: 10,
            plain_item_bytes: 10_000,
            wire_bytes: 10_000,
            plain_bytes: 10_000,
            consumed: Some(2.0),
            complete: false,
        };
        let mut g = goal(60);
        // No size reported: the sample's cost per item, scaled.
        let eventual = Forecast::new(Some(1000), None, &sample, &g).expect("plan");
        assert_eq!(eventual.units, (200.0, 400.0));
        g.consistent = true;
        let strong = Forecast::new(Some(1000), None, &sample, &g).expect("plan");
        assert_eq!(strong.units, (100.0, 200.0), "the sample itself was strong");
        assert_eq!(strong.suggestion.max_rcu, Some(4), "200 units over 60 s");
    }

    #[test]
    fn an_empty_table_has_a_sensible_plan() {
        let sample = SampleCall {
            complete: true,
            plain_bytes: 200,
            wire_bytes: 150,
            ..SampleCall::default()
        };
        let forecast = Forecast::new(Some(0), Some(0), &sample, &goal(600)).expect("plan");
        assert_eq!(forecast.items, 0);
        assert_eq!(forecast.wire_bytes, 0);
        assert_eq!(forecast.units, (0.0, 0.0));
        assert_eq!(forecast.suggestion.invocations, 1);
        assert_eq!(forecast.suggestion.max_rcu, None);
        let text = render(&forecast, &goal(600), "zstd", "URL", &[]);
        assert!(text.contains("table: 0 items"), "{text}");
        assert!(text.contains("within the 6 MB burst"), "{text}");
        // Not a lower bound (smaller calls have bursts of their own): not called one.
        assert!(
            text.contains("expected time, full 150 MB calls") && !text.contains("least"),
            "{text}"
        );
        assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
    }

    #[test]
    fn a_table_dynamodb_has_not_counted_yet_is_counted_by_a_whole_sample() {
        // DynamoDB says 0 (a new table); the sample read 300 items and the trailer says
        // complete: the count is exact.
        let sample = SampleCall {
            items: 300,
            plain_item_bytes: 30_000,
            wire_bytes: 9_000,
            plain_bytes: 30_000,
            consumed: Some(4.0),
            complete: true,
        };
        let forecast = Forecast::new(Some(0), Some(0), &sample, &goal(600)).expect("plan");
        assert_eq!((forecast.items, forecast.approximate), (300, false));
        assert_eq!(
            forecast.units,
            (4.0, 8.0),
            "the sample's cost, not a size of 0"
        );
        // Without any size and a partial sample there is nothing to go on.
        let partial = SampleCall {
            complete: false,
            ..sample
        };
        assert_eq!(Forecast::new(None, None, &partial, &goal(600)), None);
    }

    #[test]
    fn an_uncounted_table_is_planned_as_at_least_the_sample() {
        // DynamoDB says 0 (not counted yet) but the sample of 1,000 did not read it all:
        // the table is not empty, its total is unknown.
        let sample = SampleCall {
            items: 1000,
            plain_item_bytes: 700_000,
            wire_bytes: 240_000,
            plain_bytes: 700_000,
            consumed: Some(80.0),
            complete: false,
        };
        let forecast = Forecast::new(Some(0), Some(0), &sample, &goal(600)).expect("a plan");
        assert_eq!((forecast.items, forecast.at_least), (1000, true));
        assert_eq!(forecast.wire_bytes, 240_000);
        assert_eq!(forecast.table_bytes, None, "a stale size is not shown");
        assert_eq!(forecast.units, (80.0, 160.0), "the sample's cost, scaled");
        let text = render(&forecast, &goal(600), "zstd", "URL", &[]);
        assert!(text.contains("table: at least 1,000 items"), "{text}");
        assert!(text.contains("unknown"), "{text}");
        assert!(!text.contains("~0 items"), "{text}");
        // A count below the sample's items is stale too.
        let stale = Forecast::new(Some(10), Some(5_000), &sample, &goal(600)).expect("a plan");
        assert_eq!((stale.items, stale.at_least), (1000, true));
        // A count at or above the sample's is DynamoDB's approximation, as before.
        let counted = Forecast::new(Some(5000), None, &sample, &goal(600)).expect("a plan");
        assert_eq!((counted.items, counted.at_least), (5000, false));
        assert!(counted.approximate);
    }

    #[test]
    fn the_suggested_pull_carries_the_plan_s_options_quoted() {
        let suggestion = Suggestion {
            invocations: 4,
            segments: 2,
            max_rcu: Some(120),
            time: Duration::from_secs(60),
            short: false,
        };
        let options: Vec<String> = [
            "--index",
            "by status",
            "--consistent",
            "--fields",
            "id,it's",
            "--compress",
            "gzip",
        ]
        .map(String::from)
        .into();
        let command = pull_command("https://u.example/?a=1&b=2", &suggestion, &options);
        assert_eq!(
            command,
            "scanstream pull 'https://u.example/?a=1&b=2' --invocations 4 --segments 2 \
             --max-rcu 120 --index 'by status' --consistent --fields 'id,it'\\''s' \
             --compress gzip"
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        // And in the printed plan.
        let sample = SampleCall {
            items: 10,
            plain_item_bytes: 1000,
            wire_bytes: 500,
            plain_bytes: 1000,
            consumed: Some(1.0),
            complete: true,
        };
        let forecast = Forecast::new(None, None, &sample, &goal(60)).expect("plan");
        let text = render(&forecast, &goal(60), "gzip", "URL", &options);
        assert!(
            text.contains("--index 'by status' --consistent --fields 'id,it'\\''s' --compress gzip -o table.ndjson"),
            "{text}"
        );
    }

    #[test]
    fn targets_are_parsed_strictly() {
        assert_eq!(parse_target("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_target("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_target("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_target("168h"), Ok(Duration::from_secs(604_800)));
        for bad in [
            "",
            "s",
            "10",
            "0s",
            "169h",
            "-5m",
            "1.5h",
            "10 m",
            "10M",
            "m10",
            "1e3s",
            "99999999999s",
            "10mm",
            "+5s",
            "٣s",
        ] {
            assert!(parse_target(bad).is_err(), "{bad:?} refused");
        }
    }
}
