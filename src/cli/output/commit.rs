//! The checkpoint and the committed output.
//!
//! The output grows only by whole calls (their items, committed when their trailer
//! arrived), each written at the committed length. After every commit the checkpoint file
//! records each slice's cursor and the output's committed length, written to a temporary
//! file, synced and renamed over the old one, so a kill at any moment leaves either the old
//! checkpoint or the new one. On a restart the output is cut back to the committed length:
//! items written after the last checkpoint are dropped, and read again from the
//! checkpointed cursor.
//!
//! A failed write is never followed by another: the first I/O error cuts the output back
//! to the committed length, raises the [`Committer::halt`] flag every worker watches, and
//! refuses every later commit. So the output and the checkpoint never disagree, whatever
//! the disk does (a full disk frees room when a slice's spool is deleted; writing on after
//! a partial write would put later calls behind broken bytes).
//!
//! A checkpoint resumes only the same read: the URL, the segments, and every option that
//! shapes the output ([`OutputShape`](crate::cli::output::checkpoint::OutputShape)) must match, or the run stops before any call.

use crate::cli::output::CommitError;
use crate::cli::output::checkpoint::{Checkpoint, Committed, SliceState, check_same_read};
use crate::cli::output::lock::{CheckpointLock, try_lock};
use crate::cli::output::paths::{self, Files, Output, temporary};
use crate::cli::output::sink::{FileSink, Sink, StdoutSink, read_at, tail_digest};
use crate::cli::output::{spool, stored};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Where committed items go, and the checkpoint that says how far they go.
#[derive(Debug)]
pub struct Committer {
    sink: Box<dyn Sink>,
    checkpoint: Checkpoint,
    /// `None`: no checkpoint file (standard output, or `--no-checkpoint`).
    path: Option<PathBuf>,
    /// Held for the run; `None` without a checkpoint file.
    _lock: Option<CheckpointLock>,
    /// The first failure; once set nothing more is written.
    failed: Option<String>,
    /// Raised with `failed`: the workers stop before their next call.
    halt: Arc<AtomicBool>,
    /// `-o FILE`, which the spools are named after.
    output: Option<PathBuf>,
    /// The first failure was a closed standard output.
    broken_pipe: bool,
    /// When this committer was made, about when the run started.
    opened: Instant,
    /// From `opened` to the first commit.
    first_commit: Option<Duration>,
    /// What the checkpoint file holds, for a save to write only what changed.
    saved: stored::Saved,
}

impl Committer {
    /// Opens the output of `files` for `fresh`, or for the checkpoint found there if there
    /// is one (it must be for the same read), cutting the output back to its committed
    /// length. Takes the locks first: a second run on the same output or checkpoint fails
    /// here, at once.
    pub fn open(files: &Files, fresh: Checkpoint) -> Result<Self, CommitError> {
        let Some(output) = files.output.as_deref() else {
            if files.checkpoint.is_some() {
                return Err(CommitError::Refused(
                    "--checkpoint needs -o FILE: standard output cannot be cut back".into(),
                ));
            }
            return Ok(Self::over(
                Box::new(StdoutSink(std::io::stdout())),
                fresh,
                None,
            ));
        };
        files.refuse_clashes(output, fresh.slices.len(), Output::File)?;
        let checkpoint = files.checkpoint.as_deref();
        let lock = checkpoint.map(CheckpointLock::take).transpose()?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(output)
            .map_err(CommitError::io("opening", output))?;
        try_lock(&file, output)?;
        let saved = left_behind(files, output)?;
        let length = file
            .metadata()
            .map_err(CommitError::io("reading", output))?
            .len();
        let state = match saved {
            Some(saved) => {
                check_same_read(&saved, &fresh, checkpoint.unwrap_or(output))?;
                if length < saved.committed_bytes {
                    return Err(CommitError::Refused(format!(
                        "{} holds {length} bytes, fewer than the {} the checkpoint committed",
                        output.display(),
                        saved.committed_bytes
                    )));
                }
                if saved.committed_bytes == 0
                    && length > 0
                    && !own_first_call(&saved, &file).map_err(CommitError::io("reading", output))?
                {
                    return Err(CommitError::Refused(format!(
                        "{} holds {length} bytes, but the checkpoint {} committed nothing: \
                         either this run stopped part way through writing its first call, or \
                         another run wrote them since, and resuming would empty it; use \
                         --force to read the table again into it (nothing this checkpoint \
                         committed is lost), or another -o",
                        output.display(),
                        checkpoint.unwrap_or(output).display()
                    )));
                }
                if let Some(want) = &saved.output_tail_sha256 {
                    let have = tail_digest(saved.committed_bytes, |at, len| {
                        read_at(&file, at, len).map(Some)
                    })
                    .map_err(CommitError::io("reading", output))?;
                    if have.as_ref() != Some(want) {
                        return Err(CommitError::Refused(format!(
                            "the checkpoint {} was not saved for the bytes {} holds (another \
                             run wrote it since): resuming would lose and repeat items; \
                             remove the checkpoint, or --force to start over",
                            checkpoint.unwrap_or(output).display(),
                            output.display()
                        )));
                    }
                }
                saved
            }
            None if length > 0 && !files.force => {
                return Err(CommitError::Refused(format!(
                    "{} exists and is not empty, and there is no checkpoint to resume it \
                     from (a finished pull removes its checkpoint): use --force to read the \
                     table again into it, or another -o",
                    output.display()
                )));
            }
            None => fresh,
        };
        // Anything past the committed length is from calls not checkpointed.
        file.set_len(state.committed_bytes)
            .map_err(CommitError::io("cutting back", output))?;
        let mut committer = Self::over(
            Box::new(FileSink::new(file, output.to_path_buf())),
            state,
            checkpoint.map(Path::to_path_buf),
        );
        committer._lock = lock;
        committer.output = Some(output.to_path_buf());
        // A fresh run writes its checkpoint now: a crash before the first commit still
        // leaves a checkpoint, so the next run resumes instead of refusing the output.
        committer.save()?;
        Ok(committer)
    }

