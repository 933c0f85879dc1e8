//! `GET /?segments=&limit=`: the table as one NDJSON stream.
//!
//! The status line is committed only once the first page (or the first error) is in, so a
//! missing table is a real 404 rather than a 200 with an error inside.

use super::{
    ApiError, ResponseBody, error_response, integer, parameters, reject_non_get, response,
};
use crate::config::Config;
use crate::scan::PageSource;
use crate::scan::stream::{self, ScanPlan};
use futures::StreamExt;
use http_body::Frame;
use lambda_http::http::{Method, Response, StatusCode, Uri};
use std::sync::Arc;
use tracing::{info, warn};

/// The parameters this endpoint understands.
pub const PARAMETERS: &[&str] = &["segments", "limit"];

/// A validated request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRequest {
    /// Segments scanned concurrently (and `TotalSegments`).
    pub segments: u32,
    /// Items per Scan call.
    pub limit: u32,
}

/// Parses and bounds the query string.
pub fn parse_query(query: Option<&str>, config: &Config) -> Result<StreamRequest, ApiError> {
    let params = parameters(query, PARAMETERS)?;
    let segments = integer(
        &params,
        "segments",
        config.default_segments.into(),
        1,
        config.max_segments.into(),
    )?;
    let limit = integer(
        &params,
        "limit",
        config.default_limit.into(),
        1,
        config.max_limit.into(),
    )?;
    // Both are bounded by u32 settings above.
    Ok(StreamRequest {
        segments: u32::try_from(segments).unwrap_or(config.max_segments),
        limit: u32::try_from(limit).unwrap_or(config.max_limit),
    })
}

/// The streamer: configuration and page source, built once at cold start and shared by
/// every invocation.
#[derive(Debug)]
pub struct Streamer<S> {
    /// Bounds and defaults for every request.
    config: Config,
    /// Shared with the segment tasks of every request.
    source: Arc<S>,
}

impl<S: PageSource> Streamer<S> {
    /// A streamer reading from `source` within the bounds of `config`.
    pub fn new(config: Config, source: S) -> Self {
        Self {
            config,
            source: Arc::new(source),
        }
    }

    /// Answers one request. Never fails: every failure is a response.
    pub async fn handle(&self, method: &Method, uri: &Uri) -> Response<ResponseBody> {
        if let Some(response) = reject_non_get(method) {
            return response;
        }
        let request = match parse_query(uri.query(), &self.config) {
            Ok(request) => request,
            Err(err) => return error_response(&err),
        };
        let plan = ScanPlan {
            total_segments: request.segments,
            segments: 0..request.segments,
            limit: request.limit,
        };
        info!(
            segments = request.segments,
            limit = request.limit,
            "scan starting"
        );
        match stream::start(self.source.clone(), plan).await {
            Ok(scan) => {
                let body = scan.map(|bytes| Ok(Frame::data(bytes))).boxed();
                response(StatusCode::OK, "application/x-ndjson", body)
            }
            Err(err) => {
                warn!(cause = %err, source = ?err.source, "scan failed before the first page");
                error_response(&ApiError::from(&err))
            }
        }
    }
}
