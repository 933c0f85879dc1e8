//! Creates the seeded table, with the key schema `template.yml` deploys: `id` (S), on demand.

use super::generate::KEY;
use crate::error::UpstreamError;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
};
use std::time::Duration;

/// Creates `table` unless it exists, then waits until it is active.
///
/// Returns whether this call created it.
pub async fn ensure_table(client: &Client, table: &str) -> Result<bool, UpstreamError> {
    let schema = |e: aws_sdk_dynamodb::error::BuildError| {
        UpstreamError::new(crate::error::ErrorKind::Internal, e)
    };
    let created = client
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(KEY)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(schema)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(KEY)
                .key_type(KeyType::Hash)
                .build()
                .map_err(schema)?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    let created = match created {
        Ok(_) => true,
        Err(err) if err.code() == Some("ResourceInUseException") => false,
        Err(err) => return Err(UpstreamError::from_sdk(err)),
    };
    // DynamoDB Local is active at once; the real service takes seconds.
    for _ in 0..120 {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(UpstreamError::from_sdk)?;
        let status = described.table.and_then(|t| t.table_status);
        if status == Some(TableStatus::Active) {
            return Ok(created);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(UpstreamError::new(
        crate::error::ErrorKind::Unavailable,
        format!("table {table} did not become active within a minute"),
    ))
}
