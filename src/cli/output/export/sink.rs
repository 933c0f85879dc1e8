//! The export's [`Sink`]: each committed call's lines as one gzip data file, every item's
//! key checked against `--key` first, and the manifests written when the run is complete.

use super::files::*;
use crate::cli::output::checkpoint::Checkpoint;
use crate::cli::output::lock::CheckpointLock;
use crate::cli::output::sink::Sink;
use crate::format::export::{
    DATA_DIR, DataFileEntry, EXPORTS_DIR, FILES, FILES_CHECKSUM, ManifestSummary, OUTPUT_FORMAT,
    SUMMARY, SUMMARY_CHECKSUM, VERSION, hex_md5, md5_base64,
};
use crate::format::key::{KeySchema, type_name};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

/// The committed output as export data files.
#[derive(Debug)]
pub struct ExportSink {
    /// `DIR/AWSDynamoDB/<ExportId>`.
    folder: PathBuf,
    /// The key every item must carry (`--key`).
    schema: KeySchema,
    /// Held for the run: no other run writes this DIR meanwhile.
    _lock: CheckpointLock,
}

impl ExportSink {
    pub(crate) fn new(folder: PathBuf, schema: KeySchema, lock: CheckpointLock) -> Self {
        Self {
            folder,
            schema,
            _lock: lock,
        }
    }

    fn id(&self) -> String {
        self.folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The summary manifest of the data files, holding `items`.
    fn summary(&self, items: u64) -> ManifestSummary {
        let id = self.id();
        manifest_summary(&id, items, &format!("{EXPORTS_DIR}/{id}"))
    }
}

/// The summary manifest of export `id` (whose folder's key is `root`) holding `items`,
/// ended now.
pub(crate) fn manifest_summary(id: &str, items: u64, root: &str) -> ManifestSummary {
    let started = id
        .split_once('-')
        .and_then(|(ms, _)| ms.parse::<u64>().ok())
        .unwrap_or_else(now_millis);
    ManifestSummary {
        version: VERSION.into(),
        export_arn: None,
        start_time: Some(crate::format::time::iso8601(started)),
        end_time: Some(crate::format::time::iso8601(now_millis())),
        table_arn: None,
        table_id: None,
        // A scan over minutes is not one point in time: left out, not made up.
        export_time: None,
        s3_bucket: None,
        s3_prefix: None,
        s3_sse_algorithm: None,
        s3_sse_kms_key_id: None,
        manifest_files_s3_key: format!("{root}/{FILES}"),
        billed_size_bytes: None,
        item_count: items,
        output_format: OUTPUT_FORMAT.into(),
        export_type: None,
    }
}

/// Checks that an item line (`{"Item":{...}}`) carries every key attribute of `schema`
/// with its type.
pub(crate) fn check_key(schema: &KeySchema, line: &[u8]) -> Result<(), String> {
    #[derive(Deserialize)]
    struct ItemLine<'a> {
        #[serde(rename = "Item", borrow)]
        item: HashMap<String, &'a RawValue>,
    }
    let parsed: ItemLine = serde_json::from_slice(line)
        .map_err(|e| format!("not a line of DynamoDB JSON ({{\"Item\":{{...}}}}): {e}"))?;
    for attribute in schema.attributes() {
        let wanted = type_name(attribute.key_type);
        let value = parsed
            .item
            .get(&attribute.name)
            .ok_or_else(|| format!("no key attribute {:?}", attribute.name))?;
        let typed: HashMap<String, &RawValue> = serde_json::from_str(value.get())
            .map_err(|_| format!("key attribute {:?} is not a typed value", attribute.name))?;
        if typed.len() != 1 || !typed.contains_key(wanted) {
            let got: Vec<&String> = typed.keys().collect();
            return Err(format!(
                "key attribute {:?} is {got:?}, not {wanted}",
                attribute.name
            ));
        }
    }
    Ok(())
}

