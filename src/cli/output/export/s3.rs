//! `scanstream pull --layout export -o s3://BUCKET/PREFIX`: the functions write the data
//! files to S3 themselves (`to=`, docs/export.md), and this client commits their records,
//! not their items:
//!
//! ```text
//! PREFIX/AWSDynamoDB/<ExportId>/_started                    written first, empty
//! PREFIX/AWSDynamoDB/<ExportId>/data/<call>-<n>.json.gz     written by the functions
//! PREFIX/AWSDynamoDB/<ExportId>/scanstream-key-schema.json  what the streamer says (or --key)
//! PREFIX/AWSDynamoDB/<ExportId>/manifest-files.json (+ .checksum)
//! PREFIX/AWSDynamoDB/<ExportId>/manifest-summary.json (+ .checksum)   written last
//! ```
//!
//! A call's response is its file lines (`{"file":{...},"cursor":...}`) and its trailer.
//! The worker checks that the lines are files in this export's `data/` whose items add up
//! to the trailer's, and the call is committed as a pull to `-o FILE` commits one: its
//! lines appended to a local records file beside the checkpoint, and the checkpoint saved,
//! in one step ([`crate::cli::output::commit`]). So a file is this export's exactly when a
//! committed call announced it. Files of calls that were cut, failed, given up on or
//! killed are in `data/` too, and listed nowhere: when every slice is done, [`S3Sink`]
//! deletes them, then writes the manifests from the records, the summary last. A run
//! killed at any point resumes from the checkpoint, under the same `<ExportId>`, and
//! finishing again is harmless.
//!
//! The one file a finish can miss: a call the client gave up on (cut by
//! `--idle-timeout`) whose invocation still runs, and completes a file after the listing.
//! The streamer aborts its upload when its response is dropped, which ends most of them.

use crate::cli::output::CommitError;
use crate::cli::output::checkpoint::Checkpoint;
use crate::cli::output::commit::Committer;
use crate::cli::output::export::sink::manifest_summary;
use crate::cli::output::export::{EXPORT_ID, new_id};
use crate::cli::output::paths::Files;
use crate::cli::output::sink::Sink;
use crate::cli::output::stored;
use crate::dynamo::s3::Bucket;
use crate::dynamo::s3::objects::Objects;
use crate::format::export::{
    DATA_DIR, DataFileEntry, EXPORTS_DIR, ExportedFile, ExportedFileLine, FILES, FILES_CHECKSUM,
    KEY_SCHEMA, RecordedKeySchema, STARTED, SUMMARY, SUMMARY_CHECKSUM, hex_md5,
};
use crate::format::key::KeySchema;
use crate::format::location::S3Location;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The table's key schema as the streamer says it (a response header), shared by the
/// workers, which read it, and the sink, which records it.
#[derive(Debug, Default, Clone)]
pub struct LearnedKey(Arc<Mutex<Option<KeySchema>>>);

impl LearnedKey {
    /// Records what a response said.
    pub fn set(&self, key: KeySchema) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(key);
    }

    /// What the responses said, if one did.
    pub fn get(&self) -> Option<KeySchema> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// An export to S3 under way: where it goes and under which id.
#[derive(Debug, Clone)]
pub struct S3Export {
    /// `s3://BUCKET/PREFIX`, as given.
    pub location: S3Location,
    /// `<ExportId>`: the checkpoint's when it resumes one.
    pub id: String,
    /// The key schema the responses said.
    pub learned: LearnedKey,
}

impl S3Export {
    /// The key of the export's folder, `PREFIX/AWSDynamoDB/<ExportId>`.
    pub fn root(&self) -> String {
        self.location.key(&format!("{EXPORTS_DIR}/{}", self.id))
    }

    /// The start of every data file's key, `.../data/`.
    pub fn data_prefix(&self) -> String {
        format!("{}/{DATA_DIR}/", self.root())
    }

    /// The `to=` each call sends: the export's `data/` folder.
    pub fn to_param(&self) -> String {
        format!("s3://{}/{}/{DATA_DIR}", self.location.bucket, self.root())
    }

    /// The export's URL, as the summary prints it.
    pub fn url(&self) -> String {
        format!("s3://{}/{}/", self.location.bucket, self.root())
    }
}

/// The checkpoint of an export to `location` in the working directory when none is named:
/// `scanstream-s3-BUCKET-PREFIX.ckpt`, the prefix's `/` and anything unusual as `-`.
pub fn default_checkpoint(location: &S3Location) -> PathBuf {
    let name: String = format!("scanstream-s3-{}-{}", location.bucket, location.prefix)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    Files::default_checkpoint(Path::new(name.trim_end_matches('-')))
}

