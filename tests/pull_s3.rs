//! `scanstream pull --layout export -o s3://BUCKET/PREFIX` end to end: the real client
//! drives the real streamer under `cargo lambda watch`, whose invocations write the data
//! files into the local S3 server (moto); the client commits their records, and at the
//! end copies the committed files from `staging/` to `data/` and writes the manifests. Killed
//! with SIGKILL half way and run again, the export is the same as one never killed: its
//! `data/` listing is exactly the manifest's, each file's MD5 and count are what the
//! manifest says, and together they hold the table's items once each.

mod common;

use common::emulator::Emulator;
use common::keyed::{KEY, keyed_items, source_table};
use common::run::{scratch, wait_until_committed};
use common::s3::{export_env, fresh_bucket, keys, local_s3, object, put_native_export};
use common::stall::{Fault, StallProxy};
use common::*;
use scanstream::format::export::{DataFileEntry, ManifestSummary, RecordedKeySchema, md5_base64};
use scanstream::format::key::KeySchema;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `scanstream pull URL --layout export -o s3://BUCKET/PREFIX`, run in `dir` (where its
/// checkpoint goes by default).
fn pull_s3(url: &str, to: &str, dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scanstream"));
    command
        .args(["pull", url, "--invocations", "3", "--segments", "2"])
        .args([
            "--limit", "100", "--format", "dynamodb", "--layout", "export", "-o", to,
        ])
        .args(extra)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env("RUST_LOG", "warn");
    command
}

/// The export's id, from the checkpoint a run left.
fn export_id(checkpoint: &Path) -> String {
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(checkpoint).expect("checkpoint")).expect("json");
    saved["shape"]["ExportId"]
        .as_str()
        .unwrap_or_else(|| panic!("no ExportId in {saved}"))
        .to_string()
}

/// Checks the finished export at `root` in `bucket` against `expected`, by our own
/// reading of the objects: the summary, `data/` holding exactly the manifest's files, each
/// file's MD5 and count, every item once, and the key schema recorded.
async fn check_export(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    root: &str,
    expected: &BTreeSet<Vec<u8>>,
) {
    let summary: ManifestSummary =
        serde_json::from_slice(&object(s3, bucket, &format!("{root}/manifest-summary.json")).await)
            .expect("summary");
    assert_eq!(summary.item_count, expected.len() as u64);
    assert_eq!(
        summary.manifest_files_s3_key,
        format!("{root}/manifest-files.json")
    );
    assert_eq!(summary.s3_bucket.as_deref(), Some(bucket));
    let manifest = object(s3, bucket, &format!("{root}/manifest-files.json")).await;
    let checksum = object(s3, bucket, &format!("{root}/manifest-files.checksum")).await;
    assert_eq!(
        String::from_utf8(checksum).expect("hex"),
        scanstream::format::export::hex_md5(&manifest)
    );
    let entries: Vec<DataFileEntry> = manifest
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("a manifest line"))
        .collect();
    let listed: BTreeSet<String> = keys(s3, bucket, &format!("{root}/data/"))
        .await
        .into_iter()
        .collect();
    let named: BTreeSet<String> = entries.iter().map(|e| e.data_file_s3_key.clone()).collect();
    assert_eq!(
        listed, named,
        "data/ holds exactly the files the manifest lists"
    );
    assert_eq!(named.len(), entries.len(), "no file listed twice");
    let mut items = Vec::new();
    for entry in &entries {
        let stored = object(s3, bucket, &entry.data_file_s3_key).await;
        assert_eq!(md5_base64(&stored[..]).expect("md5"), entry.md5_checksum);
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&stored[..])
            .read_to_string(&mut plain)
            .expect("gzip");
        let lines: Vec<&str> = plain.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(
            lines.len() as u64,
            entry.item_count,
            "{}",
            entry.data_file_s3_key
        );
        for line in lines {
            let item = scanstream::format::json::read::item_of_line(line).expect("DynamoDB JSON");
            items.push(scanstream::format::json::to_line(&item));
        }
    }
    assert_eq!(items.len(), expected.len(), "every item once");
    let items: BTreeSet<Vec<u8>> = items.into_iter().collect();
    assert!(
        &items == expected,
        "the export's items differ from the table's"
    );
    let recorded: RecordedKeySchema = serde_json::from_slice(
        &object(s3, bucket, &format!("{root}/scanstream-key-schema.json")).await,
    )
    .expect("key schema");
    assert_eq!(
        recorded.schema(),
        Ok(KeySchema::parse(KEY).expect("schema")),
        "the key schema the functions said, with no --key given"
    );
}

