//! `seeder --from` as a user runs it, against DynamoDB Local: any key schema, files
//! checked before writing, streams (standard input, `/dev/stdin`, a FIFO, a process
//! substitution) written as they arrive and judged by their trailer, a killed load
//! resumed from its checkpoint, and DynamoDB exports verified against their manifests.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use scanstream::format::export::md5_base64;
use scanstream::format::item::Item;
use scanstream::format::item::Value;
use scanstream::format::json::Format;
use scanstream::format::key::KeySchema;
use scanstream::format::trailer::Trailer;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn text(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Seeder records re-keyed: `pk` (N) alone, or `pk` (S) + `sk` (N).
fn keyed_items(count: u64, range: bool) -> Vec<Item> {
    (0..count)
        .map(|i| {
            let mut item = scanstream::generate::record::record(9, i);
            item.remove("id");
            if range {
                item.insert("pk".into(), Value::S(format!("p{}", i / 10)));
                item.insert("sk".into(), Value::N((i % 10).to_string()));
            } else {
                item.insert("pk".into(), Value::N(i.to_string()));
            }
            item
        })
        .collect()
}

fn typed(items: &[Item]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        Format::Dynamodb.write_line(&mut out, item);
    }
    out
}

/// Asserts a table holds exactly `items`, reporting counts and a few differences. The
/// expected lines are read back from a reference table the items were written into with
/// the library's writer, since DynamoDB normalises numbers (`1.50` comes back `1.5`).
async fn assert_table_holds(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    items: &[Item],
    key: &str,
) {
    let reference = unique_table("reference");
    let schema = KeySchema::parse(key).expect("key");
    scanstream::dynamo::table::ensure_table_keyed(
        &scanstream::dynamo::client::Dynamo::from(client.clone()),
        &reference,
        &schema,
    )
    .await
    .expect("reference table");
    write_batches(client, &reference, items.chunks(25).map(<[_]>::to_vec)).await;
    let want = table_lines(client, &reference).await;
    assert_eq!(want.len(), items.len(), "the reference holds every item");
    let got = table_lines(client, table).await;
    if got == want {
        return;
    }
    let short = |l: &Vec<u8>| String::from_utf8_lossy(&l[..l.len().min(120)]).into_owned();
    let missing: Vec<String> = want.difference(&got).take(3).map(short).collect();
    let extra: Vec<String> = got.difference(&want).take(3).map(short).collect();
    panic!(
        "{table}: {} items, expected {}; missing e.g. {missing:#?}; unexpected e.g. {extra:#?}",
        got.len(),
        want.len()
    );
}

/// A trailer line in the streamer's shape, as text (what a producer writes), checked to
/// be one the trailer parser reads.
fn trailer(items: u64, complete: bool) -> Vec<u8> {
    let line = format!(
        "{{\"@scanstream\":{{\"complete\":{complete},\"items\":{items},\"scanned\":{items},\"pages\":1,\
         \"consumed_capacity\":null,\"rcu_per_s\":null,\"retries\":0,\"segments\":[],\"elapsed_ms\":1,\"ttfb_ms\":1}}}}"
    );
    let parsed =
        Trailer::parse_line(line.as_bytes()).expect("a trailer the streamer's parser reads");
    assert_eq!((parsed.items, parsed.complete), (items, complete));
    format!("{line}\n").into_bytes()
}

fn temp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("seeder-load");
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

async fn table_exists(client: &aws_sdk_dynamodb::Client, table: &str) -> bool {
    client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .is_ok()
}

