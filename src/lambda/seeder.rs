//! The seeder as a function, streaming its progress. Two jobs:
//!
//! - `GET /?count=&seed=&start=`: generated records.
//! - `GET /?from=s3://BUCKET/KEY&items=N&md5=HEX[&bytes=B][&after=LINE]`: one data file of
//!   an export, read from the bucket this function may read (`IMPORT_BUCKET`,
//!   `IMPORT_PREFIX`). The file is checked first (size, MD5, item count, every line
//!   against the table's keys and its indexes'), before any response: a file that fails
//!   is a `404` (missing) or `422` with nothing written.
//!
//! Either may be capped with `max_wcu=` (write capacity units a second, a token bucket
//! charged with what DynamoDB reports consumed). The body is NDJSON: `{"progress":{...}}`
//! lines while batches complete, then one `{"summary":{...}}` line. A run stops taking
//! new batches shortly before the Lambda deadline; the summary says where the caller
//! continues (`next_start` for records, `written_through` for a file, given back as
//! `after`).

use super::http::{ApiError, Invocation, ResponseBody, error_response, response, time_budget};
use super::runtime::Handler;
use crate::dynamo::client::Dynamo;
use crate::dynamo::s3::Bucket;
use crate::dynamo::writer::{BatchWriter, WriteReport};
use crate::format::location::S3Location;
use crate::format::rate::RateLimit;
use crate::generate::Input;
use crate::generate::record;
use crate::generate::summary::Summary;
use crate::lambda::config::SeederConfig;
use crate::load::LoadError;
use crate::load::input::Remote;
use crate::load::object::{ObjectError, ObjectLoad, check_object, write_object};
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
pub const PARAMETERS: &[&str] = &[
    "count", "seed", "start", "from", "items", "md5", "bytes", "after", "max_wcu",
];

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub enum SeedJob {
    /// Generated records.
    Generate(SeedRequest),
    /// One data file from S3.
    Load(LoadRequest),
}

/// A validated seeding request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedRequest {
    /// Records to write.
    pub count: u64,
    /// The data set.
    pub seed: u64,
    /// The first record's index.
    pub start: u64,
    /// Write capacity units a second.
    pub max_wcu: Option<f64>,
}

/// A validated request to load one file.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadRequest {
    /// The object.
    pub from: S3Location,
    /// Item lines it must hold.
    pub items: u64,
    /// Its MD5, 32 hex digits.
    pub md5_hex: String,
    /// Its size, when the caller says.
    pub bytes: Option<u64>,
    /// Lines up to this one were written by an earlier call.
    pub after: Option<u64>,
    /// Write capacity units a second.
    pub max_wcu: Option<f64>,
}

