//! The `scanstream` client's files and process, end to end: the checkpoint kept beside
//! `-o`, a resume that must be the same read, `--force`, `--trailer`, locks, spools beside
//! the output, a closed standard output, and how the three binaries print an error. The
//! real binary against the real streamer under `cargo lambda watch`, through a proxy that
//! counts (and fails chosen) calls.

mod common;

use common::emulator::Emulator;
use common::stall::Fault;
use common::*;
use scanstream::format::trailer::Trailer;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::run::{committed_items, output_items, scratch, stderr_of};
use common::stall::proxied_streamer;

/// `scanstream pull URL` with two one-segment slices, then `extra`.
fn pull(url: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scanstream"));
    command
        .args(["pull", url, "--invocations", "2", "--segments", "1"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    command
}

fn run(mut command: Command, out: &Path) -> Output {
    command
        .arg("-o")
        .arg(out)
        .output()
        .expect("scanstream runs")
}

/// The ids of an output that holds only items (no trailer).
fn item_ids(path: &Path) -> Vec<String> {
    let items = output_items(path);
    assert!(
        items.iter().all(|item| item.get("@scanstream").is_none()),
        "items only"
    );
    ids(&items)
}

/// Points 1 and 8: a run that stopped leaves its checkpoint beside `-o`; a restart with
/// another output shape is refused before any call, naming the option and both values; the
/// same command (delivery options changed) resumes it and ends it with a trailer that
/// counts the whole output; the checkpoint is then gone, so a third run refuses the
/// finished output unless `--force`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_is_the_same_read_or_refused_and_the_trailer_counts_the_whole_output() {
    let ddb = local_client().await;
    let table = seeded_table(&ddb, "shape", 71, 2000).await;
    let emulator = Emulator::start("shape", &function_env(&table));
    let (proxy, url) = proxied_streamer(&emulator).await;
    // A 400 is not worth retrying: its slice fails, the other completes.
    proxy.fail_call(3, Fault::Status(400));
    let dir = scratch("shape");
    let out = dir.join("out.ndjson");
    let checkpoint = Files::default_checkpoint(&out);

    let first = run(pull(&url, &["--max-items-per-call", "300"]), &out);
    assert!(
        !first.status.success(),
        "a slice failed: {}",
        stderr_of(&first)
    );
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&checkpoint).expect("a checkpoint beside -o"))
            .expect("JSON");
    let committed = saved["committed_items"].as_u64().expect("committed");
    assert!(committed > 0 && committed < 2000, "{saved}");

    let calls = proxy.calls();
    for (extra, flag, old, new) in [
        (
            &["--format", "dynamodb"][..],
            "--format",
            "\"json\"",
            "\"dynamodb\"",
        ),
        (
            &["--fields", "id,name"][..],
            "--fields",
            "not set",
            "\"id,name\"",
        ),
        (
            &["--index", "by-name"][..],
            "--index",
            "not set",
            "\"by-name\"",
        ),
        (&["--consistent"][..], "--consistent", "not set", "\"true\""),
    ] {
        let refused = run(pull(&url, extra), &out);
        let text = stderr_of(&refused);
        assert!(!refused.status.success(), "{extra:?} resumed: {text}");
        assert!(
            text.contains(&format!(
                "{flag}: the checkpoint has {old}, this run asks for {new}"
            )),
            "{extra:?}: {text}"
        );
    }
    assert_eq!(proxy.calls(), calls, "refused before any call");

    let resumed = run(
        pull(
            &url,
            &[
                "--compress",
                "gzip",
                "--max-items-per-call",
                "450",
                "--limit",
                "50",
                "--trailer",
            ],
        ),
        &out,
    );
    let text = stderr_of(&resumed);
    assert!(resumed.status.success(), "{text}");
    assert!(
        text.contains(&format!("resuming: {committed} items")),
        "{text}"
    );
    assert!(
        !checkpoint.exists(),
        "a finished run removes its checkpoint"
    );
    let mut all = output_items(&out);
    let last = all.pop().expect("a last line");
    let trailer = Trailer::parse_line(last.to_string().as_bytes()).expect("a trailer");
    assert!(trailer.complete);
    assert_eq!(trailer.items, 2000, "the whole output, not this run's part");
    assert_eq!(trailer.items, all.len() as u64);
    assert!(trailer.scanned >= 2000 && trailer.pages > 0, "{trailer:?}");
    assert_same_ids(&ids(&all), &expected_ids(71, 2000), "every item once");

    let before = std::fs::read(&out).expect("output");
    let again = run(pull(&url, &["--max-items-per-call", "300"]), &out);
    let text = stderr_of(&again);
    assert!(
        !again.status.success(),
        "a finished output is not read again"
    );
    assert!(text.contains("--force"), "{text}");
    assert_eq!(std::fs::read(&out).expect("output"), before, "untouched");

    let forced = run(pull(&url, &["--force"]), &out);
    assert!(forced.status.success(), "{}", stderr_of(&forced));
    assert_same_ids(
        &item_ids(&out),
        &expected_ids(71, 2000),
        "read again, no trailer",
    );
}

