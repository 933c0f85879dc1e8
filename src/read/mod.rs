//! The read: a typed, validated request, then the parallel Scan or the Query fan-out
//! that streams it.
//!
//! - [`params`]: request parameters (a query string or form body) to bounded values.

pub mod params;
