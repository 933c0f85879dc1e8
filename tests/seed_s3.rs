//! `scanstream seed URL --from s3://...` end to end: the real client reads an export's
//! manifests in the local S3 server (moto) and hands its data files to the real seeder
//! function under `cargo lambda watch`, which checks each file and writes it into an
//! existing DynamoDB Local table. Killed with SIGKILL half way and run again, the table
//! is the source's, and the same as `seeder --from s3://...` loads; files that are not
//! what the manifest says are named, and nothing of them is written.

mod common;

use common::emulator::Emulator;
use common::keyed::{keyed_items, keyed_table, source_table};
use common::run::scratch;
use common::s3::{fresh_bucket, local_s3, put, put_native_export};
use common::*;
use scanstream::format::item::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `scanstream seed URL --from FROM`, run in `dir` (where its checkpoint goes by default).
fn restore(url: &str, from: &str, dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scanstream"));
    command
        .args(["seed", url, "--from", from, "--quiet"])
        .args(extra)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env("RUST_LOG", "warn");
    command
}

/// The seeder function's environment: it writes `table` and reads under
/// `s3://bucket/imports`.
fn import_env(table: &str, bucket: &str, dynamodb: Option<&str>) -> Vec<(&'static str, String)> {
    let mut env = match dynamodb {
        Some(via) => function_env_via(table, via),
        None => function_env(table),
    };
    env.push(("IMPORT_BUCKET", bucket.to_string()));
    env.push(("IMPORT_PREFIX", "imports".to_string()));
    env.push((
        "AWS_ENDPOINT_URL_S3",
        std::env::var("AWS_ENDPOINT_URL_S3").unwrap_or_default(),
    ));
    env
}

