//! Reading a DynamoDB export from disk or from S3: the export folder found under a prefix, its
//! manifests checked against each other and against the files present, and the data
//! files' bytes against their checksums. The layout itself is [`crate::format::export`].

use crate::format::export::{
    DATA_DIR, DataFileEntry, EXPORTS_DIR, FILES, KEY_SCHEMA, ManifestSummary, OUTPUT_FORMAT,
    RecordedKeySchema, SUMMARY, md5_base64,
};
use crate::format::key::KeySchema;
use crate::load::input::{Remote, Source};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

/// What is wrong with an export, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Neither an export folder nor a prefix holding exactly one.
    #[error("{0}")]
    NotAnExport(String),
    /// A manifest cannot be read or says something impossible.
    #[error("{file}: {message}")]
    Manifest {
        /// The manifest.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A data file the manifest lists is not there.
    #[error("{0}: listed in manifest-files.json but missing")]
    Missing(PathBuf),
    /// A data file is there that the manifest does not list.
    #[error("{0}: not listed in manifest-files.json (an extra file, or another export's)")]
    Extra(PathBuf),
    /// A data file's bytes are not what the manifest says.
    #[error("{file}: corrupt: its MD5 is {actual}, manifest-files.json says {expected}")]
    Checksum {
        /// The data file.
        file: PathBuf,
        /// The manifest's `md5Checksum`.
        expected: String,
        /// The file's.
        actual: String,
    },
    /// A data file holds another number of items than the manifest says.
    #[error("{file}: holds {actual} items, manifest-files.json says {expected}")]
    Count {
        /// The data file.
        file: PathBuf,
        /// The manifest's `itemCount`.
        expected: u64,
        /// Item lines in the file.
        actual: u64,
    },
    /// Reading failed.
    #[error("{file}")]
    Io {
        /// The file being read.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// One data file of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Where it is, for messages (`s3://...` for an object).
    pub path: PathBuf,
    /// How it is read.
    pub source: Source,
    /// Its manifest entry.
    pub entry: DataFileEntry,
}

/// An export read from disk: its manifests checked against each other and against the
/// files present, not yet against the data files' bytes ([`Export::verify_checksums`]).
#[derive(Debug, Clone)]
pub struct Export {
    /// The export's own folder (`.../AWSDynamoDB/<ExportId>`).
    pub dir: PathBuf,
    /// The summary manifest.
    pub summary: ManifestSummary,
    /// The data files, in the files manifest's order.
    pub files: Vec<DataFile>,
    /// Base64 MD5 of `manifest-files.json`: what a checkpoint of this export matches.
    pub manifest_md5: String,
    /// The key schema recorded beside the manifests, if any.
    pub key_schema: Option<KeySchema>,
}

/// The export folder `dir` names: `dir` itself when it holds `manifest-summary.json`,
/// else the one `AWSDynamoDB/<ExportId>/` under it.
pub fn locate(dir: &Path) -> Result<PathBuf, ExportError> {
    if dir.join(SUMMARY).is_file() {
        return Ok(dir.to_path_buf());
    }
    let exports = dir.join(EXPORTS_DIR);
    let Ok(entries) = std::fs::read_dir(&exports) else {
        return Err(ExportError::NotAnExport(format!(
            "{}: neither an export (no {SUMMARY}) nor a prefix holding {EXPORTS_DIR}/<ExportId>/",
            dir.display()
        )));
    };
    let found: BTreeSet<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join(SUMMARY).is_file())
        .collect();
    let mut found = found.into_iter();
    match (found.next(), found.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(ExportError::NotAnExport(format!(
            "{}: no export with a {SUMMARY} in it",
            exports.display()
        ))),
        (Some(a), Some(b)) => Err(ExportError::NotAnExport(format!(
            "{} holds more than one export ({}, {}, ...): name the one to load",
            exports.display(),
            a.display(),
            b.display()
        ))),
    }
}

/// The path, under the export folder, of an S3 key written by this export: the part
/// after `AWSDynamoDB/<ExportId>/` (keys carry the export prefix, which the local copy
/// may not).
fn local_part(key: &str) -> Option<&str> {
    let marker = format!("{EXPORTS_DIR}/");
    let rest = match key.rfind(&marker) {
        Some(at) => &key[at + marker.len()..],
        None => return Some(key),
    };
    rest.split_once('/').map(|(_, rest)| rest)
}

/// Where an export's files are read from: a folder on disk, or one in S3.
trait Folder {
    /// How messages name `name` in it.
    fn path(&self, name: &str) -> PathBuf;
    /// A small file's bytes (a manifest), or `None` when it is not there.
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>>;
    /// The names of the files in `data/`, sorted.
    fn data_names(&self) -> io::Result<Vec<String>>;
    /// How `data/<name>` is read.
    fn data(&self, name: &str) -> Source;

    /// Whether `data/<name>`, listed, is a file that can be read.
    fn is_data_file(&self, _name: &str) -> bool {
        true
    }
}

/// An export folder on disk.
struct Disk(PathBuf);

