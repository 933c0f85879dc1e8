//! S3, the other service the adapter speaks to: a client built once, like DynamoDB's,
//! and a [`Bucket`] handle whose calls the export job makes through [`ObjectStore`], so
//! the job names no SDK type and runs in tests against [`memory::MemoryBucket`].
//!
//! With a custom endpoint (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, a local S3
//! server) addressing is path-style: a local server has no DNS name per bucket.

pub mod memory;
pub mod objects;

use super::client::{CallSettings, shared};
use super::error::classify;
use crate::format::error::{ErrorKind, UpstreamError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use std::future::Future;
use std::time::Duration;

/// What the export job asks of a bucket: a multipart upload, part by part.
pub trait ObjectStore: Send + Sync + 'static {
    /// Starts an upload of `key`; its id.
    fn create_upload(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<String, UpstreamError>> + Send;

    /// Uploads part `number` (from 1) of an upload; the part's ETag.
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<String, UpstreamError>> + Send;

    /// Completes an upload from its parts `(number, etag)` in order; the object's ETag.
    fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<(u32, String)>,
    ) -> impl Future<Output = Result<String, UpstreamError>> + Send;

    /// Aborts an upload: its parts are deleted, no object is made.
    fn abort_upload(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<(), UpstreamError>> + Send;
}

/// The shortest wait for one S3 attempt: a 64 MiB part at a slow 5 MB/s.
pub const MIN_ATTEMPT_WAIT: Duration = Duration::from_secs(15);
/// The shortest wait for one S3 call, retries included.
pub const MIN_OPERATION_WAIT: Duration = Duration::from_secs(60);

/// The S3 client, built once at cold start from the standard chain with `settings`.
#[derive(Debug, Clone)]
pub struct S3(aws_sdk_s3::Client);

impl S3 {
    /// The client, path-style when an endpoint is configured. It retries as `settings`
    /// say, but waits at least [`MIN_ATTEMPT_WAIT`] for an attempt and
    /// [`MIN_OPERATION_WAIT`] for a call: a part is megabytes, where a DynamoDB call is
    /// kilobytes (and the export bounds every call by its deadline anyway).
    pub async fn connect(settings: &CallSettings) -> Self {
        let settings = CallSettings {
            attempt_timeout: settings.attempt_timeout.max(MIN_ATTEMPT_WAIT),
            operation_timeout: settings.operation_timeout.max(MIN_OPERATION_WAIT),
            ..*settings
        };
        let shared = shared(&settings).await;
        let custom_endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|name| std::env::var(name).is_ok_and(|v| !v.is_empty()));
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(custom_endpoint)
            .build();
        Self(aws_sdk_s3::Client::from_conf(config))
    }

    /// The handle on `bucket`; with `expected_owner` (an account id), every call asks S3
    /// to refuse it unless that account owns the bucket.
    pub fn bucket(&self, bucket: &str, expected_owner: Option<&str>) -> Bucket {
        Bucket {
            client: self.0.clone(),
            name: bucket.to_string(),
            owner: expected_owner.map(str::to_string),
        }
    }
}

/// One bucket, and the account expected to own it.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub(super) client: aws_sdk_s3::Client,
    pub(super) name: String,
    pub(super) owner: Option<String>,
}

impl Bucket {
    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// An S3 failure as the crate's error: always [`ErrorKind::Storage`] (S3's own codes, kept
/// in the source for the log, say more than DynamoDB's kinds would), and the SDK's
/// retries (throttling, 5xx) have already been made.
pub(super) fn storage(err: UpstreamError) -> UpstreamError {
    UpstreamError {
        kind: ErrorKind::Storage,
        ..err
    }
}

impl ObjectStore for Bucket {
    async fn create_upload(&self, key: &str) -> Result<String, UpstreamError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await
            .map_err(|err| storage(classify(err)))?;
        out.upload_id
            .ok_or_else(|| UpstreamError::new(ErrorKind::Storage, "S3 returned no upload id"))
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Vec<u8>,
    ) -> Result<String, UpstreamError> {
        let number = i32::try_from(number)
            .map_err(|_| UpstreamError::new(ErrorKind::Internal, "part number out of range"))?;
        let out = self
            .client
            .upload_part()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await
            .map_err(|err| storage(classify(err)))?;
        out.e_tag
            .ok_or_else(|| UpstreamError::new(ErrorKind::Storage, "S3 returned no part ETag"))
    }

    async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<(u32, String)>,
    ) -> Result<String, UpstreamError> {
        let parts = parts
            .into_iter()
            .map(|(number, etag)| {
                CompletedPart::builder()
                    .part_number(i32::try_from(number).unwrap_or(i32::MAX))
                    .e_tag(etag)
                    .build()
            })
            .collect();
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await
            .map_err(|err| storage(classify(err)))?;
        out.e_tag
            .ok_or_else(|| UpstreamError::new(ErrorKind::Storage, "S3 returned no ETag"))
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), UpstreamError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await
            .map_err(|err| storage(classify(err)))?;
        Ok(())
    }
}
