//! The benchmark harness: `scripts/bench.sh` (or `cargo bench --bench harness`).
//!
//! It starts DynamoDB Local and the streamer under `cargo lambda watch --release` itself,
//! seeds with the release seeder, and measures in one run, so ratios compare like with like
//! on a shared, noisy machine:
//!
//! 1. time to first byte and total time at an HTTP client: streamed (segments 1 and 4)
//!    against a buffered baseline (the same library scan collected fully, then sent as one
//!    response by a small server in this harness), on 10k and 100k items;
//! 2. items/s at the client through the emulator against a bare SDK parallel scan (same
//!    segments and limit, items counted, nothing encoded), segments 1-16, limits 100, 1000;
//! 3. the streamer process's peak RSS for 10k and 200k items with a slow reader;
//! 4. seeder items/s against bare concurrent `BatchWriteItem` calls, concurrency 1, 4, 8;
//! 5. `compress=none|gzip|zstd`: bytes per item and items/s, without a cap and through a
//!    proxy imitating the Function URL's bandwidth (a burst, then a fixed rate);
//! 6. `max_rcu`: achieved capacity units/s against the asked ones, one invocation and the
//!    `scanstream` client's K = 2 and 4 (`BENCH_CASES=rate` runs this case alone);
//! 8. a Query fan-out over 100 partitions against an SDK loop (`BENCH_CASES=query`, in
//!    `query.rs`, run alone);
//! 9. the loader (`BENCH_CASES=load`, module `load`): file against generated, peak RSS at
//!    20k and 200k items, and the whole copy through the streamer;
//! 10. a filtered pull under `--max-items-per-call` (`BENCH_CASES=filter`, module `filter`,
//!     run alone): Scan calls and seconds, against a baseline worktree when one is named;
//! 11. exports straight to S3 (`BENCH_CASES=export`, module `export`, run alone): against
//!     the streamed pull under the Function URL's cap, without the cap, against a bare
//!     scan; bytes through the URL; the function's peak RSS at 20k and 200k items;
//! 12. restoring an export from S3 (`BENCH_CASES=restore`, module `restore`, run alone):
//!     K = 1, 2, 4 seeder invocations against the local loader, and `--max-wcu` held;
//! 13. keeping a copy current (`BENCH_CASES=changes`, module `changes`, run alone):
//!     `seeder --apply` against `seeder --from`, the latency of `changes --follow |
//!     seeder --apply -`, and `scanstream changes` against a bare boto3 loop.
//!
//! Each case runs `REPS` times; tables show medians with min-max. Results go to
//! `bench-results/` as JSON and CSV, with `plot.svg`.
//!
//! Modules: `services` (DynamoDB Local and the emulator, shared with the tests), `cases`
//! (what is measured), `client` (case 7, beside a baseline build), `report` (tables),
//! `plot` (the SVG).

#[path = "../../tests/common/services.rs"]
mod services;

mod cases;
mod changes;
mod client;
mod export;
mod filter;
mod load;
mod plot;
mod query;
mod report;
mod restore;

use cases::{
    BufferedServer, CappedProxy, bare_scan, bare_writes, fetch, library_scan, local_client,
    memory_case, rate_read, repeat, seed, seeder_run, start_watch, streamer_url, warm_up,
};
use report::{
    CompressionRow, MemoryRow, RateRow, Report, SeedRow, Stat, ThroughputRow, TtfbRow, machine,
};
use services::Service;
use std::path::Path;
use std::time::Duration;

/// Case 6: achieved against asked read capacity, one invocation (`max_rcu`, segments 4)
/// and the `scanstream` client's K invocations (`--max-rcu`, S = 2), on `table`. The
/// units are those the trailers reported.
async fn rate_rows(ddb: &Service, table: &str) -> Result<Vec<RateRow>> {
    let watch = start_watch(ddb, table, &[])?;
    warm_up(&watch).await?;
    let url = streamer_url(&watch, "");
    let url = url.trim_end_matches('?');
    let mut rows = Vec::new();
    for asked in [50.0, 100.0, 200.0, 400.0] {
        for k in [1u32, 2, 4] {
            let (mut units, mut achieved) = (0.0, Vec::new());
            for _ in 0..REPS {
                let (read, wall) = if k == 1 {
                    rate_read(&watch, asked).await?
                } else {
                    cases::client_rate_read(url, k, asked)?
                };
                units = read;
                achieved.push(read / wall);
            }
            let reader = match k {
                1 => "one invocation, segments 4".to_string(),
                k => format!("scanstream K={k} S=2"),
            };
            eprintln!("max_rcu={asked} {reader} done");
            rows.push(RateRow {
                reader,
                asked,
                units,
                achieved: Stat::of(achieved),
            });
        }
    }
    Ok(rows)
}

