//! `scanstream pull --layout export -o s3://BUCKET/PREFIX`: the functions write the data
//! files to S3 themselves (`to=`, docs/export.md), and this client commits their records,
//! not their items:
//!
//! ```text
//! PREFIX/AWSDynamoDB/<ExportId>/_started                    written first, empty
//! PREFIX/AWSDynamoDB/<ExportId>/staging/<call>-<n>.json.gz  written by the functions
//! PREFIX/AWSDynamoDB/<ExportId>/data/<call>-<n>.json.gz     copied there by the finish
//! PREFIX/AWSDynamoDB/<ExportId>/scanstream-key-schema.json  what the streamer says
//! PREFIX/AWSDynamoDB/<ExportId>/manifest-files.json (+ .checksum)
//! PREFIX/AWSDynamoDB/<ExportId>/manifest-summary.json (+ .checksum)   written last
//! ```
//!
//! A call's response is its file lines (`{"file":{...},"cursor":...}`) and its trailer.
//! The worker checks that the lines are files in this export's `staging/` whose items add
//! up to the trailer's, and the call is committed as a pull to `-o FILE` commits one: its
//! lines appended to a local records file beside the checkpoint, and the checkpoint saved,
//! in one step ([`crate::cli::output::commit`]). So a file is this export's exactly when a
//! committed call announced it.
//!
//! The functions never write `data/`: only the finish does, once every slice is done. It
//! copies each committed file from `staging/` to `data/` inside S3, deletes anything else
//! in `data/`, writes the manifests (the summary last), and then empties `staging/`. So
//! `data/` holds exactly the manifest's files whatever the calls did: a call cut off,
//! failed, given up on or killed with the client may have an invocation that runs on and
//! completes a file later, but only ever into `staging/`. A run killed at any point
//! resumes from the checkpoint under the same `<ExportId>`, and finishing again is
//! harmless (a file already in `data/` at its size is not copied again).

pub mod layout;

use crate::cli::output::CommitError;
use crate::cli::output::checkpoint::Checkpoint;
use crate::cli::output::commit::Committer;
use crate::cli::output::export::files::no_trailer_line;
use crate::cli::output::export::sink::manifest_summary;
use crate::cli::output::export::{EXPORT_ID, new_id};
use crate::cli::output::paths::Files;
use crate::cli::output::sink::Sink;
use crate::cli::output::stored;
use crate::dynamo::s3::Bucket;
use crate::dynamo::s3::objects::Objects;
use crate::format::export::{
    DataFileEntry, EXPORTS_DIR, ExportedFile, ExportedFileLine, FILES, FILES_CHECKSUM, KEY_SCHEMA,
    RecordedKeySchema, STARTED, SUMMARY, SUMMARY_CHECKSUM, hex_md5,
};
use crate::format::key::KeySchema;
use crate::format::location::S3Location;
use layout::{LearnedKey, S3Export, said_key_path};
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io;
use std::path::PathBuf;

/// The largest object CopyObject copies.
const MAX_COPY_BYTES: u64 = 5 << 30;

/// Copies made at once by the finish.
const COPIES_AT_ONCE: usize = 16;

/// Whether `etag` is S3's ETag of an object whose base64 MD5 is `md5` (a single-part
/// object's, not encrypted with KMS, is the hex MD5 between quotes).
fn etag_is_md5(etag: Option<&str>, md5: &str) -> bool {
    use base64::Engine as _;
    let Ok(digest) = base64::engine::general_purpose::STANDARD.decode(md5) else {
        return false;
    };
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    etag.is_some_and(|etag| etag.trim_matches('"') == hex)
}

