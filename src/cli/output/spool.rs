//! A call's spool: its item lines, held on disk until its trailer says the call is whole.
//!
//! Spools live beside the output (`.NAME.SLICE.scanstream-spool` for `-o NAME`): on the
//! output's filesystem, so a commit is a copy inside one filesystem (the kernel's
//! `copy_file_range`), and never in a `/tmp` that may be RAM. Being named after the output,
//! the ones a killed run left behind are found and removed when the next run on that output
//! starts (under the output's lock, so none is a live run's). With standard output as the
//! output there is no such place: spools go to the temporary directory, named by process,
//! and each is unlinked as soon as it is open, so that a killed run leaves nothing behind
//! (the open handle keeps the data until the commit has copied it).
//!
//! Each chunk is written by a blocking task of its own, one at a time per spool, so a slow
//! disk never stalls the runtime's threads (the other slices' bodies keep flowing) and no
//! call holds one of tokio's blocking threads (512) between its chunks: with
//! `--invocations` up to 1,000, writers held for whole calls would leave commits and the
//! other calls' writes queued behind idle ones. While a chunk is written the next one is
//! decoded; memory holds at most two chunks per call (the one being written and the one
//! waiting for it), each at most `compress::MAX_DECODED_CHUNK` decoded. A write that fails fails the
//! call, which is made again like any other failed call.
//!
//! The bound: a spool holds one whole call, decoded. The streamer caps a response on the
//! wire (`MAX_RESPONSE_BYTES`), so a zstd call can decode to about three times that;
//! `--max-items-per-call` makes calls, and spools, smaller. A call cannot be committed in
//! parts: its only resume point is the cursor in its trailer, so a part committed before
//! the trailer arrived would be read again after a cut-off, and delivered twice.

use crate::cli::output::paths::{SPOOL_SUFFIX, UNNAMED_SPOOL_PREFIX};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::task::JoinHandle;

/// Whether `path` is a spool of a run writing to standard output.
fn unnamed(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with(UNNAMED_SPOOL_PREFIX))
}

/// Removes the spools of earlier runs on `output`: `.NAME.<digits>.scanstream-spool`
/// beside it. Call it holding the output's lock.
pub fn remove_stale(output: &Path) -> usize {
    let Some(name) = output.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return 0;
    };
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let slice = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(SPOOL_SUFFIX));
        if slice.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// One call's spool being written.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    file: Written,
}

/// Where the spool's file is.
#[derive(Debug)]
enum Written {
    /// Here, between writes (or the error that opening it gave).
    Idle(std::io::Result<File>),
    /// With the blocking task writing a chunk into it.
    Writing(JoinHandle<std::io::Result<File>>),
    /// Given up after an error, or taken by [`Spool::into_file`].
    Gone,
}

impl Spool {
    /// Starts an empty spool at `path`, in place of what an earlier call left there. An
    /// error creating it comes back from the first write or from `finish`, like any
    /// write error.
    pub fn start(path: &Path) -> Self {
        // A new file, not the old one truncated: a write of a call given up on may still
        // be under way into the old one. Two metadata operations, done here so that they
        // are ordered before this spool's first write.
        let opened = match std::fs::remove_file(path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => File::options()
                .create_new(true)
                .read(true)
                .write(true)
                .open(path),
        };
        let opened = match opened {
            Ok(file) if unnamed(path) => std::fs::remove_file(path).map(|()| file),
            other => other,
        };
        Self {
            path: path.to_path_buf(),
            file: Written::Idle(opened),
        }
    }

    /// The file once the write under way (if any) is done.
    async fn settled(&mut self) -> std::io::Result<File> {
        match std::mem::replace(&mut self.file, Written::Gone) {
            Written::Idle(file) => file,
            Written::Writing(task) => task
                .await
                .map_err(|err| std::io::Error::other(format!("spool writer: {err}")))?,
            Written::Gone => Err(self.closed()),
        }
    }

