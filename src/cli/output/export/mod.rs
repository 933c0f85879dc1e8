//! `scanstream pull --format dynamodb -o DIR --layout export`: the output laid out as
//! DynamoDB's export to S3 lays out its own ([`crate::format::export`] names the files and
//! fields, and reads them back):
//!
//! ```text
//! DIR/AWSDynamoDB/<ExportId>/_started                     written first, empty
//! DIR/AWSDynamoDB/<ExportId>/scanstream-key-schema.json   the --key given, DescribeTable's shape
//! DIR/AWSDynamoDB/<ExportId>/data/<from>-<to>.json.gz     one per committed call
//! DIR/AWSDynamoDB/<ExportId>/manifest-files.json (+ .checksum)
//! DIR/AWSDynamoDB/<ExportId>/manifest-summary.json (+ .checksum)   written last
//! ```
//!
//! The export is the file output's committed length cut into files: each committed call's
//! lines become one gzip data file named by the span `<from>-<to>` (20 digits each) of
//! those lines in the concatenation of every call's lines, which is what the checkpoint's
//! `committed_bytes` counts. A data file is written to a temporary name, synced and
//! renamed before the checkpoint names its end, so on a restart every data file starting
//! at or past `committed_bytes` is from a call not checkpointed and is removed (its slice
//! reads it again), and the rest must cover `0..committed_bytes` exactly, or the
//! checkpoint is not this export's. The manifests are written by [`Sink::finish`](crate::cli::output::sink::Sink::finish) when
//! every slice is done, the summary last: an export without `manifest-summary.json` is
//! unfinished, and the loader refuses it.
//!
//! The streamer does not say the table's key schema, so the user gives it (`--key`), and
//! every item is checked to carry those attributes with those types before its call is
//! committed: a wrong `--key` fails the pull at its first call instead of a restore later.
//!
//! `.checksum` files: the page names them but not their content; this writer puts the
//! hex MD5 of the manifest beside it there, and the loader does not read them.

pub mod files;
pub mod s3;
pub mod sink;

use crate::cli::output::CommitError;
use crate::cli::output::checkpoint::{Checkpoint, check_same_read};
use crate::cli::output::commit::{self, Committer};
use crate::cli::output::lock::CheckpointLock;
use crate::cli::output::paths::{Files, Output};
use crate::format::export::{
    DATA_DIR, EXPORTS_DIR, KEY_SCHEMA, RecordedKeySchema, STARTED, SUMMARY,
};
use crate::format::key::KeySchema;
use files::*;
use sink::*;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The checkpoint's [`OutputShape`](crate::cli::output::checkpoint::OutputShape) key naming
/// the export folder it was saved for: another export's checkpoint, even one whose length
/// fits, does not resume this one.
pub(crate) const EXPORT_ID: &str = "ExportId";