#[tokio::test]
async fn any_key_schema_loads_from_a_file_and_items_are_checked_against_it() {
    let client = local_client().await;
    for (key, range) in [("pk:N", false), ("pk:S,sk:N", true)] {
        let table = unique_table("keyed");
        let items = keyed_items(260, range);
        let path = temp(&format!("{table}.ndjson"));
        std::fs::write(&path, typed(&items)).expect("file");
        let path = path.to_string_lossy().into_owned();
        let out = seeder(&[
            "--table",
            &table,
            "--create-table",
            "--key",
            key,
            "--from",
            &path,
        ]);
        assert!(out.status.success(), "{key}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("written 260 of 260 items"),
            "{}",
            text(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("keyed {key}")),
            "{}",
            text(&out)
        );
        assert_table_holds(&client, &table, &items, key).await;

        // The table exists now: its key comes from DescribeTable. An item without the
        // range key, or with the wrong type, is refused by line, and nothing is written.
        let bad = if range {
            "{\"pk\":{\"S\":\"new\"},\"sk\":{\"N\":\"1\"}}\n{\"pk\":{\"S\":\"x\"}}\n"
        } else {
            "{\"pk\":{\"N\":\"100000\"}}\n{\"pk\":{\"S\":\"7\"}}\n"
        };
        let bad_path = temp(&format!("{table}-bad.ndjson"));
        std::fs::write(&bad_path, bad).expect("file");
        let out = seeder(&["--table", &table, "--from", &bad_path.to_string_lossy()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}", text(&out));
        let why = if range {
            "line 2: range key attribute \"sk\" (N) is missing"
        } else {
            "line 2: hash key attribute \"pk\" must be of type N"
        };
        assert!(stderr.contains(why), "{}", text(&out));
        assert!(stderr.contains("nothing written"), "{}", text(&out));
        assert_eq!(
            table_lines(&client, &table).await.len(),
            260,
            "nothing written"
        );

        // --key must match an existing table.
        let out = seeder(&[
            "--table",
            &table,
            "--create-table",
            "--key",
            "other:S",
            "--from",
            &path,
        ]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("keyed {key}, not other:S")),
            "{}",
            text(&out)
        );
    }
}

#[tokio::test]
async fn numbers_equal_by_value_are_one_key_and_refused_twice_in_a_batch() {
    let client = local_client().await;
    let table = unique_table("numkey");
    let path = temp(&format!("{table}.ndjson"));
    std::fs::write(
        &path,
        "{\"pk\":{\"N\":\"1\"},\"v\":{\"S\":\"a\"}}\n{\"pk\":{\"N\":\"2\"}}\n{\"pk\":{\"N\":\"1.0\"},\"v\":{\"S\":\"b\"}}\n",
    )
    .expect("file");
    let path = path.to_string_lossy().into_owned();
    let out = seeder(&[
        "--table",
        &table,
        "--create-table",
        "--key",
        "pk:N",
        "--from",
        &path,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        stderr.contains("line 3: the key is already on line 1"),
        "{}",
        text(&out)
    );
    assert!(
        !table_exists(&client, &table).await,
        "checked before the table is created"
    );

    // Skipped, the first stays: DynamoDB would have refused the whole batch.
    let out = seeder(&[
        "--table",
        &table,
        "--create-table",
        "--key",
        "pk:N",
        "--from",
        &path,
        "--skip-invalid",
    ]);
    assert!(!out.status.success(), "a skipped line still fails the run");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("written 2 of 2 items"),
        "{}",
        text(&out)
    );
    let got = client
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::N("1".into()))
        .send()
        .await
        .expect("get");
    assert_eq!(
        got.item().and_then(|i| i.get("v")),
        Some(&AttributeValue::S("a".into()))
    );
}

