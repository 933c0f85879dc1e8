//! Where a load reads from, and its bytes as lines.
//!
//! `-` is standard input. A path is opened and looked at: a regular file can be read twice
//! (checked first, then written), a directory is an export, and anything else (a FIFO, a
//! character device, `/dev/stdin` on a pipe, a process substitution) is a stream, written
//! as it arrives. gzip and zstd are recognised by their first bytes and decoded as the
//! bytes stream, so memory never holds more than a buffer and one line.

use crate::dynamo::s3::Bucket;
use crate::format::location::S3Location;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

/// The longest line read: a 400 KB item of control characters, each escaped as `\u0001`
/// in JSON, is 2.4 MB. A longer line is refused without being held.
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// Read buffer: large enough that decoding and parsing, not system calls, set the pace.
const BUFFER_BYTES: usize = 256 << 10;

/// What `--from` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input (`-`).
    Stdin,
    /// A regular file: checked in a first pass, written in a second.
    File(PathBuf),
    /// A directory: a DynamoDB export.
    Directory(PathBuf),
    /// Anything else that can be read once: written as it streams.
    Stream(PathBuf),
    /// `s3://BUCKET/PREFIX`: an export in S3 (the folder, or a prefix holding one).
    S3(Remote),
    /// One object of an export in S3: read as it streams, and again for the second pass.
    Object(Remote),
}

/// A location in S3 and the bucket handle that reads it, from a blocking thread.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The bucket.
    pub bucket: Bucket,
    /// The location: `prefix` is the folder's, or the object's key.
    pub location: S3Location,
    /// The runtime the S3 calls wait on.
    pub handle: tokio::runtime::Handle,
    /// An object's ETag when it was listed: every read asks for that version.
    pub etag: Option<String>,
}

impl Remote {
    /// The same bucket at `key`.
    pub fn at(&self, key: &str) -> Self {
        Self {
            location: S3Location {
                bucket: self.location.bucket.clone(),
                prefix: key.to_string(),
            },
            etag: None,
            ..self.clone()
        }
    }
}

impl PartialEq for Remote {
    fn eq(&self, other: &Self) -> bool {
        self.location == other.location
    }
}

impl Eq for Remote {}

impl Source {
    /// Classifies `path` by what it is once opened (so `/dev/stdin` redirected from a
    /// file is a file, and on a pipe a stream).
    pub fn of(path: &Path) -> io::Result<Self> {
        if path.as_os_str() == "-" {
            return Ok(Self::Stdin);
        }
        let metadata = std::fs::metadata(path)?;
        Ok(if metadata.is_file() {
            Self::File(path.to_path_buf())
        } else if metadata.is_dir() {
            Self::Directory(path.to_path_buf())
        } else {
            Self::Stream(path.to_path_buf())
        })
    }

    /// How messages name it.
    pub fn name(&self) -> String {
        match self {
            Self::Stdin => "standard input".to_string(),
            Self::File(p) | Self::Directory(p) | Self::Stream(p) => p.display().to_string(),
            Self::S3(remote) | Self::Object(remote) => remote.location.to_string(),
        }
    }

    /// A regular file's size and modification time, or an object's ETag as listed, to
    /// tell whether it changed; `None`
    /// for anything else (or a file that cannot be read).
    pub fn stamp(&self) -> Option<String> {
        match self {
            Self::File(path) => super::checkpoint::file_fingerprint(path).ok(),
            Self::Object(remote) => remote.etag.clone(),
            _ => None,
        }
    }

    /// Whether it is read once, as it arrives.
    pub fn is_stream(&self) -> bool {
        matches!(self, Self::Stdin | Self::Stream(_))
    }

    /// Opens it for reading, decoded (not for a directory).
    pub fn open(&self) -> io::Result<Box<dyn BufRead + Send>> {
        match self {
            Self::Stdin => decoded(io::stdin()),
            Self::File(p) | Self::Stream(p) => decoded(File::open(p)?),
            Self::Object(_) => decoded(self.open_raw()?),
            Self::Directory(_) | Self::S3(_) => Err(io::Error::other(format!(
                "{} is a folder, read as an export",
                self.name()
            ))),
        }
    }

