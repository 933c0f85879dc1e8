//! The names of the files a pull keeps beside its output and checkpoint, and when two
//! spellings name the same file. A leaf module: spools, the checkpoint and its cursors'
//! folder, locks and the export writer name their files here, so no two can collide.

use crate::cli::output::CommitError;
use std::path::{Path, PathBuf};

/// The suffix of a spool's name.
pub(crate) const SPOOL_SUFFIX: &str = ".scanstream-spool";

/// How the spools of a run writing to standard output are named: they alone are unlinked
/// once open, having no output to be found beside.
pub(crate) const UNNAMED_SPOOL_PREFIX: &str = "scanstream-stdout-";

/// The spool of slice `slice` of a run writing to `output` (standard output when `None`).
pub fn spool(output: Option<&Path>, slice: usize) -> PathBuf {
    match output {
        Some(output) => sibling(output, ".", &format!(".{slice}{SPOOL_SUFFIX}")),
        None => std::env::temp_dir().join(format!(
            "{UNNAMED_SPOOL_PREFIX}{}-slice-{slice}{SPOOL_SUFFIX}",
            std::process::id()
        )),
    }
}

/// The folder of `checkpoint`'s long cursors ([`crate::cli::output::stored`]).
pub(crate) fn cursors(checkpoint: &Path) -> PathBuf {
    sibling(checkpoint, ".", ".scanstream-cursors")
}

/// `path`'s directory entry `{prefix}{name}{suffix}`.
pub(crate) fn sibling(path: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{prefix}{name}{suffix}"))
}

/// The checkpoint's temporary file: hidden, named after the checkpoint, so it is another
/// checkpoint's only if that one is named like it (refused at open for the output).
pub(crate) fn temporary(checkpoint: &Path) -> PathBuf {
    sibling(checkpoint, ".", ".scanstream-tmp")
}

/// The lock file of a checkpoint: the checkpoint itself is replaced by a rename on every
/// save, so a lock on it would not outlive the first commit.
pub(crate) fn lock_file(checkpoint: &Path) -> PathBuf {
    sibling(checkpoint, ".", ".scanstream-lock")
}

/// `path` with `..` and symlinks resolved: the file itself when it exists, else its
/// resolved directory joined with its name (the output and the checkpoint are compared
/// before either need exist).
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(path) = path.canonicalize() {
        return Some(path);
    }
    let name = path.file_name()?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    parent.canonicalize().ok().map(|dir| dir.join(name))
}

/// Whether `inner` is `outer` or lies anywhere below it, under any spelling
/// [`same_file`] knows.
pub(crate) fn inside(inner: &Path, outer: &Path) -> bool {
    let absolute = std::path::absolute(inner).unwrap_or_else(|_| inner.to_path_buf());
    absolute.ancestors().any(|up| same_file(up, outer))
}

/// Whether `a` and `b` name the same file under any spelling: the same resolved path
/// (`..`, symlinked directories), the same absolute path, or (when both exist) the same
/// inode, which catches hard links.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    if let (Some(a), Some(b)) = (resolved(a), resolved(b))
        && a == b
    {
        return true;
    }
    if std::path::absolute(a).ok() == std::path::absolute(b).ok() {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return (a.dev(), a.ino()) == (b.dev(), b.ino());
        }
    }
    false
}

/// What `scanstream pull` asked for.
#[derive(Debug, Clone)]
pub struct Files {
    /// `-o FILE`; standard output when `None`.
    pub output: Option<PathBuf>,
    /// The checkpoint (`--checkpoint`, or beside `-o` by default); `None` with
    /// `--no-checkpoint` or on standard output.
    pub checkpoint: Option<PathBuf>,
    /// `--force`: start over, whatever the output and checkpoint hold.
    pub force: bool,
}

impl Files {
    /// The checkpoint kept beside `output` when none is named.
    pub fn default_checkpoint(output: &Path) -> PathBuf {
        sibling(output, "", ".ckpt")
    }
}

/// What `-o` names: one file, or the directory of an export (`--layout export`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// The items in one file.
    File,
    /// DynamoDB's export layout in a directory.
    Export,
}

impl Files {
    /// Refuses, before anything is opened, files that would collide with `output` (of
    /// `slices` slices): a default checkpoint beside it that this run would not use, a
    /// checkpoint that is also the output, its lock, one of its spools, or that holds
    /// the output in its cursors' folder.
    pub(crate) fn refuse_clashes(
        &self,
        output: &Path,
        slices: usize,
        kind: Output,
    ) -> Result<(), CommitError> {
        let refused = |text: String| Err(CommitError::Refused(text));
        let checkpoint = self.checkpoint.as_deref();
        let beside = Self::default_checkpoint(output);
        if beside.exists() && !checkpoint.is_some_and(|c| same_file(c, &beside)) {
            let run = match kind {
                Output::File => "pull",
                Output::Export => "export",
            };
            return refused(format!(
                "{} is the checkpoint of an unfinished {run} into {}, and this run would not \
                 use it: resume with it (the same command without --no-checkpoint or \
                 --checkpoint), or remove it",
                beside.display(),
                output.display()
            ));
        }
        let Some(checkpoint) = checkpoint else {
            return Ok(());
        };
        // The cursors' folder is the checkpoint's to empty: nothing else may live in it.
        let cursors = cursors(checkpoint);
        match kind {
            Output::File => {
                for (what, path) in [
                    ("the checkpoint", checkpoint.to_path_buf()),
                    ("the checkpoint's temporary file", temporary(checkpoint)),
                    ("the checkpoint's lock", lock_file(checkpoint)),
                    ("the checkpoint's cursors", cursors.clone()),
                ] {
                    if same_file(output, &path) {
                        return refused(format!(
                            "-o {} is also {what}: name another --checkpoint",
                            output.display()
                        ));
                    }
                }
                if inside(output, &cursors) {
                    return refused(format!(
                        "-o {} is inside {}, the checkpoint's cursors folder: name another -o \
                         or --checkpoint",
                        output.display(),
                        cursors.display()
                    ));
                }
            }
            Output::Export => {
                // DIR may not be the folder or lie in it. (The folder inside DIR is a
                // checkpoint inside DIR, refused when the export opens.)
                if inside(output, &cursors) {
                    return refused(format!(
                        "-o {} and {}, the checkpoint's cursors folder, overlap: name another \
                         -o or --checkpoint",
                        output.display(),
                        cursors.display()
                    ));
                }
                // The one-file output's collisions, for the names an export keeps beside DIR.
                for (what, path) in [
                    ("-o itself", output.to_path_buf()),
                    ("the lock of -o", lock_file(output)),
                ] {
                    if same_file(checkpoint, &path) {
                        return refused(format!(
                            "--checkpoint {} is also {what}: name another --checkpoint",
                            checkpoint.display()
                        ));
                    }
                }
            }
        }
        if (0..slices).any(|k| same_file(checkpoint, &spool(Some(output), k))) {
            return refused(format!(
                "--checkpoint {} is the name of a spool: name another",
                checkpoint.display()
            ));
        }
        Ok(())
    }
}
