//! Whole objects: what the client asks of a bucket to finish an export (its manifests
//! put, its `data/` listed, the files no manifest names deleted) and what a loader reads.
//! The streamer needs none of it, and its role is granted none of it.

use super::memory::MemoryBucket;
use super::{Bucket, storage};
use crate::dynamo::error::classify;
use crate::format::error::{ErrorKind, UpstreamError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use std::future::Future;

/// The longest wait for one attempt of a copy (4 GiB inside S3 at a slow 20 MB/s).
const COPY_ATTEMPT_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// DeleteObjects takes at most this many keys a call.
const DELETE_BATCH: usize = 1000;

/// An object a listing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag, quotes and all (for a reader to ask for that version, and no other).
    pub etag: Option<String>,
}

/// Whole-object calls on a bucket.
pub trait Objects: Send + Sync + 'static {
    /// Puts `body` at `key` (small objects: manifests, markers).
    fn put(
        &self,
        key: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), UpstreamError>> + Send;

    /// The object at `key`, whole; `None` when there is none (small objects only).
    fn get(&self, key: &str)
    -> impl Future<Output = Result<Option<Vec<u8>>, UpstreamError>> + Send;

    /// Every object whose key starts with `prefix`, in key order, page after page.
    fn list(&self, prefix: &str)
    -> impl Future<Output = Result<Vec<Listed>, UpstreamError>> + Send;

    /// Deletes `keys` (a missing key is not an error, as in S3); an error names the first
    /// key S3 would not delete.
    fn delete(&self, keys: Vec<String>) -> impl Future<Output = Result<(), UpstreamError>> + Send;

    /// Copies the object at `from` to `to` in the same bucket, inside S3 (CopyObject: up to
    /// 5 GiB; the streamer's files stay under 4 GiB and a page).
    fn copy(&self, from: &str, to: &str) -> impl Future<Output = Result<(), UpstreamError>> + Send;
}

/// A key as CopyObject's `x-amz-copy-source` takes it: percent-encoded but for `/`.
fn copy_source(bucket: &str, key: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    format!(
        "{bucket}/{}",
        percent_encoding::utf8_percent_encode(key, KEEP)
    )
}