/// Opens `-o DIR` for an export of `fresh`'s read keyed `schema`, or resumes the export
/// there from its checkpoint. Refused, before any call: a DIR that is a file, or holds
/// anything but exports; an export there with no checkpoint to resume it (unless
/// `--force`, which replaces it); a checkpoint that is not this export's.
pub fn open(
    files: &Files,
    fresh: Checkpoint,
    schema: &KeySchema,
) -> Result<Committer, CommitError> {
    let refused = |text: String| CommitError::Refused(text);
    let Some(dir) = files.output.as_deref() else {
        return Err(refused(
            "--layout export needs -o DIR: an export is a directory".into(),
        ));
    };
    if dir.exists() && !dir.is_dir() {
        return Err(refused(format!(
            "-o {} is a file: --layout export writes a directory (an empty one, or its own \
             export)",
            dir.display()
        )));
    }
    files.refuse_clashes(dir, fresh.slices.len(), Output::Export)?;
    let checkpoint = files.checkpoint.as_deref();
    let beside = Files::default_checkpoint(dir);
    std::fs::create_dir_all(dir).map_err(CommitError::io("creating", dir))?;
    let given = dir;
    let dir = dir
        .canonicalize()
        .map_err(CommitError::io("reading", dir))?;
    if let Some(checkpoint) = checkpoint
        && let Some(parent) = checkpoint
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .and_then(|p| p.canonicalize().ok())
        && parent.starts_with(&dir)
    {
        if checkpoint == beside.as_path() && given.file_name().is_none() {
            // `-o .` or `-o ..`: the default checkpoint is named after -o's last part,
            // which these have none of, so it falls inside; the user named no checkpoint.
            return Err(refused(format!(
                "-o {} has no name of its own, so its default checkpoint ({}) would be \
                 inside the export: name the directory by its name (-o ../NAME), or give \
                 --checkpoint PATH outside it",
                given.display(),
                checkpoint.display()
            )));
        }
        return Err(refused(format!(
            "--checkpoint {} is inside -o {}: name one outside the export",
            checkpoint.display(),
            dir.display()
        )));
    }
    // The directory's own lock (beside it): two runs with two checkpoints on one DIR.
    let dir_lock = CheckpointLock::take(&dir)?;
    let lock = checkpoint.map(CheckpointLock::take).transpose()?;
    let saved = commit::left_behind(files, &dir)?;
    let resumed = saved.is_some();
    let mut state = match saved {
        Some(saved) => {
            // The export's id is the checkpoint's, not an option this run gives.
            let mut asked = fresh;
            if let Some(id) = saved.shape.get(EXPORT_ID) {
                asked.shape = asked.shape.with(EXPORT_ID, id);
            }
            check_same_read(&saved, &asked, checkpoint.unwrap_or(&dir))?;
            saved
        }
        None => fresh,
    };
    let folder = settle(&dir, &state, resumed, files.force, checkpoint)?;
    if let Some(name) = folder.file_name() {
        state.shape = state.shape.with(EXPORT_ID, name.to_string_lossy());
    }
    write_atomic(&folder.join(KEY_SCHEMA), &key_schema_json(schema)?)
        .map_err(CommitError::io("writing", &folder))?;
    let sink = ExportSink::new(folder, schema.clone(), dir_lock);
    Committer::over(Box::new(sink), state, checkpoint.map(Path::to_path_buf)).holding(lock, dir)
}

fn key_schema_json(schema: &KeySchema) -> Result<Vec<u8>, CommitError> {
    let mut text =
        serde_json::to_vec_pretty(&RecordedKeySchema::of(schema)).map_err(|e| CommitError::Io {
            what: "encoding",
            path: PathBuf::from(KEY_SCHEMA),
            source: e.into(),
        })?;
    text.push(b'\n');
    Ok(text)
}

