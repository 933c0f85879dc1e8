//! One data file of an export, loaded from S3 into an existing table: the seeder
//! function's `from=s3://BUCKET/KEY&items=N&md5=HEX`.
//!
//! The caller says what the file must be (its MD5, its item count, perhaps its size), as
//! the export's manifest does. The object's ETag is asked for first (HeadObject) and every
//! read after asks for that ETag, so the reads see one version: the first hashes the bytes, the second
//! parses every line against the table's key schema and its indexes' keys and counts
//! them, and only when all of that agrees does the third write. A file that disagrees is
//! refused with nothing written.
//!
//! The writing stops at a deadline (the function's) and says how far it got as a line
//! number: every item line up to it is written, and a call with `after` set to it writes
//! the rest. Batches finish out of order; the line is the end of the longest run, from
//! the first, of batches all written ([`super::checkpoint::Keeper`], kept in memory).

use super::batch::Position;
use super::checkpoint::Keeper;
use super::input::{Remote, Source};
use super::pass::{Pass, read_pass, write_pass};
use super::{LoadError, Observer};
use crate::dynamo::client::Dynamo;
use crate::dynamo::writer::{BatchWriter, WriteReport};
use crate::format::error::ErrorKind;
use crate::format::export::md5_base64;
use base64::Engine as _;
use std::io::Read;
use tokio::time::Instant;

/// What the file must be.
#[derive(Debug, Clone)]
pub struct ObjectLoad {
    /// The object (its bucket handle, location and runtime); its ETag is found here.
    pub remote: Remote,
    /// Item lines it holds.
    pub items: u64,
    /// The MD5 of its bytes, as 32 hex digits.
    pub md5_hex: String,
    /// Its size in bytes, when the caller knows it.
    pub bytes: Option<u64>,
}

/// Why a file was refused before anything was written.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// No object at the key, or (S3's answer to a missing key for a caller without
    /// `s3:ListBucket`) none it may read.
    #[error("{name}: {why}")]
    Missing {
        /// The object.
        name: String,
        /// `no such object`, or what S3 said.
        why: &'static str,
    },
    /// The bytes are not the ones asked for.
    #[error("{name}: {what} is {actual}, the request says {expected}; nothing written")]
    Mismatch {
        /// The object.
        name: String,
        /// `size`, `MD5` or `item count`.
        what: &'static str,
        /// What the request says.
        expected: String,
        /// What the object has.
        actual: String,
    },
    /// The load itself was refused (a bad line, the table, S3 or DynamoDB).
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// What a call wrote.
#[derive(Debug)]
pub struct ObjectOutcome {
    /// What the writer did in this call.
    pub report: WriteReport,
    /// Item lines in the file.
    pub items: u64,
    /// Every line up to this one (counted from 1, blank lines too) is written: the
    /// `after` of a call that goes on. `None`: none yet.
    pub written_through: Option<u64>,
    /// The whole file is written.
    pub complete: bool,
}

/// An object that passed every check: ready to be written.
#[derive(Debug)]
pub struct Checked {
    name: String,
    pass: Pass,
    source: Source,
    /// Item lines in it.
    pub items: u64,
    /// Which table it goes into (ARN and creation time).
    pub table: String,
}

/// Checks the object against `load` and the table's keys, writing nothing. Call from the
/// runtime (the reads run on blocking threads).
///
/// With `parse` false only its size and MD5 are checked: a call that goes on (`after`)
/// follows one that parsed the same bytes, and the writing pass still parses every line
/// it writes and counts them all ([`write_object`] refuses a file read otherwise).
pub async fn check_object(
    client: &Dynamo,
    table: &str,
    load: &ObjectLoad,
    parse: bool,
) -> Result<Checked, ObjectError> {
    let name = load.remote.location.to_string();
    let described = crate::dynamo::schema::describe_identified(client, table)
        .await
        .map_err(|source| match source.kind {
            ErrorKind::NotFound => LoadError::Table(format!("table {table} does not exist")),
            _ => LoadError::Upstream {
                table: table.to_string(),
                source,
            },
        })?;
    let (schema, indexes) = (described.schema, described.indexes);
    let source = {
        let load = load.clone();
        tokio::task::spawn_blocking(move || check_bytes(&load))
            .await
            .map_err(|e| LoadError::Usage(format!("checking {name} failed: {e}")))??
    };
    let pass = Pass {
        schema,
        indexes,
        stop_on_error: false,
        trailers: false,
        cut_off_tail: false,
    };
    if !parse {
        return Ok(Checked {
            name,
            pass,
            source,
            items: load.items,
            table: described.identity,
        });
    }
    let checked = {
        let (pass, sources) = (pass.clone(), vec![source.clone()]);
        tokio::task::spawn_blocking(move || read_pass(&pass, &sources, None, None))
            .await
            .map_err(|e| LoadError::Usage(format!("the checking pass failed: {e}")))??
    };
    if checked.item_lines != load.items {
        return Err(ObjectError::Mismatch {
            name,
            what: "item count",
            expected: load.items.to_string(),
            actual: checked.item_lines.to_string(),
        });
    }
    if let Some(first) = checked.errors.first() {
        return Err(LoadError::Invalid {
            name,
            count: checked.error_count,
            first: first.clone(),
            shown: checked.errors.clone(),
        }
        .into());
    }
    Ok(Checked {
        name,
        pass,
        source,
        items: checked.item_lines,
        table: described.identity,
    })
}

