//! End to end: the real binaries under the real `cargo lambda watch`, read by an HTTP
//! client as a user would, against DynamoDB Local.

mod common;

use common::emulator::Emulator;
use common::*;
use scanstream::seed::table::ensure_table;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The first request compiles and starts the function: be patient with it.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(900))
        .build()
        .expect("http client")
}

fn function_env(table: &str) -> Vec<(&'static str, String)> {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    vec![
        ("TABLE_NAME", table.to_string()),
        (
            "AWS_ENDPOINT_URL_DYNAMODB",
            var("AWS_ENDPOINT_URL_DYNAMODB"),
        ),
        ("AWS_REGION", var("AWS_REGION")),
        ("AWS_ACCESS_KEY_ID", var("AWS_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY", var("AWS_SECRET_ACCESS_KEY")),
        ("RUST_LOG", "info".to_string()),
    ]
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String, Vec<u8>) {
    let response = client.get(url).send().await.expect("request");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.bytes().await.expect("body").to_vec();
    (status, content_type, body)
}

/// Seeds through the seeder function and returns its summary line.
async fn seed_via_function(client: &reqwest::Client, emulator: &Emulator, query: &str) -> Value {
    let (status, content_type, body) = get(client, &emulator.url("seeder", query)).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{text}\n{}", emulator.log_text());
    assert_eq!(content_type, "application/x-ndjson");
    let last = text.lines().last().expect("a summary line");
    let summary: Value = serde_json::from_str(last).expect("summary is JSON");
    summary["summary"].clone()
}

#[tokio::test]
async fn a_seeded_table_streams_through_the_emulator() {
    let ddb = local_client().await;
    let table = unique_table("e2e");
    ensure_table(&ddb, &table).await.expect("create table");
    let emulator = Emulator::start("seeded", &function_env(&table));
    let client = http();

    // Seed 10,000 items through the seeder function, in two runs continued by `start`.
    for query in ["count=5000&seed=11", "count=5000&seed=11&start=5000"] {
        let summary = seed_via_function(&client, &emulator, query).await;
        assert_eq!(summary["complete"], true, "{summary}");
        assert_eq!(summary["written"], 5000, "{summary}");
        assert_eq!(summary["next_start"], Value::Null, "{summary}");
    }

    // Read it as a user would, timing each chunk as it arrives.
    let started = Instant::now();
    let mut response = client
        .get(emulator.url("streamer", "segments=4&limit=100"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200, "{}", emulator.log_text());
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-ndjson")
    );
    let mut body = Vec::new();
    let mut arrivals = Vec::new();
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        arrivals.push((started.elapsed(), chunk.len()));
        body.extend_from_slice(&chunk);
    }
    let (items, trailer) = split_body(&body);
    assert_same_ids(
        &ids(&items),
        &expected_ids(11, 10_000),
        &format!("every item exactly once; {trailer:?}"),
    );
    assert!(trailer.complete, "{trailer:?}");
    assert_eq!(trailer.items, 10_000);
    assert_eq!(trailer.segments.len(), 4);
    assert!(trailer.pages >= 100, "{trailer:?}");

    // Streaming, not buffering: the server spent most of its time after the first page,
    // and the client saw that span too, between its first chunk and its last. A response
    // buffered anywhere on the way would arrive as one burst at the end.
    let server_span = trailer.elapsed_ms.saturating_sub(trailer.ttfb_ms);
    assert!(
        server_span > trailer.ttfb_ms,
        "scan outlasts its first page: {trailer:?}"
    );
    let first = arrivals.first().expect("chunks").0;
    let last = arrivals.last().expect("chunks").0;
    let client_span = (last - first).as_millis() as u64;
    eprintln!(
        "{} chunks; first after {first:?}, last after {last:?}; server ttfb {} ms, elapsed {} ms",
        arrivals.len(),
        trailer.ttfb_ms,
        trailer.elapsed_ms
    );
    assert!(arrivals.len() > 4, "{} chunks", arrivals.len());
    assert!(
        client_span * 2 >= server_span,
        "first bytes arrived {client_span} ms before the end; the server streamed for {server_span} ms"
    );

    // Bad input: a 400 with a JSON error naming the parameter, before any scan.
    for (query, named) in [
        ("segments=0", "segments"),
        ("segments=65", "segments"),
        ("segments=four", "segments"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=-5", "limit"),
        ("limit=", "limit"),
        ("segments=1&segments=2", "segments"),
        ("bogus=1", "bogus"),
    ] {
        let (status, content_type, body) = get(&client, &emulator.url("streamer", query)).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 400, "{query}: {text}");
        assert_eq!(content_type, "application/json", "{query}");
        let error: Value = serde_json::from_slice(&body).expect("JSON error");
        let message = error["error"]["message"].as_str().expect("message");
        assert!(message.contains(named), "{query}: {message}");
        assert!(error["error"]["code"].is_string(), "{query}");
    }
    let (status, _, body) = get(&client, &emulator.url("seeder", "count=0")).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let put = client
        .put(emulator.url("streamer", ""))
        .send()
        .await
        .expect("request");
    assert_eq!(put.status().as_u16(), 405);
}

#[tokio::test]
async fn a_missing_table_is_a_404_with_a_json_error() {
    local_client().await;
    let emulator = Emulator::start("missing", &function_env(&unique_table("missing")));
    let (status, content_type, body) =
        get(&http(), &emulator.url("streamer", "segments=4&limit=100")).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 404, "{text}\n{}", emulator.log_text());
    assert_eq!(content_type, "application/json");
    let error: Value = serde_json::from_slice(&body).expect("JSON error");
    assert_eq!(error["error"]["code"], "TableNotFound");
    assert!(
        !text.contains("ResourceNotFoundException"),
        "no upstream text leaks: {text}"
    );
}
