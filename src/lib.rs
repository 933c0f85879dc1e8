//! scanstream: stream a DynamoDB table as NDJSON through a Lambda Function URL.
//!
//! The crate is the whole product minus the Lambda glue, so every part runs and is
//! tested without Lambda:
//!
//! - [`config`]: settings of both functions, read from the environment once, at cold start.
//! - [`client`]: the DynamoDB client, built once through the standard AWS config chain.
//! - [`scan`]: the parallel Scan: a page source per backend, the fan-out over segments,
//!   the merge of their pages into one NDJSON stream, and the trailer.
//! - [`encode`]: DynamoDB items to NDJSON lines.
//! - [`format`]: values and wire formats (no SDK, no I/O): upstream error kinds, gzip /
//!   zstd bodies.
//! - [`load`]: files, streams and DynamoDB exports into a table, checked against its key
//!   schema, with memory bounded by the batches in flight, and a checkpoint.
//! - [`read`]: request parameters to a typed, validated read, and the start of that read.
//! - [`lambda`]: the two functions as Lambda runs them: invocations to reads (or seeding
//!   runs), outcomes to HTTP responses, and the runtime loop both share.
//! - [`logging`]: JSON logs in Lambda, text elsewhere.
//! - [`read`]: the read job: the fan-out, the merge and the tally behind the trailer.
//! - [`pull`]: the `scanstream` client: one table over many invocations, exactly once.
//! - [`seed`]: deterministic fake records and the seeder's command line.
//! - [`writer`]: the retrying batch writer that generated records and loaded items feed.
//!
//! The binaries in `src/bin/` only build these parts and hand them to the Lambda runtime
//! (or, for the seeder, to the command line).

pub mod cli;
pub mod client;
pub mod config;
pub mod encode;
pub mod format;
pub mod lambda;
pub mod load;
pub mod logging;
pub mod read;
pub mod scan;
pub mod seed;
pub mod writer;
