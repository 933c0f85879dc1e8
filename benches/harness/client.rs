//! Case 7 alone (`BENCH_CASES=client scripts/bench.sh`): the `scanstream` client with
//! K = 1, 2, 4, 8 invocations, `none` and `zstd`, through the Function URL limit proxy
//! (here 256 KB at full speed, then 1 MB/s a response), beside one invocation followed by
//! manual resumes; and without the proxy K = 4, S = 1 against a bare SDK scan of 4
//! segments on 100k items, with the streamer asking for consumed capacity (as deployed)
//! and not, `UNCAPPED_REPS` runs. One repetition for each capped row: those reads are
//! paced by the proxy, not the machine.
//!
//! With `BENCH_BASELINE_ROOT` naming a worktree of another commit (built with `cargo build
//! --release --bins`), its streamer and client run the same reads in the same run, against
//! the same DynamoDB Local and tables, interleaved run by run with this build's, so a
//! regression shows as a ratio and not as the machine's mood.
//! Results in `bench-results/client.md` and `client.json`.

use crate::cases::{
    CappedProxy, Sample, bare_scan, client_pull, fetch, head, local_client, manual_resumes, seed,
    start_watch_in, streamer_url, warm_up,
};
use crate::report::{Stat, machine};
use crate::services::Service;
use crate::{ROOT, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The imitated Function URL's full-speed bytes per response.
const BURST: u64 = 256_000;
/// Its rate after the burst, bytes/s.
const RATE: u64 = 1_000_000;
/// Runs of the uncapped comparison: short runs on a shared machine, so more of them.
const UNCAPPED_REPS: usize = 5;

/// One uncapped run of one build, items/s.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Uncapped {
    /// `scanstream` K = 4, S = 1, the streamer asking for consumed capacity.
    total: f64,
    /// The same, the streamer not asking.
    none: f64,
    /// One invocation of 4 segments (not asking), read by a plain HTTP client.
    one_call: f64,
    /// A bare SDK scan of 4 segments, in the same run.
    bare: f64,
}

/// A build under test: a label naming its commit, and its package root.
struct Build {
    label: String,
    root: PathBuf,
}

