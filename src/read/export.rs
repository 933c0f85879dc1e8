//! The export: a read's pages written to S3 as data files instead of into the response,
//! which carries one line per file completed, then the trailer.
//!
//! Pages go, in the order the merge hands them out, into one data file at a time
//! ([`DataFile`]); its compressed bytes are uploaded as the parts of a multipart upload
//! whenever a part's worth is ready, so memory holds about one part, never a file. A
//! file is completed once it reaches its size, and when the read ends.
//!
//! Pages are counted as they are written into the file, so when a file completes, the
//! read's tally is exactly what the completed files hold: that tally is kept, and the
//! file's line carries its cursor. A call cut after a file line loses none of the files
//! announced: resuming from the line's cursor reads only what came after. If S3 fails,
//! the open upload is aborted and the trailer is the kept tally's, with an `S3Error`.
//!
//! The first file's upload is started before anything is read ([`open_first_file`]), so
//! a bucket the function may not write is refused before the first page is paid for. Every
//! S3 call is bounded by the call's deadline: a throttled S3 cannot keep the function past
//! it, with no trailer.

use super::stream::{Chunk, ScanStream};
use super::tally::Tally;
use crate::dynamo::s3::ObjectStore;
use crate::format::compress::Compression;
use crate::format::datafile::DataFile;
use crate::format::error::{ErrorKind, UpstreamError};
use crate::format::export::{DataFileEntry, ExportedFile, ExportedFileLine};
use crate::format::location::S3Location;
use crate::format::trailer::{StopReason, Trailer, TrailerError};
use bytes::Bytes;
use futures::Stream;
use std::future::Future;
use std::sync::Arc;
use tokio::time::Instant;
use tracing::{info, warn};

/// Where and how one call writes its files.
#[derive(Debug, Clone)]
pub struct ExportTarget {
    /// The folder the files go in.
    pub folder: S3Location,
    /// How each file is compressed.
    pub compression: Compression,
    /// A file is completed once it holds this many bytes (as stored).
    pub file_bytes: u64,
    /// A part is uploaded once this many bytes are ready (at least S3's 5 MiB).
    pub part_bytes: usize,
    /// Names this call's files, `<call>-<n>.json.gz`: unique per call, so calls never
    /// write the same key.
    pub call: String,
    /// Every S3 call ends by then, done or not (the invocation's deadline less the time
    /// to send the trailer); the read itself stops earlier, to leave time for the last
    /// file.
    pub deadline: Option<Instant>,
}

impl ExportTarget {
    /// The key of this call's file number `n`.
    fn key(&self, n: u32) -> String {
        let suffix = DataFile::suffix(self.compression);
        self.folder.key(&format!("{}-{n:05}{suffix}", self.call))
    }
}

/// The first file's upload, started before the read.
#[derive(Debug)]
pub struct FirstFile {
    key: String,
    upload_id: String,
}

/// The longest the streamer waits for the abort of an upload it gives up before the read.
const ABANDON_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl FirstFile {
    /// Gives the upload up (the read did not start): aborted before the error response
    /// goes, waiting at most [`ABANDON_WAIT`]; past that, left to run.
    pub async fn abandon<U: ObjectStore>(self, store: Arc<U>) {
        let abort = store.abort_upload(&self.key, &self.upload_id);
        match tokio::time::timeout(ABANDON_WAIT, abort).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => warn!(key = self.key, cause = %err, "aborting an upload failed"),
            Err(_) => abort_later(store, self.key, self.upload_id),
        }
    }
}

/// Starts the upload of the call's first file: a bucket the function may not write, or
/// does not exist, is refused here, before anything is read.
pub async fn open_first_file<U: ObjectStore>(
    store: &U,
    target: &ExportTarget,
) -> Result<FirstFile, UpstreamError> {
    let key = target.key(0);
    let upload_id = bounded(target.deadline, store.create_upload(&key))
        .await
        .inspect_err(|err| {
            warn!(key, cause = %err, source = ?err.source, "starting the export's first upload failed");
        })?;
    Ok(FirstFile { key, upload_id })
}

