//! `seeder --apply` against DynamoDB Local: change lines in DynamoDB Streams' record shape,
//! made here from a random run of puts, updates and deletes that the test also makes on
//! a source table, applied to another table. The copy must equal the source item for
//! item: from empty, from a snapshot taken part way with the changes from before it
//! (replayed ones converge), applied twice, and after a SIGKILL with a checkpoint.

mod common;

use common::keyed::{keyed_items, keyed_table};
use common::run::scratch;
use common::*;
use rand::{RngExt, SeedableRng};
use scanstream::format::item::{Item, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// A random run of changes over a pool of keys: the change lines (eventName, Keys,
/// NewImage, OldImage, SequenceNumber) in order, and the state after the numbers of
/// changes asked for.
struct Run {
    lines: Vec<String>,
    after: BTreeMap<usize, BTreeMap<String, Item>>,
}

fn key_text(item: &Item) -> String {
    format!("{:?}/{:?}", item["pk"], item["sk"])
}

fn typed(item: &Item) -> serde_json::Value {
    let mut line = Vec::new();
    scanstream::format::json::Format::Dynamodb.write_line(&mut line, item);
    let mut value: serde_json::Value = serde_json::from_slice(&line).expect("typed JSON");
    match value.get_mut("Item") {
        Some(inner) => inner.take(),
        None => value,
    }
}

fn random_run(seed: u64, keys: u64, ops: usize, keep: &[usize]) -> Run {
    let pool = keyed_items(seed, keys);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut state: BTreeMap<String, Item> = BTreeMap::new();
    let (mut lines, mut after) = (Vec::new(), BTreeMap::new());
    for op in 0..ops {
        let base = &pool[rng.random_range(0..pool.len())];
        let id = key_text(base);
        let keys_only: Item = ["pk", "sk"]
            .iter()
            .map(|k| (k.to_string(), base[*k].clone()))
            .collect();
        let old = state.get(&id).cloned();
        let removed = old.as_ref().filter(|_| rng.random_bool(0.3));
        let record = if let Some(gone) = removed {
            state.remove(&id);
            serde_json::json!({"eventName": "REMOVE", "dynamodb": {
                "Keys": typed(&keys_only), "OldImage": typed(gone),
                "SequenceNumber": format!("{:021}", op + 1), "StreamViewType": "NEW_AND_OLD_IMAGES"}})
        } else {
            let mut item = base.clone();
            item.insert("version".into(), Value::N(op.to_string()));
            state.insert(id, item.clone());
            let mut dynamodb = serde_json::json!({"Keys": typed(&keys_only),
                "NewImage": typed(&item), "SequenceNumber": format!("{:021}", op + 1),
                "ApproximateCreationDateTime": 1765000000 + op, "StreamViewType": "NEW_AND_OLD_IMAGES"});
            if let Some(old) = &old {
                dynamodb["OldImage"] = typed(old);
            }
            serde_json::json!({"eventID": op.to_string(), "eventSource": "aws:dynamodb",
                "eventName": if old.is_some() { "MODIFY" } else { "INSERT" }, "dynamodb": dynamodb})
        };
        lines.push(record.to_string());
        if keep.contains(&(op + 1)) {
            after.insert(op + 1, state.clone());
        }
    }
    Run { lines, after }
}

/// A trailer that says `items` lines came before it, whole.
fn trailer(items: usize) -> String {
    format!(
        r#"{{"@scanstream":{{"complete":true,"items":{items},"scanned":{items},"pages":1,"consumed_capacity":null,"rcu_per_s":null,"retries":0,"elapsed_ms":1,"ttfb_ms":1}}}}"#
    )
}

fn write_file(path: &Path, lines: &[String], with_trailer: bool) {
    let mut text = lines.join("\n");
    text.push('\n');
    if with_trailer {
        text.push_str(&trailer(lines.len()));
        text.push('\n');
    }
    std::fs::write(path, text).expect("change file");
}

fn apply(table: &str, from: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--table", table, "--apply", from.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    seeder(&args)
}

/// GIVEN 3,000 random puts, updates and deletes over 400 keys WHEN their change lines
/// are applied to an empty table, to a snapshot taken after 2,000 of them with the
/// changes from 1,500 on (500 replayed), and a second time THEN each copy equals the
/// source's final state item for item.
#[tokio::test]
async fn changes_applied_in_order_converge_on_the_source() {
    let ddb = local_client().await;
    let run = random_run(31, 400, 3000, &[2000, 3000]);
    let source = keyed_table(
        &ddb,
        "apply-src",
        run.after[&3000].values().cloned().collect(),
    )
    .await;
    let expected = table_lines(&ddb, &source).await;
    let dir = scratch("apply");
    let all = dir.join("all.ndjson");
    write_file(&all, &run.lines, true);
    let copy = keyed_table(&ddb, "apply-empty", Vec::new()).await;
    let out = apply(&copy, &all, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3000 changes"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(table_lines(&ddb, &copy).await == expected, "from empty");
    let out = apply(&copy, &all, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table_lines(&ddb, &copy).await == expected, "applied twice");
    let snapshot = keyed_table(
        &ddb,
        "apply-snap",
        run.after[&2000].values().cloned().collect(),
    )
    .await;
    let tail = dir.join("tail.ndjson");
    write_file(&tail, &run.lines[1500..], true);
    let out = apply(&snapshot, &tail, &["--concurrency", "8"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table_lines(&ddb, &snapshot).await == expected,
        "a snapshot and its tail, 500 changes replayed"
    );
}

/// GIVEN 12,000 changes in a file WHEN `seeder --apply --checkpoint` is killed with
/// SIGKILL part way and run again THEN the copy equals the source, and the second run
/// skipped what the checkpoint recorded.
#[tokio::test]
async fn a_killed_apply_resumes_from_its_checkpoint() {
    let ddb = local_client().await;
    let run = random_run(32, 2000, 12_000, &[12_000]);
    let source = keyed_table(
        &ddb,
        "apply-ksrc",
        run.after[&12_000].values().cloned().collect(),
    )
    .await;
    let expected = table_lines(&ddb, &source).await;
    let dir = scratch("apply-kill");
    let file = dir.join("changes.ndjson");
    write_file(&file, &run.lines, true);
    let checkpoint = dir.join("apply.ckpt");
    let copy = keyed_table(&ddb, "apply-kdst", Vec::new()).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_seeder"))
        .args(["--table", &copy, "--apply"])
        .arg(&file)
        .arg("--checkpoint")
        .arg(&checkpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("seeder runs");
    let started = std::time::Instant::now();
    while !checkpoint.exists() && started.elapsed() < std::time::Duration::from_secs(60) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the apply ended before the kill: make the file longer"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&checkpoint).expect("checkpoint")).expect("JSON");
    let through = record["written_through"]["line"].as_u64().unwrap_or(0);
    assert!((1..12_000).contains(&through), "killed part way: {record}");
    let out = apply(
        &copy,
        &file,
        &["--checkpoint", checkpoint.to_str().expect("utf-8")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("lines up to {through} were applied before")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table_lines(&ddb, &copy).await == expected,
        "resumed exactly"
    );
}

/// A file with a bad line applies nothing and names the line; records without a new
/// image name the view types needed; a stream without its trailer is applied and
/// reported incomplete, with it whole.
#[tokio::test]
async fn bad_changes_are_named_and_a_cut_stream_is_reported() {
    let ddb = local_client().await;
    let run = random_run(33, 50, 200, &[200]);
    let dir = scratch("apply-bad");
    let copy = keyed_table(&ddb, "apply-bad", Vec::new()).await;
    let mut lines = run.lines.clone();
    lines[120] = r#"{"eventName":"INSERT","dynamodb":{"Keys":{"pk":{"S":"x"},"sk":{"N":"1"}},"SequenceNumber":"9"}}"#.into();
    let file = dir.join("bad.ndjson");
    write_file(&file, &lines, true);
    let out = apply(&copy, &file, &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 121") && stderr.contains("NEW_AND_OLD_IMAGES"),
        "{stderr}"
    );
    assert!(table_lines(&ddb, &copy).await.is_empty(), "nothing applied");
    lines[120] =
        r#"{"eventName":"INSERT","dynamodb":{"Keys":{"pk":{"N":"1"}},"SequenceNumber":"9"}}"#
            .into();
    write_file(&file, &lines, true);
    let out = apply(&copy, &file, &[]);
    assert!(!out.status.success());
    assert!(
        table_lines(&ddb, &copy).await.is_empty(),
        "a key of another schema"
    );
    // Keys that are not the table's key (a superset: another table's changes).
    lines[120] = r#"{"eventName":"REMOVE","dynamodb":{"Keys":{"pk":{"S":"x"},"sk":{"N":"1"},"other":{"S":"y"}},"SequenceNumber":"9"}}"#.into();
    write_file(&file, &lines, true);
    let out = apply(&copy, &file, &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the table's key is"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table_lines(&ddb, &copy).await.is_empty(),
        "a key of another table"
    );
    // A file whose trailer says it is not whole: a change lost is a key left wrong.
    let partial = dir.join("partial.ndjson");
    let mut text = run.lines.join("\n");
    text.push('\n');
    text.push_str(&trailer(run.lines.len()).replace("\"complete\":true", "\"complete\":false"));
    text.push('\n');
    std::fs::write(&partial, text).expect("file");
    let out = apply(&copy, &partial, &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("incomplete"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table_lines(&ddb, &copy).await.is_empty(), "not applied");
    let out = seeder(&["--table", &copy, "--apply", "x", "--print"]);
    assert_eq!(out.status.code(), Some(2), "--print with --apply");
    // Standard input: written as it arrives; without its trailer it is incomplete.
    let want = keyed_table(
        &ddb,
        "apply-want",
        run.after[&200].values().cloned().collect(),
    )
    .await;
    for (with_trailer, ok) in [(false, false), (true, true)] {
        let mut text = run.lines.join("\n");
        text.push('\n');
        if with_trailer {
            text.push_str(&trailer(run.lines.len()));
            text.push('\n');
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_seeder"))
            .args(["--table", &copy, "--apply", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("seeder runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("written");
        let out = child.wait_with_output().expect("ends");
        assert_eq!(
            out.status.success(),
            ok,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if !ok {
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("incomplete"),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            table_lines(&ddb, &copy).await == table_lines(&ddb, &want).await,
            "the stream's changes applied"
        );
    }
}
