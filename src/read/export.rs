//! The export: a read's pages written to S3 as data files instead of into the response,
//! which carries one line per file completed, then the trailer.
//!
//! Pages go, in the order the merge hands them out, into one data file at a time
//! ([`DataFile`]); its compressed bytes are uploaded as the parts of a multipart upload
//! whenever a part's worth is ready, so memory holds about one part, never a file. A
//! file is completed once it reaches its size, and when the read ends.
//!
//! The trailer's counts and cursor cover only items in completed files. Pages are
//! counted as they are written into the file, so when a file completes, the read's tally
//! is exactly what the completed files hold; that tally is kept. If S3 then fails, the
//! open upload is aborted and the trailer is the kept tally's, with an `S3Error`: a
//! resumed call reads again what the lost file held. A file that completed but whose
//! line never reached the caller (the call was cut) is not in the caller's manifest; the
//! client deletes such files when it ends.

use super::stream::{Chunk, ScanStream};
use super::tally::Tally;
use crate::dynamo::s3::ObjectStore;
use crate::format::compress::Compression;
use crate::format::datafile::DataFile;
use crate::format::error::{ErrorKind, UpstreamError};
use crate::format::export::{DataFileEntry, ExportedFile};
use crate::format::location::S3Location;
use crate::format::trailer::{StopReason, Trailer, TrailerError};
use bytes::Bytes;
use futures::Stream;
use std::sync::Arc;
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
}