    /// A file's or an object's bytes as they are, not decoded (for their MD5).
    pub fn open_raw(&self) -> io::Result<Box<dyn Read + Send>> {
        match self {
            Self::File(p) => Ok(Box::new(File::open(p)?)),
            Self::Object(remote) => remote.bucket.open_blocking(
                &remote.location.prefix,
                remote.etag.as_deref(),
                &remote.handle,
            ),
            _ => Err(io::Error::other(format!(
                "{} is not a file or an object",
                self.name()
            ))),
        }
    }
}

/// `raw` decoded: gzip (any number of members) or zstd (any number of frames) when it
/// starts with their magic number, as it is otherwise.
pub fn decoded(raw: impl Read + Send + 'static) -> io::Result<Box<dyn BufRead + Send>> {
    const GZIP: &[u8] = &[0x1f, 0x8b];
    const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
    let mut raw = raw;
    // A pipe may hand over fewer bytes than the magic number in its first read.
    let mut head = Vec::with_capacity(4);
    while head.len() < 4 {
        let mut byte = [0u8; 4];
        let want = 4 - head.len();
        match raw.read(&mut byte[..want]) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&byte[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    let gzip = head.starts_with(GZIP);
    let zstd = head.starts_with(ZSTD);
    let whole = Cursor::new(head).chain(raw);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(
            BUFFER_BYTES,
            flate2::read::MultiGzDecoder::new(whole),
        ))
    } else if zstd {
        Box::new(BufReader::with_capacity(
            BUFFER_BYTES,
            zstd::stream::read::Decoder::new(whole)?,
        ))
    } else {
        Box::new(BufReader::with_capacity(BUFFER_BYTES, whole))
    })
}

/// One line read by [`read_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// The line is in the buffer, without its `\n` (or `\r\n`).
    Read,
    /// The last line, not ended by `\n`: whole in a file, perhaps cut off in a stream.
    Unended,
    /// The line was longer than the limit: this many bytes, not kept.
    TooLong(usize),
}

/// Reads the next line into `buf` (cleared first), holding at most `max` bytes of it;
/// `None` at the end of the input.
pub fn read_line(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<Line>> {
    buf.clear();
    let mut seen = 0usize;
    let mut any = false;
    let mut ended = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            if !any {
                return Ok(None);
            }
            break;
        }
        any = true;
        let (chunk, used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..at], at + 1, true),
            None => (available, available.len(), false),
        };
        seen += chunk.len();
        if seen <= max {
            buf.extend_from_slice(chunk);
        }
        reader.consume(used);
        if done {
            ended = true;
            break;
        }
    }
    if seen > max {
        buf.clear();
        return Ok(Some(Line::TooLong(seen)));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(if ended { Line::Read } else { Line::Unended }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(input: Vec<u8>, max: usize) -> Vec<Result<String, usize>> {
        let mut reader = decoded(Cursor::new(input)).expect("open");
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(line) = read_line(&mut *reader, &mut buf, max).expect("read") {
            out.push(match line {
                Line::Read | Line::Unended => Ok(String::from_utf8(buf.clone()).expect("utf-8")),
                Line::TooLong(n) => Err(n),
            });
        }
        out
    }

    #[test]
    fn lines_come_out_plain_gzip_and_zstd_alike() {
        let text = b"a\r\nbb\n\nccc".to_vec();
        let want = vec![
            Ok("a".into()),
            Ok("bb".into()),
            Ok(String::new()),
            Ok("ccc".into()),
        ];
        assert_eq!(lines(text.clone(), 100), want);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text[..4]).expect("gzip");
        let mut two = gz.finish().expect("gzip");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text[4..]).expect("gzip");
        two.extend(gz.finish().expect("gzip"));
        assert_eq!(lines(two, 100), want, "two gzip members read as one stream");
        let zstd = zstd::stream::encode_all(Cursor::new(text), 3).expect("zstd");
        assert_eq!(lines(zstd, 100), want);
    }

    #[test]
    fn a_line_over_the_limit_is_measured_not_kept() {
        let text = format!("short\n{}\nafter\n", "x".repeat(1000)).into_bytes();
        assert_eq!(
            lines(text, 100),
            vec![Ok("short".into()), Err(1000), Ok("after".into())]
        );
    }
}
