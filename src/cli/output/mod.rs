//! Where a pull's items go: the committed output, its checkpoint and the files kept
//! beside it, and the export layout.

pub mod checkpoint;
pub mod commit;
pub mod export;
pub mod lock;
pub mod paths;
pub mod sink;
pub mod spool;
pub mod stored;

use std::path::{Path, PathBuf};

/// Why the output could not be opened, written, or resumed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Reading, writing, syncing or cutting back a file failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done (`writing`, `saving`...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another run holds the lock.
    #[error("another scanstream run is using {}", .0.display())]
    Locked(PathBuf),
    /// The files cannot be used as asked (collisions, mismatching checkpoint, ...).
    #[error("{0}")]
    Refused(String),
    /// An earlier commit failed: nothing more is written.
    #[error("the output was not written after an earlier failure: {0}")]
    Halted(String),
}

impl CommitError {
    /// The error of `what` (`writing`, `saving`...) on `path`, for `map_err`.
    pub(crate) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io { what, path, source }
    }

    /// The failure is a closed standard output (`| head`): a quiet end, not an error.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }
}
