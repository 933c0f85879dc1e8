//! `scanstream pull --format dynamodb -o DIR --layout export` end to end: the real client
//! pulls a table keyed `pk` (S) + `sk` (N) from the real streamer under `cargo lambda
//! watch` (through a proxy that fails chosen calls, or killed and started again), and the
//! real seeder restores the export into a fresh table with `--from DIR`, compared item for
//! item. One flipped byte in a data file is refused naming the file, and nothing is
//! written. Bad flag combinations are refused before any call.

mod common;

use base64::Engine as _;
use common::emulator::Emulator;
use common::stall::{Fault, StallProxy};
use common::*;
use md5::{Digest, Md5};
use scanstream::format::key::KeySchema;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::run::{scratch, wait_until_committed};

use common::keyed::{KEY, source_table};

/// `scanstream pull URL --layout export -o DIR` with the test's usual slicing.
fn pull_export(url: &str, dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scanstream"));
    command
        .args(["pull", url, "--invocations", "3", "--segments", "2"])
        .args([
            "--limit", "100", "--format", "dynamodb", "--layout", "export",
        ])
        .arg("-o")
        .arg(dir)
        .args(extra)
        .stdin(Stdio::null());
    command
}

/// `seeder --table TABLE --from DIR` plus `extra`.
fn restore(table: &str, dir: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_seeder"))
        .args(["--table", table, "--from"])
        .arg(dir)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("seeder runs")
}

/// The one export folder under `dir`.
fn export_folder(dir: &Path) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir.join("AWSDynamoDB"))
        .expect("AWSDynamoDB/")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(found.len(), 1, "one export: {found:?}");
    found[0].clone()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("read").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Checks the layout against the page "DynamoDB table export output format", by our own
/// reading of the files (not the loader's): the manifests' fields, every data file listed
/// with its base64 MD5 and its count of `{"Item":...}` lines.
fn check_layout(folder: &Path, items: u64) -> usize {
    assert!(folder.join("_started").is_file());
    assert!(folder.join("manifest-summary.checksum").is_file());
    assert!(folder.join("manifest-files.checksum").is_file());
    let id = folder
        .file_name()
        .expect("id")
        .to_string_lossy()
        .into_owned();
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(folder.join("manifest-summary.json")).expect("summary"),
    )
    .expect("summary JSON");
    assert_eq!(summary["version"], "2020-06-30");
    assert_eq!(summary["outputFormat"], "DYNAMODB_JSON");
    assert_eq!(summary["itemCount"], items);
    assert_eq!(
        summary["manifestFilesS3Key"],
        format!("AWSDynamoDB/{id}/manifest-files.json")
    );
    for time in ["startTime", "endTime"] {
        let text = summary[time].as_str().expect("a time");
        assert!(text.ends_with('Z') && text.contains('T'), "{time}: {text}");
    }
    let manifest = std::fs::read_to_string(folder.join("manifest-files.json")).expect("files");
    let mut total = 0;
    let mut listed = 0;
    for line in manifest.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let key = entry["dataFileS3Key"].as_str().expect("key");
        let name = key
            .strip_prefix(&format!("AWSDynamoDB/{id}/data/"))
            .expect("under the export's data/");
        assert!(name.ends_with(".json.gz"), "{name}");
        let bytes = std::fs::read(folder.join("data").join(name)).expect("data file");
        let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&bytes));
        assert_eq!(entry["md5Checksum"], md5, "{name}");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
            .expect("gzip");
        for item in text.lines() {
            let value: serde_json::Value = serde_json::from_str(item).expect("item line");
            assert!(value["Item"]["pk"]["S"].is_string(), "{item}");
            assert!(value["Item"]["sk"]["N"].is_string(), "{item}");
        }
        assert_eq!(entry["itemCount"], text.lines().count() as u64, "{name}");
        total += text.lines().count() as u64;
        listed += 1;
    }
    assert_eq!(total, items);
    let present = std::fs::read_dir(folder.join("data"))
        .expect("data")
        .count();
    assert_eq!(present, listed, "every data file listed, none more");
    listed
}

