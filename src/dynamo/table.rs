//! Creates tables: the seeded table from `seed-data/table.json` (the one table definition
//! that the seeder, the tests and, checked by `scripts/check_template.py`, `template.yml`
//! share), or a table of any key schema for a load (`--create-table --key pk:S,sk:N`).

use super::schema::{scalar_type, table_keys};
use crate::dynamo::client::Dynamo;
use crate::format::error::{ErrorKind, UpstreamError};
use crate::format::key::{KeySchema, KeySpecError};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TableDescription,
};
use serde::Deserialize;
use std::fmt;
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

fn definition() -> Result<Definition, UpstreamError> {
    serde_json::from_str(TABLE_DEFINITION).map_err(|e| internal(&e))
}

fn internal(e: &dyn std::fmt::Display) -> UpstreamError {
    UpstreamError::new(ErrorKind::Internal, e.to_string())
}

/// The shared definition's key schema and attributes.
fn shared_definition() -> Result<(Vec<KeySchemaElement>, Vec<AttributeDefinition>), UpstreamError> {
    let definition: Definition =
        serde_json::from_str(TABLE_DEFINITION).map_err(|e| internal(&e))?;
    let attributes = definition
        .attribute_definitions
        .into_iter()
        .map(|attribute| {
            AttributeDefinition::builder()
                .attribute_name(attribute.attribute_name)
                .attribute_type(ScalarAttributeType::from(attribute.attribute_type.as_str()))
                .build()
                .map_err(|e| internal(&e))
        })
        .collect::<Result<_, _>>()?;
    let keys = definition
        .key_schema
        .into_iter()
        .map(|key| {
            KeySchemaElement::builder()
                .attribute_name(key.attribute_name)
                .key_type(KeyType::from(key.key_type.as_str()))
                .build()
                .map_err(|e| internal(&e))
        })
        .collect::<Result<_, _>>()?;
    Ok((keys, attributes))
}

/// The key schema of `seed-data/table.json`: what `--create-table` uses without `--key`.
pub fn default_key_schema() -> Result<KeySchema, UpstreamError> {
    let (keys, attributes) = shared_definition()?;
    let table = TableDescription::builder()
        .set_key_schema(Some(keys))
        .set_attribute_definitions(Some(attributes))
        .build();
    table_keys(&table).map_err(|e| internal(&e))
}

/// Creates `table` with the shared definition unless it exists, then waits until it is
/// active. Returns whether this call created it.
pub async fn ensure_table(client: &Dynamo, table: &str) -> Result<bool, UpstreamError> {
    let (keys, attributes) = shared_definition()?;
    let billing = BillingMode::from(definition()?.billing_mode.as_str());
    create(client.sdk(), table, keys, attributes, billing).await
}

/// Creates `table` keyed by `schema`, on demand, unless it exists; waits until it is
/// active. Returns whether this call created it.
pub async fn ensure_table_keyed(
    client: &Dynamo,
    table: &str,
    schema: &KeySchema,
) -> Result<bool, UpstreamError> {
    let (keys, attributes) = definitions(schema).map_err(|e| internal(&e))?;
    create(
        client.sdk(),
        table,
        keys,
        attributes,
        BillingMode::PayPerRequest,
    )
    .await
}

/// `CreateTable`'s key schema and attribute definitions for `schema`.
pub fn definitions(
    schema: &KeySchema,
) -> Result<(Vec<KeySchemaElement>, Vec<AttributeDefinition>), KeySpecError> {
    let internal = |e: &dyn fmt::Display| KeySpecError(e.to_string());
    let mut keys = Vec::new();
    let mut attributes = Vec::new();
    for (attribute, role) in std::iter::once((&schema.partition, KeyType::Hash))
        .chain(schema.sort.as_ref().map(|r| (r, KeyType::Range)))
    {
        keys.push(
            KeySchemaElement::builder()
                .attribute_name(&attribute.name)
                .key_type(role)
                .build()
                .map_err(|e| internal(&e))?,
        );
        let kind = scalar_type(attribute.key_type);
        attributes.push(
            AttributeDefinition::builder()
                .attribute_name(&attribute.name)
                .attribute_type(kind)
                .build()
                .map_err(|e| internal(&e))?,
        );
    }
    Ok((keys, attributes))
}

async fn create(
    client: &Client,
    table: &str,
    keys: Vec<KeySchemaElement>,
    attributes: Vec<AttributeDefinition>,
    billing: BillingMode,
) -> Result<bool, UpstreamError> {
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(billing)
        .set_key_schema(Some(keys))
        .set_attribute_definitions(Some(attributes))
        .send()
        .await;
    let created = match created {
        Ok(_) => true,
        Err(err) if err.code() == Some("ResourceInUseException") => false,
        Err(err) => return Err(crate::dynamo::error::classify(err)),
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
            crate::generate::record::KEY
        );
        assert_eq!(definition.key_schema[0].key_type, "HASH");
        assert_eq!(definition.attribute_definitions[0].attribute_type, "S");
        assert_eq!(default_key_schema().expect("schema").to_string(), "id:S");
        assert_eq!(definition.billing_mode, "PAY_PER_REQUEST");
    }

    #[test]
    fn create_table_definitions_follow_the_schema() {
        let (keys, attributes) =
            definitions(&KeySchema::parse("pk:S,sk:N").expect("schema")).expect("defs");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].key_type(), &KeyType::Range);
        assert_eq!(attributes[1].attribute_type(), &ScalarAttributeType::N);
        let table = TableDescription::builder()
            .set_key_schema(Some(keys))
            .set_attribute_definitions(Some(attributes))
            .build();
        assert_eq!(table_keys(&table).expect("schema").to_string(), "pk:S,sk:N");
    }
}