/// Points 4 and 8: spools live beside the output and stale ones go; `-o scan.tmp
/// --checkpoint scan.json` is safe; a second run on the same output, or on the same
/// checkpoint, fails at once; a run killed with SIGKILL frees its locks and is resumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spools_live_beside_the_output_and_a_second_run_is_locked_out() {
    let ddb = local_client().await;
    // Items of 4 KB: half a unit each, so --max-rcu 40 makes the run last about 20 s.
    let table = sized_table(&ddb, "locks", 72, 1500, 4000).await;
    let emulator = Emulator::start("locks", &function_env(&table));
    let url = emulator.url("streamer", "");
    let url = url.trim_end_matches('?').to_string();
    let dir = scratch("locks");
    let (out, checkpoint) = (dir.join("scan.tmp"), dir.join("scan.json"));
    let stale = dir.join(".scan.tmp.7.scanstream-spool");
    std::fs::write(&stale, b"left by a killed run").expect("stale spool");
    // Slowly (a read-rate cap), so the others meet it running.
    let mut first = pull(&url, &["--max-items-per-call", "100", "--max-rcu", "40"])
        .arg("-o")
        .arg(&out)
        .arg("--checkpoint")
        .arg(&checkpoint)
        .stderr(Stdio::null())
        .spawn()
        .expect("scanstream runs");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut spool_seen = false;
    loop {
        spool_seen |= std::fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .any(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                // A live spool, not the stale one planted above (which is there
                // until the run removes it, wherever the run puts its own).
                name.starts_with(".scan.tmp.")
                    && name.ends_with(".scanstream-spool")
                    && !name.contains(".7.")
            });
        if committed_items(&checkpoint) >= 300 && spool_seen {
            break;
        }
        assert!(Instant::now() < deadline, "no progress");
        assert!(
            first.try_wait().expect("wait").is_none(),
            "finished too soon"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !stale.exists(),
        "a stale spool of this output is removed at start"
    );

    for (other_out, other_checkpoint) in [
        (out.clone(), dir.join("other.json")),
        (dir.join("other.ndjson"), checkpoint.clone()),
    ] {
        let started = Instant::now();
        let second = pull(&url, &[])
            .arg("-o")
            .arg(&other_out)
            .arg("--checkpoint")
            .arg(&other_checkpoint)
            .output()
            .expect("scanstream runs");
        let text = stderr_of(&second);
        assert!(!second.status.success(), "{text}");
        assert!(text.contains("another scanstream run is using"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(10), "at once");
    }
    assert!(
        first.try_wait().expect("wait").is_none(),
        "the first run goes on"
    );
    first.kill().expect("kill -9");
    first.wait().expect("reaped");

    let resumed = pull(&url, &[])
        .arg("-o")
        .arg(&out)
        .arg("--checkpoint")
        .arg(&checkpoint)
        .output()
        .expect("scanstream runs again");
    assert!(resumed.status.success(), "{}", stderr_of(&resumed));
    assert_same_ids(&item_ids(&out), &expected_ids(72, 1500), "every item once");
    let left: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["scan.tmp"],
        "no spool, checkpoint or lock left behind"
    );
}

