//! Exports to S3 end to end: the streamer under the real `cargo lambda watch` writes a
//! DynamoDB Local table into the local S3 server (moto) with `to=`, and a plain HTTP
//! client reads the response as a user would. What S3 then holds is read back with the
//! SDK: exactly the files the response announced, each with the MD5, size and item count
//! it said, and together exactly the table's items, however the read was cut and resumed.
//! Every destination or combination an export refuses is a named 4xx, and writes nothing.

mod common;

use common::emulator::Emulator;
use common::s3::{export_env, fresh_bucket, keys, local_s3, object};
use common::*;
use scanstream::format::export::{ExportedFile, ExportedFileLine, md5_base64};
use scanstream::format::trailer::Trailer;
use std::collections::BTreeSet;
use std::io::Read;

/// One call's response: the files it announced and its trailer, in that order.
async fn call(
    http: &reqwest::Client,
    url: &str,
    form: Option<String>,
) -> (Vec<ExportedFile>, Trailer) {
    let request = match form {
        None => http.get(url),
        Some(form) => http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form),
    };
    let response = request.send().await.expect("the emulator answers");
    assert_eq!(response.status(), 200, "{url}");
    assert_eq!(
        response.headers()["content-type"],
        "application/x-ndjson",
        "the response itself is never compressed"
    );
    let body = response.bytes().await.expect("body");
    let mut lines: Vec<&[u8]> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let trailer = Trailer::parse_line(lines.pop().expect("a line")).expect("a trailer last");
    let files = lines
        .iter()
        .map(|line| {
            ExportedFileLine::of_line(line)
                .unwrap_or_else(|| {
                    panic!(
                        "only file lines before the trailer: {}",
                        String::from_utf8_lossy(line)
                    )
                })
                .file
        })
        .collect();
    (files, trailer)
}

/// The items a file holds as plain lines, once its bytes, MD5 and count are checked
/// against what its line announced.
async fn file_lines(s3: &aws_sdk_s3::Client, bucket: &str, file: &ExportedFile) -> Vec<Vec<u8>> {
    let stored = object(s3, bucket, &file.entry.data_file_s3_key).await;
    assert_eq!(stored.len() as u64, file.bytes, "{file:?}");
    assert_eq!(
        md5_base64(&stored[..]).expect("md5"),
        file.entry.md5_checksum
    );
    let key = &file.entry.data_file_s3_key;
    let mut plain = Vec::new();
    if key.ends_with(".json.gz") {
        flate2::read::GzDecoder::new(&stored[..])
            .read_to_end(&mut plain)
            .expect("gzip");
    } else if key.ends_with(".json.zst") {
        plain = zstd::decode_all(&stored[..]).expect("zstd");
    } else {
        assert!(key.ends_with(".json"), "{key}");
        plain = stored;
    }
    let lines: Vec<Vec<u8>> = plain
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let item = scanstream::format::json::read::item_of_line(
                std::str::from_utf8(line).expect("utf-8"),
            )
            .expect("each line is DynamoDB JSON, {\"Item\":...}");
            scanstream::format::json::to_line(&item)
        })
        .collect();
    assert_eq!(lines.len() as u64, file.entry.item_count, "{key}");
    lines
}

/// Follows an export from `query` to its end, sending `to` and `resume` again with each
/// cursor; every file announced, and how many calls it took.
async fn follow(
    http: &reqwest::Client,
    emulator: &Emulator,
    query: &str,
    to: &str,
    resume: &str,
) -> (Vec<ExportedFile>, usize) {
    let (mut files, mut trailer) = call(http, &emulator.url("streamer", query), None).await;
    let mut calls = 1;
    while !trailer.complete {
        assert!(trailer.error.is_none(), "{trailer:?}");
        let cursor = trailer
            .cursor
            .clone()
            .expect("an incomplete trailer has a cursor");
        let form = format!("cursor={cursor}&to={to}&{resume}");
        let (more, next) = call(http, &emulator.url("streamer", ""), Some(form)).await;
        assert_eq!(
            next.items,
            more.iter().map(|f| f.entry.item_count).sum::<u64>(),
            "the trailer counts what the files hold"
        );
        files.extend(more);
        trailer = next;
        calls += 1;
        assert!(calls < 50, "the export ends");
    }
    (files, calls)
}

