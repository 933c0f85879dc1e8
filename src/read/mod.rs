//! The read: a typed, validated request, then the parallel Scan or the Query fan-out
//! that streams it.
//!
//! - [`params`]: request parameters (a query string or form body) to bounded values.
//! - [`request`]: the parameters to a typed, validated [`request::StreamRequest`].
//! - [`open`]: a request typed by the table's key schema, and its first page.

pub mod open;
pub mod params;
pub mod request;
