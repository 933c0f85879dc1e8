//! DynamoDB's export layout, as the page "DynamoDB table export output format" documents
//! it: one module that knows the file names and manifest fields, for the reader
//! ([`crate::load::export`]) and for a writer of the same layout.
//!
//! ```text
//! <prefix>/AWSDynamoDB/<ExportId>/manifest-summary.json     version, itemCount, outputFormat, ...
//! <prefix>/AWSDynamoDB/<ExportId>/manifest-summary.checksum
//! <prefix>/AWSDynamoDB/<ExportId>/manifest-files.json       a JSON object a line per data file:
//!                                                           itemCount, md5Checksum, etag, dataFileS3Key
//! <prefix>/AWSDynamoDB/<ExportId>/manifest-files.checksum
//! <prefix>/AWSDynamoDB/<ExportId>/_started                  empty
//! <prefix>/AWSDynamoDB/<ExportId>/data/<name>.json.gz       gzip of {"Item":{...}} lines
//! ```
//!
//! `md5Checksum` is the base64 MD5 of the data file's bytes as stored (compressed).
//! DynamoDB's manifests do not record the key schema; an export scanstream writes may add
//! [`KEY_SCHEMA`] beside them, in `DescribeTable`'s shape.

use crate::format::key::KeySchema;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::io::Read;

/// The folder every export sits in, under the export prefix.
pub const EXPORTS_DIR: &str = "AWSDynamoDB";
/// The summary manifest.
pub const SUMMARY: &str = "manifest-summary.json";
/// The summary manifest's checksum file.
pub const SUMMARY_CHECKSUM: &str = "manifest-summary.checksum";
/// The files manifest (JSON lines).
pub const FILES: &str = "manifest-files.json";
/// The files manifest's checksum file.
pub const FILES_CHECKSUM: &str = "manifest-files.checksum";
/// The empty marker written when the export starts.
pub const STARTED: &str = "_started";
/// The folder of the data files.
pub const DATA_DIR: &str = "data";
/// The key schema scanstream records beside the manifests (not DynamoDB's).
pub const KEY_SCHEMA: &str = "scanstream-key-schema.json";
/// The summary's `version` as documented.
pub const VERSION: &str = "2020-06-30";
/// The one `outputFormat` read here (the other, `ION`, is not).
pub const OUTPUT_FORMAT: &str = "DYNAMODB_JSON";

/// `manifest-summary.json`. Fields DynamoDB may add later are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSummary {
    /// [`VERSION`].
    pub version: String,
    /// The export's ARN.
    #[serde(default)]
    pub export_arn: Option<String>,
    /// When the export started (ISO 8601).
    #[serde(default)]
    pub start_time: Option<String>,
    /// When it ended.
    #[serde(default)]
    pub end_time: Option<String>,
    /// The exported table's ARN.
    #[serde(default)]
    pub table_arn: Option<String>,
    /// The exported table's id.
    #[serde(default)]
    pub table_id: Option<String>,
    /// The point in time exported.
    #[serde(default)]
    pub export_time: Option<String>,
    /// The bucket written to.
    #[serde(default)]
    pub s3_bucket: Option<String>,
    /// The export prefix.
    #[serde(default)]
    pub s3_prefix: Option<String>,
    /// Server-side encryption.
    #[serde(default)]
    pub s3_sse_algorithm: Option<String>,
    /// Its KMS key, if any.
    #[serde(default)]
    pub s3_sse_kms_key_id: Option<String>,
    /// The key of `manifest-files.json`.
    pub manifest_files_s3_key: String,
    /// Bytes billed.
    #[serde(default)]
    pub billed_size_bytes: Option<u64>,
    /// Items over all data files.
    pub item_count: u64,
    /// [`OUTPUT_FORMAT`] or `ION`.
    pub output_format: String,
    /// `FULL_EXPORT` or `INCREMENTAL_EXPORT`, when given (incremental exports hold
    /// changes, not items, and are not read here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_type: Option<String>,
}