#[test]
fn bad_key_specs_and_options_are_refused_before_any_work() {
    for args in [
        &[
            "--table",
            "t",
            "--from",
            "x",
            "--create-table",
            "--key",
            "pk",
        ][..],
        &[
            "--table",
            "t",
            "--from",
            "x",
            "--create-table",
            "--key",
            "pk:BOOL",
        ],
        &[
            "--table",
            "t",
            "--from",
            "x",
            "--create-table",
            "--key",
            "pk:S,pk:N",
        ],
        &[
            "--table",
            "t",
            "--from",
            "x",
            "--create-table",
            "--key",
            "a:S,b:S,c:S",
        ],
        &[
            "--table",
            "t",
            "--from",
            "x",
            "--create-table",
            "--key",
            ":S",
        ],
        // --key only creates tables; records of --count are keyed id.
        &["--table", "t", "--from", "x", "--key", "pk:S"],
        &[
            "--table",
            "t",
            "--count",
            "5",
            "--create-table",
            "--key",
            "pk:S",
        ],
        &["--table", "t", "--count", "5", "--checkpoint", "c.json"],
        &["--table", "t", "--count", "5", "--skip-invalid"],
        &["--table", "t", "--count", "5", "--allow-incomplete"],
    ] {
        let out = seeder(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
    // A stream cannot be resumed: a checkpoint is refused for standard input.
    let out = seeder(&["--table", "t", "--from", "-", "--checkpoint", "c.json"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--checkpoint needs a file"),
        "{}",
        text(&out)
    );
}

/// Runs the seeder reading `path`, while `feed` writes `data` into `fifo` if given.
fn seeder_reading(args: &[&str], fifo: Option<(&Path, Vec<u8>)>) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_seeder"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("seeder runs");
    let feeder = fifo.map(|(path, data)| {
        let path = path.to_path_buf();
        std::thread::spawn(move || {
            let mut pipe = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .expect("open fifo");
            let _ = pipe.write_all(&data);
        })
    });
    let out = child.wait_with_output().expect("seeder ends");
    if let Some(feeder) = feeder {
        feeder.join().expect("feeder");
    }
    out
}

#[tokio::test]
async fn dev_stdin_a_fifo_and_process_substitution_stream_and_need_a_complete_trailer() {
    let client = local_client().await;
    let items = keyed_items(120, false);
    let body = typed(&items);
    let mut whole = body.clone();
    whole.extend(trailer(120, true));

    // /dev/stdin on a pipe, no trailer: written as it streams, then a non-zero exit
    // that says how many were written and what to do.
    let table = unique_table("devstdin");
    let out = seeder_with_input(
        &[
            "--table",
            &table,
            "--create-table",
            "--key",
            "pk:N",
            "--from",
            "/dev/stdin",
        ],
        &body,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out));
    for needle in [
        "incomplete",
        "120 items were written",
        "scanstream pull --trailer",
        "--allow-incomplete",
        "idempotent",
    ] {
        assert!(stderr.contains(needle), "{needle}: {}", text(&out));
    }
    assert_table_holds(&client, &table, &items, "pk:N").await;
    // The same with the streamer's complete trailer: a whole copy.
    let out = seeder_with_input(&["--table", &table, "--from", "/dev/stdin"], &whole);
    assert!(out.status.success(), "{}", text(&out));

    // A FIFO: without a trailer it fails; a trailer counting other items fails; a
    // complete:false trailer fails unless --allow-incomplete.
    let fifo = temp(&format!("{table}.fifo"));
    let _ = std::fs::remove_file(&fifo);
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let fifo_arg = fifo.to_string_lossy().into_owned();
    let target = unique_table("fifo");
    let args = [
        "--table",
        target.as_str(),
        "--create-table",
        "--key",
        "pk:N",
        "--from",
        fifo_arg.as_str(),
    ];
    let out = seeder_reading(&args, Some((&fifo, body.clone())));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("without a trailer"),
        "{}",
        text(&out)
    );
    assert_eq!(table_lines(&client, &target).await.len(), 120);
    let mut miscounted = body.clone();
    miscounted.extend(trailer(121, true));
    let out = seeder_reading(&args, Some((&fifo, miscounted)));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("counts 121 items but 120 item lines"),
        "{}",
        text(&out)
    );
    let mut partial = body.clone();
    partial.extend(trailer(120, false));
    let out = seeder_reading(&args, Some((&fifo, partial.clone())));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("complete:false"),
        "{}",
        text(&out)
    );
    assert!(!out.status.success());
    let mut allowed = args.to_vec();
    allowed.push("--allow-incomplete");
    let out = seeder_reading(&allowed, Some((&fifo, partial)));
    assert!(out.status.success(), "{}", text(&out));
    let out = seeder_reading(&args, Some((&fifo, whole.clone())));
    assert!(out.status.success(), "{}", text(&out));
    std::fs::remove_file(&fifo).expect("remove fifo");

    // Process substitution (a /dev/fd path) of a file without a trailer fails too.
    let file = temp(&format!("{table}.ndjson"));
    std::fs::write(&file, &body).expect("file");
    let target = unique_table("procsub");
    let script = format!(
        "exec '{}' --table {target} --create-table --key pk:N --from <(cat '{}')",
        env!("CARGO_BIN_EXE_seeder"),
        file.display()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("without a trailer"),
        "{}",
        text(&out)
    );
    // The same bytes as a regular file are a data set, checked first and loaded whole.
    let out = seeder(&["--table", &target, "--from", &file.to_string_lossy()]);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test]
