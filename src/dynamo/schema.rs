//! The one `DescribeTable` reader for key schemas: the key schema of a table or of one of
//! its indexes, and the keys of all its secondary indexes, typed by the table's attribute
//! definitions. The S/N/B <-> `ScalarAttributeType` mapping is written here once.
//!
//! A key attribute of a type other than S, N or B (an SDK newer than this build) is an
//! error, never read as a string.

use crate::dynamo::client::Dynamo;
use crate::format::error::{ErrorKind, UpstreamError};
use crate::format::key::{IndexKey, IndexKeys, KeyAttribute, KeySchema, KeySpecError, KeyType};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    KeySchemaElement, KeyType as DynamoKeyType, ScalarAttributeType, TableDescription,
};

/// One `DescribeTable` of `table`.
pub async fn describe(client: &Client, table: &str) -> Result<TableDescription, UpstreamError> {
    let output = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(crate::dynamo::error::classify)?;
    output
        .table
        .ok_or_else(|| UpstreamError::new(ErrorKind::Internal, "DescribeTable without a table"))
}

/// A table's keys and which table it is: its ARN and creation time, which differ for a
/// table deleted and created again under the same name.
#[derive(Debug, Clone)]
pub struct Described {
    /// The table's key schema.
    pub schema: KeySchema,
    /// Its secondary indexes' keys.
    pub indexes: IndexKeys,
    /// `ARN@creation time` (epoch seconds).
    pub identity: String,
}

/// [`describe_with_indexes`], and the table's identity.
pub async fn describe_identified(client: &Dynamo, table: &str) -> Result<Described, UpstreamError> {
    let described = describe(client.sdk(), table).await?;
    let identity = format!(
        "{}@{}",
        described.table_arn().unwrap_or(table),
        described.creation_date_time().map_or(0, |t| t.secs())
    );
    Ok(Described {
        schema: table_keys(&described).map_err(internal)?,
        indexes: index_keys(&described).map_err(internal)?,
        identity,
    })
}

/// The key schema of `table`, by `DescribeTable`.
pub async fn describe_keys(client: &Dynamo, table: &str) -> Result<KeySchema, UpstreamError> {
    Ok(describe_with_indexes(client, table).await?.0)
}

/// The key schema of `table` and the keys of its secondary indexes, by `DescribeTable`.
pub async fn describe_with_indexes(
    client: &Dynamo,
    table: &str,
) -> Result<(KeySchema, IndexKeys), UpstreamError> {
    let described = describe(client.sdk(), table).await?;
    let schema = table_keys(&described).map_err(internal)?;
    Ok((schema, index_keys(&described).map_err(internal)?))
}

/// The key schema of a table's description.
pub fn table_keys(table: &TableDescription) -> Result<KeySchema, KeySpecError> {
    keys_of(table, table.key_schema())
}

/// The partition and sort keys of `table`, or of its index `index`; an index it does not
/// have is [`ErrorKind::IndexNotFound`].
pub fn key_schema_of(
    table: &TableDescription,
    index: Option<&str>,
) -> Result<KeySchema, UpstreamError> {
    let schema: &[KeySchemaElement] = match index {
        None => table.key_schema(),
        Some(index) => table
            .global_secondary_indexes()
            .iter()
            .find(|gsi| gsi.index_name() == Some(index))
            .map(|gsi| gsi.key_schema())
            .or_else(|| {
                table
                    .local_secondary_indexes()
                    .iter()
                    .find(|lsi| lsi.index_name() == Some(index))
                    .map(|lsi| lsi.key_schema())
            })
            .ok_or_else(|| {
                UpstreamError::new(ErrorKind::IndexNotFound, format!("no index {index:?}"))
            })?,
    };
    keys_of(table, schema).map_err(internal)
}

/// The key schema `schema` (a table's or an index's) names, typed by `table`'s
/// attribute definitions.
fn keys_of(
    table: &TableDescription,
    schema: &[KeySchemaElement],
) -> Result<KeySchema, KeySpecError> {
    let attribute = |role| key_attribute(table, schema, role);
    let partition = attribute(DynamoKeyType::Hash)?
        .ok_or_else(|| KeySpecError("the table's key schema has no HASH key".into()))?;
    Ok(KeySchema {
        partition,
        sort: attribute(DynamoKeyType::Range)?,
    })
}

/// The index keys of a table's description, typed by its attribute definitions.
pub fn index_keys(table: &TableDescription) -> Result<IndexKeys, KeySpecError> {
    let global = table
        .global_secondary_indexes()
        .iter()
        .map(|i| (i.index_name(), i.key_schema()));
    let local = table
        .local_secondary_indexes()
        .iter()
        .map(|i| (i.index_name(), i.key_schema()));
    let mut keys = Vec::new();
    for (index, schema) in global.chain(local) {
        let index = index.unwrap_or("(unnamed)");
        for (role, range) in [(DynamoKeyType::Hash, false), (DynamoKeyType::Range, true)] {
            let attribute = key_attribute(table, schema, role)
                .map_err(|e| KeySpecError(format!("index {index:?}: {e}")))?;
            if let Some(attribute) = attribute {
                keys.push(IndexKey {
                    index: index.to_string(),
                    attribute,
                    range,
                });
            }
        }
    }
    Ok(IndexKeys::new(keys))
}

/// The attribute of `schema` (a table's or an index's key schema) in `role`, typed by the
/// table's attribute definitions.
fn key_attribute(
    table: &TableDescription,
    schema: &[KeySchemaElement],
    role: DynamoKeyType,
) -> Result<Option<KeyAttribute>, KeySpecError> {
    let Some(element) = schema.iter().find(|k| k.key_type() == &role) else {
        return Ok(None);
    };
    let name = element.attribute_name();
    let key_type = table
        .attribute_definitions()
        .iter()
        .find(|d| d.attribute_name() == name)
        .map(|d| {
            key_type(d.attribute_type()).map_err(|e| KeySpecError(format!("key {name:?} {e}")))
        })
        .ok_or_else(|| KeySpecError(format!("key {name:?} has no attribute definition")))??;
    Ok(Some(KeyAttribute {
        name: name.to_string(),
        key_type,
    }))
}