/// Parses and bounds the query string: `count`, or `from` with `items` and `md5`.
pub fn parse_query(query: Option<&str>, config: &SeederConfig) -> Result<SeedJob, ApiError> {
    let params = Params::parse(query.unwrap_or_default(), PARAMETERS)?;
    let max_wcu = params.positive_decimal("max_wcu", config.max_wcu)?;
    let bad = |message: String| ApiError::bad_request(ErrorCode::InvalidParameter, message);
    if !params.has("from") {
        if let Some(name) = ["items", "md5", "bytes", "after"]
            .into_iter()
            .find(|name| params.has(name))
        {
            return Err(bad(format!("{name} goes with from=s3://BUCKET/KEY")));
        }
        if !params.has("count") {
            return Err(ApiError::bad_request(
                ErrorCode::MissingParameter,
                format!(
                    "count (1..={}) or from=s3://BUCKET/KEY is required",
                    config.max_count
                ),
            ));
        }
        return Ok(SeedJob::Generate(SeedRequest {
            count: params.integer("count", 0, 1, config.max_count)?,
            seed: params.integer("seed", 42, 0, u64::MAX)?,
            start: params.integer("start", 0, 0, u64::MAX / 2)?,
            max_wcu,
        }));
    }
    if let Some(name) = ["count", "seed", "start"]
        .into_iter()
        .find(|name| params.has(name))
    {
        return Err(bad(format!(
            "{name} is for generated records; from= loads a file"
        )));
    }
    let url = params.text("from").unwrap_or_default();
    let from = S3Location::parse(url).map_err(|why| bad(format!("from: {why}")))?;
    if from.prefix.is_empty() {
        return Err(bad(format!("from: {from} names a bucket, not an object")));
    }
    let Some(allowed) = &config.import else {
        return Err(ApiError::new(
            403,
            ErrorCode::DestinationNotAllowed,
            "from= needs an import bucket: this function has no IMPORT_BUCKET".into(),
        ));
    };
    if !from.is_within(&allowed.location) || from == allowed.location {
        return Err(ApiError::new(
            403,
            ErrorCode::DestinationNotAllowed,
            format!(
                "from: this function reads only under {}, not {from}",
                allowed.location
            ),
        ));
    }
    for name in ["items", "md5"] {
        if !params.has(name) {
            return Err(ApiError::bad_request(
                ErrorCode::MissingParameter,
                format!("{name} is required with from= (the manifest's itemCount and md5Checksum)"),
            ));
        }
    }
    let md5_hex = params.text("md5").unwrap_or_default().to_ascii_lowercase();
    if crate::load::object::hex_to_base64(&md5_hex).is_none() {
        return Err(bad(format!("md5: 32 hex digits, not {md5_hex:?}")));
    }
    Ok(SeedJob::Load(LoadRequest {
        from,
        items: params.integer("items", 0, 0, u64::MAX / 2)?,
        md5_hex,
        bytes: params
            .has("bytes")
            .then(|| params.integer("bytes", 0, 0, 5u64 << 40))
            .transpose()?,
        after: params
            .has("after")
            .then(|| params.integer("after", 0, 1, u64::MAX / 2))
            .transpose()?,
        max_wcu,
    }))
}

/// The seeder function: clients and settings built once at cold start.
#[derive(Debug)]
pub struct Seeder {
    /// Bounds and budget of every request.
    config: SeederConfig,
    /// The table's key schema is read through it.
    client: Dynamo,
    /// Shared by every invocation.
    writer: BatchWriter,
    /// The bucket `IMPORT_BUCKET` names.
    bucket: Option<Bucket>,
}

impl Seeder {
    /// A seeder writing into `config.table_name` through `client`.
    pub fn new(config: SeederConfig, client: Dynamo) -> Self {
        let writer = BatchWriter::new(client.clone(), &config.table_name, record::KEY)
            .concurrency(config.concurrency);
        Self {
            config,
            client,
            writer,
            bucket: None,
        }
    }

    /// The seeder reading `from=` files out of `bucket` (the one `IMPORT_BUCKET` names).
    pub fn with_bucket(mut self, bucket: Bucket) -> Self {
        self.bucket = Some(bucket);
        self
    }

    /// Answers one request; under Lambda the invocation carries its deadline.
    pub async fn handle(&self, invocation: Invocation<'_>) -> Response<ResponseBody> {
        if invocation.method != Method::GET {
            return error_response(&ApiError::method_not_allowed(invocation.method, "GET"));
        }
        let job = match parse_query(invocation.uri.query(), &self.config) {
            Ok(job) => job,
            Err(err) => return error_response(&err),
        };
        // The writer starts no batch and waits for no retry past this instant, leaving
        // the reserve to send the summary.
        let stop_at = time_budget(invocation.deadline, self.config.deadline_reserve);
        let rate = |max_wcu: Option<f64>| {
            max_wcu.map(|wcu| Arc::new(RateLimit::new(wcu, self.config.concurrency as u32)))
        };
        match job {
            SeedJob::Generate(request) => self.generate(
                request,
                self.writer.clone().rate(rate(request.max_wcu)),
                stop_at,
            ),
            SeedJob::Load(request) => {
                let writer = self.writer.clone().rate(rate(request.max_wcu));
                self.load(request, writer, stop_at).await
            }
        }
    }

