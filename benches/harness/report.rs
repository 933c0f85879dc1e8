//! The report: medians with min-max per case, rendered as the Markdown table printed and
//! kept in `bench-results/`, and as CSV.

use crate::REPS;
use crate::cases::Sample;
use crate::services::DYNAMODB_LOCAL_HEAP;
use serde::Serialize;
use std::fmt::Write as _;

/// Median, min and max of some measure over the repetitions.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Self {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }

    fn show(&self, digits: usize) -> String {
        format!(
            "{:.d$} ({:.d$}-{:.d$})",
            self.median,
            self.min,
            self.max,
            d = digits
        )
    }
}

#[derive(Debug, Serialize)]
pub struct TtfbRow {
    pub mode: &'static str,
    pub items: u64,
    pub segments: u32,
    pub ttfb_ms: Stat,
    pub total_ms: Stat,
    pub samples: Vec<Sample>,
}

impl TtfbRow {
    pub fn new(mode: &'static str, items: u64, segments: u32, samples: &[Sample]) -> Self {
        Self {
            mode,
            items,
            segments,
            ttfb_ms: Stat::of(samples.iter().map(|s| s.ttfb_ms)),
            total_ms: Stat::of(samples.iter().map(|s| s.total_ms)),
            samples: samples.to_vec(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ThroughputRow {
    pub segments: u32,
    pub limit: u32,
    /// Through the emulator, as deployed (`ReturnConsumedCapacity=TOTAL`).
    pub client_items_per_s: Stat,
    /// Through the emulator, `RETURN_CONSUMED_CAPACITY=NONE`.
    pub client_no_capacity_items_per_s: Stat,
    /// The library's encoded stream in-process, no capacity, no HTTP.
    pub library_items_per_s: Stat,
    pub bare_items_per_s: Stat,
    pub client_ttfb_ms: Stat,
    pub ratio: f64,
    pub no_capacity_ratio: f64,
    pub library_ratio: f64,
    pub samples: [Vec<Sample>; 4],
}

impl ThroughputRow {
    /// `runs`: client, client without capacity, library, bare.
    pub fn new(segments: u32, limit: u32, runs: [&[Sample]; 4]) -> Self {
        let rate = |samples: &[Sample]| Stat::of(samples.iter().map(Sample::items_per_s));
        let [client, none, library, bare] = runs.map(rate);
        Self {
            segments,
            limit,
            client_items_per_s: client,
            client_no_capacity_items_per_s: none,
            library_items_per_s: library,
            bare_items_per_s: bare,
            client_ttfb_ms: Stat::of(runs[0].iter().map(|s| s.ttfb_ms)),
            ratio: client.median / bare.median,
            no_capacity_ratio: none.median / bare.median,
            library_ratio: library.median / bare.median,
            samples: runs.map(<[Sample]>::to_vec),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct MemoryRow {
    pub items: u64,
    pub peak_rss_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct SeedRow {
    pub concurrency: usize,
    pub seeder_items_per_s: Stat,
    pub bare_items_per_s: Stat,
    pub ratio: f64,
}

impl SeedRow {
    pub fn new(concurrency: usize, ours: &[Sample], bare: &[Sample]) -> Self {
        let o = Stat::of(ours.iter().map(Sample::items_per_s));
        let b = Stat::of(bare.iter().map(Sample::items_per_s));
        Self {
            concurrency,
            seeder_items_per_s: o,
            bare_items_per_s: b,
            ratio: o.median / b.median,
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub machine: String,
    pub ttfb: Vec<TtfbRow>,
    pub throughput: Vec<ThroughputRow>,
    pub memory: Vec<MemoryRow>,
    pub seeding: Vec<SeedRow>,
    pub compression: Vec<CompressionRow>,
    pub rate: Vec<RateRow>,
}

/// A read under a read-rate cap: one invocation with `max_rcu`, or the `scanstream`
/// client's K invocations with `--max-rcu`; what it asked for and what it got.
#[derive(Debug, Clone, Serialize)]
pub struct RateRow {
    /// `one invocation (segments 4)` or `scanstream K=.. S=..`.
    pub reader: String,
    pub asked: f64,
    pub units: f64,
    /// Units over the client's wall clock, per second.
    pub achieved: Stat,
}

/// One invocation's read with `compress`, with or without a bandwidth cap.
#[derive(Debug, Clone, Serialize)]
pub struct CompressionRow {
    pub compress: &'static str,
    pub cap: String,
    pub items: u64,
    pub bytes_per_item: f64,
    pub items_per_s: Stat,
}

impl CompressionRow {
    pub fn new(compress: &'static str, cap: String, samples: &[Sample]) -> Self {
        let items = samples.first().map_or(0, |s| s.items);
        let wire = samples.first().map_or(0, |s| s.wire_bytes);
        Self {
            compress,
            cap,
            items,
            bytes_per_item: wire as f64 / items.max(1) as f64,
            items_per_s: Stat::of(samples.iter().map(Sample::items_per_s)),
        }
    }
}

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!(
        "{cores} cores, {cpu}; DynamoDB Local 3.3.1 in memory ({DYNAMODB_LOCAL_HEAP}); cargo lambda watch --release; {REPS} repetitions"
    )
}

impl Report {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Machine: {}\n", self.machine);
        let _ = writeln!(
            out,
            "### Time to first byte vs total (limit 100), ms: median (min-max)\n"
        );
        let _ = writeln!(
            out,
            "| items | segments | mode | TTFB | total | TTFB buffered / streamed |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for row in &self.ttfb {
            let ratio = if row.mode == "streamed" {
                self.ttfb
                    .iter()
                    .find(|b| {
                        b.mode == "buffered" && b.items == row.items && b.segments == row.segments
                    })
                    .map(|b| format!("{:.1}x", b.ttfb_ms.median / row.ttfb_ms.median))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {ratio} |",
                row.items,
                row.segments,
                row.mode,
                row.ttfb_ms.show(1),
                row.total_ms.show(0)
            );
        }
        let _ = writeln!(
            out,
            "\n### Throughput on 100k items, items/s: median (min-max)\n"
        );
        let _ = writeln!(
            out,
            "| limit | segments | client (capacity TOTAL) | client (capacity NONE) | library, no HTTP (NONE) | bare SDK scan | client / bare | client NONE / bare | library / bare | client TTFB ms |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
        for row in &self.throughput {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {} |",
                row.limit,
                row.segments,
                row.client_items_per_s.show(0),
                row.client_no_capacity_items_per_s.show(0),
                row.library_items_per_s.show(0),
                row.bare_items_per_s.show(0),
                row.ratio,
                row.no_capacity_ratio,
                row.library_ratio,
                row.client_ttfb_ms.show(1)
            );
        }
        let _ = writeln!(
            out,
            "\n### Streamer peak RSS with a slow reader (segments 4, limit 100)\n"
        );
        let _ = writeln!(out, "| items | peak RSS MB |");
        let _ = writeln!(out, "|---|---|");
        for row in &self.memory {
            let _ = writeln!(
                out,
                "| {} | {:.1} |",
                row.items,
                row.peak_rss_bytes as f64 / 1e6
            );
        }
        if let [small, large] = self.memory.as_slice() {
            let _ = writeln!(
                out,
                "\nRatio {}k to {}k: {:.2}",
                large.items / 1000,
                small.items / 1000,
                large.peak_rss_bytes as f64 / small.peak_rss_bytes as f64
            );
        }
        let _ = writeln!(out, "\n### Seeding 20k items, items/s: median (min-max)\n");
        let _ = writeln!(
            out,
            "| concurrency | seeder (generation included) | bare BatchWriteItem (pre-generated) | ratio |"
        );
        let _ = writeln!(out, "|---|---|---|---|");
        for row in &self.seeding {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} |",
                row.concurrency,
                row.seeder_items_per_s.show(0),
                row.bare_items_per_s.show(0),
                row.ratio
            );
        }
        let _ = writeln!(
            out,
            "\n### Compression, one invocation (segments 4, limit 100), items/s: median (min-max)\n"
        );
        let _ = writeln!(
            out,
            "| items | compress | cap | bytes/item | items/s | vs none |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for row in &self.compression {
            let none = self
                .compression
                .iter()
                .find(|r| r.compress == "none" && r.cap == row.cap && r.items == row.items)
                .map_or(f64::NAN, |r| r.items_per_s.median);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {} | {:.2}x |",
                row.items,
                row.compress,
                row.cap,
                row.bytes_per_item,
                row.items_per_s.show(0),
                row.items_per_s.median / none
            );
        }
        out += &rate_table(&self.rate);
        out
    }

    pub fn csv(&self) -> String {
        let mut out =
            String::from("measure,items,segments,limit,concurrency,mode,median,min,max\n");
        for r in &self.ttfb {
            for (name, s) in [("ttfb_ms", r.ttfb_ms), ("total_ms", r.total_ms)] {
                let _ = writeln!(
                    out,
                    "{name},{},{},100,,{},{},{},{}",
                    r.items, r.segments, r.mode, s.median, s.min, s.max
                );
            }
        }
        for r in &self.throughput {
            for (mode, s) in [
                ("client", r.client_items_per_s),
                ("client_no_capacity", r.client_no_capacity_items_per_s),
                ("library_no_capacity", r.library_items_per_s),
                ("bare", r.bare_items_per_s),
            ] {
                let _ = writeln!(
                    out,
                    "items_per_s,100000,{},{},,{mode},{},{},{}",
                    r.segments, r.limit, s.median, s.min, s.max
                );
            }
        }
        for r in &self.memory {
            let _ = writeln!(
                out,
                "peak_rss_bytes,{},4,100,,streamed,{},{},{}",
                r.items, r.peak_rss_bytes, r.peak_rss_bytes, r.peak_rss_bytes
            );
        }
        for r in &self.seeding {
            for (mode, s) in [
                ("seeder", r.seeder_items_per_s),
                ("bare", r.bare_items_per_s),
            ] {
                let _ = writeln!(
                    out,
                    "seed_items_per_s,20000,,,{},{mode},{},{},{}",
                    r.concurrency, s.median, s.min, s.max
                );
            }
        }
        out
    }
}

/// The read-rate rows: achieved against asked, one invocation and the client's K.
pub fn rate_table(rows: &[RateRow]) -> String {
    let mut out = String::from(
        "\n### max_rcu: capacity units/s over the reader's wall clock (limit 100, the units the trailers reported)\n\n\
         | reader | asked | units read | achieved | achieved / asked |\n|---|---|---|---|---|\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {:.3} |",
            row.reader,
            row.asked,
            row.units,
            row.achieved.show(1),
            row.achieved.median / row.asked
        );
    }
    out
}
