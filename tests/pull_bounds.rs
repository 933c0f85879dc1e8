//! The client's bounds against a scripted Function URL: no redirect followed, a refused
//! call's body read only so far, a compression bomb refused in little memory, a thousand
//! calls at once, `scanstream seed` keeping only what it needs of a body, and a failed
//! Query slice named by its keys.

mod common;

use bytes::Bytes;
use common::stub::{Stub, answer, repeated, run_watching_rss, zstd_bomb};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::run::{scratch, stderr_of};

/// The tests that measure a process's memory run one at a time, and not beside the
/// thousand calls.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn scanstream(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scanstream"));
    command
        .args(args)
        .stdin(Stdio::null())
        .env("RUST_LOG", "warn")
        .env_remove("RUST_BACKTRACE");
    command
}

/// What a run that must have failed printed on its standard error.
fn failure_text(output: &Output) -> String {
    let text = stderr_of(output);
    assert!(!output.status.success(), "{text}");
    text
}

/// A streamer's trailer for a whole call of `items` items.
fn trailer(items: u64) -> String {
    format!(
        r#"{{"@scanstream":{{"complete":true,"items":{items},"scanned":{items},"pages":1,"consumed_capacity":null,"rcu_per_s":null,"retries":0,"segments":[],"elapsed_ms":1,"ttfb_ms":1}}}}"#
    )
}

/// GIVEN a Function URL that redirects elsewhere WHEN a signed pull calls it THEN the
/// call fails naming the location, and nothing reaches the other host.
#[tokio::test]
async fn a_redirect_is_not_followed_and_names_where_it_points() {
    let elsewhere = Stub::start(|_| answer(200, "application/x-ndjson", trailer(0))).await;
    let location = format!("{}stolen", elsewhere.url);
    let target = location.clone();
    let redirecting = Stub::start(move |_| {
        let mut response = answer(307, "text/plain", "moved");
        let value = http::HeaderValue::from_str(&target).expect("a header");
        response.headers_mut().insert("location", value);
        response
    })
    .await;
    let url = redirecting.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        scanstream(&["pull", &url, "--sign", "always", "--region", "us-east-1"])
            .args([
                "--invocations",
                "1",
                "--segments",
                "1",
                "--max-attempts",
                "1",
            ])
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_SESSION_TOKEN", "token")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("runs")
    })
    .await
    .expect("joined");
    let text = failure_text(&output);
    assert!(text.contains("307") && text.contains(&location), "{text}");
    assert!(
        elsewhere.requests().is_empty(),
        "the signed call went on to {location}: {:?}",
        elsewhere.requests()
    );
    assert_eq!(redirecting.requests().len(), 1, "one call, not retried");
}

/// Runs `scanstream ARGS URL...` against a stub that refuses every call with `status`
/// and a body of `chunk` repeated without end; returns its stderr and how long it took.
async fn against_an_endless_refusal(
    status: u16,
    chunk: &'static [u8],
    args: &'static [&'static str],
) -> (std::process::Output, Duration) {
    let stub = Stub::start(move |_| {
        let mut response = answer(status, "text/plain", "");
        *response.body_mut() = repeated(Bytes::from_static(chunk), None, Duration::from_millis(1));
        response
    })
    .await;
    let url = stub.url.clone();
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        let mut command = scanstream(&[args[0], &url]);
        command.args(&args[1..]).output().expect("runs")
    })
    .await
    .expect("joined");
    (output, started.elapsed())
}

/// GIVEN a refused call (400) whose body never ends WHEN the client reads it THEN it
/// reads a few KB, says what they were, and fails at once, not after --idle-timeout.
#[tokio::test]
async fn a_refused_calls_body_is_read_only_a_few_kb() {
    let args = &[
        "pull",
        "--invocations",
        "1",
        "--segments",
        "1",
        "--idle-timeout",
        "20",
        "--max-attempts",
        "1",
    ];
    let (output, took) = against_an_endless_refusal(400, b"refused ", args).await;
    let text = failure_text(&output);
    assert!(text.contains("400: refused refused"), "{text}");
    assert!(took < Duration::from_secs(15), "took {took:?}: {text}");
}

/// GIVEN a seeder URL that refuses (403) with a body that never ends and holds no line
/// WHEN `scanstream seed` calls it THEN the refusal is named at once, not read as progress
/// (a line too long was taken for a cut-off call and made again).
#[tokio::test]
async fn scanstream_seed_names_a_refusal_without_reading_its_body() {
    static LINE: [u8; 64 * 1024] = [b'x'; 64 * 1024];
    let args = &["seed", "--count", "10", "--invocations", "1"];
    let (output, took) = against_an_endless_refusal(403, &LINE, args).await;
    let text = failure_text(&output);
    assert!(text.contains("403 Forbidden"), "{text}");
    assert!(took < Duration::from_secs(60), "took {took:?}: {text}");
}