/// The response of an export: a line per file completed, then the trailer's line.
pub fn export<U: ObjectStore>(
    stream: ScanStream,
    store: Arc<U>,
    target: ExportTarget,
    first: FirstFile,
) -> impl Stream<Item = Bytes> + Send + Unpin + 'static {
    let committed = stream.tally().clone();
    let open = OpenFile {
        key: first.key,
        data: None,
        upload_id: Some(first.upload_id),
        parts: Vec::new(),
    };
    let exporter = Exporter {
        stream: Some(stream),
        store,
        target,
        open: Some(open),
        files: 0,
        committed,
        last: None,
    };
    Box::pin(futures::stream::unfold(
        exporter,
        |mut exporter| async move {
            let line = exporter.next_line().await?;
            Some((line, exporter))
        },
    ))
}

/// Runs one S3 call, ended as a failure at `deadline`.
async fn bounded<T>(
    deadline: Option<Instant>,
    call: impl Future<Output = Result<T, UpstreamError>>,
) -> Result<T, UpstreamError> {
    match deadline {
        None => call.await,
        Some(at) => tokio::time::timeout_at(at, call).await.unwrap_or_else(|_| {
            Err(UpstreamError::new(
                ErrorKind::Storage,
                "S3 did not answer before the invocation's deadline",
            ))
        }),
    }
}

/// Aborts an upload on the runtime, without waiting for it (the bucket's rule for
/// incomplete uploads removes what this misses).
fn abort_later<U: ObjectStore>(store: Arc<U>, key: String, upload_id: String) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            if let Err(err) = store.abort_upload(&key, &upload_id).await {
                warn!(key, cause = %err, "aborting an upload failed");
            }
        });
    }
}

/// A file being uploaded.
struct OpenFile {
    key: String,
    /// Its bytes not yet uploaded; made with the first page written.
    data: Option<DataFile>,
    /// Created with the first part (before the read, for the first file).
    upload_id: Option<String>,
    parts: Vec<(u32, String)>,
}

impl OpenFile {
    fn items(&self) -> u64 {
        self.data.as_ref().map_or(0, DataFile::items)
    }
}

struct Exporter<U: ObjectStore> {
    /// The read; dropped (its segment tasks aborted) once the export ends.
    stream: Option<ScanStream>,
    store: Arc<U>,
    target: ExportTarget,
    open: Option<OpenFile>,
    /// Files completed so far (the next file's number).
    files: u32,
    /// The read's tally as of the last file completed: what the files hold.
    committed: Tally,
    /// The trailer, once a last file line has gone before it.
    last: Option<Trailer>,
}

impl<U: ObjectStore> Exporter<U> {
    /// The next line of the response, `None` after the trailer.
    async fn next_line(&mut self) -> Option<Bytes> {
        if let Some(trailer) = self.last.take() {
            return Some(Bytes::from(trailer.to_line()));
        }
        loop {
            let stream = self.stream.as_mut()?;
            match std::future::poll_fn(|cx| stream.poll_chunk(cx)).await {
                Some(Chunk::Page { lines, items }) => {
                    if let Err(err) = self.write(&lines, items).await {
                        return Some(self.fail(err).await);
                    }
                    let full = self.open.as_ref().is_some_and(|file| {
                        file.data
                            .as_ref()
                            .is_some_and(|data| data.bytes() >= self.target.file_bytes)
                    });
                    if full {
                        match self.complete().await {
                            Ok(line) => return Some(Bytes::from(line.to_line())),
                            Err(err) => return Some(self.fail(err).await),
                        }
                    }
                }
                Some(Chunk::End(trailer)) => {
                    if self.open.as_ref().is_none_or(|file| file.items() == 0) {
                        self.abort_open().await;
                        self.end();
                        return Some(Bytes::from(trailer.to_line()));
                    }
                    return match self.complete().await {
                        Ok(line) => {
                            self.end();
                            self.last = Some(*trailer);
                            Some(Bytes::from(line.to_line()))
                        }
                        Err(err) => Some(self.fail(err).await),
                    };
                }
                None => {
                    self.end();
                    return None;
                }
            }
        }
    }