/// Points 2 and 8: `scanstream pull URL | head`: the failed write to a closed standard
/// output stops every worker at once, no further call is made, and the exit is quiet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_standard_output_stops_every_worker_quietly() {
    let ddb = local_client().await;
    let table = seeded_table(&ddb, "pipe", 73, 3000).await;
    let emulator = Emulator::start("pipe", &function_env(&table));
    let (proxy, url) = proxied_streamer(&emulator).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_scanstream"))
        .args(["pull", &url, "--invocations", "3", "--segments", "1"])
        .args(["--max-items-per-call", "100", "--compress", "none"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("scanstream runs");
    let mut head = BufReader::new(child.stdout.take().expect("stdout"));
    for _ in 0..10 {
        let mut line = String::new();
        head.read_line(&mut line).expect("a line");
        assert!(line.ends_with('\n'), "{line:?}");
    }
    drop(head);
    let closed = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            closed.elapsed() < Duration::from_secs(20),
            "still running after its output closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let calls = proxy.calls();
    let text = child
        .stderr
        .take()
        .map(|mut e| {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut e, &mut text);
            text
        })
        .unwrap_or_default();
    assert!(status.success(), "a quiet exit: {status} {text}");
    assert!(!text.contains("error"), "{text}");
    // 30 calls read the table; the run stopped after the first few.
    assert!(calls < 15, "{calls} calls after the output closed");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(proxy.calls(), calls, "no call after the exit");
}

/// Point 8: with `RUST_BACKTRACE=1`, an error from each binary is one `error:` line with its
/// causes and a non-zero status, never a stack backtrace.
#[test]
fn errors_print_one_line_without_a_backtrace() {
    let dir = scratch("errors");
    let taken = dir.join("taken.ndjson");
    std::fs::write(&taken, b"{\"id\":\"x\"}\n").expect("an old output");
    let runs = [
        Command::new(env!("CARGO_BIN_EXE_scanstream"))
            .env("RUST_BACKTRACE", "1")
            .args(["pull", "http://127.0.0.1:9/", "-o"])
            .arg(&taken)
            .output(),
        Command::new(env!("CARGO_BIN_EXE_seeder"))
            .env("RUST_BACKTRACE", "1")
            .args(["--table", "abc", "--from"])
            .arg(dir.join("missing.ndjson"))
            .output(),
        Command::new(env!("CARGO_BIN_EXE_streamer"))
            .env("RUST_BACKTRACE", "1")
            .env_remove("TABLE_NAME")
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output(),
    ];
    for (name, output) in ["scanstream", "seeder", "streamer"].iter().zip(runs) {
        let output = output.expect("runs");
        let text = stderr_of(&output);
        assert!(!output.status.success(), "{name}: {text}");
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "{name}: one error line: {text}");
        assert!(
            !text.to_lowercase().contains("backtrace") && !text.contains("Caused by"),
            "{name}: {text}"
        );
    }
    // Causes are on the line: the refusal names the file and the way out.
    let scanstream = Command::new(env!("CARGO_BIN_EXE_scanstream"))
        .env("RUST_BACKTRACE", "1")
        .args(["pull", "http://127.0.0.1:9/", "-o"])
        .arg(&taken)
        .output()
        .expect("runs");
    let text = stderr_of(&scanstream);
    assert!(
        text.contains(&taken.display().to_string()) && text.contains("--force"),
        "{text}"
    );
}

use scanstream::cli::output::paths::Files;
