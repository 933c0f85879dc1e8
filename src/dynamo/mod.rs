//! The DynamoDB adapter: the only layer meant to name the AWS SDK. The client and how its
//! errors are sorted, key schemas read by one `DescribeTable`, tables created, the page
//! sources (DynamoDB's and one in memory) and the batch writer.

pub mod client;
pub mod error;
pub mod memory;
pub mod schema;
pub mod source;
pub mod table;
pub mod writer;
