//! One data file of an export being made in memory: lines in, compressed bytes out in
//! pieces (the parts of a multipart upload), with the MD5 of every byte handed out, so
//! the file is never held whole.
//!
//! The file is one gzip member or one zstd frame over all its lines, at the levels of
//! [`crate::format::compress`], never flushed in between: unlike a response, nobody reads
//! it until it is whole.

use crate::format::compress::{Compression, GZIP_LEVEL, ZSTD_LEVEL};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::write::GzEncoder;
use md5::{Digest, Md5};
use std::io::Write;

/// A data file being written.
pub struct DataFile {
    encoder: Encoder,
    md5: Md5,
    /// Bytes handed out so far.
    taken: u64,
    /// Items written.
    items: u64,
    /// The capacity each buffer of output starts with: a part and some, so a part's
    /// buffer is allocated once instead of doubled past the part's size.
    capacity: usize,
}

enum Encoder {
    Plain(Vec<u8>),
    Gzip(GzEncoder<Vec<u8>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

/// A finished file: its last bytes, and what describes the whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The bytes not yet handed out (the last part).
    pub tail: Vec<u8>,
    /// Base64 MD5 of the whole file as stored, as `md5Checksum` writes it.
    pub md5: String,
    /// The whole file's size in bytes.
    pub bytes: u64,
    /// Items in it.
    pub items: u64,
}

impl std::fmt::Debug for DataFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataFile")
            .field("taken", &self.taken)
            .field("ready", &self.ready())
            .field("items", &self.items)
            .finish()
    }
}

impl DataFile {
    /// An empty file compressed as `compression` says, handed out in parts of
    /// `part_bytes` and up to a page more.
    pub fn new(compression: Compression, part_bytes: usize) -> std::io::Result<Self> {
        // Compressed, a page is well under a quarter of a part (5 MiB at least), so the
        // buffer is allocated once; plain, a large page can still grow it past that.
        let capacity = part_bytes.saturating_add(part_bytes / 4);
        let buffer = || Vec::with_capacity(capacity);
        let encoder = match compression {
            Compression::None => Encoder::Plain(buffer()),
            Compression::Gzip => Encoder::Gzip(GzEncoder::new(
                buffer(),
                flate2::Compression::new(GZIP_LEVEL),
            )),
            Compression::Zstd => {
                Encoder::Zstd(zstd::stream::write::Encoder::new(buffer(), ZSTD_LEVEL)?)
            }
        };
        Ok(Self {
            encoder,
            md5: Md5::new(),
            taken: 0,
            items: 0,
            capacity,
        })
    }

    /// The name's suffix of a file compressed as `compression` says.
    pub fn suffix(compression: Compression) -> &'static str {
        match compression {
            Compression::None => ".json",
            Compression::Gzip => ".json.gz",
            Compression::Zstd => ".json.zst",
        }
    }

    /// Appends `items` whole lines.
    pub fn write(&mut self, lines: &[u8], items: u64) {
        // Writing into a Vec fails only when memory runs out, which aborts anyway.
        let _ = match &mut self.encoder {
            Encoder::Plain(out) => {
                out.extend_from_slice(lines);
                Ok(())
            }
            Encoder::Gzip(encoder) => encoder.write_all(lines),
            Encoder::Zstd(encoder) => encoder.write_all(lines),
        };
        self.items += items;
    }

    /// Compressed bytes ready to be handed out.
    pub fn ready(&self) -> usize {
        match &self.encoder {
            Encoder::Plain(out) => out.len(),
            Encoder::Gzip(encoder) => encoder.get_ref().len(),
            Encoder::Zstd(encoder) => encoder.get_ref().len(),
        }
    }

    /// The file's size so far: bytes handed out and ready.
    pub fn bytes(&self) -> u64 {
        self.taken + self.ready() as u64
    }

    /// Items written.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// Hands out the bytes ready (a part), counted into the MD5.
    pub fn take(&mut self) -> Vec<u8> {
        let fresh = Vec::with_capacity(self.capacity);
        let out = match &mut self.encoder {
            Encoder::Plain(out) => std::mem::replace(out, fresh),
            Encoder::Gzip(encoder) => std::mem::replace(encoder.get_mut(), fresh),
            Encoder::Zstd(encoder) => std::mem::replace(encoder.get_mut(), fresh),
        };
        self.md5.update(&out);
        self.taken += out.len() as u64;
        out
    }

    /// Ends the file: its last bytes, its MD5, size and items.
    pub fn finish(self) -> std::io::Result<Finished> {
        let tail = match self.encoder {
            Encoder::Plain(out) => out,
            Encoder::Gzip(encoder) => encoder.finish()?,
            Encoder::Zstd(encoder) => encoder.finish()?,
        };
        let mut md5 = self.md5;
        md5.update(&tail);
        Ok(Finished {
            bytes: self.taken + tail.len() as u64,
            md5: STANDARD.encode(md5.finalize()),
            tail,
            items: self.items,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn lines(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| format!("{{\"Item\":{{\"id\":{{\"S\":\"item-{i:06}\"}}}}}}\n"))
            .collect::<String>()
            .into_bytes()
    }

    fn decode(compression: Compression, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match compression {
            Compression::None => out.extend_from_slice(bytes),
            Compression::Gzip => {
                flate2::read::GzDecoder::new(bytes)
                    .read_to_end(&mut out)
                    .expect("gzip");
            }
            Compression::Zstd => out = zstd::decode_all(bytes).expect("zstd"),
        }
        out
    }

    #[test]
    fn parts_taken_along_the_way_and_the_tail_make_the_file_and_its_md5() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut file = DataFile::new(compression, 4096).expect("encoder");
            let mut stored = Vec::new();
            let mut plain = Vec::new();
            for page in 0..50 {
                let page_lines = lines(200 + page);
                plain.extend_from_slice(&page_lines);
                file.write(&page_lines, 200 + page as u64);
                if file.ready() > 4096 {
                    stored.extend(file.take());
                }
            }
            let finished = file.finish().expect("finish");
            stored.extend_from_slice(&finished.tail);
            assert_eq!(finished.bytes, stored.len() as u64, "{compression:?}");
            assert_eq!(
                finished.md5,
                crate::format::export::md5_base64(&stored[..]).expect("md5"),
                "{compression:?}"
            );
            assert_eq!(finished.items, (0..50).map(|p| 200 + p).sum::<u64>());
            assert_eq!(decode(compression, &stored), plain, "{compression:?}");
        }
    }

    #[test]
    fn an_empty_file_is_still_a_valid_stream() {
        let finished = DataFile::new(Compression::Gzip, 4096)
            .expect("encoder")
            .finish()
            .expect("finish");
        assert_eq!(decode(Compression::Gzip, &finished.tail), b"");
        assert_eq!(finished.items, 0);
    }
}