/// Case 6 alone (`BENCH_CASES=rate scripts/bench.sh`), on 10k items: results in
/// `bench-results/rate.md` and `rate.json`.
async fn rate_only(out_dir: &Path) -> Result<()> {
    let ddb = Service::dynamodb_local(Path::new(ROOT).join("target/bench-dynamodb-local.log"))?;
    let table = seed(&ddb, "bench-10k", 10_000)?;
    let rows = rate_rows(&ddb, &table).await?;
    let text = format!("Machine: {}\n{}", machine(), report::rate_table(&rows));
    println!("{text}");
    std::fs::write(out_dir.join("rate.md"), &text)?;
    std::fs::write(
        out_dir.join("rate.json"),
        serde_json::to_string_pretty(&rows)?,
    )?;
    Ok(())
}

/// Errors end the run with a message.
type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const REPS: usize = 3;
/// The imitated Function URL's full-speed bytes per response (Lambda: 6 MB).
const CAP_BURST: u64 = 1_000_000;
/// The imitated Function URL's rate after the burst, bytes/s (Lambda: 2 MB/s).
const CAP_RATE: u64 = 1_000_000;
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[tokio::main]
async fn main() -> Result<()> {
    let out_dir = Path::new(ROOT).join("bench-results");
    std::fs::create_dir_all(&out_dir)?;
    match std::env::var("BENCH_CASES").as_deref() {
        Ok("client") => return client::run(&out_dir).await,
        Ok("rate") => return rate_only(&out_dir).await,
        Ok("query") => return query::run(&out_dir).await,
        Ok("load") => return load::run(&out_dir).await,
        Ok("filter") => return filter::run(&out_dir).await,
        Ok("export") => return export::run(&out_dir).await,
        Ok("restore") => return restore::run(&out_dir).await,
        Ok("changes") => return changes::run(&out_dir).await,
        Ok("all") | Err(_) => {}
        Ok(other) => {
            return Err(format!(
                "BENCH_CASES={other}: expected all, client, rate, query, load, filter, export, restore or changes"
            )
            .into());
        }
    }
    let ddb = Service::dynamodb_local(Path::new(ROOT).join("target/bench-dynamodb-local.log"))?;
    let client = local_client(&ddb.endpoint()).await;
    let mut report = Report::default();

    eprintln!("seeding 10k, 100k and 200k items with the release seeder");
    let t10k = seed(&ddb, "bench-10k", 10_000)?;
    let t100k = seed(&ddb, "bench-100k", 100_000)?;
    let t200k = seed(&ddb, "bench-200k", 200_000)?;

    // 3. Memory first, each in a fresh streamer process so peaks do not carry over.
    for (table, items) in [(&t10k, 10_000u64), (&t200k, 200_000)] {
        let watch = start_watch(&ddb, table, &[])?;
        let rss = memory_case(&watch, items).await?;
        eprintln!("memory {items}: peak RSS {:.1} MB", rss as f64 / 1e6);
        report.memory.push(MemoryRow {
            items,
            peak_rss_bytes: rss,
        });
    }

    // 1. TTFB, streamed and buffered, on 10k and 100k.
    for (table, items) in [(&t10k, 10_000u64), (&t100k, 100_000)] {
        let watch = start_watch(&ddb, table, &[])?;
        warm_up(&watch).await?;
        let buffered = BufferedServer::start(client.clone(), table.clone()).await?;
        for segments in [1u32, 4] {
            let url = streamer_url(&watch, &format!("segments={segments}&limit=100"));
            let samples = repeat(|| fetch(url.clone(), Duration::ZERO)).await?;
            report
                .ttfb
                .push(TtfbRow::new("streamed", items, segments, &samples));
            let url = buffered.url(segments);
            let samples = repeat(|| fetch(url.clone(), Duration::ZERO)).await?;
            report
                .ttfb
                .push(TtfbRow::new("buffered", items, segments, &samples));
        }
    }

    // 2. Throughput through the emulator against a bare SDK scan, on 100k.
    // Twice: as deployed (ReturnConsumedCapacity=TOTAL) and without it, since DynamoDB
    // Local pays for computing consumed capacity and the bare scan does not ask for it.
    let watch = start_watch(&ddb, &t100k, &[])?;
    let watch_none = start_watch(&ddb, &t100k, &[("RETURN_CONSUMED_CAPACITY", "NONE")])?;
    warm_up(&watch).await?;
    warm_up(&watch_none).await?;
    for limit in [100u32, 1000] {
        for segments in [1u32, 2, 4, 8, 16] {
            let url = streamer_url(&watch, &format!("segments={segments}&limit={limit}"));
            let streamed = repeat(|| fetch(url.clone(), Duration::ZERO)).await?;
            let url_none = streamer_url(&watch_none, &format!("segments={segments}&limit={limit}"));
            let streamed_none = repeat(|| fetch(url_none.clone(), Duration::ZERO)).await?;
            let bare = repeat(|| bare_scan(client.clone(), t100k.clone(), segments, limit)).await?;
            let library =
                repeat(|| library_scan(client.clone(), t100k.clone(), segments, limit)).await?;
            report.throughput.push(ThroughputRow::new(
                segments,
                limit,
                [&streamed, &streamed_none, &library, &bare],
            ));
            eprintln!("throughput segments={segments} limit={limit} done");
        }
    }
    drop(watch);
    drop(watch_none);

    // 4. Seeding against bare BatchWriteItem, 20k items a run.
    for concurrency in [1usize, 4, 8] {
        let mut ours = Vec::new();
        let mut bare = Vec::new();
        for rep in 0..REPS {
            ours.push(seeder_run(&ddb, &client, concurrency, rep as u64).await?);
            bare.push(bare_writes(&client, concurrency, rep as u64).await?);
        }
        report.seeding.push(SeedRow::new(concurrency, &ours, &bare));
        eprintln!("seeding concurrency={concurrency} done");
    }

    // 5. Compression: bytes per item and items/s of one invocation, without a cap on
    // 100k items, then through a proxy that imitates the Function URL's bandwidth (first
    // CAP_BURST bytes at full speed, then CAP_RATE bytes/s; scaled down from 6 MB and
    // 2 MB/s to keep the run short) on 10k items.
    for (table, items, capped) in [(&t100k, 100_000u64, false), (&t10k, 10_000, true)] {
        let watch = start_watch(&ddb, table, &[])?;
        warm_up(&watch).await?;
        let proxy = CappedProxy::start(watch.port, CAP_BURST, CAP_RATE).await?;
        let cap = if capped {
            format!(
                "{} MB then {} MB/s",
                CAP_BURST / 1_000_000,
                CAP_RATE / 1_000_000
            )
        } else {
            "none".to_string()
        };
        for compress in ["none", "gzip", "zstd"] {
            let mut url =
                streamer_url(&watch, &format!("compress={compress}&limit=100&segments=4"));
            if capped {
                url = proxy.wrap(&url);
            }
            let samples = repeat(|| fetch(url.clone(), Duration::ZERO)).await?;
            report
                .compression
                .push(CompressionRow::new(compress, cap.clone(), &samples));
            eprintln!("compression {compress} on {items} items, cap {cap} done");
        }
    }

    // 6. max_rcu: achieved against asked, on 10k items.
    report.rate = rate_rows(&ddb, &t10k).await?;

    report.machine = machine();
    let text = report.render();
    println!("{text}");
    std::fs::write(out_dir.join("results.md"), &text)?;
    std::fs::write(
        out_dir.join("results.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(out_dir.join("results.csv"), report.csv())?;
    std::fs::write(out_dir.join("plot.svg"), report.plot())?;
    eprintln!("wrote bench-results/results.{{md,json,csv}} and bench-results/plot.svg");
    Ok(())
}
