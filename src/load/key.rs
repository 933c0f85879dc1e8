//! The target table's key schema: what every loaded item must carry, and how two items
//! are told to be the same item.
//!
//! It comes from the table itself (`DescribeTable`), or, to create the table, from
//! `--key pk:S,sk:N`. Keys are compared by value as DynamoDB compares them: numbers by
//! their value (`1` and `1.0` are one key), binary by its bytes.
//!
//! The keys of the table's secondary indexes ([`IndexKeys`]) are checked too, on the
//! items that carry them: DynamoDB refuses a whole batch for one item whose index key
//! has another type, is empty or is too long, so a file that passed the check would be
//! written only in part.

use crate::error::{ErrorKind, UpstreamError};
use crate::format::limits::{MAX_KEY_NAME_BYTES, MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES};
use crate::format::number::Number;
use crate::scan::{Item, KeyAttribute, KeyType};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, KeySchemaElement, KeyType as DynamoKeyType,
    ScalarAttributeType, TableDescription,
};
use std::fmt;

/// A table's primary key: a hash key, and a range key if the table has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema {
    /// The partition key.
    pub hash: KeyAttribute,
    /// The sort key, if any.
    pub range: Option<KeyAttribute>,
}

/// A `--key` value or a table description that is not a key schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeySpecError(pub String);

/// One item's key, comparable by value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemKey(Vec<KeyValue>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyValue {
    S(String),
    N(Number),
    B(Vec<u8>),
}

impl KeySchema {
    /// A table keyed by one attribute.
    pub fn hash_only(name: impl Into<String>, key_type: KeyType) -> Self {
        Self {
            hash: KeyAttribute {
                name: name.into(),
                key_type,
            },
            range: None,
        }
    }

    /// Reads `pk:S` or `pk:S,sk:N` (types S, N or B).
    pub fn parse(spec: &str) -> Result<Self, KeySpecError> {
        let bad = |why: String| KeySpecError(format!("--key {spec:?}: {why}"));
        let attribute = |part: &str| {
            let (name, kind) = part
                .split_once(':')
                .ok_or_else(|| bad(format!("{part:?} is not NAME:TYPE")))?;
            if name.is_empty() || name.len() > MAX_KEY_NAME_BYTES {
                return Err(bad("a key name has 1 to 255 characters".into()));
            }
            let key_type = match kind {
                "S" => KeyType::S,
                "N" => KeyType::N,
                "B" => KeyType::B,
                other => return Err(bad(format!("type {other:?} is not S, N or B"))),
            };
            Ok(KeyAttribute {
                name: name.to_string(),
                key_type,
            })
        };
        let parts: Vec<&str> = spec.split(',').collect();
        let schema = match parts.as_slice() {
            [hash] => Self {
                hash: attribute(hash)?,
                range: None,
            },
            [hash, range] => Self {
                hash: attribute(hash)?,
                range: Some(attribute(range)?),
            },
            _ => return Err(bad("one or two keys: HASH:TYPE[,RANGE:TYPE]".into())),
        };
        if schema
            .range
            .as_ref()
            .is_some_and(|r| r.name == schema.hash.name)
        {
            return Err(bad("the hash and range keys need different names".into()));
        }
        Ok(schema)
    }

    /// The key schema of a table's description.
    pub fn of_table(table: &TableDescription) -> Result<Self, KeySpecError> {
        let attribute = |role| key_attribute(table, table.key_schema(), role);
        let hash = attribute(DynamoKeyType::Hash)?
            .ok_or_else(|| KeySpecError("the table's key schema has no HASH key".into()))?;
        Ok(Self {
            hash,
            range: attribute(DynamoKeyType::Range)?,
        })
    }

    /// The key schema of `table`, by `DescribeTable`.
    pub async fn describe(client: &Client, table: &str) -> Result<Self, UpstreamError> {
        Ok(Self::describe_with_indexes(client, table).await?.0)
    }