    /// A committer writing into `sink`, with `checkpoint` saved to `path` after every
    /// commit (no locks: the caller owns the files).
    pub fn over(sink: Box<dyn Sink>, checkpoint: Checkpoint, path: Option<PathBuf>) -> Self {
        Self {
            sink,
            checkpoint,
            path,
            _lock: None,
            failed: None,
            halt: Arc::new(AtomicBool::new(false)),
            output: None,
            broken_pipe: false,
            opened: Instant::now(),
            first_commit: None,
            saved: stored::Saved::default(),
        }
    }

    /// This committer, holding `lock` on its checkpoint for the run and spooling beside
    /// `output`, with its checkpoint saved now (an output that is not one file:
    /// [`crate::cli::output::export::open`]).
    pub(crate) fn holding(
        mut self,
        lock: Option<CheckpointLock>,
        output: PathBuf,
    ) -> Result<Self, CommitError> {
        self._lock = lock;
        self.output = Some(output);
        self.save()?;
        Ok(self)
    }

    /// This committer, its sink wrapped by `wrap` (an export to S3 keeps its records in
    /// the file [`Committer::open`] opened, and its objects in S3).
    pub(crate) fn map_sink(mut self, wrap: impl FnOnce(Box<dyn Sink>) -> Box<dyn Sink>) -> Self {
        let placeholder: Box<dyn Sink> = Box::new(StdoutSink(std::io::stdout()));
        let sink = std::mem::replace(&mut self.sink, placeholder);
        self.sink = wrap(sink);
        self
    }

    /// How long after the start the first call was committed, if one was.
    pub fn first_commit(&self) -> Option<Duration> {
        self.first_commit
    }

    /// The failure that stopped the output was a closed standard output.
    pub fn broken_pipe(&self) -> bool {
        self.broken_pipe
    }

    /// Where slice `slice` spools its calls.
    pub fn spool_path(&self, slice: usize) -> PathBuf {
        paths::spool(self.output.as_deref(), slice)
    }

    /// Where the run stands.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Marks every slice with a cursor as not done, so a run goes on from it: a read of
    /// changes is done when it has caught up, and goes on later from where it stood. Saved
    /// with the next commit.
    pub fn reopen(&mut self) {
        for slice in &mut self.checkpoint.slices {
            if slice.cursor.is_some() {
                slice.done = false;
            }
        }
    }

    /// Raised when a commit failed: workers make no further call.
    pub fn halt(&self) -> Arc<AtomicBool> {
        self.halt.clone()
    }

    /// The failure that stopped the output, if one did.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Appends a call's items (`spool`, whole lines) at the committed length and records
    /// where its slice now stands; the checkpoint is saved before this returns. On any
    /// failure the output is cut back to the committed length, the halt flag is raised,
    /// and no later commit writes anything.
    pub fn commit(
        &mut self,
        slice: usize,
        spool: &mut File,
        call: Committed,
        next: SliceState,
    ) -> Result<(), CommitError> {
        if let Some(failed) = &self.failed {
            return Err(CommitError::Halted(failed.clone()));
        }
        let at = self.checkpoint.committed_bytes;
        let durable = self.path.is_some();
        if durable && at == 0 {
            let marked = spool
                .metadata()
                .and_then(|meta| {
                    let len = meta.len();
                    let digest = tail_digest(len, |at, n| read_at(spool, at, n).map(Some))?;
                    Ok(digest.map(|digest| (len, digest)))
                })
                .map_err(CommitError::io("reading", &self.sink.path()));
            match marked {
                Ok(Some(first)) => {
                    self.checkpoint.first_call = Some(first);
                    if let Err(err) = self.save_changed(slice) {
                        return Err(self.fail(err));
                    }
                }
                Ok(None) => {}
                Err(err) => return Err(self.fail(err)),
            }
        }
        let sink = &mut self.sink;
        let written = spool
            .seek(SeekFrom::Start(0))
            .and_then(|_| sink.put(at, spool))
            // The checkpoint may claim only bytes that are on disk; without one a crash
            // loses the run anyway, and nothing needs to wait for the disk.
            .and_then(|copied| {
                if durable {
                    sink.sync().map(|()| copied)
                } else {
                    Ok(copied)
                }
            })
            .map_err(CommitError::io("writing", &self.sink.path()));
        let copied = match written {
            Ok(copied) => copied,
            Err(err) => return Err(self.fail(err)),
        };
        let before = self.checkpoint.clone();
        let state = &mut self.checkpoint;
        state.committed_bytes += copied;
        state.first_call = None;
        state.committed_items += call.items;
        state.committed_scanned += call.scanned;
        state.committed_pages += call.pages;
        if let Some(units) = call
            .consumed_capacity
            .filter(|u| u.is_finite() && *u >= 0.0)
        {
            state.committed_capacity = Some(state.committed_capacity.unwrap_or(0.0) + units);
        }
        if let Some(state) = state.slices.get_mut(slice) {
            *state = next;
        }
        if durable {
            let sink = &mut self.sink;
            let digest = tail_digest(self.checkpoint.committed_bytes, |at, len| {
                sink.read_back(at, len)
            })
            .map_err(CommitError::io("reading back", &self.sink.path()));
            match digest {
                Ok(digest) => self.checkpoint.output_tail_sha256 = digest,
                Err(err) => {
                    self.checkpoint = before;
                    return Err(self.fail(err));
                }
            }
        }
        if let Err(err) = self.save_changed(slice) {
            // The file on disk still says `before` (the rename is the save's last step):
            // the output goes back to that length too.
            self.checkpoint = before;
            return Err(self.fail(err));
        }
        self.first_commit
            .get_or_insert_with(|| self.opened.elapsed());
        Ok(())
    }