    /// Writes a page into the open file (opening one), uploading a part when one is ready.
    async fn write(&mut self, lines: &[u8], items: u64) -> Result<(), UpstreamError> {
        let file = match &mut self.open {
            Some(file) => file,
            None => self.open.insert(OpenFile {
                key: self.target.key(self.files),
                data: None,
                upload_id: None,
                parts: Vec::new(),
            }),
        };
        let data = match &mut file.data {
            Some(data) => data,
            None => file.data.insert(
                DataFile::new(self.target.compression, self.target.part_bytes)
                    .map_err(|err| UpstreamError::new(ErrorKind::Internal, err))?,
            ),
        };
        data.write(lines, items);
        if data.ready() >= self.target.part_bytes {
            let part = data.take();
            self.upload(part).await?;
        }
        Ok(())
    }

    /// Uploads the open file's next part, starting its upload first if need be.
    async fn upload(&mut self, part: Vec<u8>) -> Result<(), UpstreamError> {
        let (store, deadline) = (self.store.clone(), self.target.deadline);
        let file = self.open.as_mut().ok_or_else(no_file)?;
        let upload_id = match &file.upload_id {
            Some(id) => id.clone(),
            None => {
                let id = bounded(deadline, store.create_upload(&file.key)).await?;
                file.upload_id = Some(id.clone());
                id
            }
        };
        let number = u32::try_from(file.parts.len() + 1).unwrap_or(u32::MAX);
        let etag = bounded(
            deadline,
            store.upload_part(&file.key, &upload_id, number, part),
        )
        .await?;
        file.parts.push((number, etag));
        Ok(())
    }

    /// Uploads the open file's last part and completes it: the kept tally becomes the
    /// read's, and the file's line carries its cursor.
    async fn complete(&mut self) -> Result<ExportedFileLine, UpstreamError> {
        let file = self.open.as_mut().ok_or_else(no_file)?;
        let data = file.data.take().ok_or_else(no_file)?;
        let finished = data
            .finish()
            .map_err(|err| UpstreamError::new(ErrorKind::Internal, err))?;
        if !finished.tail.is_empty() || file.parts.is_empty() {
            self.upload(finished.tail).await?;
        }
        let file = self.open.as_mut().ok_or_else(no_file)?;
        let upload_id = file.upload_id.clone().ok_or_else(no_file)?;
        let parts = std::mem::take(&mut file.parts);
        let etag = bounded(
            self.target.deadline,
            self.store.complete_upload(&file.key, &upload_id, parts),
        )
        .await?;
        let key = file.key.clone();
        self.open = None;
        self.files += 1;
        if let Some(stream) = &self.stream {
            self.committed = stream.tally().clone();
        }
        info!(
            key,
            items = finished.items,
            bytes = finished.bytes,
            "export file completed"
        );
        Ok(ExportedFileLine {
            file: ExportedFile {
                entry: DataFileEntry {
                    item_count: finished.items,
                    md5_checksum: finished.md5,
                    etag: Some(etag),
                    data_file_s3_key: key,
                },
                bytes: finished.bytes,
            },
            cursor: self.committed.cursor(),
        })
    }

    /// After an S3 failure: aborts the open upload, stops the read, and gives the
    /// trailer of what the completed files hold (with what reading cost, all of it).
    async fn fail(&mut self, err: UpstreamError) -> Bytes {
        warn!(cause = %err, source = ?err.source, "writing the export failed");
        self.abort_open().await;
        let error = TrailerError::of(err.kind, None);
        let trailer = match &self.stream {
            Some(stream) => {
                let delivered = self.committed.clone().with_costs_of(stream.tally());
                let mut trailer = stream.trailer_of(&delivered, StopReason::Error, Some(error));
                trailer.retries += err.retries;
                trailer
            }
            // Only the read's own end drops it, and nothing fails after that.
            None => self.committed.trailer(
                Some(StopReason::Error),
                Some(error),
                std::time::Duration::ZERO,
                std::time::Duration::ZERO,
            ),
        };
        self.end();
        Bytes::from(trailer.to_line())
    }