pub async fn run(out_dir: &Path) -> Result<()> {
    let mut builds = Vec::new();
    if let Ok(base) = std::env::var("BENCH_BASELINE_ROOT") {
        let root = PathBuf::from(base);
        builds.push(Build {
            label: format!("before ({})", head(&root)?),
            root,
        });
    }
    builds.push(Build {
        label: format!("after ({})", head(Path::new(ROOT))?),
        root: PathBuf::from(ROOT),
    });
    let ddb = Service::dynamodb_local(Path::new(ROOT).join("target/bench-dynamodb-local.log"))?;
    let capped = capped(&ddb, &builds).await?;
    let uncapped = uncapped(&ddb, &builds).await?;
    let text = report(&builds, &capped, &uncapped);
    println!("{text}");
    std::fs::write(out_dir.join("client.md"), &text)?;
    let json: Vec<serde_json::Value> = builds
        .iter()
        .enumerate()
        .map(|(b, build)| {
            let capped: Vec<_> = capped[b]
                .iter()
                .map(|(name, s)| serde_json::json!({"reader": name, "items": s.items, "wire_bytes": s.wire_bytes, "ms": s.total_ms, "items_per_s": s.items_per_s()}))
                .collect();
            let uncapped: Vec<_> = uncapped.iter().map(|run| run[b]).collect();
            serde_json::json!({"build": build.label, "capped": capped, "uncapped": uncapped})
        })
        .collect();
    std::fs::write(
        out_dir.join("client.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    Ok(())
}

/// The capped rows of each build, on 30k items: (reader, sample) in a fixed order.
async fn capped(ddb: &Service, builds: &[Build]) -> Result<Vec<Vec<(String, Sample)>>> {
    let table = seed(ddb, "bench-client-30k", 30_000)?;
    let mut all = Vec::new();
    for (b, build) in builds.iter().enumerate() {
        let watch = start_watch_in(
            &build.root,
            &ddb.endpoint(),
            &table,
            &[],
            &format!("client-{b}"),
        )?;
        warm_up(&watch).await?;
        let proxy = CappedProxy::start(watch.port, BURST, RATE).await?;
        let url = proxy.wrap(&streamer_url(&watch, ""));
        let url = url.trim_end_matches('?').to_string();
        let mut rows = Vec::new();
        let manual = manual_resumes(&url).await?;
        eprintln!(
            "{}: manual resumes: {:.0} items/s",
            build.label,
            manual.items_per_s()
        );
        rows.push(("manual resumes (curl-like), none".to_string(), manual));
        for compress in ["none", "zstd"] {
            for k in [1u32, 2, 4, 8] {
                let sample = client_pull(&build.root, &url, k, 2, compress)?;
                eprintln!(
                    "{}: K={k} {compress}: {:.0} items/s",
                    build.label,
                    sample.items_per_s()
                );
                rows.push((format!("scanstream K={k} S=2, {compress}"), sample));
            }
        }
        all.push(rows);
    }
    Ok(all)
}

/// The uncapped runs on 100k items: for each run, one [`Uncapped`] per build, the bare
/// scan made once a run and shared.
async fn uncapped(ddb: &Service, builds: &[Build]) -> Result<Vec<Vec<Uncapped>>> {
    let client = local_client(&ddb.endpoint()).await;
    let big = seed(ddb, "bench-client-100k", 100_000)?;
    // Each build's streamer as deployed (asking for consumed capacity) and, like for like
    // with the bare scan, which does not ask, one that does not.
    let mut urls = Vec::new();
    let mut watches = Vec::new();
    for (b, build) in builds.iter().enumerate() {
        let mut pair = Vec::new();
        for (e, env) in [&[][..], &[("RETURN_CONSUMED_CAPACITY", "NONE")][..]]
            .into_iter()
            .enumerate()
        {
            let log = format!("client-big-{b}-{e}");
            let watch = start_watch_in(&build.root, &ddb.endpoint(), &big, env, &log)?;
            warm_up(&watch).await?;
            pair.push(streamer_url(&watch, "").trim_end_matches('?').to_string());
            watches.push(watch);
        }
        urls.push(pair);
    }
    let mut runs = Vec::new();
    for rep in 0..UNCAPPED_REPS {
        let bare = bare_scan(client.clone(), big.clone(), 4, 100).await?;
        let mut run = Vec::new();
        // Alternate which build goes first, so neither always reads a warmer table.
        let order: Vec<usize> = if rep % 2 == 0 {
            (0..builds.len()).collect()
        } else {
            (0..builds.len()).rev().collect()
        };
        let mut by_build = vec![None; builds.len()];
        for b in order {
            let root = &builds[b].root;
            let pulled = client_pull(root, &urls[b][0], 4, 1, "none")?;
            let pulled_none = client_pull(root, &urls[b][1], 4, 1, "none")?;
            let one_call = fetch(
                format!("{}?limit=100&segments=4", urls[b][1]),
                Duration::ZERO,
            )
            .await?;
            for sample in [&pulled, &pulled_none, &one_call] {
                if sample.items != 100_000 {
                    return Err(
                        format!("{}: {} items of 100000", builds[b].label, sample.items).into(),
                    );
                }
            }
            by_build[b] = Some(Uncapped {
                total: pulled.items_per_s(),
                none: pulled_none.items_per_s(),
                one_call: one_call.items_per_s(),
                bare: bare.items_per_s(),
            });
        }
        run.extend(by_build.into_iter().flatten());
        eprintln!("uncapped run {}: {run:?}", rep + 1);
        runs.push(run);
    }
    drop(watches);
    Ok(runs)
}

fn report(
    builds: &[Build],
    capped: &[Vec<(String, Sample)>],
    uncapped: &[Vec<Uncapped>],
) -> String {
    let mut text = format!(
        "Machine: {}\n\n### scanstream client through the Function URL limit proxy ({} KB, then {} MB/s a response), 30k items\n\n",
        machine(),
        BURST / 1000,
        RATE / 1_000_000
    );
    for (b, build) in builds.iter().enumerate() {
        let rows = &capped[b];
        text += &format!(
            "{}\n\n| reader | items | bytes on the wire | seconds | items/s | vs manual |\n|---|---|---|---|---|---|\n",
            build.label
        );
        let base = rows[0].1.items_per_s();
        for (name, s) in rows {
            text += &format!(
                "| {name} | {} | {} | {:.1} | {:.0} | {:.2}x |\n",
                s.items,
                s.wire_bytes,
                s.total_ms / 1000.0,
                s.items_per_s(),
                s.items_per_s() / base
            );
        }
        text += "\n";
    }
    if builds.len() == 2 {
        text += "Capped, after / before items/s, row by row:\n\n| reader | before | after | after / before |\n|---|---|---|---|\n";
        for ((name, before), (_, after)) in capped[0].iter().zip(&capped[1]) {
            text += &format!(
                "| {name} | {:.0} | {:.0} | {:.2} |\n",
                before.items_per_s(),
                after.items_per_s(),
                after.items_per_s() / before.items_per_s()
            );
        }
        text += "\n";
    }
    text += "### Without the proxy, 100k items: scanstream K=4 S=1 (none) against a bare SDK scan of 4 segments, items/s\n\nThe streamer as deployed asks DynamoDB for consumed capacity (`TOTAL`); the bare scan does not, so the `NONE` columns are like for like. `one call` is a single invocation with `segments=4` read by a plain HTTP client: the streamer path without `scanstream`.\n\n";
    for (b, build) in builds.iter().enumerate() {
        text += &format!(
            "{}\n\n| run | scanstream (TOTAL) | scanstream (NONE) | one call (NONE) | bare | TOTAL / bare | NONE / bare | NONE / one call |\n|---|---|---|---|---|---|---|---|\n",
            build.label
        );
        let runs: Vec<Uncapped> = uncapped.iter().map(|run| run[b]).collect();
        for (i, run) in runs.iter().enumerate() {
            text += &format!(
                "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} |\n",
                i + 1,
                run.total,
                run.none,
                run.one_call,
                run.bare,
                run.total / run.bare,
                run.none / run.bare,
                run.none / run.one_call
            );
        }
        let median = |ratio: fn(&Uncapped) -> f64| Stat::of(runs.iter().map(ratio)).median;
        text += &format!(
            "| median of ratios | | | | | {:.2} | {:.2} | {:.2} |\n\n",
            median(|run| run.total / run.bare),
            median(|run| run.none / run.bare),
            median(|run| run.none / run.one_call)
        );
    }
    if builds.len() == 2 {
        text += "Uncapped, after / before in the same run (medians over the runs):\n\n| reader | after / before |\n|---|---|\n";
        let ratio = |f: fn(&Uncapped) -> f64| {
            Stat::of(uncapped.iter().map(|run| f(&run[1]) / f(&run[0]))).median
        };
        text += &format!(
            "| scanstream K=4 S=1 (TOTAL) | {:.2} |\n| scanstream K=4 S=1 (NONE) | {:.2} |\n| one call of 4 segments (NONE) | {:.2} |\n",
            ratio(|r| r.total),
            ratio(|r| r.none),
            ratio(|r| r.one_call)
        );
    }
    text
}
