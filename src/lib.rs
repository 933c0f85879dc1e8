//! scanstream: stream a DynamoDB table as NDJSON through a Lambda Function URL.
//!
//! The crate is the whole product minus the Lambda glue, so every part runs and is
//! tested without Lambda:
//!
//! - [`config`]: settings of both functions, read from the environment once, at cold start.
//! - [`dynamo`]: the DynamoDB adapter: the client, SDK errors sorted into kinds, key
//!   schemas by `DescribeTable`, CreateTable, and the retrying batch writer.
//! - [`compress`]: gzip or zstd response bodies, flushed page by page.
//! - [`scan`]: the parallel Scan: a page source per backend, the fan-out over segments,
//!   the merge of their pages into one NDJSON stream, and the trailer.
//! - [`format`]: values and wire formats, no SDK and no I/O: DynamoDB items to NDJSON
//!   lines and typed JSON back, numbers, keys, backoff, DynamoDB's limits.
//! - [`error`]: upstream failures sorted into the few kinds a client must tell apart.
//! - [`load`]: files, streams and DynamoDB exports into a table, checked against its key
//!   schema, with memory bounded by the batches in flight, and a checkpoint.
//! - [`http`]: query string to a validated request, outcomes to HTTP responses, and the
//!   Lambda glue both functions share.
//! - [`logging`]: JSON logs in Lambda, text elsewhere.
//! - [`pull`]: the `scanstream` client: one table over many invocations, exactly once.
//! - [`seed`]: deterministic fake records and the seeder's command line.
//!
//! The binaries in `src/bin/` only build these parts and hand them to the Lambda runtime
//! (or, for the seeder, to the command line).

pub mod compress;
pub mod config;
pub mod dynamo;
pub mod error;
pub mod format;
pub mod generate;
pub mod http;
pub mod load;
pub mod logging;
pub mod pull;
pub mod scan;
pub mod seed;