/// Waits until no upload is open under `prefix` and its listing stays the same for 3 s.
async fn settle(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut last = keys(s3, bucket, prefix).await;
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let open = s3
            .list_multipart_uploads()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .expect("uploads")
            .uploads()
            .len();
        let now = keys(s3, bucket, prefix).await;
        if open == 0 && now == last {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the killed run's invocations never ended"
        );
        last = now;
    }
}

/// GIVEN a table keyed `pk:S,sk:N` and a pull to S3 killed (SIGKILL) half way, its
/// invocations left running, and stray files in its `staging/` and `data/` WHEN the same
/// command runs again THEN it resumes the same export, prints the export's URL, and `data/`
/// holds exactly the manifest's files, then and after the killed run's invocations end,
/// together the table's items once each, with the key schema the functions said.
#[tokio::test]
async fn a_killed_pull_to_s3_resumes_into_one_exact_export() {
    let ddb = local_client().await;
    let s3 = local_s3().await;
    let (table, expected) = source_table(&ddb, "s3-pull-src", 71, 4000).await;
    let bucket = fresh_bucket(&s3, "s3-pull").await;
    // Small files, so every call completes several.
    let env = export_env(
        &table,
        &bucket,
        "exports",
        &[("EXPORT_FILE_BYTES", "65536")],
    );
    let emulator = Emulator::start_warm("s3-pull", &env).await;
    let url = emulator.url("streamer", "");
    let url = url.trim_end_matches('?');
    let dir = scratch("s3-pull");
    let to = format!("s3://{bucket}/exports/run");
    let checkpoint = dir.join(format!("scanstream-s3-{bucket}-exports-run.ckpt"));
    // Slowly (a read-rate cap), so it can be killed half way.
    let mut child = pull_s3(
        url,
        &to,
        &dir,
        &["--max-items-per-call", "300", "--max-rcu", "40"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("scanstream runs");
    wait_until_committed(&mut child, &checkpoint, 900, Duration::from_secs(180));
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let id = export_id(&checkpoint);
    let root = format!("exports/run/AWSDynamoDB/{id}");
    // The killed run's invocations run on, and are not waited for: whatever they write
    // goes to `staging/`, never to `data/`.
    assert!(
        keys(&s3, &bucket, &format!("{root}/manifest-summary.json"))
            .await
            .is_empty(),
        "not finished yet"
    );
    // Files no committed call announced, where a cut call's would be, and in `data/`.
    for stray in ["staging/stray.json.gz", "data/stray.json.gz"] {
        s3.put_object()
            .bucket(&bucket)
            .key(format!("{root}/{stray}"))
            .body(b"stray".to_vec().into())
            .send()
            .await
            .expect("stray");
    }

    let output = pull_s3(url, &to, &dir, &[]).output().expect("runs again");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("resuming"), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("s3://{bucket}/{root}/"),
        "the export's URL, on standard output"
    );
    assert!(
        !checkpoint.exists(),
        "a finished export removes its checkpoint"
    );
    assert!(
        std::fs::read_dir(&dir).expect("dir").next().is_none(),
        "and its records: nothing is left in the working directory"
    );
    check_export(&s3, &bucket, &root, &expected).await;
    // Once the killed run's invocations have ended, `data/` is still the manifest's.
    settle(&s3, &bucket, &format!("{root}/staging/")).await;
    let late = keys(&s3, &bucket, &format!("{root}/staging/")).await;
    eprintln!(
        "files the killed run's invocations completed after the finish: {}",
        late.len()
    );
    check_export(&s3, &bucket, &root, &expected).await;
    let exports = keys(&s3, &bucket, "exports/run/AWSDynamoDB/").await;
    assert!(
        exports.iter().all(|k| k.starts_with(&format!("{root}/"))),
        "one export: {exports:?}"
    );

    // The loader reads it from S3, the key schema recorded there creating the table.
    let copy = unique_table("s3-pull-copy");
    let out = seeder(&[
        "--table",
        &copy,
        "--from",
        &format!("s3://{bucket}/exports/run"),
        "--create-table",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table_lines(&ddb, &copy).await == expected,
        "the table loaded from S3 differs from the source"
    );

    // One data file changed in S3 after the export: refused, naming it, nothing written.
    let manifest = object(&s3, &bucket, &format!("{root}/manifest-files.json")).await;
    let first: DataFileEntry =
        serde_json::from_slice(manifest.split(|&b| b == b'\n').next().expect("a line"))
            .expect("entry");
    let mut bytes = object(&s3, &bucket, &first.data_file_s3_key).await;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    s3.put_object()
        .bucket(&bucket)
        .key(&first.data_file_s3_key)
        .body(bytes.into())
        .send()
        .await
        .expect("corrupt");
    let target = unique_table("s3-pull-corrupt");
    let out = seeder(&[
        "--table",
        &target,
        "--from",
        &format!("s3://{bucket}/{root}"),
        "--create-table",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a corrupt file is refused");
    assert!(
        stderr.contains(&first.data_file_s3_key) && stderr.contains("MD5"),
        "{stderr}"
    );
    assert!(
        !ddb.list_tables()
            .send()
            .await
            .expect("tables")
            .table_names()
            .contains(&target),
        "nothing written: not even the table created"
    );
}

/// GIVEN an export laid out as DynamoDB's own ExportTable writes it (its manifests' full
/// fields, keys under the prefix, random data file names, no key schema file) WHEN
/// `seeder --from s3://...` loads it into an existing table THEN the table holds its items.
#[tokio::test]
async fn a_native_export_in_s3_loads_into_an_existing_table() {
    let ddb = local_client().await;
    let s3 = local_s3().await;
    let bucket = fresh_bucket(&s3, "s3-native").await;
    let (table, expected) = source_table(&ddb, "s3-native-src", 73, 300).await;
    put_native_export(&s3, &bucket, "native", &table, &keyed_items(73, 300), 120).await;
    // An existing, empty table of the same key schema: ImportTable cannot load into one.
    let target = unique_table("s3-native-copy");
    scanstream::dynamo::table::ensure_table_keyed(
        &scanstream::dynamo::client::Dynamo::from(ddb.clone()),
        &target,
        &KeySchema::parse(KEY).expect("schema"),
    )
    .await
    .expect("target table");
    let out = seeder(&[
        "--table",
        &target,
        "--from",
        &format!("s3://{bucket}/native"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table_lines(&ddb, &target).await == expected,
        "the table loaded from a native export differs from the source"
    );
}

/// GIVEN calls cut off after some of their files were announced, and a call that fails
/// (503) WHEN the pull to S3 runs through them THEN they are made again, and `data/` holds
/// exactly the committed calls' files: those the cut calls announced stay out of it.
// Multi-threaded: the proxy's tasks run while this thread waits for the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cut_after_their_first_files_leave_nothing_in_data() {
    let ddb = local_client().await;
    let s3 = local_s3().await;
    let (table, expected) = source_table(&ddb, "s3-cut-src", 72, 3000).await;
    let bucket = fresh_bucket(&s3, "s3-cut").await;
    let env = export_env(
        &table,
        &bucket,
        "exports",
        &[("EXPORT_FILE_BYTES", "65536")],
    );
    let emulator = Emulator::start_warm("s3-cut", &env).await;
    let base = emulator.url("streamer", "");
    let proxy = StallProxy::start(base.trim_end_matches("/lambda-url/streamer/?")).await;
    let url = format!("{}/lambda-url/streamer/", proxy.url);
    // The first file line of a call is a few hundred bytes: cut inside the second, and
    // inside the third.
    proxy.fail_call(1, Fault::Cut(700));
    proxy.fail_call(2, Fault::Cut(1500));
    proxy.fail_call(4, Fault::Status(503));
    let dir = scratch("s3-cut");
    let to = format!("s3://{bucket}/exports/cut");
    let output = pull_s3(
        &url,
        &to,
        &dir,
        &["--max-items-per-call", "2000", "--summary-json", "s.json"],
    )
    .output()
    .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}\n{}", emulator.log_text());
    let summary = common::run::read_summary(&dir.join("s.json"));
    assert!(summary["retries"].as_u64() >= Some(3), "{summary}");
    let url_printed = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let root = url_printed
        .strip_prefix(&format!("s3://{bucket}/"))
        .and_then(|r| r.strip_suffix('/'))
        .unwrap_or_else(|| panic!("the export's URL: {url_printed}"))
        .to_string();
    check_export(&s3, &bucket, &root, &expected).await;
}

/// Flags an export to S3 cannot run with, and a bucket this client cannot write, are
/// refused before any call (the URL is one nothing listens on).
#[tokio::test]
async fn an_export_to_s3_is_refused_before_any_call() {
    let s3 = local_s3().await;
    let dir = scratch("s3-refuse");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_scanstream"))
            .args(["pull", "http://127.0.0.1:9/", "--max-attempts", "1"])
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .expect("scanstream runs");
        assert!(!out.status.success(), "{args:?} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let export = ["--format", "dynamodb", "--layout", "export"];
    let err = run(&["--format", "dynamodb", "-o", "s3://bucket/p"]);
    assert!(err.contains("needs --layout export"), "{err}");
    let err = run(&[&export[..], &["-o", "s3://bucket/p", "--no-checkpoint"]].concat());
    assert!(err.contains("--no-checkpoint"), "{err}");
    let err = run(&[&export[..], &["-o", "s3://Not_A_Bucket/p"]].concat());
    assert!(err.contains("Not_A_Bucket"), "{err}");
    let err = run(&[&export[..], &["-o", "s3://bucket/a/../b"]].concat());
    assert!(err.contains("a/../b"), "{err}");
    let err = run(&[
        "--format",
        "json",
        "--layout",
        "export",
        "-o",
        "s3://bucket/p",
    ]);
    assert!(err.contains("--format dynamodb"), "{err}");
    let err = run(&[
        &export[..],
        &["-o", "s3://bucket/p", "--filter", "attribute_exists(a)"],
    ]
    .concat());
    assert!(err.contains("--filter"), "{err}");
    let err = run(&[
        &export[..],
        &["-o", "s3://bucket/p", "--expected-bucket-owner", "12"],
    ]
    .concat());
    assert!(err.contains("12 digits"), "{err}");
    let missing = format!("{}-missing", fresh_bucket(&s3, "s3-refuse").await);
    let err = run(&[&export[..], &["-o", &format!("s3://{missing}/p")]].concat());
    assert!(
        err.contains(&format!("s3://{missing}/p/AWSDynamoDB/")) && err.contains("_started"),
        "{err}"
    );
    // A call to port 9 would fail, and with one attempt the slice would give up saying so.
    assert!(!err.contains("gave up"), "no call was made: {err}");
    let err = run(&[
        "--format",
        "dynamodb",
        "-o",
        "out",
        "--expected-bucket-owner",
        "123456789012",
    ]);
    assert!(err.contains("export to S3"), "{err}");
    let err = run(&[&export[..], &["-o", "s3://bucket/p", "--count"]].concat());
    assert!(err.contains("--count"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        left.is_empty(),
        "a refused run leaves no file behind: {left:?}"
    );
}
