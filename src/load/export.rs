//! Reading a DynamoDB export from disk: the export folder found under a prefix, its
//! manifests checked against each other and against the files present, and the data
//! files' bytes against their checksums. The layout itself is [`crate::format::export`].

use crate::format::export::{
    DATA_DIR, DataFileEntry, EXPORTS_DIR, FILES, KEY_SCHEMA, ManifestSummary, OUTPUT_FORMAT,
    RecordedKeySchema, SUMMARY, md5_base64,
};
use crate::format::key::KeySchema;
use std::collections::{BTreeMap, BTreeSet};
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
    /// Where it is.
    pub path: PathBuf,
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

impl Export {
    /// Reads the export `dir` names (see [`locate`]): its manifests, every data file
    /// they list present, no other file in `data/`, the items adding up.
    pub fn open(dir: &Path) -> Result<Self, ExportError> {
        let dir = locate(dir)?;
        let io = |file: &Path| {
            let file = file.to_path_buf();
            move |source| ExportError::Io { file, source }
        };
        let bad = |file: &Path, message: String| ExportError::Manifest {
            file: file.to_path_buf(),
            message,
        };
        let summary_path = dir.join(SUMMARY);
        let text = std::fs::read_to_string(&summary_path).map_err(io(&summary_path))?;
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
        let files_path = dir.join(FILES);
        let raw = std::fs::read(&files_path).map_err(io(&files_path))?;
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
                path: dir.join(DATA_DIR).join(&name),
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
            if !file.path.is_file() {
                return Err(ExportError::Missing(file.path.clone()));
            }
        }
        let data_dir = dir.join(DATA_DIR);
        if data_dir.is_dir() {
            let entries = std::fs::read_dir(&data_dir).map_err(io(&data_dir))?;
            let mut present: Vec<PathBuf> =
                entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            present.sort();
            for path in present {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                if !name.is_some_and(|n| listed.contains_key(&n)) {
                    return Err(ExportError::Extra(path));
                }
            }
        }
        let schema_path = dir.join(KEY_SCHEMA);
        let key_schema = if schema_path.is_file() {
            let text = std::fs::read_to_string(&schema_path).map_err(io(&schema_path))?;
            let recorded: RecordedKeySchema =
                serde_json::from_str(&text).map_err(|e| bad(&schema_path, e.to_string()))?;
            Some(recorded.schema().map_err(|e| bad(&schema_path, e))?)
        } else {
            None
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
            let opened = std::fs::File::open(&file.path).map_err(|source| ExportError::Io {
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
