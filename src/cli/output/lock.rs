//! The locks that keep a second run off an output or a checkpoint another run uses.

use crate::cli::output::CommitError;
use crate::cli::output::paths::lock_file;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// A held lock on a checkpoint's lock file; dropping it removes the file, then unlocks.
#[derive(Debug)]
pub(crate) struct CheckpointLock {
    file: File,
    path: PathBuf,
}

impl CheckpointLock {
    /// Takes the lock at once or fails: a second run must not wait for the first.
    pub(crate) fn take(checkpoint: &Path) -> Result<Self, CommitError> {
        let path = lock_file(checkpoint);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(CommitError::io("opening", &path))?;
        try_lock(&file, checkpoint)?;
        // A run that ended between our open and our lock removed the file we locked:
        // the lock guards nothing then, and a third run may hold the new file's.
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let held = file.metadata().map_err(CommitError::io("reading", &path))?;
            let now = std::fs::metadata(&path).ok();
            if now.is_none_or(|now| (now.dev(), now.ino()) != (held.dev(), held.ino())) {
                return Err(CommitError::Locked(checkpoint.to_path_buf()));
            }
        }
        Ok(Self { file, path })
    }
}

impl Drop for CheckpointLock {
    fn drop(&mut self) {
        // Removed while still held, so no run can lock it between the two steps.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

pub(crate) fn try_lock(file: &File, name: &Path) -> Result<(), CommitError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(CommitError::Locked(name.to_path_buf())),
        Err(std::fs::TryLockError::Error(err)) => Err(CommitError::Io {
            what: "locking",
            path: name.to_path_buf(),
            source: err,
        }),
    }
}