/// One line of `manifest-files.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataFileEntry {
    /// Items in the file.
    pub item_count: u64,
    /// Base64 MD5 of the file's bytes.
    pub md5_checksum: String,
    /// S3's ETag of the object (not checked: it depends on how it was uploaded).
    #[serde(default)]
    pub etag: Option<String>,
    /// The file's S3 key, `<prefix>/AWSDynamoDB/<ExportId>/data/<name>.json.gz`.
    pub data_file_s3_key: String,
}

/// A data file an export call completed in S3, as its response announces it: the
/// manifest's line for it, and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedFile {
    /// The line `manifest-files.json` gets for it.
    #[serde(flatten)]
    pub entry: DataFileEntry,
    /// The object's size in bytes.
    pub bytes: u64,
}

/// One line of an export call's response, `{"file":{...},"cursor":"..."}`: a file
/// completed, and the cursor that resumes the read after the items of every file
/// announced so far (none once the read is complete). A call cut after this line loses
/// none of the files announced: resuming from this cursor reads only what comes after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedFileLine {
    /// The file.
    pub file: ExportedFile,
    /// Where the read resumes after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl ExportedFileLine {
    /// The line, with its newline.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// The file line `line` is, if it is one.
    pub fn of_line(line: &[u8]) -> Option<Self> {
        serde_json::from_slice(line).ok()
    }
}

/// The response header that says the table's key schema: [`RecordedKeySchema`] as JSON,
/// every character past ASCII escaped (`\uXXXX`), so any attribute name fits a header.
pub const KEY_SCHEMA_HEADER: &str = "x-scanstream-key-schema";

/// The key schema file scanstream writes beside the manifests: `DescribeTable`'s shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordedKeySchema {
    /// `{"AttributeName", "KeyType": "HASH" | "RANGE"}`.
    pub key_schema: Vec<RecordedKey>,
    /// `{"AttributeName", "AttributeType": "S" | "N" | "B"}`.
    pub attribute_definitions: Vec<RecordedAttribute>,
}

/// One key of [`RecordedKeySchema`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordedKey {
    /// The attribute.
    pub attribute_name: String,
    /// `HASH` or `RANGE`.
    pub key_type: String,
}

/// One attribute definition of [`RecordedKeySchema`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordedAttribute {
    /// The attribute.
    pub attribute_name: String,
    /// `S`, `N` or `B`.
    pub attribute_type: String,
}

impl RecordedKeySchema {
    /// The record of `schema`.
    pub fn of(schema: &KeySchema) -> Self {
        let mut key_schema = Vec::new();
        let mut attribute_definitions = Vec::new();
        for (attribute, role) in std::iter::once((&schema.partition, "HASH"))
            .chain(schema.sort.as_ref().map(|r| (r, "RANGE")))
        {
            key_schema.push(RecordedKey {
                attribute_name: attribute.name.clone(),
                key_type: role.into(),
            });
            attribute_definitions.push(RecordedAttribute {
                attribute_name: attribute.name.clone(),
                attribute_type: crate::format::key::type_name(attribute.key_type).into(),
            });
        }
        Self {
            key_schema,
            attribute_definitions,
        }
    }