/// Opens the export of `fresh`'s read to `location`, or resumes the one its checkpoint
/// names (`files.output` is the records file, `files.checkpoint` the checkpoint). The
/// export's `_started` is put first: a bucket this client cannot write fails here, before
/// any call.
pub async fn open(
    files: &Files,
    mut fresh: Checkpoint,
    location: &S3Location,
    key: Option<KeySchema>,
    bucket: Bucket,
) -> Result<(Committer, S3Export), CommitError> {
    let Some(checkpoint) = files.checkpoint.as_deref() else {
        return Err(CommitError::Refused(
            "an export to S3 keeps the records of its files in its checkpoint: it cannot run \
             with --no-checkpoint"
                .into(),
        ));
    };
    // The export's id is the checkpoint's, not one this run makes. (Read again, under the
    // lock, by the committer, which refuses a checkpoint of another read or export.)
    let saved = if checkpoint.exists() && !files.force {
        stored::load(checkpoint)?
            .shape
            .get(EXPORT_ID)
            .map(str::to_string)
    } else {
        None
    };
    if let Some(records) = files.output.as_deref()
        && saved.is_none()
        && !files.force
        && std::fs::metadata(records).is_ok_and(|m| m.len() > 0)
    {
        // A run that finished, killed between removing its checkpoint and its records:
        // its export is whole (its summary was written before the checkpoint went).
        return Err(CommitError::Refused(format!(
            "{} holds the records of an export to {location} whose checkpoint is gone: a \
             finished run removes its checkpoint, then these (its manifest-summary.json is \
             then under {location}/{EXPORTS_DIR}/), or the checkpoint was removed by hand. \
             Remove that file to make another export, or run with --force",
            records.display()
        )));
    }
    let id = saved.unwrap_or_else(|| new_id(fresh.started_ms));
    fresh.shape = fresh.shape.with(EXPORT_ID, id.clone());
    let export = S3Export {
        location: location.clone(),
        id,
        learned: LearnedKey::default(),
    };
    // First, before any local file is made: a bucket this client cannot write leaves
    // nothing behind (the object is empty, and putting it again is harmless).
    let started = format!("{}/{STARTED}", export.root());
    bucket.put(&started, Vec::new()).await.map_err(|err| {
        CommitError::Refused(format!("writing s3://{}/{started}: {err}", location.bucket))
    })?;
    let committer = Committer::open(files, fresh)?;
    let sink = S3Sink {
        records: PathBuf::new(),
        inner: None,
        bucket,
        export: export.clone(),
        key,
        key_written: false,
        handle: tokio::runtime::Handle::current(),
    };
    let committer = committer.map_sink(move |inner| {
        let mut sink = sink;
        sink.records = inner.path();
        sink.inner = Some(inner);
        Box::new(sink)
    });
    Ok((committer, export))
}

/// The committed records in a local file, and the export's objects in S3 (`B`: the SDK's
/// bucket, or one in memory for tests).
#[derive(Debug)]
pub struct S3Sink<B = Bucket> {
    /// The records file.
    records: PathBuf,
    /// Writes the records file.
    inner: Option<Box<dyn Sink>>,
    bucket: B,
    export: S3Export,
    /// `--key`: recorded instead of what the streamer says.
    key: Option<KeySchema>,
    /// The key schema's object was put by this run.
    key_written: bool,
    /// The runtime the S3 calls run on: the sink is called off it, on blocking threads.
    handle: tokio::runtime::Handle,
}

fn other(text: String) -> io::Error {
    io::Error::other(text)
}

impl<B: Objects + std::fmt::Debug> S3Sink<B> {
    fn inner(&mut self) -> io::Result<&mut Box<dyn Sink>> {
        self.inner
            .as_mut()
            .ok_or_else(|| other("the records file is not open".into()))
    }

    fn key_object(&self) -> String {
        format!("{}/{KEY_SCHEMA}", self.export.root())
    }