async fn a_bad_line_stops_a_stream_at_that_line_and_a_cut_line_is_a_cut_off() {
    let client = local_client().await;
    let items = keyed_items(60, false);
    let mut body = typed(&items[..39]);
    body.extend_from_slice(b"{\"pk\":{\"N\":\"oops\"}}\n");
    body.extend(typed(&items[39..]));
    let table = unique_table("stopline");
    let out = seeder_with_input(
        &[
            "--table",
            &table,
            "--create-table",
            "--key",
            "pk:N",
            "--from",
            "-",
        ],
        &body,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        stderr.contains("stopped at a bad line (line 40: pk: N must be a number"),
        "{}",
        text(&out)
    );
    assert!(
        stderr.contains("the 39 items before it were written"),
        "{}",
        text(&out)
    );
    assert_table_holds(&client, &table, &items[..39], "pk:N").await;

    // Cut inside the last line: incomplete, not a bad line; the whole lines are written.
    let whole = typed(&items);
    let cut = &whole[..whole.len() - 10];
    let table = unique_table("cutline");
    let out = seeder_with_input(
        &[
            "--table",
            &table,
            "--create-table",
            "--key",
            "pk:N",
            "--from",
            "-",
        ],
        cut,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(stderr.contains("ends inside line 60"), "{}", text(&out));
    assert_table_holds(&client, &table, &items[..59], "pk:N").await;
}

#[tokio::test]
async fn a_cut_gzip_stream_writes_every_whole_line_before_the_cut_and_is_incomplete() {
    let client = local_client().await;
    let items = keyed_items(60, false);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&typed(&items)).expect("gzip");
    let whole = gz.finish().expect("gzip");
    // Cut in the middle: the decoder fails there, after some whole lines.
    let cut = &whole[..whole.len() / 2];
    let mut lines = Vec::new();
    let _ = std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(cut), &mut lines);
    let before = lines.iter().filter(|&&b| b == b'\n').count();
    assert!(
        before > 0 && before < items.len(),
        "{before} whole lines before the cut"
    );
    let table = unique_table("cutgzip");
    let out = seeder_with_input(
        &[
            "--table",
            &table,
            "--create-table",
            "--key",
            "pk:N",
            "--from",
            "-",
        ],
        cut,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        stderr.contains(&format!("reading it failed after line {before}")),
        "{}",
        text(&out)
    );
    assert!(
        stderr.contains(&format!("{before} items were written"))
            && stderr.contains("running it again is safe")
            && stderr.contains("--allow-incomplete")
            && stderr.contains("scanstream pull --trailer"),
        "{}",
        text(&out)
    );
    assert!(stdout.contains(&format!("{table}: ")), "{}", text(&out));
    assert_table_holds(&client, &table, &items[..before], "pk:N").await;
}

