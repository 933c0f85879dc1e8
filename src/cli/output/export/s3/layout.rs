//! An export to S3's places: its folder, the `staging/` its calls write and the `data/` its
//! finish fills, the `to=` each call sends, the local files kept beside the checkpoint;
//! and the check of a call's file lines.

use crate::cli::output::paths::Files;
use crate::format::export::{DATA_DIR, EXPORTS_DIR, ExportedFileLine};
use crate::format::key::KeySchema;
use crate::format::location::S3Location;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Where the functions write an export's files; only the finish copies them to `data/`.
pub const STAGING_DIR: &str = "staging";

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

    /// The start of every key the functions write, `.../staging/`.
    pub fn staging_prefix(&self) -> String {
        format!("{}/{STAGING_DIR}/", self.root())
    }

    /// The `to=` each call sends: the export's `staging/` folder.
    pub fn to_param(&self) -> String {
        format!(
            "s3://{}/{}/{STAGING_DIR}",
            self.location.bucket,
            self.root()
        )
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

/// The key schema the functions said, kept beside the records file `records`.
pub fn said_key_path(records: &Path) -> PathBuf {
    crate::cli::output::paths::sibling(records, "", ".key")
}

/// The items of an export call's file lines `ready` (whole lines), each checked to be a
/// file in `prefix` (the export's `staging/`); why not, naming the line.
pub fn file_line_items(ready: &[u8], prefix: &str) -> Result<u64, String> {
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
        let name = key.strip_prefix(prefix).unwrap_or_default();
        if name.is_empty() || name.contains('/') {
            return Err(format!(
                "an export call announced {key:?}, which is not in this export's {prefix}"
            ));
        }
        items = items.saturating_add(file.file.entry.item_count);
    }
    Ok(items)
}
