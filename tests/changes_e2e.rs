//! A copy that stays current, end to end, as a user runs it: `scanstream pull` takes a
//! snapshot through the real streamer under `cargo lambda watch` while a writer changes
//! the table, `scanstream changes --since-snapshot` reads the table's stream from the
//! snapshot's start (killed with SIGKILL at random points and run again), and
//! `seeder --from` then `seeder --apply` make a second table that must equal the first
//! item for item; then the live pipe `changes --follow | seeder --apply -` keeps a third
//! table equal while more writes come.

mod common;

use aws_sdk_dynamodb::types::StreamViewType;
use common::emulator::Emulator;
use common::keyed::{keyed_items, keyed_table, random_writes, set_stream};
use common::run::*;
use common::*;
use rand::{RngExt, SeedableRng};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SEEDED: u64 = 20_000;
const WRITES: usize = 3_000;
/// The writer's keys: the seeded ones (7 sort keys a partition) and some beyond them.
const POOL: (u32, u32) = (3_200, 7);

fn changes(url: &str, out: &Path, snapshot: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scanstream"));
    command
        .args(["changes", url, "--since-snapshot"])
        .arg(snapshot)
        .arg("-o")
        .arg(out)
        .args(["--max-items-per-call", "400", "--limit", "100", "--quiet"])
        // One clock here (no skew to cover), and the stream was turned on seconds before
        // the snapshot: a margin would reach back before the stream, which is refused.
        .args(["--margin", "0"])
        .args(extra)
        .stdin(Stdio::null())
        .env("RUST_LOG", "warn");
    command
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A table loaded from the snapshot file.
async fn from_snapshot(ddb: &aws_sdk_dynamodb::Client, name: &str, snapshot: &Path) -> String {
    let copy = keyed_table(ddb, name, Vec::new()).await;
    let out = seeder(&["--table", &copy, "--from", path(snapshot)]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_and_its_changes_applied_equal_the_source_item_for_item() {
    let ddb = local_client().await;
    let source = keyed_table(&ddb, "copy-src", keyed_items(29, SEEDED)).await;
    set_stream(&ddb, &source, Some(StreamViewType::NewAndOldImages)).await;
    let emulator = Emulator::start_warm("changes", &function_env(&source)).await;
    let url = emulator
        .url("streamer", "")
        .trim_end_matches('?')
        .to_string();
    let dir = scratch("changes");
    let (snap, snap_summary) = (dir.join("snap.ndjson"), dir.join("snap.json"));

    // The writer starts with the snapshot and goes on past it.
    let writer = {
        let (ddb, source) = (ddb.clone(), source.clone());
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for part in 0..3u64 {
                let (ddb, source) = (ddb.clone(), source.clone());
                tasks.push(tokio::spawn(async move {
                    random_writes(&ddb, &source, 100 + part, WRITES / 3, POOL).await;
                }));
            }
            for task in tasks {
                task.await.expect("writer");
            }
        })
    };
    let snapshot = pull_to(&url, &snap)
        .args([
            "--format",
            "dynamodb",
            "--invocations",
            "2",
            "--limit",
            "100",
        ])
        .args([
            "--max-items-per-call",
            "2000",
            "--quiet",
            "--trailer",
            "--summary-json",
        ])
        .arg(&snap_summary)
        .output()
        .expect("pull runs");
    assert!(snapshot.status.success(), "{}", stderr_of(&snapshot));
    let during = !writer.is_finished();
    writer.await.expect("the writer ends");
    assert!(during, "the writes went on during the snapshot");
    let summary = read_summary(&snap_summary);
    let t0 = summary["changes_since"]
        .as_str()
        .expect("T0 in --summary-json");
    assert!(
        stderr_of(&snapshot).contains(&format!("changes since {t0}")),
        "T0 in the summary line"
    );

    // The changes, killed at random points and run again until one finishes.
    let out = dir.join("changes.ndjson");
    let checkpoint = dir.join("changes.ndjson.ckpt");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut kills = 0;
    for _ in 0..4 {
        let mut child = changes(&url, &out, &snap_summary, &[])
            .spawn()
            .expect("changes runs");
        std::thread::sleep(Duration::from_millis(rng.random_range(300..2500)));
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("kill -9");
            kills += 1;
        }
        let _ = child.wait();
    }
    let last = changes(&url, &out, &snap_summary, &["--summary-json"])
        .arg(dir.join("changes.json"))
        .output()
        .expect("changes runs");
    assert!(
        last.status.success(),
        "{}\n{}",
        stderr_of(&last),
        emulator.log_text()
    );
    assert!(kills >= 1, "a run was killed part way");
    assert!(checkpoint.exists(), "a caught-up run keeps its cursor");
    let lines = output_lines(&out);
    assert!(
        lines.len() >= WRITES / 2,
        "the writes' changes: {}",
        lines.len()
    );
    let sequences: std::collections::BTreeSet<String> = lines
        .iter()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_slice(line).expect("JSON");
            record["dynamodb"]["SequenceNumber"]
                .as_str()
                .expect("sequence")
                .to_string()
        })
        .collect();
    assert_eq!(
        sequences.len(),
        lines.len(),
        "a change written twice across the kills"
    );

    // Run again once caught up: nothing is written twice.
    let again = changes(&url, &out, &snap_summary, &[])
        .output()
        .expect("changes runs");
    assert!(again.status.success(), "{}", stderr_of(&again));
    assert_eq!(
        output_lines(&out).len(),
        lines.len(),
        "nothing new, nothing twice"
    );

    let copy = from_snapshot(&ddb, "copy-b", &snap).await;
    let applied = seeder(&["--table", &copy, "--apply", path(&out)]);
    assert!(applied.status.success(), "{}", stderr_of(&applied));
    let want = table_lines(&ddb, &source).await;
    assert_eq!(
        table_lines(&ddb, &copy).await,
        want,
        "the snapshot and its changes equal the source"
    );
    // The snapshot alone does not: the test could fail.
    let stale = from_snapshot(&ddb, "copy-stale", &snap).await;
    assert_ne!(
        table_lines(&ddb, &stale).await,
        want,
        "the writes changed the table"
    );

    // The live pipe keeps a third copy current.
    let live = from_snapshot(&ddb, "copy-c", &snap).await;
    let mut follower = Command::new(env!("CARGO_BIN_EXE_scanstream"))
        .args([
            "changes",
            &url,
            "--since-snapshot",
            path(&snap_summary),
            "--follow",
            "--quiet",
            "--margin",
            "0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("changes --follow runs");
    let pipe = follower.stdout.take().expect("stdout");
    let mut applier = Command::new(env!("CARGO_BIN_EXE_seeder"))
        .args(["--table", &live, "--apply", "-"])
        .stdin(pipe)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("seeder --apply - runs");
    random_writes(&ddb, &source, 200, 300, POOL).await;
    let want = table_lines(&ddb, &source).await;
    let started = Instant::now();
    loop {
        if table_lines(&ddb, &live).await == want {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the live copy did not catch up in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    follower.kill().expect("stop the follower");
    let _ = follower.wait();
    let _ = applier.wait();
}

/// GIVEN `scanstream changes` with flags out of bounds, no time, or a snapshot summary
/// that has no T0 or did not complete, WHEN it runs THEN it fails naming the cause, and
/// the Function URL is never called.
#[tokio::test]
async fn bad_flags_and_summaries_are_refused_before_any_call() {
    let stub = common::stub::Stub::start(|_| common::stub::answer(500, "text/plain", "no")).await;
    let dir = scratch("changes-flags");
    let old = dir.join("old.json");
    std::fs::write(&old, br#"{"complete":true,"items":3}"#).expect("summary");
    let cut = dir.join("cut.json");
    std::fs::write(
        &cut,
        br#"{"complete":false,"changes_since":"2026-12-07T00:00:00Z"}"#,
    )
    .expect("summary");
    let (old, cut) = (path(&old).to_string(), path(&cut).to_string());
    let out = dir.join("out.ndjson");
    let out = path(&out).to_string();
    for (args, says) in [
        (vec![], "--since"),
        (vec!["--since", "yesterday"], "RFC 3339"),
        (
            vec!["--since", "2026-12-07T00:00:00Z", "--since-snapshot", &old],
            "cannot be used with",
        ),
        (vec!["--since-snapshot", &old], "no changes_since"),
        (vec!["--since-snapshot", &cut], "did not complete"),
        (
            vec!["--since", "2026-12-07T00:00:00Z", "--margin", "3601"],
            "3601",
        ),
        (
            vec!["--since", "2026-12-07T00:00:00Z", "--interval", "0"],
            "interval",
        ),
        (
            vec!["--since", "2026-12-07T00:00:00Z", "--limit", "1001"],
            "1001",
        ),
        (
            vec!["--since", "2026-12-07T00:00:00Z", "--checkpoint", &out],
            "--output",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_scanstream"))
            .args(["changes", &stub.url])
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("scanstream runs");
        let text = stderr_of(&output);
        assert!(!output.status.success(), "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
    }
    assert!(
        stub.requests().is_empty(),
        "a refused run called the function"
    );
}