    /// Hands `bytes` (whole lines) to a blocking task that writes them; waits for the
    /// chunk before, not for this one.
    pub async fn write(&mut self, bytes: Vec<u8>) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut file = self.settled().await?;
        self.file = Written::Writing(tokio::task::spawn_blocking(move || {
            file.write_all(&bytes)?;
            Ok(file)
        }));
        Ok(())
    }

    /// Waits for the last chunk to be written; the spool is then ready to commit.
    pub async fn finish(&mut self) -> std::io::Result<()> {
        let file = self.settled().await?;
        self.file = Written::Idle(Ok(file));
        Ok(())
    }

    /// The written file, after a successful [`Spool::finish`].
    pub fn into_file(self) -> std::io::Result<File> {
        let closed = self.closed();
        match self.file {
            Written::Idle(Ok(file)) => Ok(file),
            _ => Err(closed),
        }
    }

    fn closed(&self) -> std::io::Error {
        std::io::Error::other(format!("spool {} was not written", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::output::paths;
    use std::io::{Read, Seek};

    #[tokio::test]
    async fn chunks_arrive_in_order_and_a_write_error_comes_back() {
        let dir = std::env::temp_dir().join(format!("spool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut spool = Spool::start(&dir.join("s"));
        for i in 0..100 {
            spool
                .write(format!("{i}\n").into_bytes())
                .await
                .expect("write");
        }
        spool.finish().await.expect("finish");
        let mut file = spool.into_file().expect("file");
        file.rewind().expect("rewind");
        let mut text = String::new();
        file.read_to_string(&mut text).expect("read");
        let expected: String = (0..100).map(|i| format!("{i}\n")).collect();
        assert_eq!(text, expected);

        // A spool that cannot be opened (its directory is missing): the error reaches
        // the call, which is then made again.
        let mut spool = Spool::start(&dir.join("missing").join("s"));
        let mut failed = None;
        for _ in 0..10 {
            if let Err(err) = spool.write(b"x\n".to_vec()).await {
                failed = Some(err);
                break;
            }
        }
        let err = match failed {
            Some(err) => err,
            None => spool.finish().await.expect_err("not written"),
        };
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// GIVEN more spools than blocking threads WHEN each gets more chunks than a queue
    /// holds THEN all are written: no spool holds a thread between its writes.
    #[test]
    fn spools_hold_no_blocking_thread_between_writes() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = std::env::temp_dir().join(format!("spool-threads-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let written = runtime.block_on(async {
            let mut spools: Vec<Spool> = (0..3)
                .map(|k| Spool::start(&dir.join(k.to_string())))
                .collect();
            let all = async {
                for _ in 0..10 {
                    for spool in &mut spools {
                        spool.write(b"x\n".to_vec()).await?;
                    }
                }
                for spool in &mut spools {
                    spool.finish().await?;
                }
                Ok::<_, std::io::Error>(())
            };
            tokio::time::timeout(std::time::Duration::from_secs(20), all).await
        });
        assert!(
            matches!(written, Ok(Ok(()))),
            "the third spool waited for a thread: {written:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_spool_of_standard_output_leaves_no_file_and_keeps_its_lines() {
        let path = paths::spool(None, 7);
        let mut spool = Spool::start(&path);
        spool.write(b"{\"a\":1}\n".to_vec()).await.expect("written");
        spool.finish().await.expect("finished");
        assert!(!path.exists(), "{} is unlinked", path.display());
        let mut file = spool.into_file().expect("file");
        let mut text = String::new();
        std::io::Seek::rewind(&mut file).expect("rewound");
        std::io::Read::read_to_string(&mut file, &mut text).expect("read");
        assert_eq!(text, "{\"a\":1}\n");
    }

    #[test]
    fn only_this_outputs_spools_are_stale() {
        let dir = std::env::temp_dir().join(format!("stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let out = dir.join("scan.ndjson");
        let ours = [paths::spool(Some(&out), 0), paths::spool(Some(&out), 12)];
        let others = [
            dir.join("scan.ndjson"),
            dir.join(".scan.ndjson.x.scanstream-spool"),
            dir.join(".other.ndjson.0.scanstream-spool"),
            dir.join(".scan.ndjson.0.scanstream-spool.keep"),
        ];
        for file in ours.iter().chain(&others) {
            std::fs::write(file, b"x").expect("file");
        }
        assert_eq!(remove_stale(&out), 2);
        assert!(ours.iter().all(|p| !p.exists()));
        assert!(others.iter().all(|p| p.exists()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