/// Checks that `files` are exactly what S3 holds under `prefix`, and that together they
/// hold the table, each item once.
async fn assert_export_is_the_table(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    files: &[ExportedFile],
    table: &BTreeSet<Vec<u8>>,
) {
    let announced: Vec<String> = {
        let mut keys: Vec<String> = files
            .iter()
            .map(|f| f.entry.data_file_s3_key.clone())
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(s3, bucket, prefix).await,
        announced,
        "S3 holds the announced files"
    );
    let mut seen = BTreeSet::new();
    for file in files {
        for line in file_lines(s3, bucket, file).await {
            assert!(
                seen.insert(line.clone()),
                "an item twice: {}",
                String::from_utf8_lossy(&line)
            );
        }
    }
    assert_eq!(seen.len(), table.len());
    assert!(seen == *table, "the files hold the table's items");
}

#[tokio::test]
async fn an_export_writes_the_table_into_the_files_it_announces_and_resumes_exactly() {
    let client = local_client().await;
    let s3 = local_s3().await;
    let table = seeded_table(&client, "export", 31, 3000).await;
    let bucket = fresh_bucket(&s3, "export").await;
    let emulator = Emulator::start_warm(
        "export",
        &export_env(
            &table,
            &bucket,
            "exports",
            &[("EXPORT_FILE_BYTES", "65536")],
        ),
    )
    .await;
    let http = reqwest::Client::new();
    let expected = table_lines(&client, &table).await;

    // One call, gzip by default, small files.
    let to = format!("s3://{bucket}/exports/whole");
    let (files, trailer) = call(
        &http,
        &emulator.url("streamer", &format!("segments=4&to={to}")),
        None,
    )
    .await;
    assert!(trailer.complete, "{trailer:?}");
    assert_eq!(trailer.items, 3000);
    assert!(files.len() > 1, "files of 64 KiB: {}", files.len());
    assert!(
        files
            .iter()
            .all(|f| f.entry.data_file_s3_key.ends_with(".json.gz"))
    );
    assert_export_is_the_table(&s3, &bucket, "exports/whole/", &files, &expected).await;

    // Cut by max_items and resumed by cursor, zstd: each item once over all the calls.
    let to = format!("s3://{bucket}/exports/resumed");
    let (files, calls) = follow(
        &http,
        &emulator,
        &format!("segments=2&max_items=700&compress=zstd&to={to}"),
        &to,
        "max_items=700&compress=zstd",
    )
    .await;
    assert!(calls >= 5, "3000 items, 700 a call: {calls} calls");
    assert_export_is_the_table(&s3, &bucket, "exports/resumed/", &files, &expected).await;

    // What an export refuses, before anything is read or written.
    let before = keys(&s3, &bucket, "").await;
    let refused = [
        (
            format!("to=s3://{bucket}-other/exports/x"),
            403,
            "DestinationNotAllowed",
        ),
        (
            format!("to=s3://{bucket}/elsewhere"),
            403,
            "DestinationNotAllowed",
        ),
        (
            format!("to=s3://{bucket}/exports-old"),
            403,
            "DestinationNotAllowed",
        ),
        (
            format!("to=s3://{bucket}/exports/../x"),
            400,
            "InvalidParameter",
        ),
        (
            format!("to=https://{bucket}/exports"),
            400,
            "InvalidParameter",
        ),
        (
            format!("to=s3://{bucket}/exports/x&format=json"),
            400,
            "InvalidParameter",
        ),
        (
            format!("to=s3://{bucket}/exports/x&fields=id"),
            400,
            "InvalidParameter",
        ),
        (
            format!("to=s3://{bucket}/exports/x&filter=attribute_exists(id)"),
            400,
            "InvalidParameter",
        ),
        (
            format!("to=s3://{bucket}/exports/x&pk=a"),
            400,
            "InvalidParameter",
        ),
        (
            format!("to=s3://{bucket}/exports/x&select=count"),
            400,
            "InvalidParameter",
        ),
    ];
    for (query, status, code) in refused {
        let response = http
            .get(emulator.url("streamer", &query))
            .send()
            .await
            .expect("the emulator answers");
        assert_eq!(response.status(), status, "{query}");
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.expect("body")).expect("a JSON error");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    assert_eq!(
        keys(&s3, &bucket, "").await,
        before,
        "nothing written by a refusal"
    );
}

