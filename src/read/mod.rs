//! The read job: a Scan split into segments, or a Query fanned out over partitions, merged
//! into one NDJSON stream that ends with a trailer. No HTTP, no command line.
//!
//! - [`tally`]: the counts and positions of what was sent, which make the trailer.

pub mod tally;
