//! The `scanstream` client against the faults production throws at it (issue 16): the real
//! binary pulls from the real streamer under `cargo lambda watch`, through a fault proxy
//! (`tests/common/faults.rs`) that throttles, cuts and rewrites, with a DynamoDB Local that
//! throttles, credentials that fail, and kills; every item arrives exactly once.

mod common;

use common::emulator::Emulator;
use common::faults::{Edit, FaultProxy, Faults, RandomFaults, Stall};
use common::*;
use rand::{RngExt, SeedableRng};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::run::*;

/// A fault proxy in front of the emulator, and the streamer's URL through it.
async fn streamer_behind(emulator: &Emulator, faults: Faults) -> (FaultProxy, String) {
    let base = emulator.url("streamer", "");
    let proxy = FaultProxy::start(base.trim_end_matches("/lambda-url/streamer/?"), faults).await;
    let url = format!("{}/lambda-url/streamer/", proxy.url);
    (proxy, url)
}

/// Point 3: credentials from the standard chain's container provider (an HTTP endpoint, as
/// ECS and EKS have) that fails the first time: the run does not fail, and the endpoint is
/// asked twice over many calls, not once a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_fetched_once_and_a_failure_to_load_them_is_retried() {
    let ddb = local_client().await;
    let table = seeded_table(&ddb, "creds", 71, 3000).await;
    let emulator = Emulator::start("creds", &function_env(&table));
    let url = emulator.url("streamer", "");
    let url = url.trim_end_matches('?');
    let credentials = CredentialsEndpoint::start(1).await;
    let dir = scratch("creds");
    let (out, summary) = (dir.join("out.ndjson"), dir.join("summary.json"));
    let output = pull_to(url, &out)
        .args(["--invocations", "3", "--max-items-per-call", "200"])
        .args(["--sign", "always", "--region", "us-east-1"])
        .arg("--summary-json")
        .arg(&summary)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", dir.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &credentials.url)
        .output()
        .expect("scanstream runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_same_ids(
        &output_ids(&out),
        &expected_ids(71, 3000),
        "every item once",
    );
    let calls = read_summary(&summary)["calls"].as_u64().expect("calls");
    assert!(calls >= 15, "{calls} calls: many signed requests");
    assert_eq!(
        credentials.asked.load(Ordering::SeqCst),
        2,
        "one failure, then one answer kept for all {calls} calls"
    );
    assert!(
        stderr_of(&output).contains("loading AWS credentials"),
        "the failure was logged and retried: {}",
        stderr_of(&output)
    );
}

/// Point 5: a Function URL that answers 429 to every call beyond 2 at once, for 60 s.
/// Each slice's read is slowed by `--max-rcu` to about 30 s, so the slices that cannot get
/// in wait half a minute or more; the client halves its calls at once and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_throttling_is_waited_out_with_fewer_calls_at_once() {
    let ddb = local_client().await;
    // 6000 items of about 4 KB: about 2,900 read units, 730 a slice; at 100 units/s over
    // four slices, 29 s a slice.
    let table = sized_table(&ddb, "throttle", 72, 6000, 4000).await;
    let emulator = Emulator::start_warm("throttle", &function_env(&table)).await;
    let faults = Faults {
        at_once: Some((2, Duration::from_secs(60))),
        ..Faults::default()
    };
    let (proxy, url) = streamer_behind(&emulator, faults).await;
    let dir = scratch("throttle");
    let (out, summary) = (dir.join("out.ndjson"), dir.join("summary.json"));
    let output = pull_to(&url, &out)
        .args(["--invocations", "4", "--max-rcu", "100"])
        .arg("--summary-json")
        .arg(&summary)
        .output()
        .expect("scanstream runs");
    let stderr = stderr_of(&output);
    eprintln!("proxy: {}", proxy.counts.line());
    assert!(output.status.success(), "{stderr}");
    assert_same_ids(
        &output_ids(&out),
        &expected_ids(72, 6000),
        "every item once",
    );
    let summary = read_summary(&summary);
    eprintln!("summary: {summary}");
    let throttled = summary["throttled"].as_u64().expect("throttled");
    assert!(throttled >= 2, "{summary}");
    assert_eq!(
        throttled,
        proxy.counts.status_429.load(Ordering::SeqCst),
        "every 429 counted"
    );
    assert!(
        summary["lowest_concurrency"]
            .as_u64()
            .is_some_and(|lowest| (1..=2).contains(&lowest)),
        "{summary}"
    );
    assert!(
        stderr.contains(&format!("{throttled} throttled (429; down to")),
        "the summary line says so: {stderr}"
    );
}

