//! `GET /?count=&seed=&start=`: the seeder as a function, streaming its progress.
//!
//! The body is NDJSON: `{"progress":{...}}` lines while batches complete, then one
//! `{"summary":{...}}` line. A run stops taking new batches shortly before the Lambda
//! deadline; the summary's `next_start` says where the caller continues.

use super::http::{ApiError, Invocation, ResponseBody, error_response, response, time_budget};
use super::runtime::Handler;
use crate::dynamo::writer::BatchWriter;
use crate::generate::Input;
use crate::generate::summary::Summary;
use crate::lambda::config::SeederConfig;
use crate::read::params::{ErrorCode, Params};
use bytes::Bytes;
use futures::StreamExt;
use http_body::Frame;
use lambda_http::http::{Method, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// The parameters this endpoint understands.
pub const PARAMETERS: &[&str] = &["count", "seed", "start"];

/// A validated seeding request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedRequest {
    /// Records to write.
    pub count: u64,
    /// The data set.
    pub seed: u64,
    /// The first record's index.
    pub start: u64,
}

/// Parses and bounds the query string; `count` is required.
pub fn parse_query(query: Option<&str>, config: &SeederConfig) -> Result<SeedRequest, ApiError> {
    let params = Params::parse(query.unwrap_or_default(), PARAMETERS)?;
    if !params.has("count") {
        return Err(ApiError::bad_request(
            ErrorCode::MissingParameter,
            format!("count is required (1..={})", config.max_count),
        ));
    }
    Ok(SeedRequest {
        count: params.integer("count", 0, 1, config.max_count)?,
        seed: params.integer("seed", 42, 0, u64::MAX)?,
        start: params.integer("start", 0, 0, u64::MAX / 2)?,
    })
}

/// The seeder function: writer and settings built once at cold start.
#[derive(Debug)]
pub struct Seeder {
    /// Bounds and budget of every request.
    config: SeederConfig,
    /// Shared by every invocation.
    writer: Arc<BatchWriter>,
}

impl Seeder {
    /// A seeder writing through `writer` within `config`.
    pub fn new(config: SeederConfig, writer: BatchWriter) -> Self {
        Self {
            writer: Arc::new(writer.concurrency(config.concurrency)),
            config,
        }
    }

    /// Answers one request; under Lambda the invocation carries its deadline.
    pub async fn handle(&self, invocation: Invocation<'_>) -> Response<ResponseBody> {
        if invocation.method != Method::GET {
            return error_response(&ApiError::method_not_allowed(invocation.method, "GET"));
        }
        let request = match parse_query(invocation.uri.query(), &self.config) {
            Ok(request) => request,
            Err(err) => return error_response(&err),
        };
        // The writer starts no batch and waits for no retry past this instant, leaving
        // the reserve to send the summary.
        let stop_at = time_budget(invocation.deadline, self.config.deadline_reserve);
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        let writer = self.writer.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let input = Input::Generated {
                seed: request.seed,
                start: request.start,
                count: request.count,
                item_size: None,
            };
            let progress_tx = tx.clone();
            let report = writer
                .write_until(input.batches(), stop_at, |progress| {
                    // Progress lines are advisory: a slow reader skips some, never stalls the run.
                    let _ = progress_tx.try_send(line(&json!({"progress": {
                        "written": progress.written, "requested": request.count}})));
                })
                .await;
            let summary = Summary::new(&report, request.count, request.start, started);
            let _ = tx.send(line(&json!({ "summary": summary }))).await;
        });
        let body = ReceiverStream::new(rx)
            .map(|bytes| Ok(Frame::data(bytes)))
            .boxed();
        response(StatusCode::OK, "application/x-ndjson", body)
    }
}

impl Handler for Seeder {
    async fn handle(&self, invocation: Invocation<'_>) -> Response<ResponseBody> {
        Seeder::handle(self, invocation).await
    }
}

fn line(value: &serde_json::Value) -> Bytes {
    let mut out = value.to_string().into_bytes();
    out.push(b'\n');
    Bytes::from(out)
}
