//! The checkpoint on disk: one small file rewritten at every commit, long cursors apart.
//!
//! A Query slice's cursor holds its keys and a position for each: kilobytes. Kept inside
//! the checkpoint, a thousand begun slices made it megabytes, rewritten and synced at
//! every commit under the one commit lock. So a cursor longer than [`INLINE_MAX`] is
//! written once, to a file named by its SHA-256 (128 bits of it) in a folder beside the checkpoint
//! (`.NAME.scanstream-cursors/`), and the checkpoint's `cursor` holds `@` and that name
//! (a cursor token never starts with `@`).
//!
//! Order makes it safe under kill -9 at any instruction: a cursor file is written under a
//! temporary name, synced and renamed (so a file under its final name is whole), before
//! the checkpoint that names it is written, synced and renamed over the old one. The file
//! of a cursor replaced is removed after that rename once the rename is durable (its
//! directory synced; otherwise it is kept); files no checkpoint names (a kill in between,
//! a sync that failed) are removed when the next run opens the checkpoint, under its lock.

use crate::cli::output::CommitError;
use crate::cli::output::checkpoint::{Checkpoint, SliceState, VERSION};
use crate::cli::output::paths::{self, temporary};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Cursors up to this long stay in the checkpoint: a Scan's, of a few segments.
pub(crate) const INLINE_MAX: usize = 1024;

/// What a cursor kept apart starts with in the checkpoint, before its file's name.
const MARK: &str = "@";