    fn generate(
        &self,
        request: SeedRequest,
        writer: BatchWriter,
        stop_at: Option<tokio::time::Instant>,
    ) -> Response<ResponseBody> {
        let (tx, rx) = mpsc::channel::<Bytes>(16);
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
        body(rx)
    }

    async fn load(
        &self,
        request: LoadRequest,
        writer: BatchWriter,
        stop_at: Option<tokio::time::Instant>,
    ) -> Response<ResponseBody> {
        let Some(bucket) = &self.bucket else {
            return error_response(&ApiError::new(
                500,
                ErrorCode::Upstream(crate::format::error::ErrorKind::Internal),
                "the import bucket is configured but not connected".into(),
            ));
        };
        let load = ObjectLoad {
            remote: Remote {
                bucket: bucket.clone(),
                location: request.from.clone(),
                handle: tokio::runtime::Handle::current(),
                etag: None,
            },
            items: request.items,
            md5_hex: request.md5_hex.clone(),
            bytes: request.bytes,
        };
        let table = self.config.table_name.clone();
        // A call that goes on (`after`) follows one that parsed the same bytes (the MD5
        // says so): only its size and MD5 are checked again, and the writing pass counts.
        let parse = request.after.is_none();
        let checked = match check_object(&self.client, &table, &load, parse).await {
            Ok(checked) => checked,
            Err(err) => return error_response(&refusal(&err)),
        };
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        tokio::spawn(async move {
            let started = Instant::now();
            let (items, identity) = (checked.items, checked.table.clone());
            let mut observer = Progress {
                tx: tx.clone(),
                items,
            };
            let written = write_object(
                writer,
                &table,
                checked,
                request.after,
                stop_at,
                &mut observer,
            )
            .await;
            let summary = match written {
                Ok(outcome) => Summary::of_file(
                    &outcome.report,
                    items,
                    outcome.complete,
                    outcome.written_through.or(request.after),
                    identity,
                    started,
                ),
                // Reading the object failed part way: what was written is not known past
                // `after`, which the caller still has.
                Err(err) => {
                    tracing::warn!(cause = %err, "loading a file failed part way");
                    let report = WriteReport {
                        error: Some(crate::format::error::ErrorKind::Storage),
                        ..WriteReport::default()
                    };
                    Summary::of_file(&report, items, false, request.after, identity, started)
                }
            };
            let _ = tx.send(line(&json!({ "summary": summary }))).await;
        });
        body(rx)
    }
}

/// A file refused before anything was written, as an HTTP error.
fn refusal(err: &ObjectError) -> ApiError {
    match err {
        ObjectError::Missing { .. } => {
            ApiError::new(404, ErrorCode::ObjectNotFound, err.to_string())
        }
        ObjectError::Mismatch { .. } => ApiError::new(422, ErrorCode::FileRefused, err.to_string()),
        ObjectError::Load(LoadError::Invalid {
            name, count, first, ..
        }) => ApiError::new(
            422,
            ErrorCode::FileRefused,
            format!(
                "{count} lines of {name} do not fit the table's keys (first: {first}); nothing written"
            ),
        ),
        ObjectError::Load(LoadError::Table(why)) => {
            ApiError::new(422, ErrorCode::FileRefused, why.clone())
        }
        ObjectError::Load(LoadError::Upstream { source, .. }) => ApiError::from(source),
        // Reading the object failed: S3's message stays in the log.
        ObjectError::Load(other) => {
            tracing::warn!(cause = %other, "checking a file failed");
            ApiError::new(
                502,
                ErrorCode::Upstream(crate::format::error::ErrorKind::Storage),
                "reading the object failed".into(),
            )
        }
    }
}

/// Progress lines of a file's load.
struct Progress {
    tx: mpsc::Sender<Bytes>,
    items: u64,
}

impl crate::load::Observer for Progress {
    fn start(&mut self, _total: Option<u64>, _resumed: u64) {}

    fn written(&mut self, report: &WriteReport) {
        // Advisory: a slow reader skips some, never stalls the run.
        let _ = self.tx.try_send(line(&json!({"progress": {
            "written": report.written, "items": self.items}})));
    }
}