/// Point 5: the patience is a flag with bounds.
#[test]
fn throttle_patience_out_of_bounds_is_a_command_line_error() {
    for bad in ["0", "86401", "soon"] {
        let output = Command::new(env!("CARGO_BIN_EXE_scanstream"))
            .args(["pull", "http://127.0.0.1:9/", "--throttle-patience", bad])
            .output()
            .expect("scanstream runs");
        assert_eq!(output.status.code(), Some(2), "--throttle-patience {bad}");
        assert!(
            stderr_of(&output).contains("--throttle-patience"),
            "{}",
            stderr_of(&output)
        );
    }
}

/// `--idle-timeout` has bounds.
#[test]
fn idle_timeout_out_of_bounds_is_a_command_line_error() {
    for bad in ["0", "3601", "soon"] {
        let output = Command::new(env!("CARGO_BIN_EXE_scanstream"))
            .args(["pull", "http://127.0.0.1:9/", "--idle-timeout", bad])
            .output()
            .expect("scanstream runs");
        assert_eq!(output.status.code(), Some(2), "--idle-timeout {bad}");
        assert!(
            stderr_of(&output).contains("--idle-timeout"),
            "{}",
            stderr_of(&output)
        );
    }
}

/// A call that goes silent, before its response or in the middle of its body, holds
/// neither its slice nor its place among the calls at once past `--idle-timeout`: it is
/// made again from the slice's last commit, and every item arrives once. 5 s, not less:
/// the healthy calls live under the same timeout, on a loaded machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_call_is_given_up_after_the_idle_timeout_and_made_again() {
    let ddb = local_client().await;
    let table = seeded_table(&ddb, "stall", 74, 2000).await;
    let emulator = Emulator::start_warm("stall", &function_env(&table)).await;
    for (what, after) in [("no response", None), ("a body gone silent", Some(20_000))] {
        let faults = Faults {
            stall: Some(Stall { calls: 2, after }),
            ..Faults::default()
        };
        let (proxy, url) = streamer_behind(&emulator, faults).await;
        let dir = scratch("stall");
        let (out, summary) = (dir.join("out.ndjson"), dir.join("summary.json"));
        let started = Instant::now();
        let mut child = pull_to(&url, &out)
            .args([
                "--invocations",
                "2",
                "--compress",
                "none",
                "--idle-timeout",
                "5",
            ])
            .arg("--summary-json")
            .arg(&summary)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("scanstream runs");
        // A pull that waits on a silent call for good fails here instead of hanging.
        while child.try_wait().expect("wait").is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("{what}: the pull still waits after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let output = child.wait_with_output().expect("output");
        let took = started.elapsed();
        eprintln!("{what}: proxy: {}", proxy.counts.line());
        assert!(output.status.success(), "{what}: {}", stderr_of(&output));
        assert_same_ids(&output_ids(&out), &expected_ids(74, 2000), what);
        assert_eq!(proxy.counts.stalled.load(Ordering::SeqCst), 2, "{what}");
        let summary = read_summary(&summary);
        assert!(
            summary["retries"].as_u64() >= Some(2),
            "{what}: both silent calls were made again: {summary}"
        );
        assert!(
            took >= Duration::from_secs(5) && took < Duration::from_secs(60),
            "{what}: given up after the 5 s, not before and not never: {took:?}"
        );
    }
}

/// Point 6: a proxy that cuts every response at 300 kB (and breaks the connection after
/// every shorter one, trailer and all). Calls shrink until they fit; the ones whose
/// trailer arrived before the break are committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_always_cut_off_gets_smaller_until_it_fits() {
    let ddb = local_client().await;
    let table = seeded_table(&ddb, "cut", 73, 6000).await;
    let emulator = Emulator::start_warm("cut", &function_env(&table)).await;
    let faults = Faults {
        cut_at: Some(300_000),
        ..Faults::default()
    };
    let (proxy, url) = streamer_behind(&emulator, faults).await;
    let dir = scratch("cut");
    let (out, summary) = (dir.join("out.ndjson"), dir.join("summary.json"));
    let output = pull_to(&url, &out)
        .args(["--invocations", "3", "--compress", "none"])
        .arg("--summary-json")
        .arg(&summary)
        .output()
        .expect("scanstream runs");
    eprintln!("proxy: {}", proxy.counts.line());
    eprintln!("{}", stderr_of(&output));
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_same_ids(
        &output_ids(&out),
        &expected_ids(73, 6000),
        "every item once",
    );
    let (cut, broken) = (
        proxy.counts.cut.load(Ordering::SeqCst),
        proxy.counts.broken_after_end.load(Ordering::SeqCst),
    );
    assert!(cut >= 3, "every slice's first call was cut: {cut}");
    assert!(
        broken >= 3,
        "and later calls broke after their trailer: {broken}"
    );
    let summary = read_summary(&summary);
    assert_eq!(
        summary["calls"].as_u64(),
        Some(cut + broken),
        "every call was cut or broke after its end: {summary}"
    );
    assert_eq!(
        summary["retries"].as_u64(),
        Some(cut),
        "only the cut ones were made again: {summary}"
    );
}

