//! A Query fan-out in the client: the `--pk` and `--pk-file` keys, checked, sorted and cut
//! into slices of at most `--pk-per-call` keys, one slice's keys per call.
//!
//! The streamer takes at most `MAX_PARTITIONS` (default 100) `pk` values a call, so the
//! client spreads a longer list over calls as it spreads segments over invocations: slice
//! `k` is the sorted keys `k*P..(k+1)*P`, read by one worker from its first call to its
//! last cursor, and `--invocations` slices are read at once. `P` is the keys over the
//! invocations, rounded up, and at most `--pk-per-call`: so there are at most
//! `--invocations` slices unless `--pk-per-call` caps `P` (more keys than `invocations x
//! per_call`), and there may be fewer (10 keys over 8 invocations are 5 slices of 2). A
//! worker takes the next slice when one finishes or gives up; the checkpoint keeps a cursor
//! for each slice begun and not done: at most `--invocations` being read, and any that
//! gave up (for the resume).
//!
//! The keys are sorted (by their bytes) so that the same set gives the same slices and the
//! same checkpoint, whatever order it was given in; the checkpoint records the set by
//! content ([`Partitions::digest`]), not by the file's path.
//!
//! Every key is held in memory (to sort them, and to name a key given twice before any
//! call), so the list is bounded: [`MAX_KEYS`] keys and [`MAX_FILE_BYTES`] of file. That is
//! a thousand calls of 100 partitions; a larger set of partitions is better read by a Scan
//! with a filter. The file's lines are taken only up to one past [`MAX_KEYS`], so a file of
//! many short lines is refused without holding them all. The slices are bounded too
//! ([`MAX_SLICES`]): the checkpoint records every slice and is rewritten at every commit.

use crate::format::number::Number;
use std::io::Read;
use std::path::Path;

/// The most keys one pull takes (`--pk` and `--pk-file` together).
pub const MAX_KEYS: usize = 100_000;

/// The most slices one pull is cut into. The checkpoint holds a record per slice (its
/// first key's place, its cursor, whether it is done) and is written again at every
/// commit: 1,000 slices keep that to tens of KB. 1,000 is also what the largest set
/// ([`MAX_KEYS`]) makes at the default [`DEFAULT_PER_CALL`], so the bound only refuses a
/// `--pk-per-call` lower than the set needs (`--pk-per-call 1` with 100,000 keys would be
/// 100,000 slices and a checkpoint of ~8 MB rewritten at every commit).
pub const MAX_SLICES: usize = 1_000;

/// The largest `--pk-file`.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// The longest key text: a B key is given as the base64 of up to DynamoDB's 2048 bytes
/// (the streamer checks the typed size, which the client, not knowing the key's type,
/// cannot).
pub const MAX_KEY_TEXT_BYTES: usize = 2048_usize.div_ceil(3) * 4;

/// `pk` values per call unless `--pk-per-call` says otherwise: the streamer's default
/// `MAX_PARTITIONS`.
pub const DEFAULT_PER_CALL: u32 = 100;

/// Why the keys cannot be used; said before any call.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

/// The partitions of a pull, sorted, and how many a slice takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitions {
    keys: Vec<String>,
    per_slice: usize,
}