#[tokio::test]
async fn a_file_past_a_part_is_uploaded_in_parts_s3_accepts() {
    let client = local_client().await;
    let s3 = local_s3().await;
    // About 8 MB of plain lines: parts of the smallest size S3 allows, 5 MiB.
    let table = seeded_table(&client, "export-parts", 32, 10_000).await;
    let bucket = fresh_bucket(&s3, "export-parts").await;
    let emulator = Emulator::start_warm(
        "export-parts",
        &export_env(
            &table,
            &bucket,
            "parts",
            &[("EXPORT_PART_BYTES", "5242880")],
        ),
    )
    .await;
    let http = reqwest::Client::new();
    let to = format!("s3://{bucket}/parts/one");
    let (files, trailer) = call(
        &http,
        &emulator.url(
            "streamer",
            &format!("segments=4&limit=1000&compress=none&to={to}"),
        ),
        None,
    )
    .await;
    assert!(trailer.complete, "{trailer:?}");
    assert_eq!(files.len(), 1, "one file under the default 64 MiB");
    assert!(
        files[0].bytes > 5 << 20,
        "more than a part: {}",
        files[0].bytes
    );
    let etag = files[0].entry.etag.clone().expect("an ETag");
    assert!(
        etag.trim_matches('"').ends_with("-2"),
        "a two-part upload's ETag: {etag}"
    );
    let expected = table_lines(&client, &table).await;
    assert_export_is_the_table(&s3, &bucket, "parts/one/", &files, &expected).await;
}

#[tokio::test]
async fn a_bucket_that_does_not_exist_is_a_502_before_anything_is_read() {
    let client = local_client().await;
    let table = seeded_table(&client, "export-nobucket", 33, 50).await;
    let missing = format!("no-such-bucket-{}", std::process::id());
    let emulator = Emulator::start_warm(
        "export-nobucket",
        &export_env(&table, &missing, "exports", &[]),
    )
    .await;
    // Bounded: an emulator that stops answering fails the test instead of holding it.
    let response = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .expect("client")
        .get(emulator.url("streamer", &format!("to=s3://{missing}/exports/x")))
        .send()
        .await
        .unwrap_or_else(|err| panic!("the emulator answers: {err}\n{}", emulator.log_text()));
    assert_eq!(response.status(), 502);
    let body: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("a JSON error");
    assert_eq!(body["error"]["code"], "S3Error", "{body}");
    assert!(
        emulator.log_text().contains("NoSuchBucket"),
        "S3's own error is in the log"
    );
}

#[tokio::test]
async fn s3_shedding_load_on_parts_and_completions_is_retried_and_the_export_is_exact() {
    use common::faults::{FaultProxy, Faults};
    let client = local_client().await;
    let s3 = local_s3().await;
    // About 8 MB of plain lines: the first call's file goes up as a 5 MiB part mid-file
    // and a tail, so both kinds of upload meet the faults.
    let table = seeded_table(&client, "export-faults", 34, 10_000).await;
    let bucket = fresh_bucket(&s3, "export-faults").await;
    let upstream = std::env::var("AWS_ENDPOINT_URL_S3").unwrap_or_default();
    // Every part's and completion's first attempt fails (503 SlowDown, 500 InternalError
    // in turn) and the SDK's retry gets through.
    let proxy = FaultProxy::start(
        &upstream,
        Faults {
            s3_fail_every: Some(2),
            seed: 27,
            ..Faults::default()
        },
    )
    .await;
    let mut env = export_env(
        &table,
        &bucket,
        "exports",
        &[("EXPORT_PART_BYTES", "5242880")],
    );
    for (name, value) in &mut env {
        if *name == "AWS_ENDPOINT_URL_S3" {
            *value = proxy.url.clone();
        }
    }
    let emulator = Emulator::start_warm("export-faults", &env).await;
    let http = reqwest::Client::new();
    let to = format!("s3://{bucket}/exports/faults");
    let (files, calls) = follow(
        &http,
        &emulator,
        &format!("segments=4&limit=1000&max_items=7000&compress=none&to={to}"),
        &to,
        "max_items=7000&compress=none",
    )
    .await;
    let failed = proxy
        .counts
        .s3_failed
        .load(std::sync::atomic::Ordering::SeqCst);
    eprintln!("{calls} calls; proxy: {}", proxy.counts.line());
    assert!(
        failed >= 4,
        "parts and completions failed, both ways: {failed}"
    );
    let expected = table_lines(&client, &table).await;
    assert_export_is_the_table(&s3, &bucket, "exports/faults/", &files, &expected).await;
}
