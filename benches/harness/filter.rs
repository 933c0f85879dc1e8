//! Case 10 alone (`BENCH_CASES=filter`): a filtered pull matching about 1% of 30k
//! seeder records (`balance < -89000`), `scanstream pull --max-items-per-call 100`, K = 2
//! invocations of S = 2 segments, `--limit 100`: the Scan calls it took (the output
//! trailer's `pages`: every call the streamer made, since no call is cut off here), the
//! invocations and the seconds. With `BENCH_BASELINE_ROOT` naming a worktree of another
//! commit, built for release, its streamer and client run the same reads first: the
//! "before". Results in `bench-results/filter.md` and `filter.json`.

use crate::cases::{head, local_client, seed, start_watch_in, streamer_url};
use crate::report::{Stat, machine};
use crate::services::Service;
use crate::{REPS, ROOT, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const ITEMS: u64 = 30_000;
const FILTER: [&str; 6] = [
    "--filter",
    "#b < :b",
    "--names",
    r##"{"#b":"balance"}"##,
    "--values",
    r#"{":b":{"N":"-89000"}}"#,
];

/// One pull: what it sent and what it cost.
#[derive(Debug, serde::Serialize)]
struct Run {
    items: u64,
    /// Scan calls, over every invocation.
    pages: u64,
    /// Items DynamoDB read, over every invocation (re-reads included).
    scanned: u64,
    /// Invocations of the streamer.
    calls: u64,
    seconds: f64,
}

pub async fn run(out_dir: &Path) -> Result<()> {
    let ddb = Service::dynamodb_local(Path::new(ROOT).join("target/bench-dynamodb-local.log"))?;
    let table = seed(&ddb, "bench-filter-30k", ITEMS)?;
    let matching = matching(&ddb, &table).await?;
    let mut builds = Vec::new();
    if let Ok(base) = std::env::var("BENCH_BASELINE_ROOT") {
        let commit = head(Path::new(&base))?;
        builds.push((format!("before ({commit})"), PathBuf::from(base)));
    }
    builds.push((
        format!("after ({})", head(Path::new(ROOT))?),
        PathBuf::from(ROOT),
    ));
    let mut rows = Vec::new();
    for (label, root) in &builds {
        let watch = start_watch_in(root, &ddb.endpoint(), &table, &[], "filter")?;
        let url = streamer_url(&watch, "");
        let url = url.trim_end_matches('?');
        // The first call builds and starts the function: not timed.
        pull(root, url)?;
        let mut runs = Vec::new();
        for _ in 0..REPS {
            let run = pull(root, url)?;
            if run.items != matching {
                return Err(format!(
                    "{label}: {} items, the filter matches {matching}",
                    run.items
                )
                .into());
            }
            eprintln!("{label}: {run:?}");
            runs.push(run);
        }
        rows.push((label.clone(), runs));
    }
    let mut text = format!(
        "Machine: {}\n\n### A filtered pull: {matching} of {ITEMS} items match (`balance < -89000`), `scanstream pull --max-items-per-call 100 --limit 100`, K=2 S=2\n\nScan calls are the output trailer's `pages` (every call, since none is cut off); medians of {REPS} runs, min-max in brackets.\n\n| build | Scan calls | items read | invocations | seconds |\n|---|---|---|---|---|\n",
        machine()
    );
    for (label, runs) in &rows {
        let stat = |f: fn(&Run) -> f64| Stat::of(runs.iter().map(f));
        let show = |s: Stat, digits: usize| {
            format!(
                "{:.digits$} ({:.digits$}-{:.digits$})",
                s.median, s.min, s.max
            )
        };
        text += &format!(
            "| {label} | {} | {} | {} | {} |\n",
            show(stat(|r| r.pages as f64), 0),
            show(stat(|r| r.scanned as f64), 0),
            show(stat(|r| r.calls as f64), 0),
            show(stat(|r| r.seconds), 1),
        );
    }
    println!("{text}");
    std::fs::write(out_dir.join("filter.md"), &text)?;
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|(label, runs)| serde_json::json!({"build": label, "runs": runs}))
        .collect();
    std::fs::write(
        out_dir.join("filter.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    Ok(())
}

/// How many items the filter matches, by the SDK's own filtered Scan.
async fn matching(ddb: &Service, table: &str) -> Result<u64> {
    use aws_sdk_dynamodb::types::{AttributeValue, Select};
    let client = local_client(&ddb.endpoint()).await;
    let (mut count, mut start) = (0u64, None);
    loop {
        let out = client
            .scan()
            .table_name(table)
            .select(Select::Count)
            .filter_expression("#b < :b")
            .expression_attribute_names("#b", "balance")
            .expression_attribute_values(":b", AttributeValue::N("-89000".into()))
            .set_exclusive_start_key(start)
            .send()
            .await?;
        count += u64::try_from(out.count).unwrap_or(0);
        start = out.last_evaluated_key;
        if start.is_none() {
            return Ok(count);
        }
    }
}

/// `scanstream pull` of `root`'s release build to the end, with a trailer.
fn pull(root: &Path, url: &str) -> Result<Run> {
    let dir = Path::new(ROOT).join("target");
    let (out, summary) = (
        dir.join("bench-filter.ndjson"),
        dir.join("bench-filter.json"),
    );
    let started = Instant::now();
    let status = Command::new(root.join("target/release/scanstream"))
        .args([
            "pull",
            url,
            "--limit",
            "100",
            "--invocations",
            "2",
            "--segments",
            "2",
        ])
        .args([
            "--max-items-per-call",
            "100",
            "--compress",
            "none",
            "--trailer",
        ])
        .args(FILTER)
        .arg("-o")
        .arg(&out)
        .args(["--force", "--no-checkpoint", "--summary-json"])
        .arg(&summary)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("scanstream pull of {} failed", root.display()).into());
    }
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary)?)?;
    let output = std::fs::read(&out)?;
    let last = output
        .trim_ascii_end()
        .rsplit(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let trailer: serde_json::Value = serde_json::from_slice(last)?;
    let trailer = &trailer["@scanstream"];
    Ok(Run {
        items: trailer["items"].as_u64().ok_or("no items in the trailer")?,
        pages: trailer["pages"].as_u64().ok_or("no pages in the trailer")?,
        scanned: trailer["scanned"]
            .as_u64()
            .ok_or("no scanned in the trailer")?,
        calls: summary["calls"].as_u64().ok_or("no calls in the summary")?,
        seconds,
    })
}