impl Folder for Disk {
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        // As before: only a regular file counts (a directory named like a manifest is not
        // one).
        if !self.0.join(name).is_file() {
            return Ok(None);
        }
        match std::fs::read(self.0.join(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn data_names(&self) -> io::Result<Vec<String>> {
        let data_dir = self.0.join(DATA_DIR);
        if !data_dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut names: Vec<String> = std::fs::read_dir(&data_dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    fn data(&self, name: &str) -> Source {
        Source::File(self.0.join(DATA_DIR).join(name))
    }

    fn is_data_file(&self, name: &str) -> bool {
        self.0.join(DATA_DIR).join(name).is_file()
    }
}

/// An export folder in S3: `location.prefix` is its key. Its data files' ETags, as
/// [`Folder::data_names`] listed them, pin every later read to those versions.
struct InS3(Remote, std::sync::Mutex<BTreeMap<String, Option<String>>>);

impl InS3 {
    fn new(remote: Remote) -> Self {
        Self(remote, std::sync::Mutex::default())
    }

    fn key(&self, name: &str) -> String {
        self.0.location.key(name)
    }
}

impl Folder for InS3 {
    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!(
            "s3://{}/{}",
            self.0.location.bucket,
            self.key(name)
        ))
    }

    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        self.0
            .bucket
            .get_blocking(&self.key(name), &self.0.handle)
            .map_err(|err| io::Error::other(err.to_string()))
    }

    fn data_names(&self) -> io::Result<Vec<String>> {
        let prefix = format!("{}/", self.key(DATA_DIR));
        let listed = self
            .0
            .bucket
            .list_blocking(&prefix, &self.0.handle)
            .map_err(|err| io::Error::other(err.to_string()))?;
        let mut etags = self
            .1
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(listed
            .into_iter()
            .filter_map(|o| {
                let name = o.key.strip_prefix(&prefix)?.to_string();
                etags.insert(name.clone(), o.etag);
                Some(name)
            })
            .collect())
    }

    fn data(&self, name: &str) -> Source {
        let mut remote = self.0.at(&self.key(&format!("{DATA_DIR}/{name}")));
        remote.etag = self
            .1
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
            .flatten();
        Source::Object(remote)
    }
}

/// The export folder `remote` names: itself when it holds `manifest-summary.json`, else
/// the one `AWSDynamoDB/<ExportId>/` under it. From a blocking thread.
fn locate_s3(remote: &Remote) -> Result<Remote, ExportError> {
    let io = |file: String| {
        move |source| ExportError::Io {
            file: PathBuf::from(file),
            source,
        }
    };
    let here = InS3::new(remote.clone());
    if here
        .read(SUMMARY)
        .map_err(io(remote.location.to_string()))?
        .is_some()
    {
        return Ok(remote.clone());
    }
    let exports = remote.location.key(EXPORTS_DIR);
    let listed = remote
        .bucket
        .list_blocking(&format!("{exports}/"), &remote.handle)
        .map_err(|err| ExportError::Io {
            file: PathBuf::from(format!("s3://{}/{exports}/", remote.location.bucket)),
            source: io::Error::other(err.to_string()),
        })?;
    let found: BTreeSet<String> = listed
        .iter()
        .filter_map(|o| {
            let rest = o.key.strip_prefix(&format!("{exports}/"))?;
            let (id, name) = rest.split_once('/')?;
            (name == SUMMARY).then(|| format!("{exports}/{id}"))
        })
        .collect();
    let mut found = found.into_iter();
    match (found.next(), found.next()) {
        (Some(one), None) => Ok(remote.at(&one)),
        (None, _) => Err(ExportError::NotAnExport(format!(
            "{}: neither an export (no {SUMMARY}) nor a prefix holding {EXPORTS_DIR}/<ExportId>/{SUMMARY}",
            remote.location
        ))),
        (Some(a), Some(b)) => Err(ExportError::NotAnExport(format!(
            "s3://{}/{exports} holds more than one export ({a}, {b}, ...): name the one to load",
            remote.location.bucket
        ))),
    }
}

impl Export {
    /// Reads the export `dir` names (see [`locate`]): its manifests, every data file
    /// they list present, no other file in `data/`, the items adding up.
    pub fn open(dir: &Path) -> Result<Self, ExportError> {
        let dir = locate(dir)?;
        Self::open_in(&Disk(dir.clone()), dir)
    }

    /// [`Export::open`] of an export in S3 (`s3://BUCKET/PREFIX`, the folder or a prefix
    /// holding one), from a blocking thread: its objects are read as they stream.
    pub fn open_s3(remote: &Remote) -> Result<Self, ExportError> {
        let folder = locate_s3(remote)?;
        let dir = PathBuf::from(folder.location.to_string());
        Self::open_in(&InS3::new(folder), dir)
    }