    /// The records the checkpoint committed, in commit order.
    fn committed(&self, checkpoint: &Checkpoint) -> io::Result<Vec<ExportedFile>> {
        let mut bytes = std::fs::read(&self.records)?;
        let length = usize::try_from(checkpoint.committed_bytes).unwrap_or(usize::MAX);
        if bytes.len() < length {
            return Err(other(format!(
                "{} holds {} bytes, the checkpoint committed {length}",
                self.records.display(),
                bytes.len()
            )));
        }
        bytes.truncate(length);
        let prefix = self.export.staging_prefix();
        let mut files = Vec::new();
        let mut seen = BTreeSet::new();
        for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let bad = |why: &str| {
                other(format!(
                    "{} line {}: {why}",
                    self.records.display(),
                    index + 1
                ))
            };
            let file = ExportedFileLine::of_line(line).ok_or_else(|| bad("not a file line"))?;
            let key = &file.file.entry.data_file_s3_key;
            if !key.starts_with(&prefix) {
                return Err(bad(&format!("{key} is not in {prefix}")));
            }
            if !seen.insert(key.clone()) {
                return Err(bad(&format!("{key} is recorded twice")));
            }
            files.push(file.file);
        }
        Ok(files)
    }

    /// Copies every recorded file from `staging/` to `data/`, deletes whatever else is in
    /// `data/`, writes the key schema and the manifests (the summary last), and empties
    /// `staging/`. Each step can be made again after a kill.
    async fn publish(&self, files: Vec<ExportedFile>, items: u64) -> Result<(), String> {
        use futures::StreamExt;
        let bucket = &self.export.location.bucket;
        let root = self.export.root();
        let named = |key: &str| format!("s3://{bucket}/{key}");
        let (staging, data) = (self.export.staging_prefix(), self.export.data_prefix());
        let listed = |prefix: String| async move {
            self.bucket
                .list(&prefix)
                .await
                .map(|objects| {
                    objects
                        .into_iter()
                        .map(|o| (o.key, (o.size, o.etag)))
                        .collect::<HashMap<String, (u64, Option<String>)>>()
                })
                .map_err(|err| format!("listing {}: {err}", named(&prefix)))
        };
        let staged = listed(staging.clone()).await?;
        let copied = listed(data.clone()).await?;
        // Each file's key in `data/`, and whether it is there yet.
        let mut entries = Vec::with_capacity(files.len());
        let mut sizes = HashMap::with_capacity(files.len());
        let mut copies = Vec::new();
        for file in &files {
            let from = &file.entry.data_file_s3_key;
            let name = from.strip_prefix(&staging).unwrap_or_default();
            let to = format!("{data}{name}");
            // There already, from a finish killed after its copies: the same size and, where
            // S3's ETag is the MD5 (a copy's is, but under SSE-KMS), the same bytes. Else
            // copied (again): a copy of the same bytes is harmless.
            // Where the ETag is not the MD5 (SSE-KMS) and `staging/` is already emptied
            // (a finish killed after its summary), the size is all there is to go on.
            let there = copied.get(&to).is_some_and(|(size, etag)| {
                *size == file.bytes
                    && (etag_is_md5(etag.as_deref(), &file.entry.md5_checksum)
                        || !staged.contains_key(from))
            });
            if !there {
                match staged.get(from) {
                    Some((size, _)) if *size == file.bytes && *size > MAX_COPY_BYTES => {
                        return Err(format!(
                            "{} is {size} bytes, more than CopyObject takes ({MAX_COPY_BYTES}): \
                             its function's EXPORT_FILE_BYTES is above 4 GiB",
                            named(from)
                        ));
                    }
                    Some((size, _)) if *size == file.bytes => {
                        copies.push((from.clone(), to.clone()));
                    }
                    Some((size, _)) => {
                        return Err(format!(
                            "{} holds {size} bytes, its call announced {}: changed since",
                            named(from),
                            file.bytes
                        ));
                    }
                    None => {
                        return Err(format!(
                            "{} was committed but is in neither staging/ nor data/ (deleted \
                             since?): the export cannot be whole; --force makes a new one",
                            named(from)
                        ));
                    }
                }
            }
            sizes.insert(to.clone(), file.bytes);
            entries.push(DataFileEntry {
                data_file_s3_key: to,
                // S3's, read back once the copies are made.
                etag: None,
                ..file.entry.clone()
            });
        }
        let mut running = futures::stream::iter(copies.into_iter().map(|(from, to)| async move {
            self.bucket
                .copy(&from, &to)
                .await
                .map_err(|err| format!("copying {} to {}: {err}", named(&from), named(&to)))
        }))
        .buffer_unordered(COPIES_AT_ONCE);
        while let Some(copy) = running.next().await {
            copy?;
        }
        // What the copies made, checked before any manifest names it.
        let copied = listed(data.clone()).await?;
        for entry in &mut entries {
            match copied.get(&entry.data_file_s3_key) {
                Some((size, etag))
                    if Some(*size) == sizes.get(&entry.data_file_s3_key).copied() =>
                {
                    entry.etag = etag.clone();
                }
                _ => {
                    return Err(format!(
                        "{} is not in S3 at its size after its copy",
                        named(&entry.data_file_s3_key)
                    ));
                }
            }
        }
        let kept: BTreeSet<&str> = entries
            .iter()
            .map(|e| e.data_file_s3_key.as_str())
            .collect();
        let strays: Vec<String> = copied
            .keys()
            .filter(|key| !kept.contains(key.as_str()))
            .cloned()
            .collect();
        if !strays.is_empty() {
            tracing::info!(
                files = strays.len(),
                "deleting files in data/ no manifest lists"
            );
            self.bucket
                .delete(strays)
                .await
                .map_err(|err| format!("deleting from {}: {err}", named(&data)))?;
        }
        // What the functions said: this run's calls, or an earlier run's, as its first
        // commit recorded it (a resumed run whose slices are all done makes no call).
        let said = match self.export.learned.get() {
            Some(said) => Some(said),
            None => self.recorded_key()?,
        };
        if let (Some(given), Some(said)) = (&self.key, said.clone())
            && *given != said
        {
            return Err(format!(
                "--key {given} is not the table's key schema, {said}, as the functions say it: \
                 an export recording it would restore into a table keyed otherwise; run \
                 again with --key {said}, or without --key"
            ));
        }
        match self.key.clone().or(said) {
            Some(key) => self.put_key(&key).await?,
            None => {
                return Err(
                    "the function never said the table's key schema (a streamer older than \
                     this client?): give --key NAME:TYPE[,NAME:TYPE]"
                        .into(),
                );
            }
        }
        let mut manifest = Vec::new();
        for entry in &entries {
            serde_json::to_writer(&mut manifest, entry).map_err(|e| e.to_string())?;
            manifest.push(b'\n');
        }
        let mut summary = manifest_summary(&self.export.id, items, &root);
        summary.s3_bucket = Some(bucket.clone());
        summary.s3_prefix =
            (!self.export.location.prefix.is_empty()).then(|| self.export.location.prefix.clone());
        let mut summary = serde_json::to_vec(&summary).map_err(|e| e.to_string())?;
        summary.push(b'\n');
        for (name, body) in [
            (FILES, manifest.clone()),
            (FILES_CHECKSUM, hex_md5(&manifest).into_bytes()),
            (SUMMARY_CHECKSUM, hex_md5(&summary).into_bytes()),
            // Last: an export without its summary is unfinished, and loaders refuse it.
            (SUMMARY, summary),
        ] {
            let key = format!("{root}/{name}");
            self.bucket
                .put(&key, body)
                .await
                .map_err(|err| format!("writing {}: {err}", named(&key)))?;
        }
        // What the functions left; a late file of a call not committed may land here
        // still, outside `data/`.
        let left: Vec<String> = listed(staging.clone()).await?.into_keys().collect();
        if !left.is_empty() {
            self.bucket
                .delete(left)
                .await
                .map_err(|err| format!("emptying {}: {err}", named(&staging)))?;
        }
        Ok(())
    }

    /// Where the key schema the functions said is kept beside the records: local, so a
    /// commit records it without an S3 call under the committer's lock, and never
    /// written from --key.
    fn said_path(&self) -> PathBuf {
        said_key_path(&self.records)
    }

    /// The key schema an earlier run's functions said, as its first commit kept it.
    fn recorded_key(&self) -> Result<Option<KeySchema>, String> {
        let path = self.said_path();
        let found = match std::fs::read(&path) {
            Ok(found) => found,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(format!("reading {}: {err}", path.display())),
        };
        let recorded: RecordedKeySchema =
            serde_json::from_slice(&found).map_err(|e| format!("{}: {e}", path.display()))?;
        recorded
            .schema()
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    async fn put_key(&self, key: &KeySchema) -> Result<(), String> {
        let mut body =
            serde_json::to_vec_pretty(&RecordedKeySchema::of(key)).map_err(|e| e.to_string())?;
        body.push(b'\n');
        self.bucket
            .put(&self.key_object(), body)
            .await
            .map_err(|err| format!("writing {}: {err}", self.key_object()))
    }
}

