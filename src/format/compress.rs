//! Compression of a response body: one gzip or zstd stream, flushed page by page.
//!
//! Each page goes through the encoder and is flushed before the next is awaited (gzip's
//! sync flush, the end of a zstd block), so an incremental decoder gets every page as it
//! arrives. The body is an explicit `application/gzip` or `application/zstd` stream with
//! no `Content-Encoding`: Function URLs and CDNs are reported to decode or drop a
//! function-set `Content-Encoding`, while a media type passes untouched.
//!
//! Levels, measured on the seeder's records, 100 a page (`cargo bench --bench encode`):
//! gzip 1 (3.7 µs an item, ratio 2.01) over gzip 6 (22.1 µs, 2.68); zstd 3 (2.5 µs, 2.88)
//! over zstd 1 (1.7 µs, 2.69), since under the Function URL's bandwidth cap bytes matter
//! more than a microsecond an item.

use bytes::Bytes;
use flate2::write::GzEncoder;
use std::io::Write;

/// gzip's level: six times cheaper than 6 (measured), for a ratio of 2.0 instead of 2.7.
pub const GZIP_LEVEL: u32 = 1;
/// zstd's level: its default, cheaper than gzip 1 with a better ratio (measured).
pub const ZSTD_LEVEL: i32 = 3;

/// How a body is compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// Plain NDJSON.
    #[default]
    None,
    /// One gzip member.
    Gzip,
    /// One zstd frame.
    Zstd,
}

impl Compression {
    /// The names `compress=` takes.
    pub const NAMES: &'static [&'static str] = &["none", "gzip", "zstd"];

    /// The compression called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Self::None),
            "gzip" => Some(Self::Gzip),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }

    /// The media type of a body compressed this way.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::None => "application/x-ndjson",
            Self::Gzip => "application/gzip",
            Self::Zstd => "application/zstd",
        }
    }
}

/// An encoder that hands back, after each page, the bytes that page added to the stream.
pub struct Compressor {
    inner: Inner,
}

enum Inner {
    Gzip(GzEncoder<Vec<u8>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Inner::Gzip(_) => "gzip",
            Inner::Zstd(_) => "zstd",
        };
        f.debug_struct("Compressor").field("kind", &kind).finish()
    }
}

impl Compressor {
    /// An encoder for `compression` at the level this module chose; `None` for plain
    /// output.
    pub fn new(compression: Compression) -> Option<Self> {
        let level = match compression {
            Compression::Zstd => ZSTD_LEVEL,
            _ => GZIP_LEVEL as i32,
        };
        Self::with_level(compression, level)
    }

    /// An encoder at another `level`: what the benchmark compares the choice with.
    pub fn with_level(compression: Compression, level: i32) -> Option<Self> {
        let inner = match compression {
            Compression::None => return None,
            Compression::Gzip => Inner::Gzip(GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level.clamp(0, 9).unsigned_abs()),
            )),
            // Creating a zstd context only fails when out of memory.
            Compression::Zstd => {
                Inner::Zstd(zstd::stream::write::Encoder::new(Vec::new(), level).ok()?)
            }
        };
        Some(Self { inner })
    }

    /// Compresses `page` and flushes it: the bytes returned decode to all of it.
    pub fn page(&mut self, page: &[u8]) -> Bytes {
        // Writing into a Vec cannot fail but for lack of memory.
        let taken = match &mut self.inner {
            Inner::Gzip(encoder) => {
                let _ = encoder.write_all(page).and_then(|()| encoder.flush());
                std::mem::take(encoder.get_mut())
            }
            Inner::Zstd(encoder) => {
                let _ = encoder.write_all(page).and_then(|()| encoder.flush());
                std::mem::take(encoder.get_mut())
            }
        };
        Bytes::from(taken)
    }

    /// Compresses the last bytes (the trailer) and ends the stream.
    pub fn finish(self, last: &[u8]) -> Bytes {
        let tail = match self.inner {
            Inner::Gzip(mut encoder) => encoder.write_all(last).and_then(|()| encoder.finish()),
            Inner::Zstd(mut encoder) => encoder.write_all(last).and_then(|()| encoder.finish()),
        };
        Bytes::from(tail.unwrap_or_default())
    }
}

