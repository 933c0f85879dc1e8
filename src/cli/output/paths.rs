//! The names of the files a pull keeps beside its output and checkpoint, and when two
//! spellings name the same file. A leaf module: spools, the checkpoint and its cursors'
//! folder, locks and the export writer name their files here, so no two can collide.

use std::path::{Path, PathBuf};

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