/// The records file kept beside `checkpoint`: the committed calls' file lines.
pub fn records_path(checkpoint: &Path) -> PathBuf {
    crate::cli::output::paths::sibling(checkpoint, "", ".files")
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
    let id = saved.unwrap_or_else(new_id);
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

/// The items of an export call's file lines `ready` (whole lines), each checked to be a
/// file in `data_prefix`; why not, naming the line.
pub fn file_line_items(ready: &[u8], data_prefix: &str) -> Result<u64, String> {
    let mut items = 0u64;
    for line in ready.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let file = ExportedFileLine::of_line(line).ok_or_else(|| {
            format!(
                "an export call sent a line that is not a file line: {}",
                String::from_utf8_lossy(&line[..line.len().min(200)])
            )
        })?;
        let key = &file.file.entry.data_file_s3_key;
        let name = key.strip_prefix(data_prefix).unwrap_or_default();
        if name.is_empty() || name.contains('/') {
            return Err(format!(
                "an export call announced {key:?}, which is not in this export's {data_prefix}"
            ));
        }
        items = items.saturating_add(file.file.entry.item_count);
    }
    Ok(items)
}

/// The committed records in a local file, and the export's objects in S3.
#[derive(Debug)]
pub struct S3Sink {
    /// The records file.
    records: PathBuf,
    /// Writes the records file.
    inner: Option<Box<dyn Sink>>,
    bucket: Bucket,
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

impl S3Sink {
    fn inner(&mut self) -> io::Result<&mut Box<dyn Sink>> {
        self.inner
            .as_mut()
            .ok_or_else(|| other("the records file is not open".into()))
    }

    /// The key schema to record: `--key`, or what the streamer said.
    fn key(&self) -> Option<KeySchema> {
        self.key.clone().or_else(|| self.export.learned.get())
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
        let prefix = self.export.data_prefix();
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

    /// Deletes what no record names, checks every record's object is there, and writes the
    /// key schema and the manifests, the summary last.
    async fn publish(&self, files: Vec<ExportedFile>, items: u64) -> Result<(), String> {
        let bucket = &self.export.location.bucket;
        let root = self.export.root();
        let named = |key: &str| format!("s3://{bucket}/{key}");
        let listed = self
            .bucket
            .list(&self.export.data_prefix())
            .await
            .map_err(|err| format!("listing {}: {err}", named(&self.export.data_prefix())))?;
        let sizes: HashMap<&str, u64> = listed.iter().map(|o| (o.key.as_str(), o.size)).collect();
        for file in &files {
            let key = &file.entry.data_file_s3_key;
            match sizes.get(key.as_str()) {
                None => {
                    return Err(format!(
                        "{} was committed but is not in S3 (deleted since?): the export \
                         cannot be whole; --force makes a new one",
                        named(key)
                    ));
                }
                Some(&size) if size != file.bytes => {
                    return Err(format!(
                        "{} holds {size} bytes, its call announced {}: changed since",
                        named(key),
                        file.bytes
                    ));
                }
                Some(_) => {}
            }
        }
        let recorded: BTreeSet<&str> = files
            .iter()
            .map(|f| f.entry.data_file_s3_key.as_str())
            .collect();
        let strays: Vec<String> = listed
            .iter()
            .filter(|o| !recorded.contains(o.key.as_str()))
            .map(|o| o.key.clone())
            .collect();
        if !strays.is_empty() {
            tracing::info!(
                files = strays.len(),
                "deleting the data files of calls that were not committed"
            );
            self.bucket
                .delete(strays)
                .await
                .map_err(|err| format!("deleting uncommitted files: {err}"))?;
        }
        if let (Some(given), Some(said)) = (&self.key, self.export.learned.get())
            && *given != said
        {
            return Err(format!(
                "--key {given} is not the table's key schema, {said}, as the functions say it: \
                 an export recording it would restore into a table keyed otherwise; run \
                 again with --key {said}, or without --key"
            ));
        }
        match self.key() {
            Some(key) => self.put_key(&key).await?,
            None => {
                let found = self
                    .bucket
                    .get(&self.key_object())
                    .await
                    .map_err(|err| format!("reading {}: {err}", named(&self.key_object())))?;
                if found.is_none() {
                    return Err(
                        "the function never said the table's key schema (a streamer older \
                         than this client?): give --key NAME:TYPE[,NAME:TYPE]"
                            .into(),
                    );
                }
            }
        }
        let mut manifest = Vec::new();
        for file in &files {
            let entry: &DataFileEntry = &file.entry;
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
        Ok(())
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

impl Sink for S3Sink {
    fn put(&mut self, at: u64, spool: &mut File) -> io::Result<u64> {
        let copied = self.inner()?.put(at, spool)?;
        // Recorded as soon as it is known, once a run: a run that resumes with every slice
        // done makes no call to hear it from. Best effort: the finish writes it again.
        // Tried once a run: it is made under the committer's lock, so a failing S3 must
        // not cost every commit a wait.
        if !self.key_written
            && let Some(key) = self.key()
        {
            self.key_written = true;
            if let Err(err) = self.handle.block_on(self.put_key(&key)) {
                tracing::warn!(cause = %err, "the key schema is written again at the end");
            }
        }
        Ok(copied)
    }

    fn put_bytes(&mut self, _at: u64, _bytes: &[u8]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "an export has no trailer line: its manifest-summary.json says it is whole",
        ))
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
