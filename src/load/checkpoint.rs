//! `--checkpoint FILE`: how far a file or export load has been written.
//!
//! Batches finish out of order; the checkpoint records only the longest run of batches,
//! from the first in input order, that are all known to be written, as the position of
//! the last item of that run. A load started again with the same checkpoint skips up to
//! that position and writes the rest. Each record is written to a temporary file and
//! renamed over the last, so a killed load leaves one whole record or the one before
//! (never half of one); batches finished after the last record are written again, which
//! is harmless since puts are idempotent.

use super::batch::Position;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The record's format version.
pub const VERSION: u32 = 1;

/// What the checkpoint file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// [`VERSION`].
    pub version: u32,
    /// The table written into.
    pub table: String,
    /// The input, as named on the command line.
    pub input: String,
    /// What the input was when the load began (a file's size and modification time, an
    /// export's manifest MD5): a changed input is not resumed.
    pub fingerprint: String,
    /// Every item up to and including this position is written.
    pub written_through: Option<Position>,
    /// Items written up to there.
    pub items: u64,
    /// The whole input is written.
    pub complete: bool,
}

/// A checkpoint being kept while a load runs.
#[derive(Debug)]
pub struct Keeper {
    /// Where the record is saved; `None` keeps it in memory only (one function call's
    /// load, whose caller keeps its own checkpoint).
    path: Option<PathBuf>,
    record: Record,
    /// Batch index of the first batch not yet known written.
    next: u64,
    /// Finished batches past `next`: whether each was written in full, its last position
    /// and item count.
    finished: BTreeMap<u64, (bool, Option<Position>, u64)>,
}

impl Keeper {
    /// Reads `path` if it exists, for `table` and `input` as `fingerprint` describes it;
    /// a fresh record otherwise. A record of another table, input or fingerprint is an
    /// error: resuming it would skip the wrong items.
    pub fn open(path: &Path, table: &str, input: &str, fingerprint: &str) -> Result<Self, String> {
        let fresh = Record {
            version: VERSION,
            table: table.to_string(),
            input: input.to_string(),
            fingerprint: fingerprint.to_string(),
            written_through: None,
            items: 0,
            complete: false,
        };
        let record = match std::fs::read(path) {
            Ok(bytes) => {
                let saved: Record = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("checkpoint {}: {e}", path.display()))?;
                if saved.version != VERSION {
                    return Err(format!(
                        "checkpoint {}: version {}, expected {VERSION}",
                        path.display(),
                        saved.version
                    ));
                }
                if (saved.table.as_str(), saved.input.as_str()) != (table, input) {
                    return Err(format!(
                        "checkpoint {} is of loading {} into {}, not {input} into {table}; \
                         delete it to start over",
                        path.display(),
                        saved.input,
                        saved.table
                    ));
                }
                if saved.fingerprint != fingerprint {
                    return Err(format!(
                        "checkpoint {}: {input} changed since the checkpoint was made \
                         ({} then, {fingerprint} now); delete it to start over",
                        path.display(),
                        saved.fingerprint
                    ));
                }
                saved
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => fresh,
            Err(err) => return Err(format!("checkpoint {}: {err}", path.display())),
        };
        Ok(Self {
            path: Some(path.to_path_buf()),
            record,
            next: 0,
            finished: BTreeMap::new(),
        })
    }

    /// A record kept in memory, never saved: how far this run has written, from
    /// `resume` on.
    pub fn in_memory(table: &str, input: &str, resume: Option<Position>) -> Self {
        Self {
            path: None,
            record: Record {
                version: VERSION,
                table: table.to_string(),
                input: input.to_string(),
                fingerprint: String::new(),
                written_through: resume,
                items: 0,
                complete: false,
            },
            next: 0,
            finished: BTreeMap::new(),
        }
    }

    /// Where the load stands.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Notes that batch `index` (numbered from 0 in this run) finished, written in full or
    /// not, holding `items` up to `last`; saves the record when the written run grew.
    pub fn finished(
        &mut self,
        index: u64,
        complete: bool,
        last: Option<Position>,
        items: u64,
    ) -> Result<(), String> {
        self.finished.insert(index, (complete, last, items));
        let mut grew = false;
        while let Some((true, last, items)) = self.finished.get(&self.next).copied() {
            self.finished.remove(&self.next);
            self.next += 1;
            self.record.written_through = last.or(self.record.written_through);
            self.record.items += items;
            grew = true;
        }
        if grew { self.save() } else { Ok(()) }
    }

    /// Records that every line up to `line` (of a single input) is written, and saves.
    pub fn advance(&mut self, line: u64) -> Result<(), String> {
        let position = Position { file: 0, line };
        if self.record.written_through.is_some_and(|at| at >= position) {
            return Ok(());
        }
        self.record.written_through = Some(position);
        self.save()
    }

    /// Marks the load complete and saves.
    pub fn complete(&mut self) -> Result<(), String> {
        self.record.complete = true;
        self.save()
    }

    fn save(&self) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let fail = |e: std::io::Error| format!("checkpoint {}: {e}", path.display());
        let mut temporary = path.clone().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        let bytes = serde_json::to_vec(&self.record).map_err(|e| e.to_string())?;
        std::fs::write(&temporary, bytes).map_err(fail)?;
        std::fs::rename(&temporary, path).map_err(fail)
    }
}

/// The fingerprint of a regular file: its size and modification time.
pub fn file_fingerprint(path: &Path) -> Result<String, String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let modified = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(format!("file size {} modified {modified}", metadata.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u64) -> Option<Position> {
        Some(Position { file: 0, line })
    }

    #[test]
    fn only_the_run_of_written_batches_from_the_first_counts() {
        let dir = std::env::temp_dir().join(format!("ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("load.json");
        let _ = std::fs::remove_file(&path);
        let mut keeper = Keeper::open(&path, "t", "in.ndjson", "f1").expect("fresh");
        keeper.finished(1, true, at(50), 25).expect("save");
        assert_eq!(
            keeper.record().written_through,
            None,
            "batch 0 is not done yet"
        );
        keeper.finished(0, true, at(25), 25).expect("save");
        assert_eq!(keeper.record().written_through, at(50));
        keeper.finished(2, false, at(75), 25).expect("save");
        keeper.finished(3, true, at(100), 25).expect("save");
        assert_eq!(keeper.record().written_through, at(50), "batch 2 failed");
        assert_eq!(keeper.record().items, 50);

        let again = Keeper::open(&path, "t", "in.ndjson", "f1").expect("resume");
        assert_eq!(again.record().written_through, at(50));
        let err = Keeper::open(&path, "t", "in.ndjson", "f2").expect_err("changed");
        assert!(err.contains("changed"), "{err}");
        let err = Keeper::open(&path, "other", "in.ndjson", "f1").expect_err("other table");
        assert!(err.contains("delete it"), "{err}");
        std::fs::remove_dir_all(&dir).expect("clean");
    }
}
