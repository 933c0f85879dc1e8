//! The parallel Scan (and the Query fan-out): page sources, the fan-out over segments or
//! partitions, and the merged NDJSON stream.
//!
//! A [`crate::dynamo::source::PageSource`] fetches one page of one segment.
//! [`stream::start`] runs one task per segment against a source and merges their pages, as
//! they arrive, into a single stream of NDJSON buffers that ends with a [`trailer`] line
//! carrying a [`cursor`] when the stream stopped early. The same merge runs against
//! DynamoDB ([`crate::dynamo::source::DynamoSource`]) and against an in-memory table
//! ([`crate::dynamo::memory::MemorySource`]).

pub mod budget;
pub mod cursor;
pub mod filtered;
pub mod rate;
pub mod stream;
pub mod trailer;
