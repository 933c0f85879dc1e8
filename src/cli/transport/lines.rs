//! A streamer's body split into lines as it arrives: every line but the last is an item
//! for the spool; the last must be the trailer.

use crate::format::trailer::Trailer;

/// The longest line a body may have. An item line is at most a few MB (a 400 KB item of
/// control characters, escaped in typed JSON) and the trailer holds a cursor of at most 4
/// MiB (`MAX_CURSOR_BYTES`); a longer line is not the streamer's, and buffering it would
/// make memory grow with the body instead of the page.
const MAX_LINE_BYTES: usize = 16 << 20;

/// Splits a body into lines; every line but the last is handed out for the spool, the last
/// must be the trailer.
#[derive(Debug, Default)]
pub struct Lines {
    /// Bytes after the last newline.
    partial: Vec<u8>,
    /// The last whole line, held back: it may be the trailer.
    last: Option<Vec<u8>>,
    /// Lines handed out for the spool.
    pub items: u64,
}

impl Lines {
    /// Takes a decoded chunk; the whole lines it completes that are items, for the spool.
    pub fn push(&mut self, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        // `partial` holds no newline: only the new bytes need searching.
        let before = self.partial.len();
        self.partial.extend_from_slice(bytes);
        let Some(end) = bytes.iter().rposition(|&b| b == b'\n').map(|i| before + i) else {
            return self.bounded().map(|()| Vec::new());
        };
        // partial[..=end] is whole lines: all but the last go out in one write (no
        // shifting of the buffer per line), the last is held back.
        let last_start = self.partial[..end]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let mut out = self.last.take().unwrap_or_default();
        if !out.is_empty() {
            self.items += 1;
        }
        let ready = &self.partial[..last_start];
        out.extend_from_slice(ready);
        self.items += ready.iter().filter(|&&b| b == b'\n').count() as u64;
        self.last = Some(self.partial[last_start..=end].to_vec());
        self.partial.drain(..=end);
        self.bounded().map(|()| out)
    }

    /// An error once the unfinished line is longer than any line of the streamer's.
    fn bounded(&self) -> std::io::Result<()> {
        if self.partial.len() > MAX_LINE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a line longer than {MAX_LINE_BYTES} bytes: not a scanstream body"),
            ));
        }
        Ok(())
    }

    /// The trailer, if the body ended with one after a newline.
    pub fn finish(&self) -> Option<Trailer> {
        if !self.partial.is_empty() {
            return None;
        }
        Trailer::parse_line(self.last.as_deref()?.strip_suffix(b"\n")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_body_ending_in_a_trailer_is_whole() {
        let mut spool = Vec::new();
        let trailer = br#"{"@scanstream":{"complete":true,"items":2,"scanned":2,"pages":1,"consumed_capacity":null,"rcu_per_s":null,"retries":0,"segments":[],"elapsed_ms":1,"ttfb_ms":1}}"#;
        let mut lines = Lines::default();
        spool.extend(lines.push(b"{\"id\":1}\n{\"i").expect("push"));
        spool.extend(lines.push(b"d\":2}\n").expect("push"));
        assert!(
            lines.finish().is_none(),
            "the last line so far is an item: cut off"
        );
        spool.extend(lines.push(trailer).expect("push"));
        assert!(
            lines.finish().is_none(),
            "no newline after the trailer: cut off"
        );
        spool.extend(lines.push(b"\n").expect("push"));
        assert!(lines.finish().is_some_and(|t| t.complete));
        assert_eq!(lines.items, 2);
        assert_eq!(spool, b"{\"id\":1}\n{\"id\":2}\n");
    }

    #[test]
    fn a_line_longer_than_any_of_the_streamers_is_refused() {
        let mut lines = Lines::default();
        let chunk = vec![b'x'; 1 << 20];
        let mut refused = None;
        for i in 0..20 {
            if let Err(err) = lines.push(&chunk) {
                refused = Some((i, err));
                break;
            }
        }
        let (at, err) = refused.expect("refused");
        assert_eq!(at, 16, "after 17 MiB without a newline, not before");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }
}