/// GIVEN a table keyed pk (S) + sk (N) WHEN it is pulled with `--layout export` through
/// a proxy that fails a call with a 503 and cuts two short THEN the export has
/// DynamoDB's layout, `seeder --from DIR --create-table` (no --key: the export records
/// it) restores it item for item, and a copy of the export with one byte flipped in one
/// data file is refused, naming the file, with nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_export_restores_item_for_item_and_a_flipped_byte_is_refused() {
    let ddb = local_client().await;
    let (source, expected) = source_table(&ddb, "export-src", 61, 3000).await;
    let emulator = Emulator::start_warm("export", &function_env(&source)).await;
    let base = emulator.url("streamer", "");
    let proxy = StallProxy::start(base.trim_end_matches("/lambda-url/streamer/?")).await;
    let url = format!("{}/lambda-url/streamer/", proxy.url);
    proxy.fail_call(1, Fault::Cut(4000));
    proxy.fail_call(4, Fault::Status(503));
    proxy.fail_call(7, Fault::Cut(100));
    let dir = scratch("export").join("out");
    let output = pull_export(&url, &dir, &["--max-items-per-call", "300", "--key", KEY])
        .env("RUST_LOG", "warn")
        .output()
        .expect("scanstream runs");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        emulator.log_text()
    );
    assert!(proxy.calls() >= 3 + 10 + 3, "{} calls", proxy.calls());
    let folder = export_folder(&dir);
    let files = check_layout(&folder, 3000);
    assert!(files >= 10, "one data file per committed call: {files}");
    assert!(
        !scanstream::cli::output::paths::Files::default_checkpoint(&dir).exists(),
        "a finished export leaves no checkpoint"
    );

    let copy = unique_table("export-copy");
    let out = restore(&copy, &dir, &["--create-table"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("written 3000 of 3000 items"), "{stdout}");
    assert!(
        table_lines(&ddb, &copy).await == expected,
        "the restored table differs from the source"
    );
    let described = scanstream::dynamo::schema::describe_keys(
        &scanstream::dynamo::client::Dynamo::from(ddb.clone()),
        &copy,
    )
    .await
    .expect("describe");
    assert_eq!(described, KeySchema::parse(KEY).expect("schema"));

    // One byte flipped in the middle of one data file of a copy of the export.
    let flipped = scratch("export-flip");
    copy_dir(&dir, &flipped);
    let victim = std::fs::read_dir(export_folder(&flipped).join("data"))
        .expect("data")
        .flatten()
        .map(|e| e.path())
        .max()
        .expect("a data file");
    let mut bytes = std::fs::read(&victim).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&victim, &bytes).expect("write");
    let target = unique_table("export-flip");
    scanstream::dynamo::table::ensure_table_keyed(
        &scanstream::dynamo::client::Dynamo::from(ddb.clone()),
        &target,
        &described,
    )
    .await
    .expect("target table");
    let out = restore(&target, &flipped, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let name = victim.file_name().expect("name").to_string_lossy();
    assert!(
        stderr.contains(name.as_ref()) && stderr.contains("corrupt"),
        "names the file: {stderr}"
    );
    assert!(stderr.contains("nothing written"), "{stderr}");
    assert!(
        table_lines(&ddb, &target).await.is_empty(),
        "nothing is written"
    );
}

