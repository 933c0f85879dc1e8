//! The export's data files on disk: their names (the span of committed bytes each holds),
//! the spans a resume keeps, and atomic, synced writes.

use crate::cli::output::paths;
use crate::format::export::DATA_DIR;
use md5::{Digest, Md5};
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// The suffix of a data file.
pub(crate) const DATA_SUFFIX: &str = ".json.gz";
/// The suffix of a data file being written.
pub(crate) const TMP_SUFFIX: &str = ".scanstream-tmp";

/// The span `(from, to)` a data file's name says it holds, if it is one of ours.
pub(crate) fn span_of(name: &str) -> Option<(u64, u64)> {
    let (from, to) = name.strip_suffix(DATA_SUFFIX)?.split_once('-')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(from) && digits(to)) {
        return None;
    }
    let (from, to) = (from.parse().ok()?, to.parse().ok()?);
    (from < to).then_some((from, to))
}

pub(crate) fn data_name(from: u64, to: u64) -> String {
    format!("{from:020}-{to:020}{DATA_SUFFIX}")
}

/// The data files of `folder`, in span order, with their spans; a file in `data/` that
/// is not one of ours is an error (so is a span that overlaps another).
pub(crate) fn data_files(folder: &Path) -> io::Result<Vec<(String, u64, u64)>> {
    let mut found = Vec::new();
    let data = folder.join(DATA_DIR);
    if !data.is_dir() {
        return Ok(found);
    }
    for entry in std::fs::read_dir(&data)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some((from, to)) = span_of(&name) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: not a data file this writer names",
                    data.join(&name).display()
                ),
            ));
        };
        found.push((name, from, to));
    }
    found.sort_by_key(|(_, from, _)| *from);
    Ok(found)
}

/// The bytes `0..n` the data files starting before `length` cover end to end (the ones
/// a resume at `length` keeps), or `None` when they leave a gap, overlap, or one of them
/// runs past `length`.
pub(crate) fn covered_before(folder: &Path, length: u64) -> io::Result<Option<u64>> {
    let mut end = 0;
    for (_, from, to) in data_files(folder)? {
        if from >= length {
            continue;
        }
        if from != end || to > length {
            return Ok(None);
        }
        end = to;
    }
    Ok(Some(end))
}

/// Removes what is not committed: every data file that starts at or past `length`, and
/// any temporary file a killed run left.
pub(crate) fn cut_back(folder: &Path, length: u64) -> io::Result<()> {
    for entry in std::fs::read_dir(folder)?.flatten() {
        if entry.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
            std::fs::remove_file(entry.path())?;
        }
    }
    for (name, from, _) in data_files(folder)? {
        if from >= length {
            std::fs::remove_file(folder.join(DATA_DIR).join(name))?;
        }
    }
    sync_dir(&folder.join(DATA_DIR))
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What an export's sink answers a trailer line: it has none.
pub(crate) fn no_trailer_line() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "an export has no trailer line: its manifest-summary.json says it is whole",
    )
}

/// Writes `bytes` to `path` through a synced temporary file and a rename: a reader sees
/// the old file or the whole new one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = paths::sibling(path, ".", TMP_SUFFIX);
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    // A bare name's parent is "": the working directory.
    match path.parent() {
        Some(dir) if dir.as_os_str().is_empty() => sync_dir(Path::new(".")),
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// A writer that hashes what passes through it.
pub(crate) struct Hashing<W> {
    pub(crate) inner: W,
    pub(crate) md5: Md5,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.md5.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