impl Sink for ExportSink {
    fn put(&mut self, at: u64, spool: &mut File) -> io::Result<u64> {
        let name = |to| data_name(at, to);
        let tmp = self.folder.join(format!(".{at:020}{TMP_SUFFIX}"));
        let file = File::create(&tmp)?;
        let mut gzip = GzEncoder::new(
            Hashing {
                inner: BufWriter::with_capacity(256 << 10, file),
                md5: Md5::new(),
            },
            // Level 1: a call's lines are compressed while the other slices stream; the
            // higher levels cost several times the CPU for a few percent (FIELD-NOTES).
            Compression::fast(),
        );
        let mut reader = BufReader::with_capacity(256 << 10, spool);
        let mut line = Vec::new();
        let mut copied = 0u64;
        let mut index = 0u64;
        let written = loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break Ok(()),
                Ok(n) => copied += n as u64,
                Err(err) => break Err(err),
            }
            index += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if let Err(why) = check_key(&self.schema, &line) {
                break Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "line {index} of a call does not fit --key {}: {why}",
                        self.schema
                    ),
                ));
            }
            if let Err(err) = gzip.write_all(&line) {
                break Err(err);
            }
        };
        let finished = written
            .and_then(|()| gzip.finish())
            .and_then(|hashing| hashing.inner.into_inner().map_err(|e| e.into_error()))
            .and_then(|file| file.sync_all());
        if let Err(err) = finished {
            let _ = std::fs::remove_file(&tmp);
            return Err(err);
        }
        if copied == 0 {
            // A call with no items: no data file (and no span) for it.
            let _ = std::fs::remove_file(&tmp);
            return Ok(0);
        }
        let data = self.folder.join(DATA_DIR);
        std::fs::rename(&tmp, data.join(name(at + copied)))?;
        sync_dir(&data)?;
        Ok(copied)
    }

    fn put_bytes(&mut self, _at: u64, _bytes: &[u8]) -> io::Result<()> {
        Err(no_trailer_line())
    }

    fn sync(&mut self) -> io::Result<()> {
        // Each data file was synced, and its name into its directory, by `put`.
        Ok(())
    }

    fn cut_back(&mut self, length: u64) -> io::Result<()> {
        cut_back(&self.folder, length)
    }

    fn path(&self) -> PathBuf {
        self.folder.clone()
    }

    /// The manifests, from the data files on disk (MD5 of each, its lines counted), the
    /// summary last; their item count must be the checkpoint's.
    fn finish(&mut self, checkpoint: &Checkpoint) -> io::Result<()> {
        let id = self.id();
        let data = self.folder.join(DATA_DIR);
        let mut manifest = Vec::new();
        let mut items = 0;
        for (name, _, _) in data_files(&self.folder)? {
            let path = data.join(&name);
            let md5_checksum = md5_base64(File::open(&path)?)?;
            let count = count_items(GzDecoder::new(File::open(&path)?))
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            items += count;
            let entry = DataFileEntry {
                item_count: count,
                md5_checksum,
                etag: None,
                data_file_s3_key: format!("{EXPORTS_DIR}/{id}/{DATA_DIR}/{name}"),
            };
            serde_json::to_writer(&mut manifest, &entry)?;
            manifest.push(b'\n');
        }
        if items != checkpoint.committed_items {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the data files hold {items} items, the checkpoint committed {}: not \
                     writing manifests for them",
                    checkpoint.committed_items
                ),
            ));
        }
        write_atomic(&self.folder.join(FILES), &manifest)?;
        write_atomic(
            &self.folder.join(FILES_CHECKSUM),
            hex_md5(&manifest).as_bytes(),
        )?;
        let mut summary = serde_json::to_vec(&self.summary(items))?;
        summary.push(b'\n');
        write_atomic(
            &self.folder.join(SUMMARY_CHECKSUM),
            hex_md5(&summary).as_bytes(),
        )?;
        write_atomic(&self.folder.join(SUMMARY), &summary)
    }
}

/// Non-blank lines in a decoded data file.
pub(crate) fn count_items(reader: impl Read) -> io::Result<u64> {
    let mut reader = BufReader::with_capacity(256 << 10, reader);
    let mut line = Vec::new();
    let mut count = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(count);
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            count += 1;
        }
    }
}