/// GIVEN a `--layout export` pull without --key (the function says the table's key) killed
/// (SIGKILL) half way THEN what it left is refused
/// by the loader as unfinished (no manifest-summary.json); WHEN the same command runs
/// again THEN it resumes from its checkpoint, and the export restores item for item.
#[tokio::test]
async fn a_killed_export_resumes_and_restores_item_for_item() {
    let ddb = local_client().await;
    let (source, expected) = source_table(&ddb, "export-kill-src", 62, 4000).await;
    let emulator = Emulator::start_warm("export-kill", &function_env(&source)).await;
    let url = emulator.url("streamer", "");
    let url = url.trim_end_matches('?');
    let dir = scratch("export-kill").join("out");
    let checkpoint = scanstream::cli::output::paths::Files::default_checkpoint(&dir);
    // Slowly (a read-rate cap), so it can be killed half way.
    let mut child = pull_export(
        url,
        &dir,
        &["--max-items-per-call", "200", "--max-rcu", "60"],
    )
    .stderr(Stdio::null())
    .spawn()
    .expect("scanstream runs");
    wait_until_committed(&mut child, &checkpoint, 1000, Duration::from_secs(180));
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let folder = export_folder(&dir);
    assert!(!folder.join("manifest-summary.json").exists());
    let early = unique_table("export-early");
    let out = restore(&early, &dir, &["--create-table"]);
    assert!(
        !out.status.success(),
        "an unfinished export is refused: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let output = pull_export(url, &dir, &["--max-items-per-call", "200"])
        .output()
        .expect("scanstream runs again");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("resuming"), "{stderr}");
    assert_eq!(export_folder(&dir), folder, "the same export, resumed");
    check_layout(&folder, 4000);
    let copy = unique_table("export-kill-copy");
    let out = restore(&copy, &dir, &["--create-table"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table_lines(&ddb, &copy).await == expected,
        "the restored table differs from the source"
    );
}

/// `scanstream pull` against a URL nothing listens on: a refusal must come before any
/// call (a call there would be retried for seconds, and say so).
fn refused(args: &[&str], dir: &Path) -> String {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_scanstream"))
        .args(["pull", "http://127.0.0.1:9/", "--max-attempts", "1"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("scanstream runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} is refused: {stderr}");
    assert!(
        !stderr.contains("calls,") && !stderr.contains("attempts"),
        "{args:?}: refused before any call: {stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    stderr
}

#[test]
fn bad_layout_combinations_are_refused_before_any_call() {
    let dir = scratch("export-cli");
    let export = ["--layout", "export", "--key", "pk:S"];
    let with = |extra: &[&str]| -> Vec<String> {
        export
            .iter()
            .chain(extra)
            .map(|s| (*s).to_string())
            .collect()
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&args, &dir)
    };
    let text = run(with(&["-o", "out"]));
    assert!(text.contains("needs --format dynamodb"), "{text}");
    let text = run(with(&["--format", "dynamodb"]));
    assert!(text.contains("needs -o DIR"), "{text}");
    let text = run(with(&["--format", "dynamodb", "-o", "out", "--trailer"]));
    assert!(
        text.contains("--trailer has no place in an export"),
        "{text}"
    );
    let text = run(vec![
        "--layout".into(),
        "export".into(),
        "--format".into(),
        "dynamodb".into(),
        "-o".into(),
        "out".into(),
    ]);
    // Without --key the function is asked for the key first, in a sample call: to a URL
    // nothing listens on, that call fails, and says so.
    assert!(text.contains("the sample call"), "{text}");
    let text = run([
        "--layout", "export", "--format", "dynamodb", "-o", "out", "--count",
    ]
    .map(String::from)
    .to_vec());
    assert!(text.contains("--count writes one trailer line"), "{text}");
    let text = run(vec!["--key".into(), "pk:S".into(), "-o".into(), "x".into()]);
    assert!(text.contains("needs --layout export"), "{text}");
    let text = run([
        "--layout", "export", "--format", "dynamodb", "-o", "out", "--key", "pk:X",
    ]
    .map(String::from)
    .to_vec());
    assert!(text.contains("pk:X"), "{text}");
    // An index's items are sparse and projected, a --fields projection partial: a
    // restore would overwrite whole items with parts.
    let text = run(with(&[
        "--format",
        "dynamodb",
        "-o",
        "out",
        "--index",
        "by_status",
    ]));
    assert!(
        text.contains("--index by_status cannot be an export"),
        "{text}"
    );
    let text = run(with(&[
        "--format", "dynamodb", "-o", "out", "--fields", "pk",
    ]));
    assert!(text.contains("--fields cannot be an export"), "{text}");
    assert!(!dir.join("out").exists(), "no output made");

    // A directory holding something else, or a file: refused, untouched.
    std::fs::create_dir_all(dir.join("mine")).expect("dir");
    std::fs::write(dir.join("mine/notes.txt"), b"keep").expect("file");
    let text = run(with(&["--format", "dynamodb", "-o", "mine"]));
    assert!(
        text.contains("notes.txt") && text.contains("not an export"),
        "{text}"
    );
    assert!(!dir.join("mine/AWSDynamoDB").exists());
    assert!(!dir.join("mine.ckpt").exists());
    assert_eq!(
        std::fs::read(dir.join("mine/notes.txt")).expect("kept"),
        b"keep"
    );
    std::fs::write(dir.join("file"), b"keep").expect("file");
    let text = run(with(&["--format", "dynamodb", "-o", "file"]));
    assert!(text.contains("is a file"), "{text}");
    assert_eq!(std::fs::read(dir.join("file")).expect("kept"), b"keep");
    // And a directory as the one-file output.
    let text = run(vec!["-o".into(), "mine".into()]);
    assert!(
        text.contains("is a directory") && text.contains("--layout export"),
        "{text}"
    );
}