/// Writes a checked object's items after line `after` through `writer`, starting no
/// batch past `deadline`.
pub async fn write_object(
    writer: BatchWriter,
    table: &str,
    checked: Checked,
    after: Option<u64>,
    deadline: Option<Instant>,
    observer: &mut (impl Observer + Send),
) -> Result<ObjectOutcome, LoadError> {
    let resume = after.map(|line| Position { file: 0, line });
    let keeper = Keeper::in_memory(table, &checked.name, resume);
    let writer = writer.key_attributes(checked.pass.schema.names());
    observer.start(Some(checked.items), 0);
    let (name, items) = (checked.name.clone(), checked.items);
    let sources = vec![checked.source];
    let (report, written, keeper) = write_pass(
        &writer,
        checked.pass,
        sources,
        resume,
        Some(keeper),
        deadline,
        observer,
    )
    .await?;
    // Read to its end, the file must be what was checked: every item line there and
    // none bad. (The writer stopping early, at the deadline or a refusal, stops the
    // reading too; that file is not complete, and the next call goes on.)
    if !written.abandoned && (written.item_lines != items || written.error_count > 0) {
        return Err(LoadError::Usage(format!(
            "{name} was read otherwise when written than when checked: {} item lines ({} \
             bad), {items} checked",
            written.item_lines, written.error_count
        )));
    }
    let complete = report.is_complete() && !written.abandoned;
    Ok(ObjectOutcome {
        report,
        items,
        written_through: keeper
            .and_then(|k| k.record().written_through)
            .map(|position| position.line),
        complete,
    })
}

/// Finds the object's ETag and size (HeadObject), then hashes its bytes: the source every later read
/// uses, pinned to that ETag.
fn check_bytes(load: &ObjectLoad) -> Result<Source, ObjectError> {
    let remote = &load.remote;
    let name = remote.location.to_string();
    let key = &remote.location.prefix;
    let found = match remote.bucket.head_blocking(key, &remote.handle) {
        Ok(found) => found,
        Err(err) if err.kind == ErrorKind::AccessDenied => {
            return Err(ObjectError::Missing {
                name,
                why: "no such object, or not one this function may read (S3 answers 403 for \
                      a missing key to a reader without s3:ListBucket)",
            });
        }
        Err(source) => {
            return Err(LoadError::Io {
                name,
                source: std::io::Error::other(source.to_string()),
            }
            .into());
        }
    };
    let Some(object) = found else {
        return Err(ObjectError::Missing {
            name,
            why: "no such object",
        });
    };
    if let Some(expected) = load.bytes
        && expected != object.size
    {
        return Err(ObjectError::Mismatch {
            name,
            what: "size",
            expected: expected.to_string(),
            actual: object.size.to_string(),
        });
    }
    let mut pinned = remote.clone();
    pinned.etag = object.etag;
    let source = Source::Object(pinned);
    let io = |source| LoadError::Io {
        name: name.clone(),
        source,
    };
    let mut counted = Counted {
        inner: source.open_raw().map_err(io)?,
        bytes: 0,
    };
    let actual = md5_base64(&mut counted).map_err(io)?;
    let expected = hex_to_base64(&load.md5_hex).unwrap_or_default();
    if actual != expected {
        return Err(ObjectError::Mismatch {
            name,
            what: "MD5",
            expected: load.md5_hex.clone(),
            actual: base64_to_hex(&actual),
        });
    }
    if counted.bytes != object.size {
        return Err(ObjectError::Mismatch {
            name,
            what: "size read",
            expected: object.size.to_string(),
            actual: counted.bytes.to_string(),
        });
    }
    Ok(source)
}

/// A reader that counts the bytes it hands out.
struct Counted<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// 32 hex digits to the base64 `md5Checksum` form; `None` if they are not that.
pub fn hex_to_base64(hex: &str) -> Option<String> {
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    Some(base64::engine::general_purpose::STANDARD.encode(bytes?))
}

/// A base64 MD5 (`md5Checksum`) as 32 lower-case hex digits; as it is if it is not one.
pub fn base64_to_hex(md5: &str) -> String {
    match base64::engine::general_purpose::STANDARD.decode(md5) {
        Ok(bytes) if bytes.len() == 16 => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        _ => md5.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_moves_between_hex_and_base64() {
        // RFC 1321: MD5("abc").
        let hex = "900150983cd24fb0d6963f7d28e17f72";
        assert_eq!(
            hex_to_base64(hex).as_deref(),
            Some("kAFQmDzST7DWlj99KOF/cg==")
        );
        assert_eq!(base64_to_hex("kAFQmDzST7DWlj99KOF/cg=="), hex);
        assert_eq!(hex_to_base64(&hex.to_uppercase()), hex_to_base64(hex));
        for bad in [
            "",
            "900150983cd24fb0d6963f7d28e17f7",
            "g00150983cd24fb0d6963f7d28e17f72",
        ] {
            assert_eq!(hex_to_base64(bad), None, "{bad}");
        }
    }
}