impl Objects for Bucket {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), UpstreamError> {
        self.client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .body(ByteStream::from(body))
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await
            .map_err(|err| storage(classify(err)))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, UpstreamError> {
        let sent = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .set_expected_bucket_owner(self.owner.clone())
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(err) => return Err(storage(classify(err))),
        };
        let body = out.body.collect().await.map_err(|err| {
            UpstreamError::new(
                ErrorKind::Storage,
                format!("reading s3 object {key}: {err}"),
            )
        })?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, UpstreamError> {
        let mut found = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .prefix(prefix)
            .set_expected_bucket_owner(self.owner.clone())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| storage(classify(err)))?;
            for object in page.contents.unwrap_or_default() {
                let Some(key) = object.key else { continue };
                let size = object.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
                found.push(Listed {
                    key,
                    size,
                    etag: object.e_tag,
                });
            }
        }
        Ok(found)
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), UpstreamError> {
        self.client
            .copy_object()
            .bucket(&self.name)
            .copy_source(copy_source(&self.name, from))
            .key(to)
            .set_expected_bucket_owner(self.owner.clone())
            .set_expected_source_bucket_owner(self.owner.clone())
            .customize()
            // A copy of gigabytes takes S3 minutes: this call alone waits that long.
            .config_override(
                aws_sdk_s3::config::Builder::default().timeout_config(
                    aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                        .operation_attempt_timeout(COPY_ATTEMPT_WAIT)
                        .operation_timeout(COPY_ATTEMPT_WAIT * 3)
                        .build(),
                ),
            )
            .send()
            .await
            .map_err(|err| storage(classify(err)))?;
        Ok(())
    }

    async fn delete(&self, keys: Vec<String>) -> Result<(), UpstreamError> {
        for batch in keys.chunks(DELETE_BATCH) {
            let objects = batch
                .iter()
                .map(|key| ObjectIdentifier::builder().key(key).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| UpstreamError::new(ErrorKind::Internal, err.to_string()))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|err| UpstreamError::new(ErrorKind::Internal, err.to_string()))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.name)
                .delete(delete)
                .set_expected_bucket_owner(self.owner.clone())
                .send()
                .await
                .map_err(|err| storage(classify(err)))?;
            if let Some(failed) = out.errors.unwrap_or_default().into_iter().next() {
                return Err(UpstreamError::new(
                    ErrorKind::Storage,
                    format!(
                        "S3 did not delete {}: {} {}",
                        failed.key.unwrap_or_default(),
                        failed.code.unwrap_or_default(),
                        failed.message.unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Objects for MemoryBucket {
    async fn copy(&self, from: &str, to: &str) -> Result<(), UpstreamError> {
        self.call("copy")?;
        let body = self
            .objects()
            .remove(from)
            .ok_or_else(|| UpstreamError::new(ErrorKind::Storage, format!("NoSuchKey: {from}")))?;
        self.insert(to, body);
        Ok(())
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), UpstreamError> {
        self.call("put")?;
        self.insert(key, body);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, UpstreamError> {
        self.call("get")?;
        Ok(self.objects().remove(key))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, UpstreamError> {
        self.call("list")?;
        Ok(self
            .objects()
            .into_iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, body)| Listed {
                key,
                size: body.len() as u64,
                etag: Some(format!("\"{}\"", crate::format::export::hex_md5(&body))),
            })
            .collect())
    }

    async fn delete(&self, keys: Vec<String>) -> Result<(), UpstreamError> {
        self.call("delete")?;
        for key in keys {
            self.remove(&key);
        }
        Ok(())
    }
}

/// The longest a reader waits for the next chunk of an object's body: a connection that
/// goes silent is an error, not a hang.
pub const CHUNK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

impl Bucket {
    /// The object at `key` as a reader of its bytes as they stream, for a blocking thread
    /// (a loader's reading thread): each call waits on `handle`'s runtime, and never
    /// from one of its own threads. With `etag`, only that version is read: an object
    /// replaced since it was listed fails (412) instead of reading other bytes.
    pub fn open_blocking(
        &self,
        key: &str,
        etag: Option<&str>,
        handle: &tokio::runtime::Handle,
    ) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        let sent = handle.block_on(
            self.client
                .get_object()
                .bucket(&self.name)
                .key(key)
                .set_if_match(etag.map(str::to_string))
                .set_expected_bucket_owner(self.owner.clone())
                .send(),
        );
        let out = sent.map_err(|err| {
            std::io::Error::other(format!(
                "s3://{}/{key}: {}",
                self.name,
                storage(classify(err))
            ))
        })?;
        Ok(Box::new(ObjectReader {
            body: out.body,
            handle: handle.clone(),
            chunk: Vec::new(),
            at: 0,
            name: format!("s3://{}/{key}", self.name),
        }))
    }

    /// The size and ETag of the object at `key` (HeadObject: needs only `s3:GetObject`);
    /// `None` when there is none. From a blocking thread.
    pub fn head_blocking(
        &self,
        key: &str,
        handle: &tokio::runtime::Handle,
    ) -> Result<Option<Listed>, UpstreamError> {
        let sent = handle.block_on(
            self.client
                .head_object()
                .bucket(&self.name)
                .key(key)
                .set_expected_bucket_owner(self.owner.clone())
                .send(),
        );
        match sent {
            Ok(out) => Ok(Some(Listed {
                key: key.to_string(),
                size: out
                    .content_length
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
                etag: out.e_tag,
            })),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            // Kept as classified: without s3:ListBucket, S3 answers a missing key with 403.
            Err(err) => Err(classify(err)),
        }
    }

    /// [`Objects::get`] from a blocking thread.
    pub fn get_blocking(
        &self,
        key: &str,
        handle: &tokio::runtime::Handle,
    ) -> Result<Option<Vec<u8>>, UpstreamError> {
        handle.block_on(self.get(key))
    }

    /// [`Objects::list`] from a blocking thread.
    pub fn list_blocking(
        &self,
        prefix: &str,
        handle: &tokio::runtime::Handle,
    ) -> Result<Vec<Listed>, UpstreamError> {
        handle.block_on(self.list(prefix))
    }
}

/// An object's body read chunk by chunk: memory holds one chunk.
struct ObjectReader {
    body: ByteStream,
    handle: tokio::runtime::Handle,
    chunk: Vec<u8>,
    at: usize,
    name: String,
}

impl std::io::Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            let next = self
                .handle
                .block_on(tokio::time::timeout(CHUNK_WAIT, self.body.next()));
            match next {
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("{}: no bytes for {} s", self.name, CHUNK_WAIT.as_secs()),
                    ));
                }
                Ok(None) => return Ok(0),
                Ok(Some(Err(err))) => {
                    return Err(std::io::Error::other(format!("{}: {err}", self.name)));
                }
                Ok(Some(Ok(bytes))) => {
                    self.chunk.clear();
                    self.chunk.extend_from_slice(&bytes);
                    self.at = 0;
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
