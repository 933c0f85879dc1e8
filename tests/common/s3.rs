//! The local S3 server (moto, started by `scripts/test.sh`): a client for it, fresh
//! buckets, and what a test reads back from an export. A test that needs it fails with a
//! clear message when it is not running; it never skips.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::BehaviorVersion;
use std::sync::atomic::{AtomicU32, Ordering};

/// The client for the local S3 server, as `scripts/test.sh` points the SDK there
/// (`AWS_ENDPOINT_URL_S3`), path-style.
pub async fn local_s3() -> Client {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "AWS_ENDPOINT_URL_S3 must point at the local S3 server (got {endpoint:?}); run the \
         tests with scripts/test.sh, which starts it"
    );
    let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let client = Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(true)
            .build(),
    );
    if let Err(err) = client.list_buckets().send().await {
        panic!("the local S3 server at {endpoint} does not answer: {err:?}");
    }
    client
}

/// A new, empty bucket no other test uses.
pub async fn fresh_bucket(client: &Client, prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    client
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .unwrap_or_else(|err| panic!("creating bucket {name}: {err:?}"));
    name
}

/// The keys under `prefix` in `bucket`, sorted.
pub async fn keys(client: &Client, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.unwrap_or_else(|err| panic!("listing {bucket}/{prefix}: {err:?}"));
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    keys.sort();
    keys
}

/// An object's bytes.
pub async fn object(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|err| panic!("getting {bucket}/{key}: {err:?}"));
    out.body
        .collect()
        .await
        .unwrap_or_else(|err| panic!("reading {bucket}/{key}: {err:?}"))
        .into_bytes()
        .to_vec()
}

/// [`super::function_env`] with exports to `bucket` under `prefix` allowed, the functions
/// reaching the local S3 server, and `extra` settings.
pub fn export_env(
    table: &str,
    bucket: &str,
    prefix: &str,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env = super::function_env(table);
    env.push(("EXPORT_BUCKET", bucket.to_string()));
    env.push(("EXPORT_PREFIX", prefix.to_string()));
    env.push((
        "AWS_ENDPOINT_URL_S3",
        std::env::var("AWS_ENDPOINT_URL_S3").unwrap_or_default(),
    ));
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    env
}

/// Puts an export of `items` in the layout DynamoDB documents for ExportTable (full
/// manifest fields, keys under `prefix`, random-looking data file names, no key schema
/// file), `per_file` items a gzip file, into `bucket`; the export's folder.
pub async fn put_native_export(
    s3: &Client,
    bucket: &str,
    prefix: &str,
    table: &str,
    items: &[scanstream::format::item::Item],
    per_file: usize,
) -> String {
    let lines: Vec<String> = items
        .iter()
        .map(|item| {
            let mut typed = Vec::new();
            scanstream::format::json::Format::Dynamodb.write_line(&mut typed, item);
            String::from_utf8(typed).expect("utf-8")
        })
        .collect();
    let id = "01764979200000-1a2b3c4d";
    let root = format!("{prefix}/AWSDynamoDB/{id}");
    let mut entries = String::new();
    for (n, chunk) in lines.chunks(per_file).enumerate() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, chunk.concat().as_bytes()).expect("gzip");
        let body = gz.finish().expect("gzip");
        let key = format!("{root}/data/x{n}abcdefghijklmnop.json.gz");
        entries.push_str(&format!(
            "{{\"itemCount\":{},\"md5Checksum\":\"{}\",\"etag\":\"{}\",\"dataFileS3Key\":\"{key}\"}}\n",
            chunk.len(),
            scanstream::format::export::md5_base64(&body[..]).expect("md5"),
            scanstream::format::export::hex_md5(&body),
        ));
        put(s3, bucket, &key, body).await;
    }
    let summary = format!(
        "{{\"version\":\"2020-06-30\",\"exportArn\":\"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/export/{id}\",\"startTime\":\"2026-12-06T00:00:00.000Z\",\"endTime\":\"2026-12-06T00:05:00.000Z\",\"tableArn\":\"arn:aws:dynamodb:us-east-1:123456789012:table/{table}\",\"tableId\":\"0a1b2c3d-0000-0000-0000-000000000000\",\"exportTime\":\"2026-12-06T00:00:00.000Z\",\"s3Bucket\":\"{bucket}\",\"s3Prefix\":\"{prefix}\",\"s3SseAlgorithm\":\"AES256\",\"s3SseKmsKeyId\":null,\"manifestFilesS3Key\":\"{root}/manifest-files.json\",\"billedSizeBytes\":12345,\"itemCount\":{},\"outputFormat\":\"DYNAMODB_JSON\",\"exportType\":\"FULL_EXPORT\"}}",
        lines.len()
    );
    for (name, body) in [
        ("_started", String::new()),
        ("manifest-files.json", entries),
        ("manifest-summary.json", summary),
    ] {
        put(s3, bucket, &format!("{root}/{name}"), body.into_bytes()).await;
    }
    root
}

/// Puts `body` at `key`.
pub async fn put(s3: &Client, bucket: &str, key: &str, body: Vec<u8>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap_or_else(|err| panic!("putting {key}: {err:?}"));
}
