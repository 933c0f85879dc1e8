//! The DynamoDB adapter: the only layer meant to name the AWS SDK. The client and how its
//! errors are sorted, key schemas read by one `DescribeTable`, tables created, and the
//! batch writer.

pub mod client;
pub mod error;
pub mod schema;
pub mod table;
pub mod writer;