/// GIVEN a body of 32 KiB of zstd that inflates to 1 GiB of one byte WHEN the client
/// decodes it THEN it refuses it with a clear error, its memory small.
#[tokio::test]
async fn a_compression_bomb_is_refused_in_little_memory() {
    let _alone = ALONE.lock().await;
    let bomb = Bytes::from(zstd_bomb(8192, b'x'));
    let stub = Stub::start(move |_| answer(200, "application/zstd", bomb.clone())).await;
    let url = stub.url.clone();
    let (output, peak_kb) = tokio::task::spawn_blocking(move || {
        run_watching_rss(
            scanstream(&["pull", &url, "--invocations", "1", "--segments", "1"]).args([
                "--max-attempts",
                "1",
                "-q",
            ]),
        )
    })
    .await
    .expect("joined");
    let text = failure_text(&output);
    assert!(text.contains("inflates past"), "{text}");
    assert!(output.stdout.is_empty(), "nothing was written");
    assert!(peak_kb < 150_000, "peak RSS {peak_kb} kB: {text}");
}

/// GIVEN a seeder function whose call sends 200 MB of progress lines before its summary
/// WHEN `scanstream seed` reads it THEN it keeps only what it needs: little memory.
#[tokio::test]
async fn scanstream_seed_keeps_only_what_it_needs_of_a_body() {
    let _alone = ALONE.lock().await;
    let line = format!(
        "{{\"progress\":{{\"written\":1}},\"pad\":\"{}\"}}\n",
        "x".repeat(8000)
    );
    let chunk = Bytes::from(line.repeat(8));
    let times = 200_000_000 / chunk.len();
    let stub = Stub::start(move |_| {
        let summary = Bytes::from_static(b"{\"summary\":{\"complete\":true,\"written\":5}}\n");
        let mut response = answer(200, "application/x-ndjson", "");
        let body = futures::StreamExt::chain(
            http_body_util::BodyStream::new(repeated(chunk.clone(), Some(times), Duration::ZERO)),
            futures::stream::once(async move { Ok(hyper::body::Frame::data(summary)) }),
        );
        *response.body_mut() =
            http_body_util::BodyExt::boxed(http_body_util::StreamBody::new(body));
        response
    })
    .await;
    let url = stub.url.clone();
    let (output, peak_kb) = tokio::task::spawn_blocking(move || {
        run_watching_rss(&mut scanstream(&[
            "seed",
            &url,
            "--count",
            "5",
            "--invocations",
            "1",
            "-q",
        ]))
    })
    .await
    .expect("joined");
    let text = stderr_of(&output);
    assert!(output.status.success(), "{text}");
    assert!(peak_kb < 80_000, "peak RSS {peak_kb} kB for a 200 MB body");
}

/// GIVEN a Query whose calls are refused WHEN the pull fails THEN the error names the
/// failed slice by its keys, not by a number that looks like a segment.
#[tokio::test]
async fn a_failed_query_slice_is_named_by_its_keys() {
    let stub = Stub::start(|_| answer(400, "text/plain", "no such partition key")).await;
    let url = stub.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        scanstream(&[
            "pull",
            &url,
            "--pk",
            "beta",
            "--pk",
            "alpha",
            "--max-attempts",
            "1",
        ])
        .args(["--invocations", "1"])
        .output()
        .expect("runs")
    })
    .await
    .expect("joined");
    let text = failure_text(&output);
    assert!(
        text.contains(r#"the keys 1 to 2 of 2 (sorted), from "alpha" to "beta""#),
        "{text}"
    );
    assert!(!text.contains("segments from"), "{text}");
}

/// GIVEN --invocations 1000 WHEN all thousand calls run at once against a stub THEN they
/// all finish, with every item once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_calls_at_once_finish_with_every_item() {
    let _alone = ALONE.lock().await;
    let items = 5;
    let stub = Stub::start(move |seen| {
        let offset = seen
            .uri
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("segment_offset="))
            .unwrap_or("x")
            .to_string();
        let mut body: String = (0..items)
            .map(|i| {
                format!(
                    "{{\"id\":\"{offset}-{i}\",\"pad\":\"{}\"}}\n",
                    "y".repeat(200)
                )
            })
            .collect();
        body.push_str(&trailer(items));
        body.push('\n');
        answer(200, "application/x-ndjson", body)
    })
    .await;
    let dir = scratch("thousand");
    let out = dir.join("out.ndjson");
    let (url, path) = (stub.url.clone(), out.clone());
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        scanstream(&["pull", &url, "--invocations", "1000", "--segments", "1"])
            .args(["--compress", "none", "-q", "-o"])
            .arg(&path)
            .output()
            .expect("runs")
    })
    .await
    .expect("joined");
    let text = stderr_of(&output);
    assert!(output.status.success(), "{text}");
    let written = std::fs::read_to_string(&out).expect("the output");
    let mut ids: Vec<String> = written
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).expect("JSON")["id"]
                .as_str()
                .expect("an id")
                .to_string()
        })
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..1000)
        .flat_map(|k| (0..items).map(move |i| format!("{k}-{i}")))
        .collect();
    expected.sort();
    assert!(
        ids == expected,
        "{} ids, {} expected",
        ids.len(),
        expected.len()
    );
    assert_eq!(stub.requests().len(), 1000, "one call a slice");
    eprintln!("1000 calls at once: {:?}", started.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}