    /// Aborts the open upload: waited for while the deadline allows; past it (a call
    /// that timed out at the deadline), sent without waiting.
    async fn abort_open(&mut self) {
        let Some(OpenFile {
            key,
            upload_id: Some(upload_id),
            ..
        }) = self.open.take()
        else {
            return;
        };
        let past = self.target.deadline.is_some_and(|at| at <= Instant::now());
        if past {
            abort_later(self.store.clone(), key, upload_id);
            return;
        }
        let abort = self.store.abort_upload(&key, &upload_id);
        if let Err(err) = bounded(self.target.deadline, abort).await {
            // The bucket's rule for incomplete uploads removes it later.
            warn!(key, cause = %err, "aborting an upload failed");
        }
    }

    /// Stops the read: its segment tasks are aborted.
    fn end(&mut self) {
        self.stream = None;
    }
}

impl<U: ObjectStore> Drop for Exporter<U> {
    /// A response dropped mid-file (the caller went away) leaves an upload open: abort
    /// it on the runtime, if there still is one (Lambda may freeze the function before
    /// it runs; the bucket's rule then removes it).
    fn drop(&mut self) {
        if let Some(OpenFile {
            key,
            upload_id: Some(upload_id),
            ..
        }) = self.open.take()
        {
            abort_later(self.store.clone(), key, upload_id);
        }
    }
}

