//! Formats: values and wire formats, with no AWS call and no file or socket.
//!
//! - [`error`]: the kinds of upstream failure a client acts on.
//! - [`compress`]: gzip / zstd bodies, flushed page by page, and bounded decoding.
//! - [`time`]: ISO 8601 times as DynamoDB's export manifests write them.
//! - [`cursor`]: the resume token, its seal, and ([`cursor::worst`]) its worst-case size.
//! - [`trailer`]: the last line of every stream, its stop reasons, and reading a body back.

pub mod compress;
pub mod cursor;
pub mod error;
pub mod time;
pub mod trailer;