/// Point 7: a call whose body lost a line (a proxy drops one) no longer matches its
/// trailer's `items`: it is made again, and logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_lines_differ_from_its_trailer_is_made_again() {
    let ddb = local_client().await;
    let table = seeded_table(&ddb, "mismatch", 74, 3000).await;
    let emulator = Emulator::start("mismatch", &function_env(&table));
    let edit = Edit(Arc::new(|call, body: bytes::Bytes| {
        if call % 3 != 1 {
            return body;
        }
        // Drop the first line, an item.
        match body.iter().position(|&b| b == b'\n') {
            Some(end) if end + 1 < body.len() => body.slice(end + 1..),
            _ => body,
        }
    }));
    let faults = Faults {
        edit: Some(edit),
        ..Faults::default()
    };
    let (proxy, url) = streamer_behind(&emulator, faults).await;
    let dir = scratch("mismatch");
    let out = dir.join("out.ndjson");
    let output = pull_to(&url, &out)
        .args(["--invocations", "2", "--compress", "none"])
        .args(["--max-items-per-call", "500"])
        .output()
        .expect("scanstream runs");
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert_same_ids(
        &output_ids(&out),
        &expected_ids(74, 3000),
        "every item once",
    );
    assert!(
        stderr.contains("the trailer says 500 items but 499 lines arrived"),
        "logged: {stderr}"
    );
    assert!(proxy.counts.calls.load(Ordering::SeqCst) >= 9);
}

/// Point 7: a newer streamer's stop reason or error code, unknown here, is read as
/// "incomplete": the slice goes on from the cursor and the pull is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_stop_reason_or_error_code_goes_on_from_the_cursor() {
    let ddb = local_client().await;
    let table = seeded_table(&ddb, "unknown", 75, 3000).await;
    let emulator = Emulator::start("unknown", &function_env(&table));
    let edit = Edit(Arc::new(|call, body: bytes::Bytes| {
        let text = String::from_utf8_lossy(&body);
        let replacement = if call % 2 == 0 {
            r#""reason":"quota_exhausted","#
        } else {
            r#""reason":"error","error":{"code":"QuotaExhausted","message":"m"},"#
        };
        bytes::Bytes::from(text.replace(r#""reason":"max_items","#, replacement))
    }));
    let faults = Faults {
        edit: Some(edit),
        ..Faults::default()
    };
    let (_proxy, url) = streamer_behind(&emulator, faults).await;
    let dir = scratch("unknown");
    let out = dir.join("out.ndjson");
    let output = pull_to(&url, &out)
        .args(["--invocations", "2", "--compress", "none"])
        .args(["--max-items-per-call", "400", "--max-attempts", "2"])
        .output()
        .expect("scanstream runs");
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert_same_ids(
        &output_ids(&out),
        &expected_ids(75, 3000),
        "every item once",
    );
    assert!(stderr.contains("quota_exhausted"), "{stderr}");
    assert!(stderr.contains("QuotaExhausted"), "{stderr}");
}

/// Point 7: an unknown stop reason with no cursor to go on from fails the slice, and the
/// message names the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_stop_reason_without_a_cursor_fails_naming_it() {
    let ddb = local_client().await;
    let table = seeded_table(&ddb, "nocursor", 76, 500).await;
    let emulator = Emulator::start("nocursor", &function_env(&table));
    let edit = Edit(Arc::new(|_, body: bytes::Bytes| {
        let text = String::from_utf8_lossy(&body);
        bytes::Bytes::from(text.replace(
            r#"{"@scanstream":{"complete":true,"#,
            r#"{"@scanstream":{"complete":true,"reason":"quota_exhausted","#,
        ))
    }));
    let faults = Faults {
        edit: Some(edit),
        ..Faults::default()
    };
    let (_proxy, url) = streamer_behind(&emulator, faults).await;
    let dir = scratch("nocursor");
    let out = dir.join("out.ndjson");
    let output = pull_to(&url, &out)
        .args([
            "--invocations",
            "1",
            "--compress",
            "none",
            "--max-attempts",
            "2",
        ])
        .output()
        .expect("scanstream runs");
    let stderr = stderr_of(&output);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"stop reason "quota_exhausted", which this client does not know"#),
        "{stderr}"
    );
}