    /// The value of [`KEY_SCHEMA_HEADER`]: this record's JSON, in ASCII.
    pub fn to_header(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        let mut ascii = String::with_capacity(json.len());
        for c in json.chars() {
            // DEL is ASCII but no header's (JSON escapes the other controls itself).
            if c.is_ascii() && c != '\u{7f}' {
                ascii.push(c);
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    ascii.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        ascii
    }

    /// The key schema a [`KEY_SCHEMA_HEADER`] value says.
    pub fn from_header(value: &str) -> Result<KeySchema, String> {
        serde_json::from_str::<Self>(value)
            .map_err(|e| format!("not a key schema: {e}"))?
            .schema()
    }

    /// The key schema recorded.
    pub fn schema(&self) -> Result<KeySchema, String> {
        let spec_of = |role: &str| -> Result<Option<String>, String> {
            let Some(key) = self.key_schema.iter().find(|k| k.key_type == role) else {
                return Ok(None);
            };
            let kind = self
                .attribute_definitions
                .iter()
                .find(|a| a.attribute_name == key.attribute_name)
                .ok_or_else(|| {
                    format!("key {:?} has no attribute definition", key.attribute_name)
                })?;
            Ok(Some(format!(
                "{}:{}",
                key.attribute_name, kind.attribute_type
            )))
        };
        let hash = spec_of("HASH")?.ok_or("no HASH key")?;
        let spec = match spec_of("RANGE")? {
            Some(range) => format!("{hash},{range}"),
            None => hash,
        };
        KeySchema::parse(&spec).map_err(|e| e.to_string())
    }
}

/// The hex MD5 of `bytes`: what the `.checksum` files hold, and S3's ETag of an object
/// uploaded whole (between quotes).
pub fn hex_md5(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The base64 MD5 of everything `reader` yields, as `md5Checksum` writes it.
pub fn md5_base64(mut reader: impl Read) -> std::io::Result<String> {
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        hasher.update(&buf[..n]);
    }
    Ok(STANDARD.encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_is_base64_of_the_digest() {
        // RFC 1321's test vectors, base64 of the hex digests given there.
        assert_eq!(
            md5_base64(&b""[..]).expect("md5"),
            "1B2M2Y8AsgTpgAmY7PhCfg=="
        );
        assert_eq!(
            md5_base64(&b"abc"[..]).expect("md5"),
            "kAFQmDzST7DWlj99KOF/cg=="
        );
    }

    #[test]
    fn a_file_line_reads_back_and_an_item_is_not_one() {
        let line = ExportedFileLine {
            file: ExportedFile {
                entry: DataFileEntry {
                    item_count: 3,
                    md5_checksum: "kAFQmDzST7DWlj99KOF/cg==".into(),
                    etag: Some("\"abc-1\"".into()),
                    data_file_s3_key: "p/AWSDynamoDB/x/data/a.json.gz".into(),
                },
                bytes: 42,
            },
            cursor: Some("2.abc.def".into()),
        };
        let bytes = line.to_line();
        assert!(bytes.ends_with(b"\n"));
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert!(text.starts_with("{\"file\":{\"itemCount\":3,"), "{text}");
        assert_eq!(
            ExportedFileLine::of_line(bytes.trim_ascii_end()),
            Some(line.clone())
        );
        let last = ExportedFileLine {
            cursor: None,
            ..line
        };
        assert!(
            !String::from_utf8(last.to_line())
                .expect("utf-8")
                .contains("cursor")
        );
        assert_eq!(
            ExportedFileLine::of_line(br#"{"Item":{"id":{"S":"a"}}}"#),
            None
        );
    }

    #[test]
    fn a_recorded_key_schema_reads_back() {
        let schema = KeySchema::parse("pk:S,sk:N").expect("schema");
        let recorded = RecordedKeySchema::of(&schema);
        let json = serde_json::to_string(&recorded).expect("json");
        assert!(json.contains("\"KeyType\":\"RANGE\""), "{json}");
        let back: RecordedKeySchema = serde_json::from_str(&json).expect("parse");
        assert_eq!(back.schema(), Ok(schema));
    }

    #[test]
    fn a_key_schema_header_is_ascii_and_reads_back() {
        let schema = KeySchema::parse("clé\u{7f}:S,🔑:B").expect("schema");
        let header = RecordedKeySchema::of(&schema).to_header();
        assert!(header.is_ascii(), "{header}");
        assert!(
            header.contains("cl\\u00e9") && header.contains("\\ud83d\\udd11"),
            "{header}"
        );
        assert!(http::HeaderValue::from_str(&header).is_ok());
        assert_eq!(RecordedKeySchema::from_header(&header), Ok(schema));
        assert!(RecordedKeySchema::from_header("pk:S").is_err());
    }
}
