//! The AWS adapter: the only layer meant to name the AWS SDK. DynamoDB's client and how
//! its errors are sorted, items moved between the SDK's values and the crate's own, key
//! schemas read by one `DescribeTable`, tables created, the page sources (DynamoDB's and
//! one in memory) and the batch writer; [`s3`], the buckets exports are written to; and
//! [`streams`], the table's change stream.

pub mod client;
pub mod convert;
pub mod error;
pub mod memory;
pub mod s3;
pub mod schema;
pub mod source;
pub mod streams;
pub mod table;
pub mod writer;