    /// The key schema of `table` and the keys of its secondary indexes, by `DescribeTable`.
    pub async fn describe_with_indexes(
        client: &Client,
        table: &str,
    ) -> Result<(Self, IndexKeys), UpstreamError> {
        let output = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(crate::client::classify)?;
        let described = output.table.ok_or_else(|| {
            UpstreamError::new(ErrorKind::Internal, "DescribeTable without a table")
        })?;
        let internal = |err| UpstreamError::new(ErrorKind::Internal, err);
        let schema = Self::of_table(&described).map_err(internal)?;
        Ok((schema, IndexKeys::of_table(&described).map_err(internal)?))
    }

    /// The key attributes, hash first.
    pub fn attributes(&self) -> impl Iterator<Item = &KeyAttribute> {
        std::iter::once(&self.hash).chain(self.range.as_ref())
    }

    /// The key attribute names, hash first.
    pub fn names(&self) -> Vec<String> {
        self.attributes().map(|a| a.name.clone()).collect()
    }

    /// `CreateTable`'s key schema and attribute definitions for this key.
    pub fn definitions(
        &self,
    ) -> Result<(Vec<KeySchemaElement>, Vec<AttributeDefinition>), KeySpecError> {
        let internal = |e: &dyn fmt::Display| KeySpecError(e.to_string());
        let mut keys = Vec::new();
        let mut attributes = Vec::new();
        for (attribute, role) in std::iter::once((&self.hash, DynamoKeyType::Hash))
            .chain(self.range.as_ref().map(|r| (r, DynamoKeyType::Range)))
        {
            keys.push(
                KeySchemaElement::builder()
                    .attribute_name(&attribute.name)
                    .key_type(role)
                    .build()
                    .map_err(|e| internal(&e))?,
            );
            let kind = match attribute.key_type {
                KeyType::S => ScalarAttributeType::S,
                KeyType::N => ScalarAttributeType::N,
                KeyType::B => ScalarAttributeType::B,
            };
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

    /// Checks that `item` carries every key attribute with its type and a value DynamoDB
    /// takes as a key; returns the key, comparable by value.
    pub fn key_of(&self, item: &Item) -> Result<ItemKey, String> {
        let mut values = Vec::with_capacity(2);
        for (attribute, range) in
            std::iter::once((&self.hash, false)).chain(self.range.as_ref().map(|r| (r, true)))
        {
            let named = Named {
                range,
                attribute,
                index: None,
            };
            let value = item
                .get(&attribute.name)
                .ok_or_else(|| format!("{named} ({}) is missing", type_name(attribute.key_type)))?;
            named.check(value)?;
            values.push(match value {
                AttributeValue::S(s) => KeyValue::S(s.clone()),
                AttributeValue::N(n) => KeyValue::N(
                    Number::parse(n).map_err(|why| format!("{}: N {why}", attribute.name))?,
                ),
                AttributeValue::B(b) => KeyValue::B(b.as_ref().to_vec()),
                // `check` took only the key's own type.
                _ => return Err(format!("{named} is not a key type")),
            });
        }
        Ok(ItemKey(values))
    }
}

/// The key attributes of a table's secondary indexes (global and local). An item need not
/// carry them (it is then left out of the index), but one that does must give each the
/// index key's type, not empty, within DynamoDB's key size limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexKeys(Vec<IndexKey>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct IndexKey {
    /// The index's name, for the errors.
    index: String,
    /// The attribute and the type its definition gives it.
    attribute: KeyAttribute,
    /// A sort key (1024 bytes at most), not a partition key (2048).
    range: bool,
}

impl IndexKeys {
    /// The index keys of a table's description, typed by its attribute definitions.
    pub fn of_table(table: &TableDescription) -> Result<Self, KeySpecError> {
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
        Ok(Self(keys))
    }

