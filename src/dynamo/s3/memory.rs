//! A bucket in memory, for the export job's tests: uploads, objects, and failures on
//! demand, checked as S3 checks them (parts of at least 5 MiB but the last, numbered
//! from 1, completed with the ETags S3 gave).

use super::ObjectStore;
use crate::format::error::{ErrorKind, UpstreamError};
use crate::format::export::hex_md5;
use crate::format::limits::MIN_PART_BYTES;
use md5::{Digest, Md5};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Objects by key, uploads in progress by id, and the calls to fail.
#[derive(Debug, Default)]
pub struct MemoryBucket {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    uploads: Mutex<HashMap<String, Upload>>,
    next_id: AtomicU64,
    /// Calls so far, by operation.
    calls: Mutex<HashMap<&'static str, u64>>,
    /// Fail the `n`th call (from 1) of an operation.
    fail: Mutex<Vec<(&'static str, u64)>>,
    /// The smallest part but the last (S3's, or less for small tests).
    min_part: usize,
    /// How long each part takes to go up.
    part_delay: std::time::Duration,
}

impl MemoryBucket {
    /// An empty bucket holding parts to S3's minimum.
    pub fn new() -> Self {
        Self {
            min_part: MIN_PART_BYTES,
            ..Self::default()
        }
    }

    /// An empty bucket whose parts but the last must be at least `min_part` bytes.
    pub fn with_min_part(min_part: usize) -> Self {
        Self {
            min_part,
            ..Self::default()
        }
    }

    /// The bucket, each part taking `delay` to go up (a slow or throttling S3).
    pub fn with_part_delay(mut self, delay: std::time::Duration) -> Self {
        self.part_delay = delay;
        self
    }

    /// Makes the `nth` call (from 1) of `operation` (`create`, `part`, `complete`,
    /// `abort`, `put`, `get`, `list`, `delete`) fail.
    pub fn fail(&self, operation: &'static str, nth: u64) {
        lock(&self.fail).push((operation, nth));
    }

    /// The objects made, by key.
    pub fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        lock(&self.objects).clone()
    }

    /// Uploads started and neither completed nor aborted.
    pub fn open_uploads(&self) -> usize {
        lock(&self.uploads).len()
    }

    /// Calls of `operation` so far.
    pub fn calls(&self, operation: &str) -> u64 {
        lock(&self.calls).get(operation).copied().unwrap_or(0)
    }

    /// Puts `body` at `key`, as a completed upload or a PutObject would (tests use it to
    /// change an object behind a reader's back).
    pub fn insert(&self, key: &str, body: Vec<u8>) {
        lock(&self.objects).insert(key.to_string(), body);
    }

    /// Removes the object at `key`, if there is one.
    pub fn remove(&self, key: &str) {
        lock(&self.objects).remove(key);
    }

    pub(super) fn call(&self, operation: &'static str) -> Result<(), UpstreamError> {
        let n = {
            let mut calls = lock(&self.calls);
            let n = calls.entry(operation).or_insert(0);
            *n += 1;
            *n
        };
        if lock(&self.fail).contains(&(operation, n)) {
            return Err(UpstreamError::new(
                ErrorKind::Storage,
                format!("{operation} call {n} failed on purpose"),
            ));
        }
        Ok(())
    }
}

/// An upload in progress: its key, and its parts by number.
type Upload = (String, BTreeMap<u32, Vec<u8>>);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn refused(why: &str) -> UpstreamError {
    UpstreamError::new(ErrorKind::Storage, why.to_string())
}

impl ObjectStore for MemoryBucket {
    async fn create_upload(&self, key: &str) -> Result<String, UpstreamError> {
        self.call("create")?;
        let id = format!("upload-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        lock(&self.uploads).insert(id.clone(), (key.to_string(), BTreeMap::new()));
        Ok(id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Vec<u8>,
    ) -> Result<String, UpstreamError> {
        self.call("part")?;
        tokio::time::sleep(self.part_delay).await;
        let mut uploads = lock(&self.uploads);
        let (upload_key, parts) = uploads
            .get_mut(upload_id)
            .ok_or_else(|| refused("NoSuchUpload"))?;
        if upload_key != key || number == 0 {
            return Err(refused("InvalidArgument"));
        }
        let etag = format!("\"{}\"", hex_md5(&body));
        parts.insert(number, body);
        Ok(etag)
    }

    async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<(u32, String)>,
    ) -> Result<String, UpstreamError> {
        self.call("complete")?;
        let mut uploads = lock(&self.uploads);
        let (upload_key, stored) = uploads
            .get(upload_id)
            .ok_or_else(|| refused("NoSuchUpload"))?;
        if upload_key != key || parts.is_empty() {
            return Err(refused("InvalidRequest"));
        }
        let mut object = Vec::new();
        let mut digests = Vec::new();
        for (i, (number, etag)) in parts.iter().enumerate() {
            let body = stored.get(number).ok_or_else(|| refused("InvalidPart"))?;
            if *etag != format!("\"{}\"", hex_md5(body)) {
                return Err(refused("InvalidPart"));
            }
            if i > 0 && parts[i - 1].0 >= *number {
                return Err(refused("InvalidPartOrder"));
            }
            if i + 1 < parts.len() && body.len() < self.min_part {
                return Err(refused("EntityTooSmall"));
            }
            object.extend_from_slice(body);
            digests.extend_from_slice(&Md5::digest(body));
        }
        let etag = format!("\"{}-{}\"", hex_md5(&digests), parts.len());
        uploads.remove(upload_id);
        lock(&self.objects).insert(key.to_string(), object);
        Ok(etag)
    }

    async fn abort_upload(&self, _key: &str, upload_id: &str) -> Result<(), UpstreamError> {
        self.call("abort")?;
        lock(&self.uploads).remove(upload_id);
        Ok(())
    }
}