    /// Ends a complete run: writes `trailer` (a whole line) at the committed length if
    /// one is given, then removes the checkpoint, so the next run of the same command
    /// finds a finished output. A crash between the two leaves the checkpoint, and the
    /// next run writes the trailer again at the same place.
    pub fn finish(&mut self, trailer: Option<&[u8]>) -> Result<(), CommitError> {
        if let Some(failed) = &self.failed {
            return Err(CommitError::Halted(failed.clone()));
        }
        if let Some(line) = trailer {
            let at = self.checkpoint.committed_bytes;
            if at == 0 && self.path.is_some() {
                // Nothing committed (a count, a filter that matched nothing): the trailer
                // alone will be the output. Marked as a first call is, so a run killed
                // before its checkpoint is removed knows those bytes as its own.
                let digest = tail_digest(line.len() as u64, |from, n| {
                    let from = usize::try_from(from).unwrap_or(usize::MAX);
                    Ok(line.get(from..from.saturating_add(n)).map(<[u8]>::to_vec))
                })
                .map_err(CommitError::io("reading", &self.sink.path()));
                match digest {
                    Ok(digest) => {
                        self.checkpoint.first_call = digest.map(|d| (line.len() as u64, d));
                        if let Err(err) = self.save() {
                            return Err(self.fail(err));
                        }
                    }
                    Err(err) => return Err(self.fail(err)),
                }
            }
            let written = self
                .sink
                .put_bytes(at, line)
                .and_then(|()| self.sink.sync())
                .map_err(CommitError::io("writing", &self.sink.path()));
            if let Err(err) = written {
                return Err(self.fail(err));
            }
        }
        let finished = self
            .sink
            .finish(&self.checkpoint)
            .map_err(CommitError::io("finishing", &self.sink.path()));
        if let Err(err) = finished {
            return Err(self.fail(err));
        }
        if let Some(path) = &self.path {
            std::fs::remove_file(path).map_err(CommitError::io("removing", path))?;
            let _ = std::fs::remove_dir_all(paths::cursors(path));
        }
        Ok(())
    }

    /// Records the first failure, raises the halt flag, and cuts the output back to the
    /// committed length (if that fails too, the checkpoint still says where the next run
    /// cuts it).
    fn fail(&mut self, err: CommitError) -> CommitError {
        self.halt.store(true, Ordering::SeqCst);
        self.broken_pipe = err.is_broken_pipe();
        let _ = self.sink.cut_back(self.checkpoint.committed_bytes);
        self.failed = Some(err.to_string());
        err
    }

    /// Saves the whole checkpoint (a run's first save).
    fn save(&mut self) -> Result<(), CommitError> {
        match &self.path {
            Some(path) => self.saved.save(path, &self.checkpoint, None),
            None => Ok(()),
        }
    }

    /// Saves the checkpoint after a commit of `slice`, the only cursor that changed.
    fn save_changed(&mut self, slice: usize) -> Result<(), CommitError> {
        match &self.path {
            Some(path) => self.saved.save(path, &self.checkpoint, Some(slice)),
            None => Ok(()),
        }
    }
}

/// Under the locks of `files` and of `output`: clears what a killed run left beside them
/// (its spools, the checkpoint's temporary file) and reads the checkpoint to resume from,
/// if there is one and `--force` does not start over.
pub(crate) fn left_behind(files: &Files, output: &Path) -> Result<Option<Checkpoint>, CommitError> {
    spool::remove_stale(output);
    let Some(checkpoint) = files.checkpoint.as_deref() else {
        return Ok(None);
    };
    // A temporary file left by a run killed mid-save.
    let _ = std::fs::remove_file(temporary(checkpoint));
    if checkpoint.exists() && !files.force {
        stored::load(checkpoint).map(Some)
    } else {
        Ok(None)
    }
}