impl Partitions {
    /// The keys of `given` (`--pk`, in order) and `file` (`--pk-file`, one a line), checked:
    /// each 1 to [`MAX_KEY_TEXT_BYTES`] bytes, none twice (nor two spellings of one number),
    /// at most [`MAX_KEYS`]; cut into slices of the keys over `invocations` (rounded up),
    /// at most `per_call` keys each, and at most [`MAX_SLICES`] of them.
    pub fn read(
        given: &[String],
        file: Option<&Path>,
        invocations: u32,
        per_call: u32,
    ) -> Result<Self, KeyError> {
        let mut keys: Vec<(String, Origin)> = given
            .iter()
            .map(|key| (key.clone(), Origin::Given))
            .collect();
        if let Some(path) = file {
            // One key past the bound is enough to refuse the set.
            let room = (MAX_KEYS + 1).saturating_sub(keys.len()).max(1);
            let from_file = read_file(path, room)?;
            if from_file.is_empty() {
                return Err(KeyError(format!(
                    "--pk-file {} holds no keys (one a line)",
                    path.display()
                )));
            }
            keys.extend(from_file);
        }
        if keys.len() > MAX_KEYS {
            return Err(KeyError(format!(
                "more than {MAX_KEYS} partition keys; a pull takes at most {MAX_KEYS} (a Scan \
                 with --filter reads more partitions better)"
            )));
        }
        for (key, from) in &keys {
            if key.is_empty() || key.len() > MAX_KEY_TEXT_BYTES {
                return Err(KeyError(format!(
                    "the partition key from {from} must be 1 to {MAX_KEY_TEXT_BYTES} bytes, got {}",
                    key.len()
                )));
            }
        }
        // By text, then by number: `1` and `1.0` are one partition of an N key, which
        // two slices would read twice; the client does not know the key's type, so it
        // refuses both spellings.
        keys.sort();
        for pair in keys.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(KeyError(format!(
                    "the partition key {:?} is given twice ({} and {})",
                    pair[0].0, pair[0].1, pair[1].1
                )));
            }
        }
        let mut numbers = std::collections::HashMap::new();
        for (i, (key, _)) in keys.iter().enumerate() {
            let Ok(number) = Number::parse(key) else {
                continue;
            };
            if let Some(first) = numbers.insert(number, i) {
                let (a, b) = (&keys[first], &keys[i]);
                return Err(KeyError(format!(
                    "the partition keys {:?} ({}) and {:?} ({}) are one number: one partition \
                     if the key is a number; give one of them",
                    a.0, a.1, b.0, b.1
                )));
            }
        }
        let keys: Vec<String> = keys.into_iter().map(|(key, _)| key).collect();
        let invocations = invocations.max(1) as usize;
        let per_slice = keys
            .len()
            .div_ceil(invocations)
            .clamp(1, per_call.max(1) as usize);
        let slices = keys.len().div_ceil(per_slice);
        if slices > MAX_SLICES {
            return Err(KeyError(format!(
                "{} partition keys at --pk-per-call {per_call} make {slices} slices; a pull \
                 takes at most {MAX_SLICES} (each is in the checkpoint, written at every \
                 commit): give --pk-per-call {} or more",
                keys.len(),
                keys.len().div_ceil(MAX_SLICES)
            )));
        }
        Ok(Self { keys, per_slice })
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No keys (never, for a value [`Partitions::read`] made).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The first key of each slice, by its place in the sorted keys.
    pub fn offsets(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.keys.len())
            .step_by(self.per_slice)
            .map(|at| u32::try_from(at).unwrap_or(u32::MAX))
    }

    /// The keys of the slice that starts at `offset`.
    pub fn slice(&self, offset: u32) -> &[String] {
        let start = (offset as usize).min(self.keys.len());
        let end = (start + self.per_slice).min(self.keys.len());
        &self.keys[start..end]
    }

    /// The set, for the checkpoint: how many, and the SHA-256 of the sorted keys (each
    /// length-prefixed, so no two sets share one).
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for key in &self.keys {
            hash.update((key.len() as u64).to_be_bytes());
            hash.update(key.as_bytes());
        }
        let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        format!("{} keys, sha256 {hex}", self.keys.len())
    }
}

/// Where a key came from, for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    Given,
    Line(usize),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Given => write!(f, "--pk"),
            Origin::Line(number) => write!(f, "line {number}"),
        }
    }
}

