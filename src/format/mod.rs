//! Formats: values and wire formats, with no SDK call and no I/O. The lowest layer:
//! every other layer may use it, and it uses none of them.
//!
//! - [`item`]: an item, and its size as DynamoDB counts it.
//! - [`number`]: DynamoDB's number, exact and ordered.
//! - [`json`]: items to JSON lines, plain or typed, and ([`json::read`]) typed JSON back.
//! - [`key`]: key schemas, key values, an item's key, index keys.
//! - [`limits`]: DynamoDB's, Lambda's and S3's limits, written once.
//! - [`location`]: an `s3://BUCKET/PREFIX` location, checked, and whether it is within another.
//! - [`shape`]: what a read returns: fields, index, Query, filter, count.
//! - [`cursor`]: the resume token, its seal, and ([`cursor::worst`]) its worst-case size.
//! - [`trailer`]: the last line of every stream, its stop reasons, and reading a body back.
//! - [`compress`]: gzip / zstd bodies, flushed page by page, and bounded decoding.
//! - [`datafile`]: one data file of an export, compressed in memory and handed out in parts.
//! - [`error`]: the kinds of upstream failure a client acts on.
//! - [`backoff`]: retry delays with jitter.
//! - [`change`]: a table's change as DynamoDB Streams records it, and what applying it writes.
//! - [`rate`]: the capacity caps (`max_rcu`, `max_wcu`): a token bucket charged with what
//!   DynamoDB reports consumed.
//! - [`export`]: DynamoDB's export layout: manifests and the recorded key schema.
//! - [`time`]: ISO 8601 times as DynamoDB's export manifests write them.

pub mod backoff;
pub mod change;
pub mod compress;
pub mod cursor;
pub mod datafile;
pub mod error;
pub mod export;
pub mod item;
pub mod json;
pub mod key;
pub mod limits;
pub mod location;
pub mod number;
pub mod rate;
pub mod shape;
pub mod time;
pub mod trailer;