impl<B: Objects + std::fmt::Debug> Sink for S3Sink<B> {
    fn put(&mut self, at: u64, spool: &mut File) -> io::Result<u64> {
        let copied = self.inner()?.put(at, spool)?;
        // What the functions said, kept as soon as it is known, for a run that resumes
        // with every slice done (it makes no call to hear it from); before the checkpoint
        // names this call, so a checkpoint past a call that said it never lacks it. Never
        // --key: the finish holds --key to it.
        if !self.key_written
            && let Some(key) = self.export.learned.get()
        {
            let body = serde_json::to_vec(&RecordedKeySchema::of(&key))?;
            super::files::write_atomic(&self.said_path(), &body)?;
            self.key_written = true;
        }
        Ok(copied)
    }

    fn put_bytes(&mut self, _at: u64, _bytes: &[u8]) -> io::Result<()> {
        Err(no_trailer_line())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.inner()?.sync()
    }

    fn cut_back(&mut self, length: u64) -> io::Result<()> {
        self.inner()?.cut_back(length)
    }

    fn read_back(&mut self, at: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
        self.inner()?.read_back(at, len)
    }

    fn path(&self) -> PathBuf {
        self.records.clone()
    }

    fn finish(&mut self, checkpoint: &Checkpoint) -> io::Result<()> {
        let files = self.committed(checkpoint)?;
        let items: u64 = files.iter().map(|f| f.entry.item_count).sum();
        if items != checkpoint.committed_items {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the records hold {items} items, the checkpoint committed {}: not writing \
                     manifests for them",
                    checkpoint.committed_items
                ),
            ));
        }
        self.handle
            .block_on(self.publish(files, items))
            .map_err(other)
    }
}