fn read_checkpoint(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

#[tokio::test]
async fn a_killed_load_resumes_from_its_checkpoint_without_rewriting() {
    let client = local_client().await;
    let table = unique_table("resume");
    let items = keyed_items(12_000, true);
    let path = temp(&format!("{table}.ndjson.gz"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&typed(&items)).expect("gzip");
    std::fs::write(&path, gz.finish().expect("gzip")).expect("file");
    let checkpoint = temp(&format!("{table}.checkpoint"));
    let _ = std::fs::remove_file(&checkpoint);
    let (path_arg, checkpoint_arg) = (
        path.to_string_lossy().into_owned(),
        checkpoint.to_string_lossy().into_owned(),
    );
    let args = [
        "--table",
        table.as_str(),
        "--create-table",
        "--key",
        "pk:S,sk:N",
        "--from",
        path_arg.as_str(),
        "--checkpoint",
        checkpoint_arg.as_str(),
        "--concurrency",
        "2",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_seeder"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("seeder runs");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let items = read_checkpoint(&checkpoint).and_then(|c| c["items"].as_u64());
        if items.is_some_and(|n| n >= 2000) {
            break;
        }
        assert!(Instant::now() < deadline, "no progress in the checkpoint");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the load ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let record = read_checkpoint(&checkpoint).expect("a whole record survives the kill");
    let done = record["items"].as_u64().expect("items");
    assert!((2000..12_000).contains(&done), "{record}");
    assert_eq!(record["complete"], false);
    let through = record["written_through"]["line"].as_u64().expect("line");
    assert_eq!(
        through, done,
        "one item a line: written through line {through}"
    );

    let out = seeder(&args);
    assert!(out.status.success(), "{}", text(&out));
    let rest = 12_000 - done;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("written {rest} of {rest} items")),
        "only what the checkpoint did not cover is written: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("{done} items written before are skipped"))
    );
    assert_table_holds(&client, &table, &items, "pk:S,sk:N").await;
    assert_eq!(
        read_checkpoint(&checkpoint).expect("record")["complete"],
        true
    );

    // Complete: running it again writes nothing. Another input is refused.
    let out = seeder(&args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("written 0 of 0 items"),
        "{}",
        text(&out)
    );
    let other = temp(&format!("{table}-other.ndjson"));
    std::fs::write(&other, typed(&items[..5])).expect("file");
    let out = seeder(&[
        "--table",
        &table,
        "--from",
        &other.to_string_lossy(),
        "--checkpoint",
        &checkpoint_arg,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("delete it to start over"),
        "{}",
        text(&out)
    );
}

/// Writes an export by hand in the documented layout: `AWSDynamoDB/<id>/` under
/// `prefix`, the manifests, `_started`, and one gzip file per chunk of items (an empty
/// chunk gives an empty file, as DynamoDB writes for an empty partition).
fn hand_built_export(prefix: &Path, chunks: &[&[Item]]) -> PathBuf {
    let id = "01700000000000-abcd1234";
    let dir = prefix.join("AWSDynamoDB").join(id);
    let _ = std::fs::remove_dir_all(prefix);
    std::fs::create_dir_all(dir.join("data")).expect("dirs");
    std::fs::write(dir.join("_started"), b"").expect("_started");
    let mut manifest = String::new();
    let mut total = 0;
    for (n, chunk) in chunks.iter().enumerate() {
        let name = format!("file{n}abcdefghijklmnop.json.gz");
        let bytes = if chunk.is_empty() {
            Vec::new()
        } else {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&typed(chunk)).expect("gzip");
            gz.finish().expect("gzip")
        };
        std::fs::write(dir.join("data").join(&name), &bytes).expect("data file");
        let entry = serde_json::json!({
            "itemCount": chunk.len(),
            "md5Checksum": md5_base64(bytes.as_slice()).expect("md5"),
            "etag": "af83d6f217c19b8b0fff8023d8ca4716-1",
            "dataFileS3Key": format!("my-prefix/AWSDynamoDB/{id}/data/{name}"),
        });
        manifest += &format!("{entry}\n");
        total += chunk.len();
    }
    std::fs::write(dir.join("manifest-files.json"), &manifest).expect("manifest");
    std::fs::write(
        dir.join("manifest-files.checksum"),
        md5_base64(manifest.as_bytes()).expect("md5"),
    )
    .expect("checksum");
    let summary = serde_json::json!({
        "version": "2020-06-30",
        "exportArn": format!("arn:aws:dynamodb:us-east-1:123456789012:table/T/export/{id}"),
        "startTime": "2026-12-01T10:00:00.000Z",
        "endTime": "2026-12-01T10:05:00.000Z",
        "tableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/T",
        "tableId": "12345a12-abcd-123a-ab12-1234abc12345",
        "exportTime": "2026-12-01T10:00:00.000Z",
        "s3Bucket": "bucket",
        "s3Prefix": "my-prefix",
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": null,
        "manifestFilesS3Key": format!("my-prefix/AWSDynamoDB/{id}/manifest-files.json"),
        "billedSizeBytes": 0,
        "itemCount": total,
        "outputFormat": "DYNAMODB_JSON",
    });
    std::fs::write(dir.join("manifest-summary.json"), summary.to_string()).expect("summary");
    std::fs::write(dir.join("manifest-summary.checksum"), "x").expect("checksum");
    dir
}

#[tokio::test]
async fn a_hand_built_export_loads_exactly_and_a_flipped_byte_is_refused() {
    let client = local_client().await;
    let items = keyed_items(700, true);
    // `seeder --create-table --key pk:S,sk:N --from FROM` into `table`.
    let load = |table: &str, from: &Path| {
        seeder(&[
            "--table",
            table,
            "--create-table",
            "--key",
            "pk:S,sk:N",
            "--from",
            &from.to_string_lossy(),
        ])
    };
    let prefix = temp("export-good");
    let dir = hand_built_export(
        &prefix,
        &[&items[..300], &[], &items[300..310], &items[310..]],
    );
    let table = unique_table("export");
    // The prefix holding exactly one AWSDynamoDB/<id>/.
    let out = load(&table, &prefix);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("written 700 of 700 items"),
        "{}",
        text(&out)
    );
    assert_table_holds(&client, &table, &items, "pk:S,sk:N").await;
    // The export's own folder, into the existing table.
    let out = seeder(&["--table", &table, "--from", &dir.to_string_lossy()]);
    assert!(out.status.success(), "{}", text(&out));

    // One flipped byte in the third data file: refused, naming it, nothing written.
    let data = dir.join("data").join("file2abcdefghijklmnop.json.gz");
    let mut bytes = std::fs::read(&data).expect("data");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&data, &bytes).expect("flip");
    let fresh = unique_table("export-flip");
    let out = load(&fresh, &prefix);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        stderr.contains("file2abcdefghijklmnop.json.gz: corrupt: its MD5 is"),
        "{}",
        text(&out)
    );
    assert!(stderr.contains("nothing written"), "{}", text(&out));
    assert!(
        !table_exists(&client, &fresh).await,
        "nothing written: not even the table"
    );
    bytes[middle] ^= 0x01;
    std::fs::write(&data, &bytes).expect("unflip");

    // A missing file and an extra file are refused by name.
    let extra = dir.join("data").join("stray.json.gz");
    std::fs::write(&extra, b"").expect("extra");
    let out = load(&fresh, &dir);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("stray.json.gz: not listed in manifest-files.json"),
        "{}",
        text(&out)
    );
    std::fs::remove_file(&extra).expect("remove extra");
    let first = dir.join("data").join("file0abcdefghijklmnop.json.gz");
    let kept = std::fs::read(&first).expect("data");
    std::fs::remove_file(&first).expect("remove");
    let out = load(&fresh, &dir);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("file0abcdefghijklmnop.json.gz: listed in manifest-files.json but missing"),
        "{}",
        text(&out)
    );
    std::fs::write(&first, kept).expect("restore");
    assert!(!table_exists(&client, &fresh).await);

    // A manifest whose item count is wrong for a file (MD5 right) is refused by name.
    let wrong = temp("export-count");
    let dir = hand_built_export(&wrong, &[&items[..20], &items[20..40]]);
    let manifest = std::fs::read_to_string(dir.join("manifest-files.json")).expect("manifest");
    let fixed = manifest
        .replacen("\"itemCount\":20", "\"itemCount\":21", 1)
        .replacen("\"itemCount\":20", "\"itemCount\":19", 1);
    std::fs::write(dir.join("manifest-files.json"), fixed).expect("manifest");
    let out = load(&fresh, &dir);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("file0abcdefghijklmnop.json.gz: holds 20 items, manifest-files.json says 21"),
        "{}",
        text(&out)
    );
    assert!(!table_exists(&client, &fresh).await);
}
