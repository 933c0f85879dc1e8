//! Where committed bytes go: the output file, standard output, or (in tests) a sink that
//! fails on purpose; and the digest of the output's last bytes that binds a checkpoint to
//! the output it was saved for.

use crate::cli::output::checkpoint::{Checkpoint, TAIL_BYTES};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

/// Where committed bytes go: the output file, standard output, or (in tests) a sink that
/// fails on purpose. Every write says where it goes: the committed length.
pub trait Sink: Send + std::fmt::Debug {
    /// Writes the whole of `spool` (positioned at its start) at byte `at`; the bytes
    /// written.
    fn put(&mut self, at: u64, spool: &mut File) -> std::io::Result<u64>;
    /// Writes `bytes` at byte `at`.
    fn put_bytes(&mut self, at: u64, bytes: &[u8]) -> std::io::Result<()>;
    /// Makes what was written durable.
    fn sync(&mut self) -> std::io::Result<()>;
    /// Drops everything after byte `length`.
    fn cut_back(&mut self, length: u64) -> std::io::Result<()>;
    /// Reads `len` bytes at `at` back, where the sink can (`None`: standard output).
    fn read_back(&mut self, _at: u64, _len: usize) -> std::io::Result<Option<Vec<u8>>> {
        Ok(None)
    }
    /// The name for messages.
    fn path(&self) -> PathBuf;
    /// Ends a complete run, before the checkpoint is removed: an export writes its
    /// manifests here (`--layout export`, [`crate::cli::output::export`]).
    fn finish(&mut self, _checkpoint: &Checkpoint) -> std::io::Result<()> {
        Ok(())
    }
}

/// The output file.
#[derive(Debug)]
pub struct FileSink {
    file: File,
    path: PathBuf,
}

impl FileSink {
    /// Writes into `file`, called `path` in messages.
    pub fn new(file: File, path: PathBuf) -> Self {
        Self { file, path }
    }
}

impl Sink for FileSink {
    fn put(&mut self, at: u64, spool: &mut File) -> std::io::Result<u64> {
        self.file.seek(SeekFrom::Start(at))?;
        // File to file: the kernel copies (copy_file_range), no bytes pass through here;
        // spools live on the output's filesystem, where that is cheapest.
        std::io::copy(spool, &mut self.file)
    }

    fn put_bytes(&mut self, at: u64, bytes: &[u8]) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(at))?;
        self.file.write_all(bytes)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    fn cut_back(&mut self, length: u64) -> std::io::Result<()> {
        self.file.set_len(length)
    }

    fn read_back(&mut self, at: u64, len: usize) -> std::io::Result<Option<Vec<u8>>> {
        read_at(&self.file, at, len).map(Some)
    }

    fn path(&self) -> PathBuf {
        self.path.clone()
    }
}

pub(crate) fn read_at(file: &File, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0; len];
    file.read_exact_at(&mut bytes, at)?;
    Ok(bytes)
}

/// The hex SHA-256 of the output's bytes before `committed` (at most [`TAIL_BYTES`]),
/// read through `read`; `None` when nothing is committed.
pub(crate) fn tail_digest(
    committed: u64,
    read: impl FnOnce(u64, usize) -> std::io::Result<Option<Vec<u8>>>,
) -> std::io::Result<Option<String>> {
    use sha2::{Digest, Sha256};
    if committed == 0 {
        return Ok(None);
    }
    let len = committed.min(TAIL_BYTES);
    let Some(bytes) = read(committed - len, len as usize)? else {
        return Ok(None);
    };
    Ok(Some(
        Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    ))
}

/// Standard output: it only grows, so nothing can be cut back (and no checkpoint is
/// kept); after a failed write nothing more is written to it.
#[derive(Debug)]
pub(crate) struct StdoutSink(pub(crate) std::io::Stdout);

impl Sink for StdoutSink {
    fn put(&mut self, _at: u64, spool: &mut File) -> std::io::Result<u64> {
        let mut lock = self.0.lock();
        let copied = std::io::copy(spool, &mut lock)?;
        lock.flush()?;
        Ok(copied)
    }

    fn put_bytes(&mut self, _at: u64, bytes: &[u8]) -> std::io::Result<()> {
        let mut lock = self.0.lock();
        lock.write_all(bytes)?;
        lock.flush()
    }

    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn cut_back(&mut self, _length: u64) -> std::io::Result<()> {
        Ok(())
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("standard output")
    }
}
