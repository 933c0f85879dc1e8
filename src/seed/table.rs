//! Creates the seeded table from `seed-data/table.json`, the one table definition that
//! the seeder, the tests and (checked by `scripts/check_template.py`) `template.yml` share.

use crate::error::{ErrorKind, UpstreamError};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use serde::Deserialize;
use std::time::Duration;

/// `seed-data/table.json`, compiled in.
pub const TABLE_DEFINITION: &str = include_str!("../../seed-data/table.json");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Definition {
    attribute_definitions: Vec<Attribute>,
    key_schema: Vec<Key>,
    billing_mode: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attribute {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Key {
    attribute_name: String,
    key_type: String,
}

/// Creates `table` with the shared definition unless it exists, then waits until it is
/// active. Returns whether this call created it.
pub async fn ensure_table(client: &Client, table: &str) -> Result<bool, UpstreamError> {
    let internal =
        |e: &dyn std::fmt::Display| UpstreamError::new(ErrorKind::Internal, e.to_string());
    let definition: Definition =
        serde_json::from_str(TABLE_DEFINITION).map_err(|e| internal(&e))?;
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::from(definition.billing_mode.as_str()));
    for attribute in definition.attribute_definitions {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute.attribute_name)
                .attribute_type(ScalarAttributeType::from(attribute.attribute_type.as_str()))
                .build()
                .map_err(|e| internal(&e))?,
        );
    }
    for key in definition.key_schema {
        request = request.key_schema(
            KeySchemaElement::builder()
                .attribute_name(key.attribute_name)
                .key_type(KeyType::from(key.key_type.as_str()))
                .build()
                .map_err(|e| internal(&e))?,
        );
    }
    let created = match request.send().await {
        Ok(_) => true,
        Err(err) if err.code() == Some("ResourceInUseException") => false,
        Err(err) => return Err(crate::client::classify(err)),
    };
    // DynamoDB Local is active at once; the real service takes seconds.
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(Duration::from_secs(60))
        .await
        .map_err(|err| UpstreamError::new(ErrorKind::Unavailable, err))?;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_definition_keys_the_table_by_id() {
        let definition: Definition = serde_json::from_str(TABLE_DEFINITION).expect("valid JSON");
        assert_eq!(definition.key_schema.len(), 1);
        assert_eq!(
            definition.key_schema[0].attribute_name,
            crate::seed::generate::KEY
        );
        assert_eq!(definition.key_schema[0].key_type, "HASH");
        assert_eq!(definition.attribute_definitions[0].attribute_type, "S");
    }
}