fn no_file() -> UpstreamError {
    UpstreamError::new(ErrorKind::Internal, "no file open")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::memory::MemorySource;
    use crate::dynamo::s3::memory::MemoryBucket;
    use crate::format::item::{Item, Value};
    use crate::format::json::Format;
    use crate::read::stream::testing::{self, sealed};
    use crate::read::stream::{ScanPlan, start};
    use futures::StreamExt;
    use std::collections::BTreeSet;
    use std::io::Read;
    use std::time::Duration;

    fn table(count: usize) -> Vec<Item> {
        (0..count)
            .map(|i| {
                Item::from([
                    ("id".to_string(), Value::S(format!("item-{i:05}"))),
                    // Hex of a scrambled number: compresses about as real data does.
                    (
                        "pad".to_string(),
                        Value::S(
                            format!("{:x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                                .repeat(i % 5),
                        ),
                    ),
                ])
            })
            .collect()
    }

    /// A sealed plan writing DynamoDB JSON, as the streamer plans an export.
    fn plan(segments: u32, limit: u32) -> ScanPlan {
        ScanPlan {
            format: Format::Dynamodb,
            ..sealed(segments, limit)
        }
    }

    fn resumed(token: &str) -> ScanPlan {
        ScanPlan {
            format: Format::Dynamodb,
            ..testing::resumed(token, 10)
        }
    }

    fn target(call: &str, compression: Compression, file_bytes: u64) -> ExportTarget {
        ExportTarget {
            folder: S3Location::parse("s3://bucket-1/exports/data").expect("location"),
            compression,
            file_bytes,
            part_bytes: 1024,
            call: call.to_string(),
            deadline: None,
        }
    }

    /// The lines of a response body: the file lines, and the trailer if it arrived.
    fn parse(body: &[u8]) -> (Vec<ExportedFileLine>, Option<Trailer>) {
        let mut lines: Vec<&[u8]> = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let trailer = lines.last().and_then(|line| Trailer::parse_line(line));
        if trailer.is_some() {
            lines.pop();
        }
        let files = lines
            .iter()
            .map(|line| ExportedFileLine::of_line(line).expect("only file lines before it"))
            .collect();
        (files, trailer)
    }

    /// One call: the files its response announced, and its trailer.
    async fn call(
        source: Arc<MemorySource>,
        bucket: Arc<MemoryBucket>,
        plan: ScanPlan,
        target: ExportTarget,
    ) -> (Vec<ExportedFileLine>, Trailer) {
        let first = open_first_file(&*bucket, &target)
            .await
            .expect("the first upload");
        let stream = start(source, plan).await.expect("starts");
        let body: Vec<u8> = export(stream, bucket, target, first)
            .collect::<Vec<Bytes>>()
            .await
            .concat();
        let (files, trailer) = parse(&body);
        (files, trailer.expect("a trailer last"))
    }

    /// The ids a file holds, checked against what its line says.
    fn ids_of(bucket: &MemoryBucket, line: &ExportedFileLine) -> Vec<String> {
        let file = &line.file;
        let stored = bucket
            .objects()
            .remove(&file.entry.data_file_s3_key)
            .expect("the announced file exists");
        assert_eq!(stored.len() as u64, file.bytes);
        assert_eq!(
            crate::format::export::md5_base64(&stored[..]).expect("md5"),
            file.entry.md5_checksum
        );
        let mut plain = Vec::new();
        if file.entry.data_file_s3_key.ends_with(".gz") {
            flate2::read::GzDecoder::new(&stored[..])
                .read_to_end(&mut plain)
                .expect("gzip");
        } else {
            plain = stored;
        }
        let ids: Vec<String> = plain
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|line| {
                let item = crate::format::json::read::item_of_line(
                    std::str::from_utf8(line).expect("utf-8"),
                )
                .expect("DynamoDB JSON");
                match &item["id"] {
                    Value::S(id) => id.clone(),
                    other => panic!("id {other:?}"),
                }
            })
            .collect();
        assert_eq!(ids.len() as u64, file.entry.item_count);
        ids
    }

    /// Every id over `lines`, each once.
    fn all_ids(bucket: &MemoryBucket, lines: &[ExportedFileLine]) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        for line in lines {
            for id in ids_of(bucket, line) {
                assert!(seen.insert(id.clone()), "{id} twice");
            }
        }
        seen
    }

    #[tokio::test]
    async fn every_item_lands_in_exactly_one_announced_file() {
        for compression in [Compression::None, Compression::Gzip] {
            let source = Arc::new(MemorySource::new(table(5000), "id"));
            let bucket = Arc::new(MemoryBucket::with_min_part(1024));
            // gzip holds a deflate block back before writing it: smaller files.
            let file_bytes = if compression == Compression::None {
                8192
            } else {
                512
            };
            let (files, trailer) = call(
                source,
                bucket.clone(),
                plan(4, 50),
                target("c1", compression, file_bytes),
            )
            .await;
            assert!(trailer.complete, "{trailer:?}");
            assert_eq!(trailer.items, 5000);
            // gzip holds up to 32 KiB back, so its files are at least that.
            assert!(files.len() >= 2, "small files: {}", files.len());
            assert_eq!(bucket.objects().len(), files.len(), "no other object");
            assert!(files.iter().all(|f| {
                f.file
                    .entry
                    .data_file_s3_key
                    .starts_with("exports/data/c1-")
            }));
            assert_eq!(all_ids(&bucket, &files).len(), 5000);
            assert!(
                files.last().is_some_and(|f| f.cursor.is_none()),
                "the last file ends the read"
            );
            assert!(files[..files.len() - 1].iter().all(|f| f.cursor.is_some()));
            if compression == Compression::None {
                assert!(bucket.calls("part") > files.len() as u64, "multipart files");
            }
            assert_eq!(bucket.open_uploads(), 0);
        }
    }

    #[tokio::test]
    async fn a_response_cut_after_a_file_line_resumes_from_that_lines_cursor() {
        let source = Arc::new(MemorySource::new(table(3000), "id"));
        let bucket = Arc::new(MemoryBucket::with_min_part(1024));
        let t = target("cut", Compression::None, 8192);
        let first = open_first_file(&*bucket, &t).await.expect("upload");
        let stream = start(source.clone(), plan(4, 40)).await.expect("starts");
        let mut body = export(stream, bucket.clone(), t, first);
        // The caller keeps three lines, then the response is cut.
        let mut kept = Vec::new();
        for _ in 0..3 {
            kept.extend_from_slice(&body.next().await.expect("a line"));
        }
        drop(body);
        let (mut files, trailer) = parse(&kept);
        assert!(trailer.is_none() && files.len() == 3);
        let cursor = files[2].cursor.clone().expect("a cursor on each line");
        let (rest, done) = call(
            source,
            bucket.clone(),
            resumed(&cursor),
            target("more", Compression::None, 8192),
        )
        .await;
        assert!(done.complete);
        files.extend(rest);
        assert_eq!(
            all_ids(&bucket, &files).len(),
            3000,
            "none lost, none twice"
        );
    }

    #[tokio::test]
    async fn a_failed_write_gives_the_cursor_of_the_completed_files_and_resuming_is_exact() {
        let source = Arc::new(MemorySource::new(table(3000), "id"));
        let bucket = Arc::new(MemoryBucket::with_min_part(1024));
        let mut announced = Vec::new();
        let mut plan_now = plan(4, 40);
        let mut rounds = 0;
        // Fails a part, then a completion, then a start: each call ends early.
        for (operation, nth) in [("part", 9), ("complete", 4), ("create", 9)] {
            bucket.fail(operation, nth);
        }
        loop {
            rounds += 1;
            let (files, trailer) = call(
                source.clone(),
                bucket.clone(),
                plan_now,
                target(&format!("call{rounds}"), Compression::None, 6 * 1024),
            )
            .await;
            assert_eq!(
                trailer.items,
                files.iter().map(|f| f.file.entry.item_count).sum::<u64>(),
                "the trailer counts what the files hold"
            );
            announced.extend(files);
            assert_eq!(bucket.open_uploads(), 0, "a failed call aborts its upload");
            if trailer.complete {
                break;
            }
            assert_eq!(
                trailer.error.as_ref().map(|e| e.code.as_str()),
                Some("S3Error")
            );
            plan_now = resumed(trailer.cursor.as_deref().expect("a cursor"));
            assert!(rounds < 10, "resuming ends");
        }
        assert_eq!(rounds, 4, "three failures, three resumes");
        assert_eq!(all_ids(&bucket, &announced).len(), 3000, "every item once");
    }

    #[tokio::test]
    async fn the_last_files_completion_failing_leaves_it_to_the_next_call() {
        let source = Arc::new(MemorySource::new(table(300), "id"));
        let bucket = Arc::new(MemoryBucket::with_min_part(1024));
        bucket.fail("complete", 1);
        // One file, completed when the read ends: its completion fails.
        let (files, trailer) = call(
            source.clone(),
            bucket.clone(),
            plan(2, 50),
            target("a", Compression::Gzip, 1 << 30),
        )
        .await;
        assert!(files.is_empty());
        assert!(!trailer.complete);
        assert_eq!(
            (
                trailer.items,
                trailer.error.as_ref().map(|e| e.code.as_str())
            ),
            (0, Some("S3Error"))
        );
        assert_eq!(trailer.scanned, 300, "the read it paid for is counted");
        assert_eq!(bucket.open_uploads(), 0);
        let (files, done) = call(
            source,
            bucket.clone(),
            resumed(trailer.cursor.as_deref().expect("cursor")),
            target("b", Compression::Gzip, 1 << 30),
        )
        .await;
        assert!(done.complete);
        assert_eq!(all_ids(&bucket, &files).len(), 300);
    }

    #[tokio::test]
    async fn a_dynamodb_failure_completes_the_open_file_and_resumes_after_it() {
        let source =
            Arc::new(MemorySource::new(table(600), "id").failing_at(5, ErrorKind::Unavailable));
        let bucket = Arc::new(MemoryBucket::with_min_part(1024));
        let (mut files, trailer) = call(
            source.clone(),
            bucket.clone(),
            plan(2, 50),
            target("a", Compression::None, 1 << 30),
        )
        .await;
        assert_eq!(
            trailer.error.as_ref().map(|e| e.code.as_str()),
            Some("Unavailable")
        );
        assert_eq!(
            files.len(),
            1,
            "the pages read before the failure are kept in a file"
        );
        assert_eq!(trailer.items, files[0].file.entry.item_count);
        let (rest, done) = call(
            source,
            bucket.clone(),
            resumed(trailer.cursor.as_deref().expect("cursor")),
            target("b", Compression::None, 1 << 30),
        )
        .await;
        assert!(done.complete);
        files.extend(rest);
        assert_eq!(all_ids(&bucket, &files).len(), 600);
    }

    #[tokio::test]
    async fn an_s3_call_still_out_at_the_deadline_fails_the_call_and_its_upload_is_aborted() {
        let source = Arc::new(MemorySource::new(table(2000), "id"));
        let bucket =
            Arc::new(MemoryBucket::with_min_part(1024).with_part_delay(Duration::from_secs(3600)));
        let t = ExportTarget {
            deadline: Some(Instant::now() + Duration::from_millis(200)),
            ..target("late", Compression::None, 1 << 30)
        };
        let started = Instant::now();
        let (files, trailer) = call(source.clone(), bucket.clone(), plan(2, 50), t).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the deadline ended the part's wait"
        );
        assert!(files.is_empty());
        assert_eq!(
            trailer.error.as_ref().map(|e| e.code.as_str()),
            Some("S3Error")
        );
        assert_eq!(trailer.items, 0);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            bucket.open_uploads(),
            0,
            "aborted after the deadline, without waiting"
        );
        let quick = Arc::new(MemoryBucket::with_min_part(1024));
        let (files, done) = call(
            source,
            quick.clone(),
            resumed(trailer.cursor.as_deref().expect("cursor")),
            target("again", Compression::None, 1 << 30),
        )
        .await;
        assert!(done.complete);
        assert_eq!(all_ids(&quick, &files).len(), 2000);
    }

    #[tokio::test]
    async fn a_bucket_that_refuses_the_first_upload_is_refused_before_the_read() {
        let bucket = MemoryBucket::with_min_part(1024);
        bucket.fail("create", 1);
        let err = open_first_file(&bucket, &target("x", Compression::Gzip, 1 << 20))
            .await
            .expect_err("refused");
        assert_eq!(err.kind, ErrorKind::Storage);
    }

    #[tokio::test]
    async fn an_empty_table_writes_no_file_and_leaves_no_upload() {
        let source = Arc::new(MemorySource::new(Vec::new(), "id"));
        let bucket = Arc::new(MemoryBucket::with_min_part(1024));
        let (files, trailer) = call(
            source,
            bucket.clone(),
            plan(2, 50),
            target("e", Compression::Gzip, 1 << 20),
        )
        .await;
        assert!(trailer.complete && files.is_empty());
        assert!(bucket.objects().is_empty());
        assert_eq!(
            bucket.open_uploads(),
            0,
            "the first file's upload is aborted"
        );
    }

    #[tokio::test]
    async fn a_deadline_completes_the_open_file_and_its_cursor_covers_it() {
        let source =
            Arc::new(MemorySource::new(table(400), "id").with_delay(Duration::from_millis(5)));
        let bucket = Arc::new(MemoryBucket::with_min_part(1024));
        let first = ScanPlan {
            deadline: Some(tokio::time::Instant::now() + Duration::from_millis(60)),
            ..plan(2, 10)
        };
        let (files, trailer) = call(
            source.clone(),
            bucket.clone(),
            first,
            target("d1", Compression::Gzip, 1 << 30),
        )
        .await;
        assert!(!trailer.complete);
        assert_eq!(files.len(), 1, "the one open file was completed");
        assert_eq!(trailer.items, files[0].file.entry.item_count);
        assert_eq!(
            files[0].cursor, trailer.cursor,
            "the line's cursor is the trailer's"
        );
        let (rest, done) = call(
            source,
            bucket.clone(),
            resumed(trailer.cursor.as_deref().expect("cursor")),
            target("d2", Compression::Gzip, 1 << 30),
        )
        .await;
        assert!(done.complete);
        let mut all = files;
        all.extend(rest);
        assert_eq!(all_ids(&bucket, &all).len(), 400);
    }

    #[tokio::test]
    async fn a_response_dropped_mid_file_aborts_its_upload() {
        let source =
            Arc::new(MemorySource::new(table(3000), "id").with_delay(Duration::from_millis(5)));
        let bucket = Arc::new(MemoryBucket::with_min_part(1024));
        let t = target("x", Compression::None, 1 << 30);
        let first = open_first_file(&*bucket, &t).await.expect("upload");
        let stream = start(source, plan(2, 50)).await.expect("starts");
        let mut body = export(stream, bucket.clone(), t, first);
        // One file, never full: the body has nothing to say while parts go up.
        let waited = tokio::time::timeout(Duration::from_millis(60), body.next()).await;
        assert!(waited.is_err(), "no line before the read ends");
        assert!(bucket.calls("part") > 0, "parts went up");
        assert_eq!(bucket.open_uploads(), 1);
        drop(body);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(bucket.open_uploads(), 0, "aborted");
        assert!(bucket.objects().is_empty());
    }
}
