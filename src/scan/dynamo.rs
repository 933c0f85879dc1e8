//! The DynamoDB page source: one `Scan` call per page.

use super::{Page, PageRequest, PageSource};
use crate::error::UpstreamError;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

/// Scans one table through the SDK client it is given.
#[derive(Debug, Clone)]
pub struct DynamoSource {
    /// Shared with every segment task; it holds the connection pool.
    client: Client,
    /// Fixed at construction: a request can never reach another table.
    table: String,
}

impl DynamoSource {
    /// A source scanning `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

impl PageSource for DynamoSource {
    async fn page(&self, request: PageRequest) -> Result<Page, UpstreamError> {
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(to_i32(request.segment))
            .total_segments(to_i32(request.total_segments))
            .limit(to_i32(request.limit))
            .set_exclusive_start_key(request.exclusive_start_key)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(UpstreamError::from_sdk)?;
        Ok(Page {
            items: output.items.unwrap_or_default(),
            last_evaluated_key: output.last_evaluated_key.filter(|key| !key.is_empty()),
            scanned_count: u64::try_from(output.scanned_count).unwrap_or(0),
            consumed_capacity: output
                .consumed_capacity
                .and_then(|c| c.capacity_units)
                .unwrap_or(0.0),
        })
    }
}

/// Segment numbers and limits are validated far below `i32::MAX` before they get here.
fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