/// Starts the emulator and builds the seeder with a call it refuses at once.
async fn seeder_emulator(name: &str, env: &[(&str, String)]) -> Emulator {
    let emulator = Emulator::start(name, env);
    let status = reqwest::Client::builder()
        .timeout(Duration::from_secs(1200))
        .build()
        .expect("http client")
        .get(emulator.url("seeder", ""))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(status.ok(), Some(400), "{}", emulator.log_text());
    emulator
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// GIVEN a native export of 6,000 items in 24 files, under throttled DynamoDB writes and
/// with a 429 now and then from the function URL WHEN `scanstream seed --from` restores
/// it with two invocations, is killed with SIGKILL half way, and runs again THEN the
/// table is the source item for item, the same as the local loader makes of the export,
/// and a third run finds every file restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_restore_resumes_into_the_source_table() {
    let ddb = local_client().await;
    let s3 = local_s3().await;
    let bucket = fresh_bucket(&s3, "restore").await;
    let (source, expected) = source_table(&ddb, "restore-src", 81, 6000).await;
    let root = put_native_export(
        &s3,
        &bucket,
        "imports/native",
        &source,
        &keyed_items(81, 6000),
        250,
    )
    .await;
    let target = keyed_table(&ddb, "restore-dst", Vec::new()).await;
    let dynamodb = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("DynamoDB Local");
    let throttling = common::faults::FaultProxy::start(
        &dynamodb,
        common::faults::Faults {
            dynamodb_throttle: Some(0.1),
            seed: 5,
            ..Default::default()
        },
    )
    .await;
    let emulator = seeder_emulator(
        "restore-kill",
        &import_env(&target, &bucket, Some(&throttling.url)),
    )
    .await;
    let base = emulator.url("seeder", "");
    let refusing = common::faults::FaultProxy::start(
        base.trim_end_matches("/lambda-url/seeder/?"),
        common::faults::Faults {
            random: Some(common::faults::RandomFaults {
                status_503: 0.0,
                status_429: 0.15,
                cut: 0.0,
                cut_within: 1,
            }),
            seed: 6,
            ..Default::default()
        },
    )
    .await;
    let url = format!("{}/lambda-url/seeder/", refusing.url);
    let dir = scratch("restore-kill");
    let from = format!("s3://{bucket}/imports/native");
    let extra = ["--invocations", "2", "--max-wcu", "20000"];
    let first_stderr = dir.join("first.stderr");
    let mut child = restore(&url, &from, &dir, &extra)
        .stderr(std::fs::File::create(&first_stderr).expect("stderr file"))
        .spawn()
        .expect("scanstream runs");
    let checkpoint = dir.join("scanstream-restore-01764979200000-1a2b3c4d.ckpt");
    // Killed once some files are restored, before all of them are.
    let deadline = Instant::now() + Duration::from_secs(120);
    // The checkpoint: a header line, then a line a file restored.
    let done = |path: &Path| -> usize {
        std::fs::read_to_string(path)
            .map(|text| text.lines().filter(|l| l.contains("\"done\"")).count())
            .unwrap_or(0)
    };
    while done(&checkpoint) < 3 && Instant::now() < deadline {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before the kill: {}",
            std::fs::read_to_string(&first_stderr).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let before = done(&checkpoint);
    assert!((3..24).contains(&before), "killed half way: {before} files");
    let out = restore(&url, &from, &dir, &extra).output().expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("resuming: {before} files")),
        "{}",
        stderr(&out)
    );
    assert_eq!(done(&checkpoint), 24);
    assert!(
        table_lines(&ddb, &target).await == expected,
        "the restored table differs from the source"
    );
    let counts = (
        refusing
            .counts
            .status_429
            .load(std::sync::atomic::Ordering::SeqCst),
        throttling
            .counts
            .dynamodb_throttled
            .load(std::sync::atomic::Ordering::SeqCst),
    );
    assert!(
        counts.0 > 0 && counts.1 > 0,
        "429s and throttling: {counts:?}"
    );
    // Run again: nothing left to do.
    let again = restore(&url, &from, &dir, &extra).output().expect("runs");
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("resuming: 24 files"),
        "{}",
        stderr(&again)
    );
    assert!(stderr(&again).contains(" 0 calls"), "{}", stderr(&again));
    // The local loader makes the same table of the same export.
    let local = keyed_table(&ddb, "restore-local", Vec::new()).await;
    let out = seeder(&[
        "--table",
        &local,
        "--from",
        &format!("s3://{bucket}/{root}"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(table_lines(&ddb, &local).await == table_lines(&ddb, &target).await);
}

/// GIVEN an export whose files are not all what its manifest says (one missing, one with
/// a byte changed, one whose count is off) and one whose items break the table's index
/// WHEN it is restored THEN each is named, the run fails, nothing of them is written, and
/// the good files are; requests outside the import folder, or malformed, are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_fail_their_check_are_named_and_not_written() {
    let ddb = local_client().await;
    let s3 = local_s3().await;
    let bucket = fresh_bucket(&s3, "restore-bad").await;
    let mut items = keyed_items(82, 1000);
    // The last file's items carry `g` as a string; the table's index keys `g` as a number.
    for item in &mut items[800..] {
        item.insert("g".into(), Value::S("not a number".into()));
    }
    let root = put_native_export(&s3, &bucket, "imports/bad", "src", &items, 200).await;
    let target = keyed_table(&ddb, "restore-bad", Vec::new()).await;
    add_global_index(
        &ddb,
        &target,
        "by-g",
        ("g", aws_sdk_dynamodb::types::ScalarAttributeType::N),
        aws_sdk_dynamodb::types::ProjectionType::KeysOnly,
    )
    .await;
    let files: Vec<String> = (0..5)
        .map(|n| format!("{root}/data/x{n}abcdefghijklmnop.json.gz"))
        .collect();
    // File 1 a byte changed; file 2's count off by one in the manifests; file 0 missing.
    let mut flipped = common::s3::object(&s3, &bucket, &files[1]).await;
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    put(&s3, &bucket, &files[1], flipped).await;
    for (name, from, to) in [
        (
            "manifest-files.json",
            "\"itemCount\":200,",
            "\"itemCount\":201,",
        ),
        (
            "manifest-summary.json",
            "\"itemCount\":1000,",
            "\"itemCount\":1001,",
        ),
    ] {
        let key = format!("{root}/{name}");
        let text = String::from_utf8(common::s3::object(&s3, &bucket, &key).await).expect("utf-8");
        let edited: String = text
            .lines()
            .map(|line| {
                let line = if name == "manifest-summary.json" || line.contains(&files[2]) {
                    line.replace(from, to)
                } else {
                    line.to_string()
                };
                format!("{line}\n")
            })
            .collect();
        assert_ne!(edited, text, "{name} edited");
        put(&s3, &bucket, &key, edited.into_bytes()).await;
    }
    let file0 = common::s3::object(&s3, &bucket, &files[0]).await;
    s3.delete_object()
        .bucket(&bucket)
        .key(&files[0])
        .send()
        .await
        .expect("delete");
    let emulator = seeder_emulator("restore-bad", &import_env(&target, &bucket, None)).await;
    let url = emulator.url("seeder", "");
    let url = url.trim_end_matches('?');
    let dir = scratch("restore-bad");
    let from = format!("s3://{bucket}/imports/bad");
    // A file the manifest lists and the bucket does not hold: the client refuses the
    // export before any call, naming it.
    let out = restore(url, &from, &dir, &["--invocations", "2"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "{}: listed in manifest-files.json but missing",
            files[0]
        )),
        "{}",
        stderr(&out)
    );
    assert!(
        table_lines(&ddb, &target).await.is_empty(),
        "nothing written"
    );
    // With it back, the function checks each file: three are refused, by name.
    put(&s3, &bucket, &files[0], file0).await;
    let out = restore(url, &from, &dir, &["--invocations", "2"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let text = stderr(&out);
    for (file, why) in [
        (&files[1], "MD5 is"),
        (&files[2], "item count is 200, the request says 201"),
        (&files[4], "by-g"),
    ] {
        assert!(
            text.lines()
                .any(|line| line.contains(file.as_str()) && line.contains(why)),
            "{file} named with {why:?}:\n{text}"
        );
    }
    assert!(text.contains("3 of 5 files were not restored"), "{text}");
    let written = table_lines(&ddb, &target).await;
    let good_items: Vec<_> = items[0..200]
        .iter()
        .chain(&items[600..800])
        .cloned()
        .collect();
    let good = keyed_table(&ddb, "restore-good", good_items).await;
    assert!(
        written == table_lines(&ddb, &good).await,
        "only files 0 and 3 are written, whole ({} items)",
        written.len()
    );
    // Refused before any work: outside the import folder, or malformed.
    let http = reqwest::Client::new();
    let md5 = "0".repeat(32);
    for (query, status) in [
        (
            format!("from=s3://{bucket}/elsewhere/x.json.gz&items=1&md5={md5}"),
            403,
        ),
        (
            format!("from=s3://other-bucket/imports/x.json.gz&items=1&md5={md5}"),
            403,
        ),
        (
            format!("from=s3://{bucket}/imports-old/x&items=1&md5={md5}"),
            403,
        ),
        (
            format!("from=s3://{bucket}/imports/../x&items=1&md5={md5}"),
            400,
        ),
        (format!("from=s3://{bucket}/imports/x&md5={md5}"), 400),
        (format!("from=s3://{bucket}/imports/x&items=1&md5=xyz"), 400),
        (
            format!("from=s3://{bucket}/imports/x&items=1&md5={md5}&count=3"),
            400,
        ),
        (
            format!("from=s3://{bucket}/imports/x&items=1&md5={md5}&max_wcu=0"),
            400,
        ),
        (
            format!("from=s3://{bucket}/imports/x&items=1&md5={md5}&max_wcu=2000000"),
            400,
        ),
        (
            format!("from=s3://{bucket}/imports/x&items=1&md5={md5}&after=0"),
            400,
        ),
        ("count=10&md5=x".to_string(), 400),
        (
            format!("from=s3://{bucket}/imports/missing.json.gz&items=1&md5={md5}"),
            404,
        ),
    ] {
        let response = http
            .get(format!("{url}?{query}"))
            .send()
            .await
            .expect("answered");
        let got = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(got, status, "{query}: {body}");
        assert!(body.contains("\"error\""), "{query}: {body}");
    }
    assert_eq!(table_lines(&ddb, &target).await.len(), 400, "still");
}

/// Flags out of bounds or that do not go together exit 2 before any call: the URL is
/// never reached (nothing listens on it).
#[test]
fn bad_restore_flags_are_refused_before_any_call() {
    let dir = scratch("restore-flags");
    let url = "http://127.0.0.1:9/lambda-url/seeder/";
    for (extra, says) in [
        (vec!["--from", "s3://b-1/x", "--max-wcu", "0"], "--max-wcu"),
        (
            vec!["--from", "s3://b-1/x", "--max-wcu", "1000001"],
            "--max-wcu",
        ),
        (vec!["--from", "s3://b-1/x", "--count", "5"], "--count"),
        (
            vec!["--from", "s3://b-1/x", "--per-call", "5"],
            "--per-call",
        ),
        (
            vec!["--count", "5", "--checkpoint", "c.ckpt"],
            "--checkpoint",
        ),
        (vec!["--count", "5", "--no-checkpoint"], "--no-checkpoint"),
        (
            vec![
                "--from",
                "s3://b-1/x",
                "--checkpoint",
                "c",
                "--no-checkpoint",
            ],
            "--no-checkpoint",
        ),
        (vec![], "--count"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_scanstream"))
            .args(["seed", url])
            .args(&extra)
            .current_dir(&dir)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{extra:?}: {}", stderr(&out));
    }
    assert_eq!(
        std::fs::read_dir(&dir).expect("dir").count(),
        0,
        "no file left"
    );
}