    fn open_in(folder: &dyn Folder, dir: PathBuf) -> Result<Self, ExportError> {
        let io = |file: &Path| {
            let file = file.to_path_buf();
            move |source| ExportError::Io { file, source }
        };
        let bad = |file: &Path, message: String| ExportError::Manifest {
            file: file.to_path_buf(),
            message,
        };
        let read = |name: &str| -> Result<Vec<u8>, ExportError> {
            let path = folder.path(name);
            folder
                .read(name)
                .map_err(io(&path))?
                .ok_or_else(|| ExportError::Io {
                    file: path,
                    source: io::Error::new(io::ErrorKind::NotFound, "not there"),
                })
        };
        // Listed first: in S3 the listing pins the version of every file read later.
        let data_path = folder.path(DATA_DIR);
        let present: BTreeSet<String> = folder
            .data_names()
            .map_err(io(&data_path))?
            .into_iter()
            .collect();
        let summary_path = folder.path(SUMMARY);
        let text = String::from_utf8(read(SUMMARY)?)
            .map_err(|_| bad(&summary_path, "not UTF-8".into()))?;
        let summary: ManifestSummary =
            serde_json::from_str(&text).map_err(|e| bad(&summary_path, e.to_string()))?;
        if summary.output_format != OUTPUT_FORMAT {
            return Err(bad(
                &summary_path,
                format!(
                    "outputFormat {:?}: only {OUTPUT_FORMAT} is read",
                    summary.output_format
                ),
            ));
        }
        if let Some(kind) = &summary.export_type
            && kind != "FULL_EXPORT"
        {
            return Err(bad(
                &summary_path,
                format!("exportType {kind:?}: only full exports hold items"),
            ));
        }
        if local_part(&summary.manifest_files_s3_key) != Some(FILES) {
            return Err(bad(
                &summary_path,
                format!(
                    "manifestFilesS3Key {:?} is not this export's {FILES}",
                    summary.manifest_files_s3_key
                ),
            ));
        }
        let files_path = folder.path(FILES);
        let raw = read(FILES)?;
        let manifest_md5 = md5_base64(raw.as_slice()).map_err(io(&files_path))?;
        let text = String::from_utf8(raw).map_err(|_| bad(&files_path, "not UTF-8".into()))?;
        let mut files = Vec::new();
        let mut listed = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = |message: String| bad(&files_path, format!("line {}: {message}", index + 1));
            let entry: DataFileEntry = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
            let name = local_part(&entry.data_file_s3_key)
                .and_then(|rest| rest.strip_prefix(&format!("{DATA_DIR}/")))
                .filter(|name| {
                    !name.is_empty() && !name.contains('/') && *name != ".." && *name != "."
                })
                .ok_or_else(|| {
                    at(format!(
                        "dataFileS3Key {:?} is not a file in this export's {DATA_DIR}/",
                        entry.data_file_s3_key
                    ))
                })?
                .to_string();
            if listed.insert(name.clone(), index + 1).is_some() {
                return Err(at(format!("{name} is listed twice")));
            }
            files.push(DataFile {
                path: folder.path(&format!("{DATA_DIR}/{name}")),
                source: folder.data(&name),
                entry,
            });
        }
        let total: u64 = files.iter().map(|f| f.entry.item_count).sum();
        if total != summary.item_count {
            return Err(bad(
                &summary_path,
                format!(
                    "itemCount {} but the data files of {FILES} add up to {total}",
                    summary.item_count
                ),
            ));
        }
        for file in &files {
            let name = file
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !present.contains(&name) || !folder.is_data_file(&name) {
                return Err(ExportError::Missing(file.path.clone()));
            }
        }
        for name in &present {
            if !listed.contains_key(name) {
                return Err(ExportError::Extra(
                    folder.path(&format!("{DATA_DIR}/{name}")),
                ));
            }
        }
        let schema_path = folder.path(KEY_SCHEMA);
        let key_schema = match folder.read(KEY_SCHEMA).map_err(io(&schema_path))? {
            Some(text) => {
                let recorded: RecordedKeySchema =
                    serde_json::from_slice(&text).map_err(|e| bad(&schema_path, e.to_string()))?;
                Some(recorded.schema().map_err(|e| bad(&schema_path, e))?)
            }
            None => None,
        };
        Ok(Self {
            dir,
            summary,
            files,
            manifest_md5,
            key_schema,
        })
    }

    /// Checks every data file's bytes against its `md5Checksum`, in manifest order.
    pub fn verify_checksums(&self) -> Result<(), ExportError> {
        for file in &self.files {
            let opened = file.source.open_raw().map_err(|source| ExportError::Io {
                file: file.path.clone(),
                source,
            })?;
            let actual = md5_base64(opened).map_err(|source| ExportError::Io {
                file: file.path.clone(),
                source,
            })?;
            if actual != file.entry.md5_checksum {
                return Err(ExportError::Checksum {
                    file: file.path.clone(),
                    expected: file.entry.md5_checksum.clone(),
                    actual,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_resolve_inside_the_export_with_or_without_the_prefix() {
        assert_eq!(
            local_part("2020-Nov/AWSDynamoDB/0123-ab/data/x.json.gz"),
            Some("data/x.json.gz")
        );
        assert_eq!(
            local_part("AWSDynamoDB/0123-ab/manifest-files.json"),
            Some(FILES)
        );
        assert_eq!(local_part("data/x.json.gz"), Some("data/x.json.gz"));
    }
}