/// The keys of a `--pk-file`, one a line, with where each came from, at most `room` of
/// them (the caller refuses that many): UTF-8, a byte-order mark at the start dropped (a
/// file saved by Notepad; kept, it would be part of the first key, whose partition would be
/// silently missing), a `\r` before the newline dropped (a file written on Windows), blank
/// lines skipped.
fn read_file(path: &Path, room: usize) -> Result<Vec<(String, Origin)>, KeyError> {
    let cannot = |err: std::io::Error| KeyError(format!("--pk-file {}: {err}", path.display()));
    let file = std::fs::File::open(path).map_err(cannot)?;
    // Read one byte past the bound, so a pipe or a growing file is bounded too.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(KeyError(format!(
            "--pk-file {} is larger than {} MiB",
            path.display(),
            MAX_FILE_BYTES >> 20
        )));
    }
    let text = String::from_utf8(bytes).map_err(|err| {
        KeyError(format!(
            "--pk-file {} is not UTF-8 (at byte {})",
            path.display(),
            err.utf8_error().valid_up_to()
        ))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    Ok(text
        .split('\n')
        .enumerate()
        .map(|(i, line)| (line.strip_suffix('\r').unwrap_or(line), i + 1))
        .filter(|(line, _)| !line.is_empty())
        .take(room)
        .map(|(line, number)| (line.to_string(), Origin::Line(number)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(given: &[&str]) -> Vec<String> {
        given.iter().map(|k| k.to_string()).collect()
    }

    fn scratch(name: &str, text: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("scanstream-pk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn keys_are_sorted_and_spread_over_slices_of_at_most_per_call() {
        let given: Vec<String> = (0..250).rev().map(|i| format!("k{i:03}")).collect();
        let p = Partitions::read(&given, None, 2, 100).expect("valid");
        assert_eq!(p.len(), 250);
        let offsets: Vec<u32> = p.offsets().collect();
        assert_eq!(offsets, [0, 100, 200], "capped at 100 a call");
        assert_eq!(p.slice(0)[0], "k000");
        assert_eq!(p.slice(200).len(), 50);
        let all: Vec<String> = offsets.iter().flat_map(|o| p.slice(*o).to_vec()).collect();
        let mut expected = given.clone();
        expected.sort();
        assert_eq!(all, expected, "every key in one slice");
        let p = Partitions::read(&given, None, 8, 100).expect("valid");
        assert_eq!(p.offsets().count(), 8, "as many slices as invocations");
        assert!(p.offsets().all(|o| p.slice(o).len() <= 32));
    }

    #[test]
    fn the_digest_is_of_the_set_not_its_order_or_source() {
        let file = scratch("set", b"b\r\na\n\nc\n");
        let from_file = Partitions::read(&[], Some(&file), 4, 100).expect("file");
        let given = Partitions::read(&keys(&["c", "a", "b"]), None, 4, 100).expect("given");
        assert_eq!(from_file.digest(), given.digest());
        assert!(given.digest().starts_with("3 keys, sha256 "));
        let other = Partitions::read(&keys(&["c", "a", "d"]), None, 4, 100).expect("other");
        assert_ne!(other.digest(), given.digest());
        let joined = Partitions::read(&keys(&["ab", "c"]), None, 4, 100).expect("ab");
        let split = Partitions::read(&keys(&["a", "bc"]), None, 4, 100).expect("bc");
        assert_ne!(joined.digest(), split.digest(), "length-prefixed");
    }

    #[test]
    fn bad_key_lists_are_refused_by_what_is_wrong() {
        let empty = scratch("empty", b"\n\r\n\n");
        let twice = scratch("twice", b"a\nb\na\n");
        let binary = scratch("binary", b"a\n\xff\n");
        let once = scratch("once", b"c\nb\n");
        let long = "x".repeat(MAX_KEY_TEXT_BYTES + 1);
        for (given, file, expected) in [
            (keys(&[]), Some(&empty), "holds no keys"),
            (
                keys(&[]),
                Some(&twice),
                "\"a\" is given twice (line 1 and line 3)",
            ),
            (
                keys(&["b"]),
                Some(&once),
                "\"b\" is given twice (--pk and line 2)",
            ),
            (keys(&["1", "1.0"]), None, "are one number"),
            (keys(&["10", "1e1"]), None, "are one number"),
            (keys(&[""]), None, "must be 1 to 2732 bytes"),
            (vec![long], None, "must be 1 to 2732 bytes"),
            (keys(&[]), Some(&binary), "is not UTF-8 (at byte 2)"),
        ] {
            let err =
                Partitions::read(&given, file.map(|p| p.as_path()), 2, 100).expect_err(expected);
            assert!(err.to_string().contains(expected), "{err}");
        }
        let missing = std::path::Path::new("/nonexistent/keys.txt");
        let err = Partitions::read(&[], Some(missing), 2, 100).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/keys.txt"), "{err}");
        let many: Vec<String> = (0..=MAX_KEYS).map(|i| format!("k{i}")).collect();
        let err = Partitions::read(&many, None, 2, 100).expect_err("too many");
        assert!(err.to_string().contains("at most 100000"), "{err}");
        assert!(Partitions::read(&keys(&["1", "2", "x", "1.5"]), None, 2, 100).is_ok());
    }

    #[test]
    fn a_file_of_too_many_lines_is_refused_at_one_past_the_bound() {
        let text: String = (0..MAX_KEYS + 50).map(|i| format!("{i}\n")).collect();
        let file = scratch("many", text.as_bytes());
        let err = Partitions::read(&[], Some(&file), 2, 100).expect_err("too many");
        assert!(err.to_string().contains("more than 100000"), "{err}");
        let err = Partitions::read(&keys(&["x"]), Some(&file), 2, 100).expect_err("with --pk");
        assert!(err.to_string().contains("more than 100000"), "{err}");
        let just: String = (0..MAX_KEYS).map(|i| format!("{i}\n")).collect();
        let file = scratch("just", just.as_bytes());
        let p = Partitions::read(&[], Some(&file), 2, 100).expect("the bound itself");
        assert_eq!(p.len(), MAX_KEYS);
        assert_eq!(
            p.offsets().count(),
            MAX_SLICES,
            "the largest set at the default"
        );
    }

    #[test]
    fn more_slices_than_the_bound_are_refused_naming_pk_per_call() {
        let many: Vec<String> = (0..2_000).map(|i| format!("k{i}")).collect();
        let err = Partitions::read(&many, None, 1, 1).expect_err("2000 slices");
        let text = err.to_string();
        assert!(text.contains("make 2000 slices"), "{text}");
        assert!(text.contains("at most 1000"), "{text}");
        assert!(text.contains("give --pk-per-call 2 or more"), "{text}");
        let p = Partitions::read(&many, None, 1, 2).expect("1000 slices");
        assert_eq!(p.offsets().count(), MAX_SLICES);
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_key() {
        let file = scratch("bom", "\u{feff}a\r\nb\r\n".as_bytes());
        let p = Partitions::read(&[], Some(&file), 1, 100).expect("keys");
        assert_eq!(p.slice(0), ["a", "b"]);
        let twice = scratch("bom-twice", "\u{feff}a\na\n".as_bytes());
        let err = Partitions::read(&[], Some(&twice), 1, 100).expect_err("a twice");
        assert!(err.to_string().contains("\"a\" is given twice"), "{err}");
    }

    #[test]
    fn there_may_be_fewer_slices_than_invocations() {
        let ten: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        let p = Partitions::read(&ten, None, 8, 100).expect("keys");
        assert_eq!(p.offsets().count(), 5, "slices of 2");
    }
}