    /// Checks the index key attributes `item` carries.
    pub fn check(&self, item: &Item) -> Result<(), String> {
        for key in &self.0 {
            if let Some(value) = item.get(&key.attribute.name) {
                Named {
                    range: key.range,
                    attribute: &key.attribute,
                    index: Some(&key.index),
                }
                .check(value)?;
            }
        }
        Ok(())
    }
}

/// A key attribute as errors name it: `hash key attribute "pk"`, with `of index "name"`
/// for an index's.
struct Named<'a> {
    /// A sort key, not a partition key.
    range: bool,
    /// The attribute and its key type.
    attribute: &'a KeyAttribute,
    /// The index it keys; `None` for the table's own key.
    index: Option<&'a str>,
}

impl Named<'_> {
    /// Checks `value` has the key's type, and, for S and B, is not empty and within the
    /// size limit (the same for a table's key and an index's). N values were checked as
    /// numbers when the line was read.
    fn check(&self, value: &AttributeValue) -> Result<(), String> {
        let kind = self.attribute.key_type;
        let bytes = match (kind, value) {
            (KeyType::N, AttributeValue::N(_)) => return Ok(()),
            (KeyType::S, AttributeValue::S(s)) => s.len(),
            (KeyType::B, AttributeValue::B(b)) => b.as_ref().len(),
            _ => return Err(format!("{self} must be of type {}", type_name(kind))),
        };
        let limit = if self.range {
            MAX_SORT_KEY_BYTES
        } else {
            MAX_PARTITION_KEY_BYTES
        };
        if bytes == 0 {
            return Err(format!("{self} must not be empty"));
        }
        if bytes > limit {
            return Err(format!("{self} is over {limit} bytes"));
        }
        Ok(())
    }
}

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = if self.range { "range" } else { "hash" };
        write!(f, "{role} key attribute {:?}", self.attribute.name)?;
        match self.index {
            Some(index) => write!(f, " of index {index:?}"),
            None => Ok(()),
        }
    }
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
        .map(|d| match d.attribute_type() {
            ScalarAttributeType::S => Ok(KeyType::S),
            ScalarAttributeType::N => Ok(KeyType::N),
            ScalarAttributeType::B => Ok(KeyType::B),
            other => Err(KeySpecError(format!("key {name:?} has type {other:?}"))),
        })
        .ok_or_else(|| KeySpecError(format!("key {name:?} has no attribute definition")))??;
    Ok(Some(KeyAttribute {
        name: name.to_string(),
        key_type,
    }))
}

/// `pk:S` or `pk:S,sk:N`, as `--key` takes it.
impl fmt::Display for KeySchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined: Vec<String> = self
            .attributes()
            .map(|a| format!("{}:{}", a.name, type_name(a.key_type)))
            .collect();
        f.write_str(&joined.join(","))
    }
}