/// The key type of a scalar attribute type; any other (a type newer than this build)
/// is an error, never read as S.
pub fn key_type(kind: &ScalarAttributeType) -> Result<KeyType, String> {
    match kind {
        ScalarAttributeType::S => Ok(KeyType::S),
        ScalarAttributeType::N => Ok(KeyType::N),
        ScalarAttributeType::B => Ok(KeyType::B),
        other => Err(format!("has type {other:?}")),
    }
}

/// The scalar attribute type of a key type.
pub fn scalar_type(kind: KeyType) -> ScalarAttributeType {
    match kind {
        KeyType::S => ScalarAttributeType::S,
        KeyType::N => ScalarAttributeType::N,
        KeyType::B => ScalarAttributeType::B,
    }
}

fn internal(err: KeySpecError) -> UpstreamError {
    UpstreamError::new(ErrorKind::Internal, err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::table::definitions;
    use crate::format::item::Value;
    use crate::format::item::testing::item;
    use crate::format::limits::{MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES};
    use aws_sdk_dynamodb::types::AttributeDefinition;

    #[test]
    fn index_keys_present_are_checked_by_type_emptiness_and_size() {
        use aws_sdk_dynamodb::types::{
            GlobalSecondaryIndexDescription as Global, LocalSecondaryIndexDescription as Local,
        };
        let element = |name: &str, role| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(role)
                .build()
                .expect("element")
        };
        let (keys, mut attributes) =
            definitions(&KeySchema::parse("pk:S,sk:N").expect("schema")).expect("defs");
        attributes.extend(
            definitions(&KeySchema::parse("email:S,rank:B").expect("s"))
                .expect("d")
                .1,
        );
        let table = TableDescription::builder()
            .set_key_schema(Some(keys))
            .set_attribute_definitions(Some(attributes))
            .global_secondary_indexes(
                Global::builder()
                    .index_name("by_email")
                    .key_schema(element("email", DynamoKeyType::Hash))
                    .key_schema(element("sk", DynamoKeyType::Range))
                    .build(),
            )
            .local_secondary_indexes(
                Local::builder()
                    .index_name("by_rank")
                    .key_schema(element("pk", DynamoKeyType::Hash))
                    .key_schema(element("rank", DynamoKeyType::Range))
                    .build(),
            )
            .build();
        let indexes = index_keys(&table).expect("indexes");
        let base = [("pk", Value::S("p".into())), ("sk", Value::N("1".into()))];
        let with = |extra: (&str, Value)| {
            let mut pairs = base.to_vec();
            pairs.push(extra);
            indexes.check(&item(&pairs))
        };
        assert_eq!(indexes.check(&item(&base)), Ok(()), "a sparse item");
        assert_eq!(with(("email", Value::S("a@b".into()))), Ok(()));
        for (extra, says) in [
            (
                ("email", Value::S(String::new())),
                "hash key attribute \"email\" of index \"by_email\" must not be empty",
            ),
            (
                ("email", Value::N("5".into())),
                "hash key attribute \"email\" of index \"by_email\" must be of type S",
            ),
            (
                ("email", Value::S("e".repeat(MAX_PARTITION_KEY_BYTES + 1))),
                "hash key attribute \"email\" of index \"by_email\" is over 2048 bytes",
            ),
            (
                ("rank", Value::B(vec![1; MAX_SORT_KEY_BYTES + 1])),
                "range key attribute \"rank\" of index \"by_rank\" is over 1024 bytes",
            ),
        ] {
            assert_eq!(with(extra), Err(says.to_string()));
        }
    }

    #[test]
    fn a_key_of_an_unknown_type_is_an_error_not_a_string() {
        let element = KeySchemaElement::builder()
            .attribute_name("pk")
            .key_type(DynamoKeyType::Hash)
            .build()
            .expect("element");
        let definition = AttributeDefinition::builder()
            .attribute_name("pk")
            .attribute_type(ScalarAttributeType::from("BOOL"))
            .build()
            .expect("definition");
        let table = TableDescription::builder()
            .key_schema(element)
            .attribute_definitions(definition)
            .build();
        let err = table_keys(&table).expect_err("an unknown type");
        assert!(err.0.contains("key \"pk\" has type"), "{err}");
        let err = key_schema_of(&table, None).expect_err("an unknown type");
        assert_eq!(err.kind, ErrorKind::Internal);
        assert!(
            err.source.to_string().contains("has type"),
            "{}",
            err.source
        );
        assert_eq!(
            key_type(&ScalarAttributeType::N),
            Ok(KeyType::N),
            "the known types are read"
        );
        for kind in [KeyType::S, KeyType::N, KeyType::B] {
            assert_eq!(key_type(&scalar_type(kind)), Ok(kind));
        }
    }

    #[test]
    fn an_index_the_table_does_not_have_is_index_not_found() {
        let (keys, attributes) =
            definitions(&KeySchema::parse("pk:S").expect("schema")).expect("defs");
        let table = TableDescription::builder()
            .set_key_schema(Some(keys))
            .set_attribute_definitions(Some(attributes))
            .build();
        assert_eq!(
            key_schema_of(&table, Some("nope"))
                .expect_err("no index")
                .kind,
            ErrorKind::IndexNotFound
        );
        assert_eq!(
            key_schema_of(&table, None).expect("schema").to_string(),
            "pk:S"
        );
    }
}