/// The response of an export: a line per file completed, then the trailer's line.
pub fn export<U: ObjectStore>(
    stream: ScanStream,
    store: Arc<U>,
    target: ExportTarget,
) -> impl Stream<Item = Bytes> + Send + Unpin + 'static {
    let committed = stream.tally().clone();
    let exporter = Exporter {
        stream: Some(stream),
        store,
        target,
        open: None,
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

/// A file being uploaded.
struct OpenFile {
    key: String,
    data: DataFile,
    /// Created with the first part, so a call that writes nothing starts no upload.
    upload_id: Option<String>,
    parts: Vec<(u32, String)>,
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
                    let full = self
                        .open
                        .as_ref()
                        .is_some_and(|file| file.data.bytes() >= self.target.file_bytes);
                    if full {
                        match self.complete().await {
                            Ok(file) => return Some(Bytes::from(file.to_line())),
                            Err(err) => return Some(self.fail(err).await),
                        }
                    }
                }
                Some(Chunk::End(trailer)) => {
                    let has_items = self.open.as_ref().is_some_and(|f| f.data.items() > 0);
                    if !has_items {
                        self.end();
                        return Some(Bytes::from(trailer.to_line()));
                    }
                    return match self.complete().await {
                        Ok(file) => {
                            self.end();
                            self.last = Some(*trailer);
                            Some(Bytes::from(file.to_line()))
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
        if self.open.is_none() {
            let name = format!(
                "{}-{:05}{}",
                self.target.call,
                self.files,
                DataFile::suffix(self.target.compression)
            );
            let data = DataFile::new(self.target.compression)
                .map_err(|err| UpstreamError::new(ErrorKind::Internal, err))?;
            self.open = Some(OpenFile {
                key: self.target.folder.key(&name),
                data,
                upload_id: None,
                parts: Vec::new(),
            });
        }
        let part_bytes = self.target.part_bytes;
        let file = self.open.as_mut().ok_or_else(no_file)?;
        file.data.write(lines, items);
        if file.data.ready() >= part_bytes {
            let part = file.data.take();
            self.upload(part).await?;
        }
        Ok(())
    }

    /// Uploads the open file's next part, starting its upload first if need be.
    async fn upload(&mut self, part: Vec<u8>) -> Result<(), UpstreamError> {
        let store = self.store.clone();
        let file = self.open.as_mut().ok_or_else(no_file)?;
        let upload_id = match &file.upload_id {
            Some(id) => id.clone(),
            None => {
                let id = store.create_upload(&file.key).await?;
                file.upload_id = Some(id.clone());
                id
            }
        };
        let number = u32::try_from(file.parts.len() + 1).unwrap_or(u32::MAX);
        let etag = store
            .upload_part(&file.key, &upload_id, number, part)
            .await?;
        file.parts.push((number, etag));
        Ok(())
    }

    /// Uploads the open file's last part and completes it; the kept tally becomes the
    /// read's.
    async fn complete(&mut self) -> Result<ExportedFile, UpstreamError> {
        let file = self.open.as_mut().ok_or_else(no_file)?;
        let data = std::mem::replace(
            &mut file.data,
            DataFile::new(Compression::None)
                .map_err(|err| UpstreamError::new(ErrorKind::Internal, err))?,
        );
        let finished = data
            .finish()
            .map_err(|err| UpstreamError::new(ErrorKind::Internal, err))?;
        let needs_tail = !finished.tail.is_empty()
            || self.open.as_ref().is_some_and(|file| file.parts.is_empty());
        if needs_tail {
            self.upload(finished.tail).await?;
        }
        let file = self.open.as_mut().ok_or_else(no_file)?;
        let upload_id = file.upload_id.clone().ok_or_else(no_file)?;
        let etag = self
            .store
            .complete_upload(&file.key, &upload_id, std::mem::take(&mut file.parts))
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
        Ok(ExportedFile {
            entry: DataFileEntry {
                item_count: finished.items,
                md5_checksum: finished.md5,
                etag: Some(etag),
                data_file_s3_key: key,
            },
            bytes: finished.bytes,
        })
    }

    /// After an S3 failure: aborts the open upload, stops the read, and gives the
    /// trailer of what the completed files hold.
    async fn fail(&mut self, err: UpstreamError) -> Bytes {
        warn!(cause = %err, source = ?err.source, "writing the export failed");
        self.abort_open().await;
        let error = TrailerError::of(err.kind, None);
        let trailer = match &self.stream {
            Some(stream) => {
                let mut trailer =
                    stream.trailer_of(&self.committed, StopReason::Error, Some(error));
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

    async fn abort_open(&mut self) {
        if let Some(OpenFile {
            key,
            upload_id: Some(upload_id),
            ..
        }) = self.open.take()
            && let Err(err) = self.store.abort_upload(&key, &upload_id).await
        {
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
    /// it on the runtime, if there still is one.
    fn drop(&mut self) {
        if let Some(OpenFile {
            key,
            upload_id: Some(upload_id),
            ..
        }) = self.open.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let store = self.store.clone();
            runtime.spawn(async move {
                if let Err(err) = store.abort_upload(&key, &upload_id).await {
                    warn!(key, cause = %err, "aborting an upload failed");
                }
            });
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
    use crate::format::cursor::{Cursor, CursorSeal};
    use crate::format::item::{Item, Value};
    use crate::format::json::Format;
    use crate::read::stream::{ScanPlan, start};
    use futures::StreamExt;
    use std::collections::BTreeSet;
    use std::io::Read;
    use std::time::Duration;

    const SECRET: &[u8] = b"test";

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

    fn plan(segments: u32, limit: u32) -> ScanPlan {
        ScanPlan {
            seal: Some(CursorSeal {
                table: "mem".into(),
                secret: Arc::from(SECRET),
            }),
            format: Format::Dynamodb,
            ..ScanPlan::segments(segments, limit)
        }
    }

    fn resumed(token: &str) -> ScanPlan {
        let cursor = Cursor::decode(token, SECRET, 1 << 20).expect("our own cursor");
        ScanPlan {
            total_segments: cursor.total_segments,
            segment_offset: cursor.segment_offset,
            positions: cursor.positions,
            shape: Arc::new(cursor.shape),
            ..plan(1, 10)
        }
    }

    fn target(call: &str, compression: Compression, file_bytes: u64) -> ExportTarget {
        ExportTarget {
            folder: S3Location::parse("s3://bucket-1/exports/data").expect("location"),
            compression,
            file_bytes,
            part_bytes: 1024,
            call: call.to_string(),
        }
    }

    /// One call: the files its response announced, and its trailer.
    async fn call(
        source: Arc<MemorySource>,
        bucket: Arc<MemoryBucket>,
        plan: ScanPlan,
        target: ExportTarget,
    ) -> (Vec<ExportedFile>, Trailer) {
        let stream = start(source, plan).await.expect("starts");
        let body: Vec<u8> = export(stream, bucket, target)
            .collect::<Vec<Bytes>>()
            .await
            .concat();
        let mut lines: Vec<&[u8]> = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let trailer = Trailer::parse_line(lines.pop().expect("a trailer")).expect("the trailer");
        let files = lines
            .iter()
            .map(|line| ExportedFile::of_line(line).expect("only file lines before it"))
            .collect();
        (files, trailer)
    }

    /// The ids a file holds, checked against what its line says.
    fn ids_of(bucket: &MemoryBucket, file: &ExportedFile, compression: Compression) -> Vec<String> {
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
        match compression {
            Compression::Gzip => {
                flate2::read::GzDecoder::new(&stored[..])
                    .read_to_end(&mut plain)
                    .expect("gzip");
            }
            _ => plain = stored,
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

    #[tokio::test]
    async fn every_item_lands_in_exactly_one_announced_file() {
        for compression in [Compression::None, Compression::Gzip] {
            let source = Arc::new(MemorySource::new(table(5000), "id"));
            let bucket = Arc::new(MemoryBucket::with_min_part(1024));
            let (files, trailer) = call(
                source,
                bucket.clone(),
                plan(4, 50),
                // gzip holds a deflate block back before writing it: smaller files.
                target(
                    "c1",
                    compression,
                    if compression == Compression::None {
                        8192
                    } else {
                        512
                    },
                ),
            )
            .await;
            assert!(trailer.complete, "{trailer:?}");
            assert_eq!(trailer.items, 5000);
            // gzip holds up to 32 KiB back, so its files are at least that.
            assert!(files.len() >= 2, "small files: {}", files.len());
            assert_eq!(bucket.objects().len(), files.len(), "no other object");
            let mut seen = BTreeSet::new();
            for file in &files {
                assert!(file.entry.data_file_s3_key.starts_with("exports/data/c1-"));
                for id in ids_of(&bucket, file, compression) {
                    assert!(seen.insert(id.clone()), "{id} twice");
                }
            }
            assert_eq!(seen.len(), 5000);
            if compression == Compression::None {
                assert!(bucket.calls("part") > files.len() as u64, "multipart files");
            }
            assert_eq!(bucket.open_uploads(), 0);
        }
    }

    #[tokio::test]
    async fn a_failed_write_gives_the_cursor_of_the_completed_files_and_resuming_is_exact() {
        let source = Arc::new(MemorySource::new(table(3000), "id"));
        let bucket = Arc::new(MemoryBucket::with_min_part(1024));
        let mut announced = Vec::new();
        let mut plan_now = plan(4, 40);
        let mut rounds = 0;
        // Fails a part, then a completion, then a start: each call ends early.
        for (operation, nth) in [("part", 9), ("complete", 4), ("create", 7)] {
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
                files.iter().map(|f| f.entry.item_count).sum::<u64>(),
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
        let mut seen = BTreeSet::new();
        for file in &announced {
            for id in ids_of(&bucket, file, Compression::None) {
                assert!(seen.insert(id.clone()), "{id} twice");
            }
        }
        assert_eq!(seen.len(), 3000, "every item once");
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
        assert_eq!(trailer.items, files[0].entry.item_count);
        let (rest, done) = call(
            source,
            bucket.clone(),
            resumed(trailer.cursor.as_deref().expect("cursor")),
            target("d2", Compression::Gzip, 1 << 30),
        )
        .await;
        assert!(done.complete);
        let mut ids = ids_of(&bucket, &files[0], Compression::Gzip);
        ids.extend(ids_of(&bucket, &rest[0], Compression::Gzip));
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 400);
    }

    #[tokio::test]
    async fn a_response_dropped_mid_file_aborts_its_upload() {
        let source =
            Arc::new(MemorySource::new(table(3000), "id").with_delay(Duration::from_millis(5)));
        let bucket = Arc::new(MemoryBucket::with_min_part(1024));
        let stream = start(source, plan(2, 50)).await.expect("starts");
        let mut body = export(
            stream,
            bucket.clone(),
            target("x", Compression::None, 1 << 30),
        );
        // One file, never full: the body has nothing to say while parts go up.
        let waited = tokio::time::timeout(Duration::from_millis(60), body.next()).await;
        assert!(waited.is_err(), "no line before the read ends");
        assert_eq!(bucket.open_uploads(), 1, "parts went up");
        drop(body);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(bucket.open_uploads(), 0, "aborted");
        assert!(bucket.objects().is_empty());
    }
}
