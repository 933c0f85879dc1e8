//! The checkpoint and the committed output.
//!
//! The output grows only by whole calls (their items, committed when their trailer
//! arrived). After every commit the checkpoint file records each slice's cursor and the
//! output's committed length, written to a temporary file, synced and renamed over the old
//! one, so a kill at any moment leaves either the old checkpoint or the new one. On a
//! restart the output is cut back to the committed length: items written after the last
//! checkpoint are dropped, and read again from the checkpointed cursor.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The checkpoint format's version.
pub const VERSION: u32 = 1;

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// [`VERSION`].
    pub version: u32,
    /// The streamer's URL: a checkpoint resumes only the same read.
    pub url: String,
    /// `TotalSegments` of the read.
    pub total_segments: u32,
    /// Segments per slice.
    pub segments: u32,
    /// One per invocation.
    pub slices: Vec<SliceState>,
    /// Bytes of the output that are whole committed calls.
    pub committed_bytes: u64,
    /// Items in those bytes.
    pub committed_items: u64,
}

/// Where one slice stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SliceState {
    /// Its first segment.
    pub segment_offset: u32,
    /// The cursor of its last committed call, if it has one and is not done.
    pub cursor: Option<String>,
    /// Read to its end.
    pub done: bool,
}

/// Where committed items go, and the checkpoint that says how far they go.
#[derive(Debug)]
pub struct Committer {
    output: Output,
    checkpoint: Checkpoint,
    /// `None`: no checkpoint file (the output is standard output).
    path: Option<PathBuf>,
}

#[derive(Debug)]
enum Output {
    File(File),
    Stdout(std::io::Stdout),
}

impl Committer {
    /// Opens `output` (standard output when `None`) for `fresh`, or for the checkpoint
    /// found at `checkpoint` if there is one, cutting the output back to its committed
    /// length.
    pub fn open(
        output: Option<&Path>,
        checkpoint: Option<&Path>,
        fresh: Checkpoint,
    ) -> Result<Self, String> {
        let saved = match checkpoint {
            Some(path) if path.exists() => Some(load(path)?),
            _ => None,
        };
        let state = match saved {
            Some(saved) => {
                if (saved.url.as_str(), saved.total_segments, saved.segments)
                    != (fresh.url.as_str(), fresh.total_segments, fresh.segments)
                {
                    return Err(format!(
                        "the checkpoint is for {} with {} segments of {} a slice, not this read; \
                         use another --checkpoint file",
                        saved.url, saved.total_segments, saved.segments
                    ));
                }
                saved
            }
            None => fresh,
        };
        let output = match output {
            None if checkpoint.is_some() => {
                return Err(
                    "--checkpoint needs -o FILE: standard output cannot be cut back".into(),
                );
            }
            None => Output::Stdout(std::io::stdout()),
            Some(path) => {
                let mut file = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(path)
                    .map_err(|e| format!("opening {}: {e}", path.display()))?;
                let length = file.metadata().map_err(|e| e.to_string())?.len();
                if length < state.committed_bytes {
                    return Err(format!(
                        "{} holds {length} bytes, fewer than the {} the checkpoint committed",
                        path.display(),
                        state.committed_bytes
                    ));
                }
                // Anything past the committed length is from calls not checkpointed.
                file.set_len(state.committed_bytes)
                    .and_then(|()| file.seek(SeekFrom::End(0)).map(|_| ()))
                    .map_err(|e| format!("cutting {} back: {e}", path.display()))?;
                Output::File(file)
            }
        };
        Ok(Self {
            output,
            checkpoint: state,
            path: checkpoint.map(Path::to_path_buf),
        })
    }

    /// Where the run stands.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Appends a call's items (`spool`, whole lines) and records where its slice now
    /// stands; the checkpoint is saved before this returns.
    pub fn commit(
        &mut self,
        slice: usize,
        spool: &mut File,
        items: u64,
        next: SliceState,
    ) -> Result<(), String> {
        spool.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        let copied = match &mut self.output {
            Output::File(file) => {
                let copied = std::io::copy(spool, file).map_err(|e| e.to_string())?;
                // The checkpoint may claim only bytes that are on disk; without one a
                // crash loses the run anyway, and nothing needs to wait for the disk.
                if self.path.is_some() {
                    file.sync_data().map_err(|e| e.to_string())?;
                }
                copied
            }
            Output::Stdout(out) => {
                let mut lock = out.lock();
                let copied = std::io::copy(spool, &mut lock).map_err(|e| e.to_string())?;
                lock.flush().map_err(|e| e.to_string())?;
                copied
            }
        };
        self.checkpoint.committed_bytes += copied;
        self.checkpoint.committed_items += items;
        if let Some(state) = self.checkpoint.slices.get_mut(slice) {
            *state = next;
        }
        match &self.path {
            Some(path) => save(path, &self.checkpoint),
            None => Ok(()),
        }
    }
}

fn load(path: &Path) -> Result<Checkpoint, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let checkpoint: Checkpoint = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a scanstream checkpoint: {e}", path.display()))?;
    if checkpoint.version != VERSION {
        return Err(format!(
            "{} is a version {} checkpoint; this client reads version {VERSION}",
            path.display(),
            checkpoint.version
        ));
    }
    Ok(checkpoint)
}

/// Writes `checkpoint` beside `path`, syncs it, and renames it over `path`.
fn save(path: &Path, checkpoint: &Checkpoint) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_vec_pretty(checkpoint).map_err(|e| e.to_string())?;
    let mut file = File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("saving {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_cuts_the_output_back_to_what_was_committed() {
        let dir = std::env::temp_dir().join(format!("scanstream-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (out, ckpt) = (dir.join("out.ndjson"), dir.join("ckpt.json"));
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(&ckpt);
        let fresh = crate::pull::plan("http://x/", 2, 1);
        let mut committer = Committer::open(Some(&out), Some(&ckpt), fresh.clone()).expect("open");
        let spool_path = dir.join("spool");
        let mut spool = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&spool_path)
            .expect("spool");
        spool.write_all(b"{\"id\":1}\n{\"id\":2}\n").expect("write");
        let next = SliceState {
            segment_offset: 0,
            cursor: Some("2.c.t".into()),
            done: false,
        };
        committer
            .commit(0, &mut spool, 2, next.clone())
            .expect("commit");
        drop(committer);
        // A call that was being written when the client died.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&out)
            .and_then(|mut f| f.write_all(b"{\"id\":3}\n{\"id\""))
            .expect("partial");
        let committer = Committer::open(Some(&out), Some(&ckpt), fresh).expect("reopen");
        assert_eq!(committer.checkpoint().slices[0], next);
        assert_eq!(committer.checkpoint().committed_items, 2);
        drop(committer);
        assert_eq!(
            std::fs::read(&out).expect("out"),
            b"{\"id\":1}\n{\"id\":2}\n"
        );
        let other = crate::pull::plan("http://y/", 2, 1);
        assert!(Committer::open(Some(&out), Some(&ckpt), other).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
