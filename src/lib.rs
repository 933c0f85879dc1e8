//! scanstream: stream a DynamoDB table as NDJSON through a Lambda Function URL, and the
//! client that pulls it, exactly once.
//!
//! The crate is in four layers; a module uses only its own layer or lower ones
//! (docs/architecture.md, held by `scripts/check_shape.py`):
//!
//! - formats, [`format`]: values and wire formats, with no SDK and no I/O.
//! - the adapter, [`dynamo`]: the only module that names AWS SDK types.
//! - jobs, with no HTTP and no command line: [`read`] (the parallel Scan or Query fan-out
//!   and its merge), [`load`] (files, streams and exports into a table) and [`generate`]
//!   (deterministic fake records).
//! - edges, which only translate: [`lambda`] (the two functions) and [`cli`] (the
//!   `scanstream` client's verbs and the seeder's command line).
//!
//! [`logging`] is the edges' and binaries' glue. The binaries in `src/bin/` only build
//! these parts and hand them to the Lambda runtime or the command line.

pub mod cli;
pub mod dynamo;
pub mod format;
pub mod generate;
pub mod lambda;
pub mod load;
pub mod logging;
pub mod read;