/// The export folder this run writes: the one a resumed run left (cut back to the
/// checkpoint), or a new one in a DIR that holds nothing else.
fn settle(
    dir: &Path,
    state: &Checkpoint,
    resumed: bool,
    force: bool,
    checkpoint: Option<&Path>,
) -> Result<PathBuf, CommitError> {
    let refused = |text: String| CommitError::Refused(text);
    let exports_dir = dir.join(EXPORTS_DIR);
    let mut others = Vec::new();
    for entry in std::fs::read_dir(dir)
        .map_err(CommitError::io("reading", dir))?
        .flatten()
    {
        if entry.file_name() != EXPORTS_DIR {
            others.push(entry.path());
        }
    }
    let mut exports = Vec::new();
    if exports_dir.is_dir() {
        for entry in std::fs::read_dir(&exports_dir)
            .map_err(CommitError::io("reading", &exports_dir))?
            .flatten()
        {
            let path = entry.path();
            // Our own id-shaped folder is an export even without `_started`: a run killed
            // inside `remove_dir_all`, or a user who deleted `_started` (the page says it
            // may be), must not leave a DIR that even --force cannot clear.
            let ours = is_export_id(&entry.file_name().to_string_lossy());
            if path.is_dir() && (ours || path.join(STARTED).is_file()) {
                exports.push(path);
            } else {
                others.push(path);
            }
        }
    } else if exports_dir.exists() {
        others.push(exports_dir.clone());
    }
    exports.sort();
    if let Some(other) = others.first() {
        return Err(refused(format!(
            "-o {} holds {}, which is not an export: --layout export writes into an empty \
             directory or its own export, and touches nothing else",
            dir.display(),
            other.display()
        )));
    }
    if resumed {
        match exports.as_slice() {
            [folder] => {
                let name = folder
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if let Some(id) = state.shape.get(EXPORT_ID)
                    && id != name
                {
                    return Err(refused(format!(
                        "the checkpoint {} was saved for export {id}, not for {}: resuming \
                         would mix two exports; remove the checkpoint, or --force to start \
                         over",
                        checkpoint.map_or(dir, |c| c).display(),
                        folder.display()
                    )));
                }
                // Checked before anything is removed: a checkpoint that does not end at a
                // data file's end is not this export's, and must not cost it its files.
                let covered = covered_before(folder, state.committed_bytes)
                    .map_err(CommitError::io("reading", folder))?;
                if covered != Some(state.committed_bytes) {
                    return Err(refused(format!(
                        "the checkpoint {} was not saved for the export in {} (its data files \
                         {}, the checkpoint committed {} bytes): resuming would lose or \
                         repeat items; remove the checkpoint, or --force to start over",
                        checkpoint.map_or(dir, |c| c).display(),
                        folder.display(),
                        covered.map_or("leave gaps".to_string(), |b| format!("cover {b} bytes")),
                        state.committed_bytes
                    )));
                }
                cut_back(folder, state.committed_bytes)
                    .map_err(CommitError::io("cutting back", folder))?;
                if !folder.join(STARTED).is_file() {
                    File::create(folder.join(STARTED))
                        .and_then(|f| f.sync_all())
                        .map_err(CommitError::io("creating", &folder.join(STARTED)))?;
                }
                return Ok(folder.clone());
            }
            [] if state.committed_bytes == 0 => return create(&exports_dir, state.started_ms),
            [] => {
                return Err(refused(format!(
                    "the checkpoint {} committed {} bytes, but {} holds no export: remove \
                     the checkpoint, or --force to start over",
                    checkpoint.map_or(dir, |c| c).display(),
                    state.committed_bytes,
                    dir.display()
                )));
            }
            _ => {
                return Err(refused(format!(
                    "{} holds more than one export ({}): resume needs the one it was writing",
                    exports_dir.display(),
                    exports
                        .iter()
                        .map(|e| e.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    for folder in &exports {
        // An export that never committed a call has nothing to lose (a run killed before
        // its first checkpoint); any other is replaced only with --force.
        if force {
            continue;
        }
        let empty = data_files(folder)
            .map_err(CommitError::io("reading", folder))?
            .is_empty()
            && !folder.join(SUMMARY).exists();
        if !empty {
            let what = if folder.join(SUMMARY).exists() {
                "a finished export"
            } else {
                "an unfinished export and no checkpoint to resume it from"
            };
            return Err(refused(format!(
                "-o {} holds {what} ({}): --force replaces it, or name another -o",
                dir.display(),
                folder.display()
            )));
        }
    }
    for folder in &exports {
        std::fs::remove_dir_all(folder).map_err(CommitError::io("removing", folder))?;
    }
    create(&exports_dir, state.started_ms)
}

/// A new export folder, named by a [`new_id`] of the read's start.
fn create(exports_dir: &Path, started_ms: Option<u64>) -> Result<PathBuf, CommitError> {
    let folder = exports_dir.join(new_id(started_ms));
    // `_started` before `data/`: a folder is never left with data and no mark.
    std::fs::create_dir_all(&folder).map_err(CommitError::io("creating", &folder))?;
    File::create(folder.join(STARTED))
        .and_then(|f| f.sync_all())
        .map_err(CommitError::io("creating", &folder.join(STARTED)))?;
    std::fs::create_dir(folder.join(DATA_DIR)).map_err(CommitError::io("creating", &folder))?;
    sync_dir(&folder).map_err(CommitError::io("syncing", &folder))?;
    sync_dir(exports_dir).map_err(CommitError::io("syncing", exports_dir))?;
    Ok(folder)
}

/// A new `<ExportId>`: the read's start (`T0`; now, when the checkpoint has none) in
/// milliseconds (14 digits, as DynamoDB's ids are) and 8 random hex digits. The summary
/// manifest's `startTime` is read back from it.
pub(crate) fn new_id(started_ms: Option<u64>) -> String {
    use rand::RngExt;
    let started = started_ms.unwrap_or_else(now_millis);
    format!("{started:014}-{:08x}", rand::rng().random::<u32>())
}

/// Whether `name` has the shape [`new_id`] gives an `<ExportId>`: 14 digits, `-`, 8
/// lowercase hex digits.
fn is_export_id(name: &str) -> bool {
    name.split_once('-').is_some_and(|(ms, tag)| {
        ms.len() == 14
            && ms.bytes().all(|b| b.is_ascii_digit())
            && tag.len() == 8
            && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::output::checkpoint::{Committed, OutputShape, SliceState};
    use crate::cli::output::paths;
    use crate::format::export::{FILES, FILES_CHECKSUM, OUTPUT_FORMAT, hex_md5};
    use crate::load::export::Export;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("scanstream-export-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(Files::default_checkpoint(&dir));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    fn schema() -> KeySchema {
        KeySchema::parse("pk:S,sk:N").expect("schema")
    }

    fn item(pk: &str, sk: u32) -> String {
        format!(
            "{{\"Item\":{{\"pk\":{{\"S\":\"{pk}\"}},\"sk\":{{\"N\":\"{sk}\"}},\"v\":{{\"L\":[{{\"NULL\":true}}]}}}}}}\n"
        )
    }

    fn spool_of(dir: &Path, text: &str) -> File {
        let path = dir.with_extension("spool");
        std::fs::write(&path, text).expect("spool");
        File::options()
            .read(true)
            .write(true)
            .open(&path)
            .expect("spool")
    }

    fn files(dir: &Path) -> Files {
        Files {
            output: Some(dir.to_path_buf()),
            checkpoint: Some(Files::default_checkpoint(dir)),
            force: false,
        }
    }

    fn plan() -> Checkpoint {
        crate::cli::pull::slices::plan(
            "http://x/",
            2,
            1,
            OutputShape::default().with("--layout", "export"),
        )
    }

    fn done(offset: u32) -> SliceState {
        SliceState {
            segment_offset: offset,
            cursor: None,
            done: true,
        }
    }

    fn calls(n: u64) -> Committed {
        Committed {
            items: n,
            ..Committed::default()
        }
    }

    /// GIVEN an export directory that is the checkpoint's cursors folder, or holds it
    /// WHEN the export opens THEN it is refused: a finished run removes that folder, and
    /// a save empties it of what it does not name.
    #[test]
    fn an_export_and_the_checkpoints_cursors_folder_never_overlap() {
        let dir = scratch("cursors-overlap");
        let checkpoint = dir.join("c");
        for (out, ckpt) in [
            (paths::cursors(&checkpoint), checkpoint.clone()),
            (dir.join("exp"), dir.join("exp").join("c")),
        ] {
            let files = Files {
                output: Some(out.clone()),
                checkpoint: Some(ckpt),
                force: false,
            };
            let refused = open(&files, plan(), &schema())
                .map(|_| ())
                .expect_err("overlap");
            let text = refused.to_string();
            assert!(
                text.contains("overlap") || text.contains("is inside -o"),
                "{text}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// GIVEN two committed calls and a third written but not checkpointed (the run
    /// killed) WHEN the same export is opened again and finished THEN the third call's
    /// file is gone, and the loader's reader accepts the export: its manifests, every
    /// MD5, the key schema recorded.
    #[test]
    fn a_resumed_export_drops_what_was_not_committed_and_reads_back() {
        let dir = scratch("resume");
        let mut committer = open(&files(&dir), plan(), &schema()).expect("open");
        let first = item("a", 1) + &item("a", 2);
        committer
            .commit(0, &mut spool_of(&dir, &first), calls(2), done(0))
            .expect("commit");
        let folder = committer.checkpoint().clone();
        drop(committer);
        let export = locate_folder(&dir);
        // A call whose data file was renamed in place but whose checkpoint was never saved.
        let second = folder.committed_bytes;
        std::fs::write(
            export.join(DATA_DIR).join(data_name(second, second + 10)),
            b"stale",
        )
        .expect("uncommitted file");
        std::fs::write(export.join(format!(".x{TMP_SUFFIX}")), b"half").expect("tmp");
        let mut committer = open(&files(&dir), plan(), &schema()).expect("resume");
        assert_eq!(committer.checkpoint().committed_items, 2);
        assert_eq!(data_files(&export).expect("files").len(), 1, "cut back");
        committer
            .commit(1, &mut spool_of(&dir, &item("b", 3)), calls(1), done(1))
            .expect("commit");
        assert!(!export.join(SUMMARY).exists(), "not before the end");
        committer.finish(None).expect("finish");
        assert!(
            !Files::default_checkpoint(&dir).exists(),
            "checkpoint removed"
        );
        let read = Export::open(&dir).expect("the reader accepts it");
        read.verify_checksums().expect("checksums");
        assert_eq!(read.summary.item_count, 3);
        assert_eq!(read.summary.output_format, OUTPUT_FORMAT);
        assert_eq!(read.files.len(), 2);
        assert_eq!(read.key_schema, Some(schema()));
        let mut lines = String::new();
        for file in &read.files {
            GzDecoder::new(File::open(&file.path).expect("data"))
                .read_to_string(&mut lines)
                .expect("gzip");
        }
        assert_eq!(lines, first + &item("b", 3));
        let checksum = std::fs::read_to_string(export.join(FILES_CHECKSUM)).expect("checksum");
        assert_eq!(
            checksum,
            hex_md5(&std::fs::read(export.join(FILES)).expect("manifest"))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn locate_folder(dir: &Path) -> PathBuf {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join(EXPORTS_DIR))
            .expect("exports")
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        found.remove(0)
    }

    #[test]
    fn an_item_without_the_key_fails_its_commit_and_leaves_no_file() {
        let dir = scratch("key");
        let mut committer = open(&files(&dir), plan(), &schema()).expect("open");
        let bad = item("a", 1) + "{\"Item\":{\"pk\":{\"S\":\"b\"},\"sk\":{\"S\":\"2\"}}}\n";
        let err = committer
            .commit(0, &mut spool_of(&dir, &bad), calls(2), done(0))
            .expect_err("sk is not N");
        let text = err.to_string();
        assert!(text.contains("line 2") && text.contains("\"sk\""), "{text}");
        let export = locate_folder(&dir);
        assert!(data_files(&export).expect("files").is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_with_other_files_or_a_finished_export_is_refused() {
        let dir = scratch("refuse");
        std::fs::write(dir.join("notes.txt"), b"mine").expect("file");
        let err = open(&files(&dir), plan(), &schema()).expect_err("not an export");
        assert!(err.to_string().contains("notes.txt"), "{err}");
        std::fs::remove_file(dir.join("notes.txt")).expect("rm");
        let mut committer = open(&files(&dir), plan(), &schema()).expect("open");
        committer
            .commit(0, &mut spool_of(&dir, &item("a", 1)), calls(1), done(0))
            .expect("commit");
        committer
            .commit(1, &mut spool_of(&dir, ""), calls(0), done(1))
            .expect("an empty call");
        committer.finish(None).expect("finish");
        drop(committer);
        let err = open(&files(&dir), plan(), &schema()).expect_err("finished");
        assert!(err.to_string().contains("--force"), "{err}");
        let mut forced = files(&dir);
        forced.force = true;
        let committer = open(&forced, plan(), &schema()).expect("forced");
        drop(committer);
        let export = locate_folder(&dir);
        assert!(
            data_files(&export).expect("files").is_empty(),
            "a new export"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(Files::default_checkpoint(&dir));
    }

    /// GIVEN an export whose `_started` is gone (deleted by the user, or a run killed
    /// inside its removal) WHEN the DIR is opened without a checkpoint THEN it is an
    /// unfinished export, refused without --force and replaced with it; a folder of
    /// another shape is still not ours.
    #[test]
    fn an_export_without_started_is_still_ours_and_force_clears_it() {
        let dir = scratch("started");
        let mut committer = open(&files(&dir), plan(), &schema()).expect("open");
        committer
            .commit(0, &mut spool_of(&dir, &item("a", 1)), calls(1), done(0))
            .expect("commit");
        drop(committer);
        let _ = std::fs::remove_file(Files::default_checkpoint(&dir));
        let export = locate_folder(&dir);
        std::fs::remove_file(export.join(STARTED)).expect("rm _started");
        let err = open(&files(&dir), plan(), &schema()).expect_err("unfinished");
        assert!(
            err.to_string().contains("unfinished export") && err.to_string().contains("--force"),
            "{err}"
        );
        let mut forced = files(&dir);
        forced.force = true;
        drop(open(&forced, plan(), &schema()).expect("forced"));
        let fresh = locate_folder(&dir);
        assert_ne!(fresh, export, "a new export");
        assert!(fresh.join(STARTED).is_file());
        assert!(data_files(&fresh).expect("files").is_empty());
        let _ = std::fs::remove_file(Files::default_checkpoint(&dir));
        std::fs::create_dir(dir.join(EXPORTS_DIR).join("someone-else")).expect("dir");
        let err = open(&forced, plan(), &schema()).expect_err("not ours");
        assert!(err.to_string().contains("someone-else"), "{err}");
        assert!(is_export_id("01700000000000-0a1b2c3d"));
        // The id carries the read's T0, which the summary manifest's startTime is.
        let id = new_id(Some(1_765_000_000_123));
        assert!(
            id.starts_with("01765000000123-") && is_export_id(&id),
            "{id}"
        );
        assert!(!is_export_id("01700000000000-0A1B2C3D"));
        assert!(!is_export_id("1700000000000-0a1b2c3d"));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(Files::default_checkpoint(&dir));
    }

    /// GIVEN an export of two committed calls WHEN its checkpoint is edited to end inside
    /// the first call, or to name another export THEN the resume is refused and both
    /// data files are still there (nothing is removed before the fit is checked).
    #[test]
    fn a_checkpoint_that_does_not_fit_is_refused_before_any_file_is_removed() {
        let dir = scratch("fit");
        let mut committer = open(&files(&dir), plan(), &schema()).expect("open");
        committer
            .commit(0, &mut spool_of(&dir, &item("a", 1)), calls(1), done(0))
            .expect("commit");
        committer
            .commit(1, &mut spool_of(&dir, &item("b", 2)), calls(1), done(1))
            .expect("commit");
        drop(committer);
        let export = locate_folder(&dir);
        let path = Files::default_checkpoint(&dir);
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("checkpoint"))
                .expect("json");
        let id = export
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert_eq!(saved["shape"][EXPORT_ID], serde_json::json!(id), "{saved}");
        let edited = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut changed = saved.clone();
            edit(&mut changed);
            std::fs::write(&path, changed.to_string()).expect("write");
            open(&files(&dir), plan(), &schema()).expect_err("not this export's")
        };
        let err = edited(&|c| c["committed_bytes"] = serde_json::json!(1));
        assert!(
            err.to_string().contains("was not saved for the export"),
            "{err}"
        );
        assert_eq!(
            data_files(&export).expect("files").len(),
            2,
            "nothing removed"
        );
        let err = edited(&|c| c["shape"][EXPORT_ID] = serde_json::json!("01700000000000-00000000"));
        assert!(err.to_string().contains("01700000000000-00000000"), "{err}");
        assert_eq!(
            data_files(&export).expect("files").len(),
            2,
            "nothing removed"
        );
        std::fs::write(&path, saved.to_string()).expect("write");
        let committer = open(&files(&dir), plan(), &schema()).expect("its own resumes");
        assert_eq!(committer.checkpoint().committed_items, 2);
        drop(committer);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&path);
    }

    /// GIVEN a --checkpoint named like a spool, or the lock, of -o; or `-o DIR/..`,
    /// whose default checkpoint falls inside it WHEN opened THEN refused, saying which,
    /// and the default one is not blamed on a --checkpoint the user never gave.
    #[test]
    fn a_checkpoint_that_collides_with_the_exports_own_files_is_refused() {
        let dir = scratch("collide");
        let out = dir.join("out");
        let named = |checkpoint: PathBuf| Files {
            output: Some(out.clone()),
            checkpoint: Some(checkpoint),
            force: false,
        };
        let err =
            open(&named(paths::spool(Some(&out), 1)), plan(), &schema()).expect_err("a spool");
        assert!(err.to_string().contains("the name of a spool"), "{err}");
        let err = open(&named(paths::lock_file(&out)), plan(), &schema()).expect_err("the lock");
        assert!(err.to_string().contains("the lock of -o"), "{err}");
        assert!(!out.exists(), "refused before DIR is made");
        std::fs::create_dir_all(dir.join("sub")).expect("sub");
        let up = dir.join("sub").join("..");
        let err = open(&files(&up), plan(), &schema()).expect_err("inside");
        let text = err.to_string();
        assert!(
            text.contains("no name of its own") && text.contains("default checkpoint"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn data_file_names_are_spans() {
        assert_eq!(span_of(&data_name(0, 17)), Some((0, 17)));
        assert_eq!(
            span_of("00000000000000000000-00000000000000000000.json.gz"),
            None
        );
        assert_eq!(span_of("abc.json.gz"), None);
    }
}
