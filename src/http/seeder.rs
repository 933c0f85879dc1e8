//! `GET /?count=&seed=&start=`: the seeder as a function, streaming its progress.
//!
//! The body is NDJSON: `{"progress":{...}}` lines while batches complete, then one
//! `{"summary":{...}}` line. A run stops taking new batches shortly before the Lambda
//! deadline; the summary's `next_start` says where the caller continues.

use super::{
    ApiError, ResponseBody, error_response, integer, parameters, reject_non_get, response,
    time_budget,
};
use crate::seed::generated_batches;
use crate::seed::writer::{BatchWriter, MAX_BATCH, WriteReport, rate};
use bytes::Bytes;
use futures::StreamExt;
use http_body::Frame;
use lambda_http::http::{Method, Response, StatusCode, Uri};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};
use tokio::sync::mpsc;

/// The parameters this endpoint understands.
pub const PARAMETERS: &[&str] = &["count", "seed", "start"];

pub use crate::config::SeederConfig;

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
    let params = parameters(query, PARAMETERS)?;
    if !params.contains_key("count") {
        return Err(ApiError::bad_request(
            "MissingParameter",
            format!("count is required (1..={})", config.max_count),
        ));
    }
    Ok(SeedRequest {
        count: integer(&params, "count", 0, 1, config.max_count)?,
        seed: integer(&params, "seed", 42, 0, u64::MAX)?,
        start: integer(&params, "start", 0, 0, u64::MAX / 2)?,
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

    /// Answers one request; `deadline` is the invocation's, when running under Lambda.
    pub async fn handle(
        &self,
        method: &Method,
        uri: &Uri,
        deadline: Option<SystemTime>,
    ) -> Response<ResponseBody> {
        if let Some(response) = reject_non_get(method) {
            return response;
        }
        let request = match parse_query(uri.query(), &self.config) {
            Ok(request) => request,
            Err(err) => return error_response(&err),
        };
        // Stop taking batches once this instant passes, leaving the reserve to finish.
        let stop_at = time_budget(deadline, self.config.deadline_reserve).map(|at| at.into_std());
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        let writer = self.writer.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let taken = AtomicU64::new(0);
            let batches = generated_batches(request.seed, request.start, request.count)
                .take_while(|_| stop_at.is_none_or(|stop| Instant::now() < stop))
                .inspect(|_| {
                    taken.fetch_add(1, Ordering::Relaxed);
                });
            let progress_tx = tx.clone();
            let report = writer
                .write_all(batches, |progress| {
                    // Progress lines are advisory: a slow reader skips some, never stalls the run.
                    let _ = progress_tx.try_send(line(&json!({"progress": {
                        "written": progress.written, "requested": request.count}})));
                })
                .await;
            let attempted = (taken.load(Ordering::Relaxed) * MAX_BATCH as u64).min(request.count);
            let summary = summary(&report, request, attempted, started);
            let _ = tx.send(line(&summary)).await;
        });
        let body = tokio_stream(rx).map(|bytes| Ok(Frame::data(bytes))).boxed();
        response(StatusCode::OK, "application/x-ndjson", body)
    }
}

fn summary(
    report: &WriteReport,
    request: SeedRequest,
    attempted: u64,
    started: Instant,
) -> serde_json::Value {
    let complete = report.is_complete() && attempted == request.count;
    let next_start = (attempted < request.count).then(|| request.start + attempted);
    json!({"summary": {
        "complete": complete,
        "requested": request.count,
        "written": report.written,
        "batches": report.batches,
        "retries": report.retries,
        "unprocessed_resent": report.unprocessed_resent,
        "elapsed_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "items_per_s": rate(report.written, started).round(),
        "next_start": next_start,
        "failed_keys": report.failed_keys,
        "error": report.error.map(|kind| json!({"code": kind.code(), "message": kind.message()})),
    }})
}

fn line(value: &serde_json::Value) -> Bytes {
    let mut out = value.to_string().into_bytes();
    out.push(b'\n');
    Bytes::from(out)
}

fn tokio_stream(mut rx: mpsc::Receiver<Bytes>) -> impl futures::Stream<Item = Bytes> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