/// Whether `output`'s bytes are the first call `saved` was committing when its run
/// stopped (a kill between the output's write and the checkpoint's save).
fn own_first_call(saved: &Checkpoint, output: &File) -> std::io::Result<bool> {
    let Some((len, want)) = &saved.first_call else {
        return Ok(false);
    };
    // Exactly that call: the run cut the output to 0 and wrote only it. A longer output
    // is another run's, even if it begins with the same bytes (a read of an unchanged
    // table does), and must not be emptied.
    if output.metadata()?.len() != *len {
        return Ok(false);
    }
    let have = tail_digest(*len, |at, n| read_at(output, at, n).map(Some))?;
    Ok(have.as_ref() == Some(want))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::output::checkpoint::OutputShape;
    use crate::cli::output::paths::lock_file;
    use std::io::Write;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("scanstream-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    fn spool_of(dir: &Path, bytes: &[u8]) -> File {
        let mut spool = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.join("spool"))
            .expect("spool");
        spool.write_all(bytes).expect("write");
        spool
    }

    fn next(offset: u32, cursor: &str) -> SliceState {
        SliceState {
            segment_offset: offset,
            cursor: Some(cursor.into()),
            done: false,
        }
    }

    fn items(n: u64) -> Committed {
        Committed {
            items: n,
            ..Committed::default()
        }
    }

    #[test]
    fn a_restart_cuts_the_output_back_to_what_was_committed() {
        let dir = scratch("ckpt");
        let (out, ckpt) = (dir.join("out.ndjson"), dir.join("ckpt.json"));
        let files = Files {
            output: Some(out.clone()),
            checkpoint: Some(ckpt.clone()),
            force: false,
        };
        let fresh = crate::cli::pull::slices::plan("http://x/", 2, 1, OutputShape::default());
        let mut committer = Committer::open(&files, fresh.clone()).expect("open");
        let mut spool = spool_of(&dir, b"{\"id\":1}\n{\"id\":2}\n");
        committer
            .commit(0, &mut spool, items(2), next(0, "2.c.t"))
            .expect("commit");
        drop(committer);
        // A call that was being written when the client died.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&out)
            .and_then(|mut f| f.write_all(b"{\"id\":3}\n{\"id\""))
            .expect("partial");
        let committer = Committer::open(&files, fresh).expect("reopen");
        assert_eq!(committer.checkpoint().slices[0], next(0, "2.c.t"));
        assert_eq!(committer.checkpoint().committed_items, 2);
        drop(committer);
        assert_eq!(
            std::fs::read(&out).expect("out"),
            b"{\"id\":1}\n{\"id\":2}\n"
        );
        let other = crate::cli::pull::slices::plan("http://y/", 2, 1, OutputShape::default());
        assert!(Committer::open(&files, other).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A file that accepts `room` more bytes, then fails with ENOSPC (after a partial
    /// write, as a full disk does).
    #[derive(Debug)]
    struct FullDisk {
        inner: FileSink,
        room: u64,
    }

    impl FullDisk {
        fn take(&mut self, wanted: u64) -> std::io::Result<u64> {
            let granted = wanted.min(self.room);
            self.room -= granted;
            Ok(granted)
        }
    }

    impl Sink for FullDisk {
        fn put(&mut self, at: u64, spool: &mut File) -> std::io::Result<u64> {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(spool, &mut bytes)?;
            self.put_bytes(at, &bytes)?;
            Ok(bytes.len() as u64)
        }

        fn put_bytes(&mut self, at: u64, bytes: &[u8]) -> std::io::Result<()> {
            let granted = self.take(bytes.len() as u64)? as usize;
            self.inner.put_bytes(at, &bytes[..granted])?;
            if granted < bytes.len() {
                return Err(std::io::Error::from_raw_os_error(28));
            }
            Ok(())
        }

        fn sync(&mut self) -> std::io::Result<()> {
            self.inner.sync()
        }

        fn cut_back(&mut self, length: u64) -> std::io::Result<()> {
            self.inner.cut_back(length)
        }

        fn read_back(&mut self, at: u64, len: usize) -> std::io::Result<Option<Vec<u8>>> {
            self.inner.read_back(at, len)
        }

        fn path(&self) -> PathBuf {
            self.inner.path()
        }
    }

    /// GIVEN a disk that fills up in the middle of a call's bytes, and room freed
    /// afterwards (another slice deleted its spool) WHEN the other slices commit on
    /// THEN nothing more is written, the output is back at the committed length, the
    /// error names the file, and a restart from the checkpoint is exact.
    #[test]
    fn after_a_failed_write_nothing_more_is_written_and_a_restart_is_exact() {
        let dir = scratch("fulldisk");
        let (out, ckpt) = (dir.join("out.ndjson"), dir.join("ckpt.json"));
        let fresh = crate::cli::pull::slices::plan("http://x/", 3, 1, OutputShape::default());
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&out)
            .expect("out");
        let first = b"{\"id\":1}\n{\"id\":2}\n";
        let sink = FullDisk {
            inner: FileSink::new(file, out.clone()),
            room: first.len() as u64 + 5,
        };
        let mut committer = Committer::over(Box::new(sink), fresh.clone(), Some(ckpt.clone()));
        let halt = committer.halt();
        committer
            .commit(0, &mut spool_of(&dir, first), items(2), next(0, "a"))
            .expect("fits");
        let err = committer
            .commit(
                1,
                &mut spool_of(&dir, b"{\"id\":3}\n{\"id\":4}\n"),
                items(2),
                next(1, "b"),
            )
            .expect_err("the disk is full");
        assert!(
            err.to_string().contains(&out.display().to_string()),
            "{err}"
        );
        assert!(halt.load(Ordering::SeqCst), "the workers are told to stop");
        assert_eq!(std::fs::read(&out).expect("out"), first, "cut back");
        let later = committer.commit(
            2,
            &mut spool_of(&dir, b"{\"id\":5}\n"),
            items(1),
            next(2, "c"),
        );
        assert!(matches!(later, Err(CommitError::Halted(_))), "{later:?}");
        assert_eq!(
            std::fs::read(&out).expect("out"),
            first,
            "nothing after the failure"
        );
        drop(committer);

        let files = Files {
            output: Some(out.clone()),
            checkpoint: Some(ckpt),
            force: false,
        };
        let mut resumed = Committer::open(&files, fresh).expect("resume");
        let state = resumed.checkpoint().clone();
        assert_eq!(state.committed_items, 2);
        assert_eq!(state.slices[0], next(0, "a"));
        assert_eq!(state.slices[1].cursor, None, "slice 1 starts again");
        assert_eq!(state.slices[2].cursor, None, "slice 2 starts again");
        resumed
            .commit(
                1,
                &mut spool_of(&dir, b"{\"id\":3}\n{\"id\":4}\n"),
                items(2),
                next(1, "b"),
            )
            .expect("room again");
        resumed
            .commit(
                2,
                &mut spool_of(&dir, b"{\"id\":5}\n"),
                items(1),
                next(2, "c"),
            )
            .expect("room again");
        assert_eq!(
            std::fs::read(&out).expect("out"),
            b"{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n{\"id\":4}\n{\"id\":5}\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_resume_with_another_shape_names_each_option_that_differs() {
        let dir = scratch("shape");
        let files = Files {
            output: Some(dir.join("out")),
            checkpoint: Some(dir.join("out.ckpt")),
            force: false,
        };
        let shape = OutputShape::default().with("--format", "json");
        let fresh = crate::cli::pull::slices::plan("http://x/", 2, 1, shape.clone());
        drop(Committer::open(&files, fresh).expect("open"));
        let other = shape.with("--format", "dynamodb").with("--fields", "id");
        let err = Committer::open(
            &files,
            crate::cli::pull::slices::plan("http://x/", 2, 1, other),
        )
        .expect_err("another shape");
        let text = err.to_string();
        assert!(
            text.contains(r#"--format: the checkpoint has "json", this run asks for "dynamodb""#),
            "{text}"
        );
        assert!(
            text.contains(r#"--fields: the checkpoint has not set, this run asks for "id""#),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_query_cut_into_other_slices_is_refused() {
        let dir = scratch("cuts");
        let files = Files {
            output: Some(dir.join("out")),
            checkpoint: Some(dir.join("out.ckpt")),
            force: false,
        };
        let keys: Vec<String> = (0..250).map(|i| format!("k{i:03}")).collect();
        let plan = |invocations| {
            let partitions =
                crate::cli::pull::partitions::Partitions::read(&keys, None, invocations, 100)
                    .expect("keys");
            crate::cli::pull::slices::plan_partitions(
                "http://x/",
                &partitions,
                2,
                OutputShape::default(),
            )
        };
        drop(Committer::open(&files, plan(2)).expect("open"));
        // Three slices either way ([0, 100, 200] and [0, 84, 168]): cut elsewhere.
        let err = Committer::open(&files, plan(3)).expect_err("other cuts");
        assert!(err.to_string().contains("other slices"), "{err}");
        drop(Committer::open(&files, plan(2)).expect("the same cuts resume"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_query_with_another_count_of_slices_is_refused_naming_slices() {
        let dir = scratch("query-slices");
        let files = Files {
            output: Some(dir.join("out")),
            checkpoint: Some(dir.join("out.ckpt")),
            force: false,
        };
        let keys: Vec<String> = (0..250).map(|i| format!("k{i:03}")).collect();
        let plan = |per_call| {
            let partitions =
                crate::cli::pull::partitions::Partitions::read(&keys, None, 2, per_call)
                    .expect("keys");
            let shape = OutputShape::default().with("--pk", partitions.digest());
            crate::cli::pull::slices::plan_partitions("http://x/", &partitions, 2, shape)
        };
        drop(Committer::open(&files, plan(100)).expect("open"));
        // Same --invocations, another --pk-per-call: 3 slices then, 5 now.
        let text = Committer::open(&files, plan(50))
            .expect_err("other slices")
            .to_string();
        assert!(
            text.contains(r#"slices: the checkpoint has "3", this run asks for "5""#),
            "{text}"
        );
        assert!(text.contains("--pk-per-call"), "{text}");
        assert!(!text.contains("--invocations: "), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_old_checkpoint_is_refused_with_its_version() {
        let dir = scratch("v1");
        let ckpt = dir.join("out.ckpt");
        std::fs::write(
            &ckpt,
            br#"{"version":1,"url":"http://x/","total_segments":2,"segments":1,"slices":[],"committed_bytes":0,"committed_items":0}"#,
        )
        .expect("v1");
        let files = Files {
            output: Some(dir.join("out")),
            checkpoint: Some(ckpt),
            force: false,
        };
        let err = Committer::open(
            &files,
            crate::cli::pull::slices::plan("http://x/", 2, 1, OutputShape::default()),
        )
        .expect_err("version 1");
        assert!(err.to_string().contains("version 1 checkpoint"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_files_cannot_collide_and_a_second_run_is_locked_out() {
        let dir = scratch("files");
        let plan = || crate::cli::pull::slices::plan("http://x/", 1, 1, OutputShape::default());
        let files = |out: &str, ckpt: &str| Files {
            output: Some(dir.join(out)),
            checkpoint: Some(dir.join(ckpt)),
            force: false,
        };
        assert!(Committer::open(&files("a", "a"), plan()).is_err());
        assert!(Committer::open(&files(".c.scanstream-tmp", "c"), plan()).is_err());
        // Inside the checkpoint's cursors folder, which a save empties of what it does
        // not name.
        let inside = Committer::open(&files(".c.scanstream-cursors/out", "c"), plan());
        assert!(
            inside
                .as_ref()
                .is_err_and(|e| e.to_string().contains("cursors folder")),
            "{:?}",
            inside.map(|_| ())
        );
        // The issue's case: an output named like the old temporary file.
        std::fs::write(dir.join("scan.tmp"), b"").expect("empty");
        let first = Committer::open(&files("scan.tmp", "scan.json"), plan()).expect("open");
        assert!(dir.join("scan.tmp").exists());
        let same_output = Committer::open(&files("scan.tmp", "other.json"), plan());
        assert!(
            matches!(same_output, Err(CommitError::Locked(_))),
            "{same_output:?}"
        );
        let same_checkpoint = Committer::open(&files("other.out", "scan.json"), plan());
        assert!(
            matches!(same_checkpoint, Err(CommitError::Locked(_))),
            "{same_checkpoint:?}"
        );
        drop(first);
        assert!(
            !lock_file(&dir.join("scan.json")).exists(),
            "the lock file goes with the run"
        );
        Committer::open(&files("scan.tmp", "scan.json"), plan()).expect("free again");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_non_empty_output_without_a_checkpoint_needs_force() {
        let dir = scratch("force");
        let out = dir.join("out");
        std::fs::write(&out, b"{\"id\":1}\n").expect("old output");
        let mut files = Files {
            output: Some(out.clone()),
            checkpoint: None,
            force: false,
        };
        let plan = || crate::cli::pull::slices::plan("http://x/", 1, 1, OutputShape::default());
        let err = Committer::open(&files, plan()).expect_err("refused");
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(
            std::fs::read(&out).expect("out"),
            b"{\"id\":1}\n",
            "untouched"
        );
        files.force = true;
        drop(Committer::open(&files, plan()).expect("forced"));
        assert_eq!(
            std::fs::read(&out).expect("out"),
            b"",
            "read again from nothing"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// GIVEN a run killed before its first commit (its checkpoint committed nothing)
    /// WHEN another run filled the output THEN the first command run again is refused
    /// unless --force, and the output is untouched.
    #[test]
    fn a_checkpoint_that_committed_nothing_does_not_empty_a_filled_output() {
        let dir = scratch("nothing");
        let out = dir.join("out");
        let files = |force: bool| Files {
            output: Some(out.clone()),
            checkpoint: Some(dir.join("first.ckpt")),
            force,
        };
        let plan = || crate::cli::pull::slices::plan("http://x/", 1, 1, OutputShape::default());
        drop(Committer::open(&files(false), plan()).expect("open")); // killed at once
        std::fs::write(&out, b"{\"id\":1}\n{\"id\":2}\n").expect("another run's output");
        let err = Committer::open(&files(false), plan()).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("--force") && text.contains("committed nothing"),
            "{text}"
        );
        assert_eq!(std::fs::read(&out).expect("out").len(), 18, "untouched");
        drop(Committer::open(&files(true), plan()).expect("forced"));
        assert_eq!(std::fs::read(&out).expect("out"), b"", "read again");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Where a [`Dies`] sink is killed.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Kill {
        /// After the output's write of a commit, before the checkpoint's save.
        AfterPut,
        /// As the run finishes: after the trailer's write, before the checkpoint goes.
        AtFinish,
    }

    /// The output file, dying (a panic, as a kill -9) at one point.
    #[derive(Debug)]
    struct Dies(FileSink, Kill);

    impl Sink for Dies {
        fn put(&mut self, at: u64, spool: &mut File) -> std::io::Result<u64> {
            let written = self.0.put(at, spool)?;
            if self.1 == Kill::AfterPut {
                self.0.sync()?;
                panic!("killed after the output's write");
            }
            Ok(written)
        }
        fn put_bytes(&mut self, at: u64, bytes: &[u8]) -> std::io::Result<()> {
            self.0.put_bytes(at, bytes)
        }
        fn sync(&mut self) -> std::io::Result<()> {
            self.0.sync()
        }
        fn cut_back(&mut self, length: u64) -> std::io::Result<()> {
            self.0.cut_back(length)
        }
        fn path(&self) -> PathBuf {
            self.0.path()
        }
        fn finish(&mut self, checkpoint: &Checkpoint) -> std::io::Result<()> {
            if self.1 == Kill::AtFinish {
                panic!("killed after the trailer's write");
            }
            self.0.finish(checkpoint)
        }
    }

    /// GIVEN a count (nothing committed, the trailer the whole output) killed after its
    /// trailer was written and before its checkpoint was removed WHEN the same command
    /// runs again THEN it resumes without --force: the trailer is its own.
    #[test]
    fn a_count_killed_while_it_finishes_resumes_without_force() {
        let dir = scratch("count-finish");
        let trailer = b"{\"trailer\":{\"items\":7}}\n";
        let (files, out) = killed(&dir, Kill::AtFinish, |committer| {
            let _ = committer.finish(Some(trailer));
        });
        assert_eq!(std::fs::read(&out).expect("out"), trailer);
        let resumed = Committer::open(&files, one_slice()).expect("its own trailer");
        assert_eq!(resumed.checkpoint().committed_bytes, 0);
        drop(resumed);
        assert_eq!(std::fs::read(&out).expect("out"), b"", "cut back");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A run of one slice whose output dies at `kill` while `run` drives it (a panic,
    /// caught, as a kill -9: its files closed and its locks freed). Returns the files and
    /// the output's path.
    fn killed(dir: &Path, kill: Kill, run: impl FnOnce(&mut Committer)) -> (Files, PathBuf) {
        let out = dir.join("out");
        let files = Files {
            output: Some(out.clone()),
            checkpoint: Some(dir.join("out.ckpt")),
            force: false,
        };
        let mut committer = Committer::open(&files, one_slice()).expect("open");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&out)
            .expect("out");
        committer.sink = Box::new(Dies(FileSink::new(file, out.clone()), kill));
        let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut committer)));
        assert!(died.is_err(), "the output died at {kill:?}");
        drop(committer);
        (files, out)
    }

    /// A run of one slice killed during its first commit: its first call (`{"id":1}`)
    /// written to the output, the checkpoint not yet saved past it.
    fn killed_during_first_commit(dir: &Path) -> (Files, PathBuf) {
        killed(dir, Kill::AfterPut, |committer| {
            let mut spool = spool_of(dir, b"{\"id\":1}\n");
            let _ = committer.commit(0, &mut spool, items(1), next(0, "a"));
        })
    }

    fn one_slice() -> Checkpoint {
        crate::cli::pull::slices::plan("http://x/", 1, 1, OutputShape::default())
    }

    /// GIVEN a run killed during its first commit (the output written, the checkpoint
    /// not yet) WHEN the same command runs again THEN it resumes without --force: those
    /// bytes are its own first call's, and are cut back.
    #[test]
    fn a_run_killed_during_its_first_commit_resumes_without_force() {
        let dir = scratch("first-commit");
        let (files, out) = killed_during_first_commit(&dir);
        assert_eq!(std::fs::read(&out).expect("out"), b"{\"id\":1}\n");
        let resumed = Committer::open(&files, one_slice()).expect("its own bytes");
        assert_eq!(resumed.checkpoint().committed_bytes, 0);
        drop(resumed);
        assert_eq!(std::fs::read(&out).expect("out"), b"", "cut back");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn another_runs_output_that_begins_with_the_first_call_is_not_emptied() {
        let dir = scratch("first-commit-longer");
        let (files, out) = killed_during_first_commit(&dir);
        // Another run read the same (unchanged) table to its end into the same file: its
        // first bytes are the killed run's first call.
        let finished = b"{\"id\":1}\n{\"id\":2}\n";
        std::fs::write(&out, finished).expect("another run");
        let refused = Committer::open(&files, one_slice())
            .map(|_| ())
            .expect_err("not its own");
        assert!(
            refused.to_string().contains("committed nothing"),
            "{refused}"
        );
        assert_eq!(std::fs::read(&out).expect("out"), finished, "left whole");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Text that deflate cannot shrink, as a sealed cursor's base64 is not.
    fn noise(seed: u64, len: usize) -> String {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                char::from(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                        [(state >> 58) as usize],
                )
            })
            .collect()
    }

    /// GIVEN 1,000 begun slices with 6 KB cursors (a Query's, of 100 keys) WHEN a call is
    /// committed THEN the checkpoint file rewritten is small (the cursors are kept
    /// apart), and a reopen has every cursor back.
    #[test]
    fn long_cursors_are_kept_apart_and_the_checkpoint_stays_small() {
        let dir = scratch("apart");
        let files = Files {
            output: Some(dir.join("out")),
            checkpoint: Some(dir.join("out.ckpt")),
            force: false,
        };
        let plan = || crate::cli::pull::slices::plan("http://x/", 1000, 1, OutputShape::default());
        let mut committer = Committer::open(&files, plan()).expect("open");
        for (k, slice) in committer.checkpoint.slices.iter_mut().enumerate() {
            slice.cursor = Some(format!("2.{}.tag", noise(k as u64, 6000)));
        }
        committer.save().expect("saved");
        let last = format!("2.{}.tag", noise(5000, 6000));
        committer
            .commit(
                7,
                &mut spool_of(&dir, b"{\"id\":1}\n"),
                items(1),
                next(7, &last),
            )
            .expect("commit");
        let cursors: Vec<Option<String>> = committer
            .checkpoint()
            .slices
            .iter()
            .map(|s| s.cursor.clone())
            .collect();
        drop(committer);
        let size = std::fs::metadata(dir.join("out.ckpt"))
            .expect("checkpoint")
            .len();
        assert!(size < 100_000, "the checkpoint is {size} bytes");
        let resumed = Committer::open(&files, plan()).expect("resumed");
        let back: Vec<Option<String>> = resumed
            .checkpoint()
            .slices
            .iter()
            .map(|s| s.cursor.clone())
            .collect();
        assert!(back == cursors, "every cursor back");
        assert_eq!(
            resumed.checkpoint().slices[7].cursor.as_deref(),
            Some(&*last)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A Query slice's sealed cursor: `keys` partitions, each with a position after a
    /// key, as the streamer mints it.
    fn query_cursor(slice: u64, keys: usize) -> String {
        use crate::format::cursor::{Cursor, Position};
        use crate::format::item::Value;
        use crate::format::key::KeyValue;
        use crate::format::shape::{QueryShape, ReadShape};
        let key = |i: usize| {
            format!(
                "tenant-{slice:04}-{i:03}-{}",
                noise(slice * 1000 + i as u64, 12)
            )
        };
        let positions = (0..keys)
            .map(|i| {
                Position::After(std::collections::HashMap::from([
                    ("pk".to_string(), Value::S(key(i))),
                    (
                        "sk".to_string(),
                        Value::S(noise(slice ^ (i as u64) << 20, 36)),
                    ),
                ]))
            })
            .collect();
        let shape = ReadShape {
            query: Some(QueryShape {
                key: "pk".into(),
                partitions: (0..keys).map(|i| KeyValue::S(key(i))).collect(),
                concurrency: 4,
                sort: None,
                descending: false,
            }),
            ..ReadShape::default()
        };
        Cursor {
            table: "tenants".into(),
            total_segments: 100_000,
            segment_offset: (slice as u32) * keys as u32,
            positions,
            shape,
        }
        .encode(b"secret")
    }

    /// The figures of bench-results/checkpoint.md: the checkpoint's size on disk and the
    /// time of a commit, at 1,000 begun slices of 100 keys.
    /// `cargo test --lib checkpoint_figures -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check: prints figures"]
    fn checkpoint_figures() {
        let dir = scratch("figures");
        let files = Files {
            output: Some(dir.join("out")),
            checkpoint: Some(dir.join("out.ckpt")),
            force: false,
        };
        let mut committer = Committer::open(
            &files,
            crate::cli::pull::slices::plan("http://x/", 1000, 1, OutputShape::default()),
        )
        .expect("open");
        let cursors: Vec<String> = (0..1000).map(|k| query_cursor(k, 100)).collect();
        for (slice, cursor) in committer.checkpoint.slices.iter_mut().zip(&cursors) {
            slice.cursor = Some(cursor.clone());
        }
        committer.save().expect("saved");
        let commits = 50;
        let mut spool = spool_of(&dir, b"{\"id\":1}\n");
        let fresh: Vec<String> = (0..commits)
            .map(|n| query_cursor(1000 + n as u64, 100))
            .collect();
        let started = Instant::now();
        for (n, cursor) in fresh.iter().enumerate() {
            let k = (n * 37) % 1000;
            committer
                .commit(k, &mut spool, items(1), next(k as u32, cursor))
                .expect("commit");
        }
        let per_commit = started.elapsed() / commits as u32;
        let on_disk: u64 = std::fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("ckpt"))
            .map(|e| {
                let path = e.path();
                if path.is_dir() {
                    std::fs::read_dir(&path)
                        .map(|d| {
                            d.flatten()
                                .filter_map(|f| f.metadata().ok())
                                .map(|m| m.len())
                                .sum()
                        })
                        .unwrap_or(0)
                } else {
                    e.metadata().map(|m| m.len()).unwrap_or(0)
                }
            })
            .sum();
        let index = std::fs::metadata(dir.join("out.ckpt"))
            .expect("checkpoint")
            .len();
        println!(
            "cursor {} B; checkpoint file {index} B, with cursors {on_disk} B; {:.2} ms a commit ({commits} commits)",
            cursors[0].len(),
            per_commit.as_secs_f64() * 1000.0
        );
        drop(committer);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// GIVEN a killed `pull -o out` (its out.ckpt left) WHEN another run writes `out`
    /// with `--no-checkpoint` (or `--checkpoint OTHER`) THEN it is refused, naming the
    /// checkpoint; and a checkpoint whose output was rewritten since is refused on open.
    #[test]
    fn a_stale_checkpoint_is_never_resumed_against_another_runs_output() {
        let dir = scratch("stale");
        let out = dir.join("out");
        let beside = Files::default_checkpoint(&out);
        let plan = || crate::cli::pull::slices::plan("http://x/", 1, 1, OutputShape::default());
        let files = |checkpoint: Option<PathBuf>, force: bool| Files {
            output: Some(out.clone()),
            checkpoint,
            force,
        };
        let mut first = Committer::open(&files(Some(beside.clone()), false), plan()).expect("open");
        first
            .commit(
                0,
                &mut spool_of(&dir, b"{\"id\":1}\n"),
                items(1),
                next(0, "a"),
            )
            .expect("commit");
        drop(first); // killed: out.ckpt stays
        for other in [None, Some(dir.join("other.ckpt"))] {
            let err = Committer::open(&files(other, true), plan()).expect_err("stale checkpoint");
            let text = err.to_string();
            assert!(text.contains(&beside.display().to_string()), "{text}");
            assert!(text.contains("remove it"), "{text}");
        }
        // Another run rewrote the output (same length, other bytes) behind the checkpoint.
        std::fs::write(&out, b"{\"id\":9}\n").expect("rewrite");
        let err = Committer::open(&files(Some(beside.clone()), false), plan())
            .expect_err("the output is not the checkpoint's");
        let text = err.to_string();
        assert!(text.contains(&beside.display().to_string()), "{text}");
        assert!(text.contains(&out.display().to_string()), "{text}");
        assert_eq!(
            std::fs::read(&out).expect("out"),
            b"{\"id\":9}\n",
            "untouched"
        );
        // The bytes it was saved for resume.
        std::fs::write(&out, b"{\"id\":1}\n{\"id\"").expect("restore");
        let resumed =
            Committer::open(&files(Some(beside.clone()), false), plan()).expect("same bytes");
        assert_eq!(resumed.checkpoint().committed_items, 1);
        drop(resumed);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// GIVEN a checkpoint spelt through `..` or a symlinked directory WHEN it (or its
    /// temporary file, or its lock) is the output THEN the run is refused before the
    /// output exists, even with --force.
    #[test]
    fn the_checkpoint_is_never_the_output_under_any_spelling() {
        let dir = scratch("spelling");
        std::fs::create_dir_all(dir.join("d/sub")).expect("dirs");
        std::os::unix::fs::symlink(dir.join("d"), dir.join("link")).expect("symlink");
        let plan = || crate::cli::pull::slices::plan("http://x/", 1, 1, OutputShape::default());
        let open = |out: &str, ckpt: &str| {
            Committer::open(
                &Files {
                    output: Some(dir.join(out)),
                    checkpoint: Some(dir.join(ckpt)),
                    force: true,
                },
                plan(),
            )
        };
        for (out, ckpt) in [
            ("d/x", "d/sub/../x"),
            ("d/x", "link/x"),
            ("d/.c.scanstream-tmp", "d/sub/../c"),
            ("link/.c.scanstream-lock", "d/c"),
        ] {
            let refused = open(out, ckpt);
            assert!(
                matches!(&refused, Err(CommitError::Refused(text)) if text.contains("is also")),
                "-o {out} --checkpoint {ckpt}: {refused:?}"
            );
        }
        assert!(!dir.join("d/x").exists(), "no output was made");
        drop(open("d/x", "d/sub/../y").expect("another name is fine"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_resume_of_another_read_names_the_option_and_both_values() {
        let dir = scratch("read");
        let files = Files {
            output: Some(dir.join("out")),
            checkpoint: Some(dir.join("out.ckpt")),
            force: false,
        };
        let shape = OutputShape::default;
        drop(
            Committer::open(
                &files,
                crate::cli::pull::slices::plan("http://x/", 2, 1, shape()),
            )
            .expect("open"),
        );
        for (other, wanted) in [
            (
                crate::cli::pull::slices::plan("http://y/", 2, 1, shape()),
                r#"URL: the checkpoint has "http://x/", this run asks for "http://y/""#,
            ),
            (
                crate::cli::pull::slices::plan("http://x/", 3, 1, shape()),
                r#"--invocations: the checkpoint has "2", this run asks for "3""#,
            ),
            (
                crate::cli::pull::slices::plan("http://x/", 2, 4, shape()),
                r#"--segments: the checkpoint has "1", this run asks for "4""#,
            ),
        ] {
            let err = Committer::open(&files, other).expect_err("another read");
            assert!(err.to_string().contains(wanted), "{err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