/// How long the random runs' calls may be silent: well under a run's 180 s deadline.
const SILENT_AFTER: Duration = Duration::from_secs(45);

/// Point 9: many runs under random faults, all from one seed: 503s, 429s and bodies cut
/// at random bytes between the client and the streamer; DynamoDB throttling between the
/// streamer and DynamoDB Local; the client killed (SIGKILL) at random moments and started
/// again from its checkpoint; random K, segments, compression and call sizes. Every run
/// ends with the exact table. Bounded in time: no run starts after the budget, 90 s, or
/// `FAULT_BUDGET_SECS` for a longer soak (`FAULT_SEED` picks another seed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_over_many_runs_lose_nothing() {
    let from_env = |name: &str, default: u64| {
        std::env::var(name).map_or(default, |v| v.parse().expect("a whole number"))
    };
    let seed = from_env("FAULT_SEED", 16);
    let budget = Duration::from_secs(from_env("FAULT_BUDGET_SECS", 90));
    const MIN_RUNS: u32 = 4;
    let ddb = local_client().await;
    let table = seeded_table(&ddb, "random", 77, 4000).await;
    let expected = table_lines(&ddb, &table).await;
    let dynamodb = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("DynamoDB Local");
    let throttling = FaultProxy::start(
        &dynamodb,
        Faults {
            dynamodb_throttle: Some(0.1),
            seed,
            ..Faults::default()
        },
    )
    .await;
    let env = function_env_via(&table, &throttling.url);
    let emulator = Emulator::start_warm("random", &env).await;
    let faults = Faults {
        random: Some(RandomFaults {
            status_503: 0.05,
            status_429: 0.05,
            cut: 0.15,
            cut_within: 400_000,
        }),
        seed,
        ..Faults::default()
    };
    let (proxy, url) = streamer_behind(&emulator, faults).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let started = Instant::now();
    let (mut runs, kills) = (0, AtomicU64::new(0));
    let mut silent_calls = 0;
    while runs < MIN_RUNS || started.elapsed() < budget {
        runs += 1;
        let k: u32 = rng.random_range(1..=4);
        let segments: u32 = rng.random_range(1..=3);
        let compress = ["none", "gzip", "zstd"][rng.random_range(0..3)];
        let max_items: Option<u32> = rng.random_bool(0.7).then(|| rng.random_range(50..=1500));
        let planned_kills = rng.random_range(0..=3);
        let dir = scratch("random-run");
        let (out, checkpoint) = (dir.join("out.ndjson"), dir.join("checkpoint.json"));
        // Each start's standard error is kept: a run that does not finish shows why.
        let mut starts = 0;
        let mut command = || {
            starts += 1;
            let stderr = std::fs::File::create(dir.join(format!("start-{starts}.stderr")))
                .expect("a stderr file");
            let mut command = pull_to(&url, &out);
            command
                .args(["--invocations", &k.to_string()])
                .args(["--segments", &segments.to_string()])
                .args(["--compress", compress])
                // A call gone silent (seen once, on a loaded machine: a run that did not
                // finish in 180 s) is given up well within the run's deadline; how many
                // were is counted below.
                .args(["--idle-timeout", &SILENT_AFTER.as_secs().to_string()])
                // A run on this machine once gave up after eight calls in a row failed
                // to reach the emulator (the proxy's 502s, over about 18 s), and a CI run
                // failed a run early without saying why: more attempts ride out an
                // emulator that stops answering for a while. The faults this test makes
                // are retried within the default eight; a failure now prints its reason.
                .args(["--max-attempts", "20"])
                .arg("--checkpoint")
                .arg(&checkpoint)
                .stderr(stderr);
            if let Some(max_items) = max_items {
                command.args(["--max-items-per-call", &max_items.to_string()]);
            }
            command
        };
        let run = format!(
            "run {runs}: K={k} segments={segments} {compress} max_items={max_items:?} kills={planned_kills}"
        );
        let mut finished = false;
        for _ in 0..planned_kills {
            let mut child = command().spawn().expect("scanstream runs");
            let at = Duration::from_millis(rng.random_range(200..=4000));
            let deadline = Instant::now() + at;
            while Instant::now() < deadline && child.try_wait().expect("wait").is_none() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "{run}: a run before its kill failed ({status}); client side: {}; \
                     its standard error ends:\n{}\nthe emulator's log ends:\n{}",
                    proxy.counts.line(),
                    tail(&dir.join(format!("start-{starts}.stderr")), 40),
                    last_lines(&emulator.log_text(), 60),
                );
                finished = true;
                break;
            }
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
            kills.fetch_add(1, Ordering::SeqCst);
        }
        if !finished {
            let mut child = command().spawn().expect("scanstream runs");
            let deadline = Instant::now() + Duration::from_secs(180);
            let status = loop {
                if let Some(status) = child.try_wait().expect("wait") {
                    break status;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "{run}: did not finish in 180 s; client side: {}; DynamoDB side: {}; \
                         the last start's standard error ends:\n{}",
                        proxy.counts.line(),
                        throttling.counts.line(),
                        tail(&dir.join(format!("start-{starts}.stderr")), 40),
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            assert!(
                status.success(),
                "{run}: the last start failed ({status}); client side: {}; its standard error \
                 ends:\n{}\nthe emulator's log ends:\n{}",
                proxy.counts.line(),
                tail(&dir.join(format!("start-{starts}.stderr")), 40),
                last_lines(&emulator.log_text(), 60),
            );
        }
        let lines = output_lines(&out);
        let distinct: std::collections::BTreeSet<Vec<u8>> = lines.iter().cloned().collect();
        assert_eq!(lines.len(), distinct.len(), "{run}: no line twice");
        assert_eq!(lines.len(), expected.len(), "{run}: every item");
        assert!(distinct == expected, "{run}: the output is the table");
        let silent: usize = (1..=starts)
            .map(|start| {
                std::fs::read_to_string(dir.join(format!("start-{start}.stderr")))
                    .unwrap_or_default()
                    .lines()
                    .filter(|line| line.contains("no response in") || line.contains("body silent"))
                    .count()
            })
            .sum();
        silent_calls += silent;
        eprintln!(
            "{run}: exact ({:.0} s in; {silent} calls given up as silent)",
            started.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "seed {seed}: {runs} runs, {} kills, {silent_calls} calls given up as silent; \
         client side: {}; DynamoDB side: {}",
        kills.load(Ordering::SeqCst),
        proxy.counts.line(),
        throttling.counts.line()
    );
    let get = |n: &AtomicU64| n.load(Ordering::SeqCst);
    assert!(get(&proxy.counts.status_503) > 0 && get(&proxy.counts.status_429) > 0);
    assert!(get(&proxy.counts.cut) > 0, "bodies were cut");
    assert!(
        get(&throttling.counts.dynamodb_throttled) > 0,
        "DynamoDB throttled"
    );
    assert!(get(&kills) > 0, "clients were killed");
}

/// The last `n` lines of `text`.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last `n` lines of a file, or nothing when it cannot be read.
fn tail(path: &std::path::Path, n: usize) -> String {
    last_lines(&std::fs::read_to_string(path).unwrap_or_default(), n)
}

/// A container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`) that counts
/// the times it is asked and refuses the first `fail` of them.
struct CredentialsEndpoint {
    url: String,
    asked: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl CredentialsEndpoint {
    async fn start(fail: u64) -> Self {
        use http_body_util::Full;
        use hyper::server::conn::http1;
        use hyper::service::service_fn;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let url = format!(
            "http://{}/credentials",
            listener.local_addr().expect("address")
        );
        let asked = Arc::new(AtomicU64::new(0));
        let counter = asked.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_request| {
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        async move {
                            let expiry = aws_smithy_types::DateTime::from(
                                std::time::SystemTime::now() + Duration::from_secs(3600),
                            )
                            .fmt(aws_smithy_types::date_time::Format::DateTime)
                            .expect("a date");
                            let (status, body) = if n < fail {
                                (
                                    400,
                                    r#"{"code":"Throttling","message":"slow down"}"#.to_string(),
                                )
                            } else {
                                (
                                    200,
                                    serde_json::json!({
                                        "AccessKeyId": "AKIDEXAMPLE",
                                        "SecretAccessKey": "secret",
                                        "Token": "token",
                                        "Expiration": expiry,
                                    })
                                    .to_string(),
                                )
                            };
                            hyper::Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(bytes::Bytes::from(body)))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, asked, accept }
    }
}

impl Drop for CredentialsEndpoint {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