/// A cursor file's name: the first 128 bits of its SHA-256, in hex (short, as the
/// checkpoint names every kept cursor at every commit).
fn name_of(cursor: &str) -> String {
    Sha256::digest(cursor.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the checkpoint file holds as each slice's cursor since the last save: which
/// cursor files are whole and named, and which a save replaces.
#[derive(Debug, Default)]
pub(crate) struct Saved(Vec<Option<String>>);

impl Saved {
    /// Saves `checkpoint` at `path`. With `changed`, only that slice's cursor may differ
    /// from the last save (a commit); without, any may (the first save of a run, which
    /// also removes the cursor files the checkpoint does not name).
    pub(crate) fn save(
        &mut self,
        path: &Path,
        checkpoint: &Checkpoint,
        changed: Option<usize>,
    ) -> Result<(), CommitError> {
        let folder = paths::cursors(path);
        let mut wrote = false;
        let mut on_disk = Vec::with_capacity(checkpoint.slices.len());
        for (k, slice) in checkpoint.slices.iter().enumerate() {
            let kept = self.0.get(k).cloned().flatten();
            let held = match &slice.cursor {
                Some(cursor) if cursor.len() > INLINE_MAX => {
                    if changed.is_some_and(|c| c != k) && kept.is_some() {
                        kept.clone()
                    } else {
                        let name = name_of(cursor);
                        let target = folder.join(&name);
                        if !target.exists() {
                            write_whole(&folder, &target, cursor.as_bytes())?;
                            wrote = true;
                        }
                        Some(format!("{MARK}{name}"))
                    }
                }
                other => other.clone(),
            };
            on_disk.push(held);
        }
        if wrote {
            // The new names' directory entries, and the folder's own, before the
            // checkpoint that names them.
            File::open(&folder)
                .and_then(|dir| dir.sync_all())
                .map_err(CommitError::io("syncing", &folder))?;
            sync_parent(&folder)?;
        }
        let index = Checkpoint {
            version: VERSION,
            url: checkpoint.url.clone(),
            total_segments: checkpoint.total_segments,
            segments: checkpoint.segments,
            shape: checkpoint.shape.clone(),
            slices: checkpoint
                .slices
                .iter()
                .zip(&on_disk)
                .map(|(slice, cursor)| SliceState {
                    segment_offset: slice.segment_offset,
                    cursor: cursor.clone(),
                    done: slice.done,
                })
                .collect(),
            committed_bytes: checkpoint.committed_bytes,
            committed_items: checkpoint.committed_items,
            committed_scanned: checkpoint.committed_scanned,
            committed_pages: checkpoint.committed_pages,
            committed_capacity: checkpoint.committed_capacity,
            output_tail_sha256: checkpoint.output_tail_sha256.clone(),
            first_call: checkpoint.first_call.clone(),
            started_ms: checkpoint.started_ms,
        };
        let text = serde_json::to_vec(&index).map_err(|e| CommitError::Io {
            what: "encoding",
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        let durable = replace(path, &text)?;
        if !durable {
            // The rename may not outlive a power loss: the old checkpoint, which names the
            // replaced cursor's file, may come back. Keep the file; the next run's first
            // save collects it.
            self.0 = on_disk;
            return Ok(());
        }
        let named: HashSet<&str> = on_disk
            .iter()
            .flatten()
            .filter_map(|c| c.strip_prefix(MARK))
            .collect();
        match changed {
            Some(k) => {
                if let Some(old) = self.0.get(k).cloned().flatten().as_deref()
                    && let Some(name) = old.strip_prefix(MARK)
                    && !named.contains(name)
                {
                    let _ = std::fs::remove_file(folder.join(name));
                }
            }
            None => collect(&folder, &named),
        }
        self.0 = on_disk;
        Ok(())
    }
}

/// Removes the files in `folder` not `named`: cursors replaced, and temporary files, of
/// runs killed before they removed them.
fn collect(folder: &Path, named: &HashSet<&str>) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        if !named.contains(entry.file_name().to_string_lossy().as_ref()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    if named.is_empty() {
        let _ = std::fs::remove_dir(folder);
    }
}

/// Writes `bytes` to `target` whole or not at all: a temporary file, synced, renamed.
fn write_whole(folder: &Path, target: &Path, bytes: &[u8]) -> Result<(), CommitError> {
    std::fs::create_dir_all(folder).map_err(CommitError::io("creating", folder))?;
    let tmp = target.with_extension("tmp");
    let written = File::create(&tmp)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, target));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(CommitError::io("saving", target))
}

/// Writes `text` beside `path`, syncs it, and renames it over `path`; whether the rename
/// is durable too (its directory synced).
fn replace(path: &Path, text: &[u8]) -> Result<bool, CommitError> {
    let tmp = temporary(path);
    // `create_new`: the temporary file never replaces a file that is already there.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(CommitError::io("creating", &tmp))?;
    let saved = file
        .write_all(text)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if saved.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    saved.map_err(CommitError::io("saving", path))?;
    // The rename made durable before the caller removes the cursor file it replaced: after
    // a power loss the old checkpoint must not name a file already gone. Once the rename
    // is done the save has happened, whatever the directory's sync says: failing now would
    // have the caller cut the output back below what the checkpoint on disk claims. So a
    // failed sync is reported as `false` (not durable), not as an error.
    match sync_parent(path) {
        Ok(()) => Ok(true),
        Err(err) => {
            tracing::warn!(error = %err, "the checkpoint is saved, its directory not synced");
            Ok(false)
        }
    }
}

/// Syncs the directory holding `path`, so its entries (a rename, a new folder) last.
fn sync_parent(path: &Path) -> Result<(), CommitError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(CommitError::io("syncing", parent))
}

/// Reads the checkpoint at `path`, its long cursors from their files (each checked
/// against its name).
pub(crate) fn load(path: &Path) -> Result<Checkpoint, CommitError> {
    let text = std::fs::read_to_string(path).map_err(CommitError::io("reading", path))?;
    let version = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|value| value["version"].as_u64());
    // Version 2 differs only in keeping every cursor inside.
    if let Some(version) = version.filter(|v| !(2..=u64::from(VERSION)).contains(v)) {
        return Err(CommitError::Refused(format!(
            "{} is a version {version} checkpoint; this client reads versions 2 to {VERSION}: \
             finish it with the client that wrote it, or --force to start over",
            path.display()
        )));
    }
    let mut checkpoint: Checkpoint = serde_json::from_str(&text).map_err(|e| {
        CommitError::Refused(format!(
            "{} is not a scanstream checkpoint: {e}",
            path.display()
        ))
    })?;
    let folder = paths::cursors(path);
    for slice in &mut checkpoint.slices {
        let Some(name) = slice.cursor.as_deref().and_then(|c| c.strip_prefix(MARK)) else {
            continue;
        };
        let file = folder.join(name);
        let cursor = std::fs::read_to_string(&file)
            .ok()
            .filter(|cursor| name_of(cursor) == name);
        let Some(cursor) = cursor else {
            return Err(CommitError::Refused(format!(
                "{} names a cursor kept in {}, which is missing or damaged: the slice \
                 from {} cannot be resumed; --force to start over",
                path.display(),
                file.display(),
                slice.segment_offset
            )));
        };
        slice.cursor = Some(cursor);
    }
    Ok(checkpoint)
}