fn body(rx: mpsc::Receiver<Bytes>) -> Response<ResponseBody> {
    let body = ReceiverStream::new(rx)
        .map(|bytes| Ok(Frame::data(bytes)))
        .boxed();
    response(StatusCode::OK, "application/x-ndjson", body)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lambda::config::{BucketNames, BucketPlace};

    fn config(import: Option<&str>) -> SeederConfig {
        let mut config =
            SeederConfig::from_lookup(|name| (name == "TABLE_NAME").then(|| "t".into()))
                .expect("config");
        config.import = import.map(|bucket| {
            BucketPlace::from_lookup(
                &|name: &str| match name {
                    "IMPORT_BUCKET" => Some(bucket.to_string()),
                    "IMPORT_PREFIX" => Some("imports".to_string()),
                    _ => None,
                },
                BucketNames::IMPORT,
            )
            .expect("valid")
            .expect("on")
        });
        config
    }

    const MD5: &str = "900150983cd24fb0d6963f7d28e17f72";

    #[test]
    fn a_file_request_is_read_whole_and_bounded() {
        let query = format!(
            "from=s3://b-1/imports/x/data/a.json.gz&items=10&md5={}&bytes=99&after=4&max_wcu=12.5",
            MD5.to_uppercase()
        );
        let job = parse_query(Some(&query), &config(Some("b-1"))).expect("valid");
        let SeedJob::Load(load) = job else {
            panic!("a load: {job:?}")
        };
        assert_eq!(load.from.to_string(), "s3://b-1/imports/x/data/a.json.gz");
        assert_eq!(
            (load.items, load.bytes, load.after),
            (10, Some(99), Some(4))
        );
        assert_eq!((load.md5_hex.as_str(), load.max_wcu), (MD5, Some(12.5)));
        let job = parse_query(Some("count=5&max_wcu=3"), &config(None)).expect("valid");
        assert!(matches!(
            job,
            SeedJob::Generate(SeedRequest {
                count: 5,
                max_wcu: Some(3.0),
                ..
            })
        ));
    }

    #[test]
    fn a_file_outside_the_import_folder_is_forbidden_and_a_bad_request_invalid() {
        let from = |rest: &str| format!("from=s3://b-1/{rest}&items=1&md5={MD5}");
        for (query, status, import) in [
            (from("imports/a"), 403, None),
            (from("elsewhere/a"), 403, Some("b-1")),
            (from("imports-2/a"), 403, Some("b-1")),
            (
                format!("from=s3://b-2/imports/a&items=1&md5={MD5}"),
                403,
                Some("b-1"),
            ),
            (from("imports/../a"), 400, Some("b-1")),
            ("from=s3://b-1&items=1".to_string(), 400, Some("b-1")),
            (
                format!("from=s3://b-1/imports/a&md5={MD5}"),
                400,
                Some("b-1"),
            ),
            (
                "from=s3://b-1/imports/a&items=1".to_string(),
                400,
                Some("b-1"),
            ),
            (
                "from=s3://b-1/imports/a&items=1&md5=abc".to_string(),
                400,
                Some("b-1"),
            ),
            (format!("{}&seed=3", from("imports/a")), 400, Some("b-1")),
            (format!("{}&after=0", from("imports/a")), 400, Some("b-1")),
            (
                format!("{}&max_wcu=40001", from("imports/a")),
                400,
                Some("b-1"),
            ),
            (
                format!("{}&max_wcu=-1", from("imports/a")),
                400,
                Some("b-1"),
            ),
            ("count=3&items=2".to_string(), 400, Some("b-1")),
            ("seed=3".to_string(), 400, Some("b-1")),
            (
                "from=http://b-1/imports/a&items=1".to_string(),
                400,
                Some("b-1"),
            ),
        ] {
            let err = parse_query(Some(&query), &config(import)).expect_err(&query);
            assert_eq!(err.status, status, "{query}: {}", err.message);
        }
    }
}
