//! Formats: values and wire formats, with no AWS call and no file or socket.
//!
//! - [`error`]: the kinds of upstream failure a client acts on.
//! - [`compress`]: gzip / zstd bodies, flushed page by page, and bounded decoding.

pub mod compress;
pub mod error;