/// The most one chunk of a body may inflate to. A chunk is what the network handed over
/// (kilobytes); the streamer's pages are a few MB decoded at most, and its longest line
/// 16 MiB. Past this the chunk is refused, not allocated: a frame of a few KB can claim a
/// gigabyte (a compression bomb).
pub const MAX_DECODED_CHUNK: usize = 32 << 20;

/// An incremental decoder for a body of the given media type: what a client reading a
/// compressed stream uses, chunk by chunk, each chunk's output bounded by
/// [`MAX_DECODED_CHUNK`].
pub struct Decompressor(Decoder);

enum Decoder {
    /// Plain bytes pass through.
    Plain,
    /// A gzip stream.
    Gzip(flate2::write::GzDecoder<Capped>),
    /// A zstd stream.
    Zstd(zstd::stream::write::Decoder<'static, Capped>),
}

/// The decoders' output: refuses bytes past its room, so a bomb fails the write that
/// would have grown it.
#[derive(Debug, Default)]
struct Capped {
    out: Vec<u8>,
    room: usize,
}

impl Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if bytes.len() > self.room {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "a chunk of the body inflates past {} MiB: a compression bomb, or data \
                     more compressible than this client allows a chunk (read it with \
                     --compress none)",
                    MAX_DECODED_CHUNK >> 20
                ),
            ));
        }
        self.room -= bytes.len();
        self.out.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Decompressor {
    /// The decoder for a response with these headers (by its `content-type`).
    pub fn for_headers(headers: &http::HeaderMap) -> std::io::Result<Self> {
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Self::for_content_type(content_type)
    }

    /// The decoder for a `content-type`.
    pub fn for_content_type(content_type: &str) -> std::io::Result<Self> {
        Ok(Self(match content_type {
            "application/gzip" => Decoder::Gzip(flate2::write::GzDecoder::new(Capped::default())),
            "application/zstd" => {
                Decoder::Zstd(zstd::stream::write::Decoder::new(Capped::default())?)
            }
            _ => Decoder::Plain,
        }))
    }

    /// The plain bytes `chunk` completes; an `InvalidData` error when they would be more
    /// than [`MAX_DECODED_CHUNK`].
    pub fn decode(&mut self, chunk: &[u8]) -> std::io::Result<Vec<u8>> {
        fn run<W: Write>(
            decoder: &mut W,
            out: impl Fn(&mut W) -> &mut Capped,
            chunk: &[u8],
        ) -> std::io::Result<Vec<u8>> {
            out(decoder).room = MAX_DECODED_CHUNK;
            decoder.write_all(chunk)?;
            decoder.flush()?;
            Ok(std::mem::take(&mut out(decoder).out))
        }
        match &mut self.0 {
            Decoder::Plain => Ok(chunk.to_vec()),
            Decoder::Gzip(decoder) => run(decoder, |d| d.get_mut(), chunk),
            Decoder::Zstd(decoder) => run(decoder, |d| d.get_mut(), chunk),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Feeds `chunks` to an incremental decoder one at a time; after each, what it decoded.
    fn decode_incrementally(compression: Compression, chunks: &[Bytes]) -> Vec<Vec<u8>> {
        let mut seen = Vec::new();
        match compression {
            Compression::Gzip => {
                let mut decoder = flate2::write::GzDecoder::new(Vec::new());
                for chunk in chunks {
                    decoder.write_all(chunk).expect("gzip");
                    decoder.flush().expect("flush");
                    seen.push(decoder.get_ref().clone());
                }
            }
            Compression::Zstd => {
                let mut decoder = zstd::stream::write::Decoder::new(Vec::new()).expect("zstd");
                for chunk in chunks {
                    decoder.write_all(chunk).expect("zstd");
                    decoder.flush().expect("flush");
                    seen.push(decoder.get_ref().clone());
                }
            }
            Compression::None => unreachable!(),
        }
        seen
    }

    #[test]
    fn every_page_decodes_as_soon_as_its_bytes_arrive() {
        for compression in [Compression::Gzip, Compression::Zstd] {
            let mut encoder = Compressor::new(compression).expect("an encoder");
            let pages: Vec<Vec<u8>> = (0..5)
                .map(|p| {
                    (0..100)
                        .map(|i| format!("{{\"id\":\"{p}-{i}\",\"pad\":\"{}\"}}\n", "x".repeat(i)))
                        .collect::<String>()
                        .into_bytes()
                })
                .collect();
            let mut chunks: Vec<Bytes> = pages.iter().map(|page| encoder.page(page)).collect();
            chunks.push(encoder.finish(b"{\"@scanstream\":{}}\n"));
            let decoded = decode_incrementally(compression, &chunks);
            let mut expected = Vec::new();
            for (i, page) in pages.iter().enumerate() {
                expected.extend_from_slice(page);
                assert_eq!(
                    decoded[i], expected,
                    "{compression:?}: page {i} decodes at once"
                );
            }
            expected.extend_from_slice(b"{\"@scanstream\":{}}\n");
            assert_eq!(decoded.last(), Some(&expected));
            let wire: usize = chunks.iter().map(Bytes::len).sum();
            assert!(
                wire < expected.len() / 2,
                "{compression:?}: {wire} of {}",
                expected.len()
            );
        }
    }

    /// The process's peak RSS so far, in kB.
    fn peak_rss_kb() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// A zstd frame of `blocks` RLE blocks of 128 KiB of `byte`, 4 bytes each on the wire.
    fn zstd_bomb(blocks: usize, byte: u8) -> Vec<u8> {
        let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 7 << 3];
        for n in 0..blocks {
            let header = u32::from(n + 1 == blocks) | (1 << 1) | ((128 << 10) << 3);
            frame.extend_from_slice(&header.to_le_bytes()[..3]);
            frame.push(byte);
        }
        frame
    }

    #[test]
    fn a_bomb_is_refused_before_it_is_inflated() {
        // 32 KiB that inflate to 1 GiB of one byte.
        let bomb = zstd_bomb(8192, b'x');
        let before = peak_rss_kb();
        let mut decoder = Decompressor::for_content_type("application/zstd").expect("zstd");
        let err = match decoder.decode(&bomb) {
            Ok(plain) => panic!("inflated to {} bytes", plain.len()),
            Err(err) => err,
        };
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains("inflates past"), "{err}");
        let grown = peak_rss_kb().saturating_sub(before);
        assert!(grown < 200_000, "the peak RSS grew by {grown} kB");
        // gzip: 96 MiB of one byte in about 100 KB.
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let block = vec![b'x'; 1 << 20];
        for _ in 0..96 {
            encoder.write_all(&block).expect("gzip");
        }
        let bomb = encoder.finish().expect("gzip");
        let mut decoder = Decompressor::for_content_type("application/gzip").expect("gzip");
        let err = match decoder.decode(&bomb) {
            Ok(plain) => panic!("inflated to {} bytes", plain.len()),
            Err(err) => err,
        };
        assert!(err.to_string().contains("inflates past"), "{err}");
        // What the streamer sends still decodes, a chunk at a time.
        let mut encoder = Compressor::new(Compression::Zstd).expect("zstd");
        let page = vec![b'y'; 20 << 20];
        let mut decoder = Decompressor::for_content_type("application/zstd").expect("zstd");
        let mut decoded = 0;
        for chunk in encoder.page(&page).chunks(64 << 10) {
            decoded += decoder.decode(chunk).expect("a page").len();
        }
        assert_eq!(decoded, page.len());
    }

    #[test]
    fn names_and_media_types() {
        assert_eq!(Compression::from_name("zstd"), Some(Compression::Zstd));
        assert_eq!(Compression::from_name("ZSTD"), None);
        assert_eq!(Compression::Gzip.content_type(), "application/gzip");
        assert!(Compressor::new(Compression::None).is_none());
    }
}