#[cfg(test)]
mod tests {
    use super::layout::file_line_items;
    use super::*;
    use crate::cli::output::checkpoint::OutputShape;
    use crate::dynamo::s3::memory::MemoryBucket;
    use crate::format::export::{DataFileEntry, ManifestSummary};

    const ROOT: &str = "p/AWSDynamoDB/01700000000000-0a1b2c3d";

    /// A runtime whose handle the sink blocks on, from this (non-runtime) thread.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime")
    }

    fn export() -> S3Export {
        S3Export {
            location: S3Location::parse("s3://bkt/p").expect("location"),
            id: "01700000000000-0a1b2c3d".into(),
            learned: LearnedKey::default(),
        }
    }

    /// A file the functions wrote to `staging/`, and the line its call announced.
    fn staged(bucket: &MemoryBucket, name: &str, items: u64) -> ExportedFileLine {
        let body = format!("{name}-{items}").into_bytes();
        let key = format!("{ROOT}/staging/{name}");
        bucket.insert(&key, body.clone());
        ExportedFileLine {
            file: ExportedFile {
                entry: DataFileEntry {
                    item_count: items,
                    md5_checksum: crate::format::export::md5_base64(&body[..]).expect("md5"),
                    etag: None,
                    data_file_s3_key: key,
                },
                bytes: body.len() as u64,
            },
            cursor: None,
        }
    }

    /// A sink over `bucket` whose records file holds `lines`, and the checkpoint that
    /// committed them.
    fn sink_over(
        bucket: MemoryBucket,
        lines: &[ExportedFileLine],
        key: Option<&str>,
        handle: &tokio::runtime::Handle,
        name: &str,
    ) -> (S3Sink<MemoryBucket>, Checkpoint) {
        let records = std::env::temp_dir().join(format!(
            "scanstream-s3-sink-{name}-{}.files",
            std::process::id()
        ));
        let bytes: Vec<u8> = lines.iter().flat_map(ExportedFileLine::to_line).collect();
        std::fs::write(&records, &bytes).expect("records");
        let mut checkpoint =
            crate::cli::pull::slices::plan("http://x/", 1, 1, OutputShape::default());
        checkpoint.committed_bytes = bytes.len() as u64;
        checkpoint.committed_items = lines.iter().map(|l| l.file.entry.item_count).sum();
        let sink = S3Sink {
            records,
            inner: None,
            bucket,
            export: export(),
            key: key.map(|k| KeySchema::parse(k).expect("key")),
            key_written: false,
            handle: handle.clone(),
        };
        (sink, checkpoint)
    }

    /// GIVEN two committed files in `staging/`, one file there no call committed, and a
    /// stray in `data/` WHEN the export finishes THEN `data/` holds exactly the two, the
    /// manifest lists them with their counts and MD5s, the summary says their items, and
    /// `staging/` is empty; a second finish (a run killed after the first) changes nothing.
    #[test]
    fn the_finish_puts_exactly_the_committed_files_in_data() {
        let runtime = runtime();
        let bucket = MemoryBucket::new();
        let lines = [
            staged(&bucket, "a-0.json.gz", 3),
            staged(&bucket, "b-0.json.gz", 4),
        ];
        staged(&bucket, "cut-0.json.gz", 9);
        bucket.insert(&format!("{ROOT}/data/stray.json.gz"), b"x".to_vec());
        let (mut sink, checkpoint) =
            sink_over(bucket, &lines, Some("pk:S"), runtime.handle(), "ok");
        sink.finish(&checkpoint).expect("finish");
        let objects = sink.bucket.objects();
        let data: Vec<&String> = objects.keys().filter(|k| k.contains("/data/")).collect();
        assert_eq!(
            data,
            [
                &format!("{ROOT}/data/a-0.json.gz"),
                &format!("{ROOT}/data/b-0.json.gz")
            ]
        );
        assert!(
            !objects.keys().any(|k| k.contains("/staging/")),
            "{objects:?}"
        );
        let manifest =
            String::from_utf8(objects[&format!("{ROOT}/{FILES}")].clone()).expect("utf-8");
        let entries: Vec<DataFileEntry> = manifest
            .lines()
            .map(|l| serde_json::from_str(l).expect("entry"))
            .collect();
        assert_eq!(entries.len(), 2);
        for (entry, line) in entries.iter().zip(&lines) {
            assert_eq!(entry.item_count, line.file.entry.item_count);
            assert_eq!(entry.md5_checksum, line.file.entry.md5_checksum);
            assert!(objects.contains_key(&entry.data_file_s3_key));
        }
        let summary: ManifestSummary =
            serde_json::from_slice(&objects[&format!("{ROOT}/{SUMMARY}")]).expect("summary");
        assert_eq!(summary.item_count, 7);
        assert_eq!(summary.s3_bucket.as_deref(), Some("bkt"));
        assert!(objects.contains_key(&format!("{ROOT}/{KEY_SCHEMA}")));
        let copies = sink.bucket.calls("copy");
        sink.finish(&checkpoint).expect("a second finish");
        assert_eq!(sink.bucket.calls("copy"), copies, "nothing copied twice");
        assert_eq!(sink.bucket.objects().len(), objects.len());
        let _ = std::fs::remove_file(&sink.records);
    }

    /// GIVEN a committed file that is in neither `staging/` nor `data/` THEN the finish
    /// fails naming it, and writes no summary; GIVEN a --key other than the functions'
    /// THEN it fails before the manifests.
    #[test]
    fn a_lost_file_or_a_wrong_key_fails_the_finish_before_the_summary() {
        let runtime = runtime();
        let bucket = MemoryBucket::new();
        let lines = [staged(&bucket, "a-0.json.gz", 3)];
        bucket.remove(&lines[0].file.entry.data_file_s3_key);
        let (mut sink, checkpoint) =
            sink_over(bucket, &lines, Some("pk:S"), runtime.handle(), "lost");
        let err = sink.finish(&checkpoint).expect_err("lost").to_string();
        assert!(
            err.contains("a-0.json.gz") && err.contains("neither"),
            "{err}"
        );
        assert!(
            !sink
                .bucket
                .objects()
                .contains_key(&format!("{ROOT}/{SUMMARY}"))
        );
        let _ = std::fs::remove_file(&sink.records);

        let bucket = MemoryBucket::new();
        let lines = [staged(&bucket, "a-0.json.gz", 3)];
        let (mut sink, checkpoint) =
            sink_over(bucket, &lines, Some("pk:S"), runtime.handle(), "key");
        sink.export
            .learned
            .set(KeySchema::parse("pk:S,sk:N").expect("key"));
        let err = sink.finish(&checkpoint).expect_err("wrong key").to_string();
        assert!(
            err.contains("--key pk:S") && err.contains("pk:S,sk:N"),
            "{err}"
        );
        assert!(
            !sink
                .bucket
                .objects()
                .contains_key(&format!("{ROOT}/{FILES}"))
        );
        let _ = std::fs::remove_file(&sink.records);

        // Resumed with every slice done, no call hears the key again: what a first commit
        // recorded is what --key is held to, and what is recorded without --key.
        let bucket = MemoryBucket::new();
        let lines = [staged(&bucket, "a-0.json.gz", 3)];
        let said = RecordedKeySchema::of(&KeySchema::parse("pk:S,sk:N").expect("key"));
        let (mut sink, checkpoint) =
            sink_over(bucket, &lines, Some("pk:S"), runtime.handle(), "resumed");
        std::fs::write(
            said_key_path(&sink.records),
            serde_json::to_vec(&said).expect("json"),
        )
        .expect("kept by an earlier run's first commit");
        let err = sink.finish(&checkpoint).expect_err("wrong key").to_string();
        assert!(err.contains("pk:S,sk:N"), "{err}");
        sink.key = None;
        sink.finish(&checkpoint).expect("without --key");
        let recorded: RecordedKeySchema =
            serde_json::from_slice(&sink.bucket.objects()[&format!("{ROOT}/{KEY_SCHEMA}")])
                .expect("recorded");
        assert_eq!(recorded, said);
        let _ = std::fs::remove_file(&sink.records);
        let _ = std::fs::remove_file(said_key_path(&sink.records));
    }

    #[test]
    fn file_lines_must_be_files_in_staging() {
        let bucket = MemoryBucket::new();
        let line = staged(&bucket, "a-0.json.gz", 3).to_line();
        let prefix = export().staging_prefix();
        assert_eq!(file_line_items(&line, &prefix), Ok(3));
        let mut other = staged(&bucket, "b-0.json.gz", 1);
        other.file.entry.data_file_s3_key = format!("{ROOT}/data/b-0.json.gz");
        let err = file_line_items(&other.to_line(), &prefix).expect_err("not staging");
        assert!(err.contains("not in this export's"), "{err}");
        let err = file_line_items(b"{\"Item\":{}}\n", &prefix).expect_err("an item");
        assert!(err.contains("not a file line"), "{err}");
    }
}
