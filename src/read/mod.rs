//! The read job: a typed, validated request, then a Scan split into segments or a Query
//! fanned out over partitions, merged into one NDJSON stream that ends with a trailer. No
//! HTTP, no command line.
//!
//! - [`params`]: request parameters (a query string or form body) to bounded values.
//! - [`request`]: the parameters to a typed, validated [`request::StreamRequest`].
//! - [`open`]: a request typed by the table's key schema, and its first page.
//! - [`stream`]: the plan of one invocation's read, its start, and the merge of the
//!   segments' pages into one stream.
//! - [`segment`]: one segment's (or partition's) task: fetch, encode, hand over.
//! - [`tally`]: the counts and positions of what was sent, which make the trailer.
//! - [`budget`]: the `max_items` budget the segments share.
//! - [`filtered`]: filtered reads under `max_items`: whole pages, cut to the budget.
//! - [`export`]: the read's pages written to S3 as data files (`to=`), a line per file.
//! - [`changes`]: a read of the table's change stream (`changes=true`), shard by shard.

pub mod budget;
pub mod changes;
pub mod export;
pub mod filtered;
pub mod open;
pub mod params;
pub mod request;
pub mod segment;
pub mod stream;
pub mod tally;