/// The type's letter in DynamoDB's API: `S`, `N` or `B`.
pub fn type_name(kind: KeyType) -> &'static str {
    match kind {
        KeyType::S => "S",
        KeyType::N => "N",
        KeyType::B => "B",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn key_specs_parse_and_print_back() {
        for spec in ["pk:S", "pk:N", "pk:B", "pk:S,sk:N", "a b:N,c.d:B"] {
            assert_eq!(KeySchema::parse(spec).expect(spec).to_string(), spec);
        }
        for (spec, why) in [
            ("pk", "NAME:TYPE"),
            ("pk:X", "not S, N or B"),
            ("pk:BOOL", "not S, N or B"),
            (":S", "1 to 255"),
            ("pk:S,pk:N", "different names"),
            ("a:S,b:S,c:S", "one or two keys"),
            ("", "NAME:TYPE"),
        ] {
            let err = KeySchema::parse(spec).expect_err(spec).to_string();
            assert!(err.contains(why), "{spec}: {err}");
        }
    }

    #[test]
    fn keys_are_checked_by_type_and_compared_by_value() {
        let schema = KeySchema::parse("pk:N,sk:S").expect("schema");
        let a = item(&[
            ("pk", AttributeValue::N("1".into())),
            ("sk", AttributeValue::S("x".into())),
        ]);
        let b = item(&[
            ("pk", AttributeValue::N("1.0".into())),
            ("sk", AttributeValue::S("x".into())),
        ]);
        let c = item(&[
            ("pk", AttributeValue::N("1".into())),
            ("sk", AttributeValue::S("y".into())),
        ]);
        assert_eq!(
            schema.key_of(&a),
            schema.key_of(&b),
            "1 and 1.0 are one key"
        );
        assert_ne!(schema.key_of(&a), schema.key_of(&c));
        let missing = item(&[("pk", AttributeValue::N("1".into()))]);
        assert!(
            schema
                .key_of(&missing)
                .unwrap_err()
                .contains("range key attribute \"sk\"")
        );
        let wrong = item(&[
            ("pk", AttributeValue::S("1".into())),
            ("sk", AttributeValue::S("x".into())),
        ]);
        assert!(
            schema
                .key_of(&wrong)
                .unwrap_err()
                .contains("must be of type N")
        );
        let binary = KeySchema::parse("b:B").expect("schema");
        let empty = item(&[("b", AttributeValue::B(Blob::new(Vec::<u8>::new())))]);
        assert!(
            binary
                .key_of(&empty)
                .unwrap_err()
                .contains("must not be empty")
        );
        let long = item(&[(
            "b",
            AttributeValue::B(Blob::new(vec![1; MAX_PARTITION_KEY_BYTES + 1])),
        )]);
        assert!(
            binary
                .key_of(&long)
                .unwrap_err()
                .contains("over 2048 bytes")
        );
    }

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
        let (keys, mut attributes) = KeySchema::parse("pk:S,sk:N")
            .expect("schema")
            .definitions()
            .expect("defs");
        attributes.extend(
            KeySchema::parse("email:S,rank:B")
                .expect("s")
                .definitions()
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
        let indexes = IndexKeys::of_table(&table).expect("indexes");
        let base = [
            ("pk", AttributeValue::S("p".into())),
            ("sk", AttributeValue::N("1".into())),
        ];
        let with = |extra: (&str, AttributeValue)| {
            let mut pairs = base.to_vec();
            pairs.push(extra);
            indexes.check(&item(&pairs))
        };
        assert_eq!(indexes.check(&item(&base)), Ok(()), "a sparse item");
        assert_eq!(with(("email", AttributeValue::S("a@b".into()))), Ok(()));
        for (extra, says) in [
            (
                ("email", AttributeValue::S(String::new())),
                "hash key attribute \"email\" of index \"by_email\" must not be empty",
            ),
            (
                ("email", AttributeValue::N("5".into())),
                "hash key attribute \"email\" of index \"by_email\" must be of type S",
            ),
            (
                (
                    "email",
                    AttributeValue::S("e".repeat(MAX_PARTITION_KEY_BYTES + 1)),
                ),
                "hash key attribute \"email\" of index \"by_email\" is over 2048 bytes",
            ),
            (
                (
                    "rank",
                    AttributeValue::B(Blob::new(vec![1; MAX_SORT_KEY_BYTES + 1])),
                ),
                "range key attribute \"rank\" of index \"by_rank\" is over 1024 bytes",
            ),
        ] {
            assert_eq!(with(extra), Err(says.to_string()));
        }
    }

    #[test]
    fn create_table_definitions_follow_the_schema() {
        let (keys, attributes) = KeySchema::parse("pk:S,sk:N")
            .expect("schema")
            .definitions()
            .expect("defs");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].key_type(), &DynamoKeyType::Range);
        assert_eq!(attributes[1].attribute_type(), &ScalarAttributeType::N);
        let table = TableDescription::builder()
            .set_key_schema(Some(keys))
            .set_attribute_definitions(Some(attributes))
            .build();
        assert_eq!(
            KeySchema::of_table(&table).expect("schema").to_string(),
            "pk:S,sk:N"
        );
    }
}
