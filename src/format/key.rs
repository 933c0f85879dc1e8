//! Keys: a key attribute's value and type, the key schema of a table or index, an item's
//! key compared by value, and the keys of a table's secondary indexes.
//!
//! A key schema comes from the table itself (`DescribeTable`, in
//! [`crate::dynamo::schema`]) or, to create a table, from `--key pk:S,sk:N`. Keys are
//! compared by value as DynamoDB compares them: numbers by their value (`1` and `1.0` are
//! one key), binary by its bytes.
//!
//! The keys of the table's secondary indexes ([`IndexKeys`]) are checked too, on the
//! items that carry them: DynamoDB refuses a whole batch for one item whose index key
//! has another type, is empty or is too long, so a file that passed the check would be
//! written only in part.

use crate::format::item::{Item, Value};
use crate::format::limits::{MAX_KEY_NAME_BYTES, MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES};
use crate::format::number::Number;
use std::fmt;

/// A key attribute's value: keys are only ever strings, numbers or binary. Outside the
/// DynamoDB adapter this is what a key value is; the adapter makes the SDK's type of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue {
    /// A string.
    S(String),
    /// A number, as its decimal text.
    N(String),
    /// Binary.
    B(Vec<u8>),
}

impl KeyValue {
    /// The item value of this key.
    pub fn to_value(&self) -> Value {
        match self {
            Self::S(s) => Value::S(s.clone()),
            Self::N(n) => Value::N(n.clone()),
            Self::B(b) => Value::B(b.clone()),
        }
    }

    /// The key value of an item value; `None` for types no key can have.
    pub fn of_value(value: &Value) -> Option<Self> {
        match value {
            Value::S(s) => Some(Self::S(s.clone())),
            Value::N(n) => Some(Self::N(n.clone())),
            Value::B(b) => Some(Self::B(b.clone())),
            _ => None,
        }
    }
}

/// The scalar type of a key attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
}

/// The partition key of a table or index: what `?pk=` is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttribute {
    /// The attribute name.
    pub name: String,
    /// Its type, which decides how the `pk` text is read.
    pub key_type: KeyType,
}

/// The key attributes of a table or index: what `pk` and the `sk_...` conditions are
/// matched against, and what every loaded item must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema {
    /// The partition (HASH) key.
    pub partition: KeyAttribute,
    /// The sort (RANGE) key, when there is one.
    pub sort: Option<KeyAttribute>,
}

impl KeyValue {
    /// The value as a request writes it: S as is, N as its decimal text, B as base64.
    pub fn to_text(&self) -> String {
        use base64::Engine as _;
        match self {
            Self::S(s) | Self::N(s) => s.clone(),
            Self::B(b) => base64::engine::general_purpose::STANDARD.encode(b),
        }
    }

    /// Its size as DynamoDB counts key sizes: the bytes of the text or binary.
    pub fn len(&self) -> usize {
        match self {
            Self::S(s) | Self::N(s) => s.len(),
            Self::B(b) => b.len(),
        }
    }

    /// Whether it is empty (no key may be).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A `--key` value or a table description that is not a key schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeySpecError(pub String);

/// One item's key, comparable by value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemKey(Vec<KeyPart>);

/// One attribute of an [`ItemKey`]: numbers by their value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyPart {
    S(String),
    N(Number),
    B(Vec<u8>),
}

impl KeySchema {
    /// A table keyed by one attribute.
    pub fn partition_only(name: impl Into<String>, key_type: KeyType) -> Self {
        Self {
            partition: KeyAttribute {
                name: name.into(),
                key_type,
            },
            sort: None,
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
            [partition] => Self {
                partition: attribute(partition)?,
                sort: None,
            },
            [partition, sort] => Self {
                partition: attribute(partition)?,
                sort: Some(attribute(sort)?),
            },
            _ => return Err(bad("one or two keys: HASH:TYPE[,RANGE:TYPE]".into())),
        };
        if schema
            .sort
            .as_ref()
            .is_some_and(|r| r.name == schema.partition.name)
        {
            return Err(bad("the hash and range keys need different names".into()));
        }
        Ok(schema)
    }

    /// The key attributes, partition first.
    pub fn attributes(&self) -> impl Iterator<Item = &KeyAttribute> {
        std::iter::once(&self.partition).chain(self.sort.as_ref())
    }

    /// The key attribute names, partition first.
    pub fn names(&self) -> Vec<String> {
        self.attributes().map(|a| a.name.clone()).collect()
    }

    /// Checks that `item` carries every key attribute with its type and a value DynamoDB
    /// takes as a key; returns the key, comparable by value.
    pub fn key_of(&self, item: &Item) -> Result<ItemKey, String> {
        let mut values = Vec::with_capacity(2);
        for (attribute, range) in
            std::iter::once((&self.partition, false)).chain(self.sort.as_ref().map(|r| (r, true)))
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
                Value::S(s) => KeyPart::S(s.clone()),
                Value::N(n) => KeyPart::N(
                    Number::parse(n).map_err(|why| format!("{}: N {why}", attribute.name))?,
                ),
                Value::B(b) => KeyPart::B(b.clone()),
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
pub struct IndexKey {
    /// The index's name, for the errors.
    pub index: String,
    /// The attribute and the type its definition gives it.
    pub attribute: KeyAttribute,
    /// A sort key (1024 bytes at most), not a partition key (2048).
    pub range: bool,
}

impl IndexKeys {
    /// The index keys given (a table's, as [`crate::dynamo::schema`] reads them).
    pub fn new(keys: Vec<IndexKey>) -> Self {
        Self(keys)
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
    fn check(&self, value: &Value) -> Result<(), String> {
        let kind = self.attribute.key_type;
        let bytes = match (kind, value) {
            (KeyType::N, Value::N(_)) => return Ok(()),
            (KeyType::S, Value::S(s)) => s.len(),
            (KeyType::B, Value::B(b)) => b.len(),
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
    use crate::format::item::testing::item;

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
        let a = item(&[("pk", Value::N("1".into())), ("sk", Value::S("x".into()))]);
        let b = item(&[("pk", Value::N("1.0".into())), ("sk", Value::S("x".into()))]);
        let c = item(&[("pk", Value::N("1".into())), ("sk", Value::S("y".into()))]);
        assert_eq!(
            schema.key_of(&a),
            schema.key_of(&b),
            "1 and 1.0 are one key"
        );
        assert_ne!(schema.key_of(&a), schema.key_of(&c));
        let missing = item(&[("pk", Value::N("1".into()))]);
        assert!(
            schema
                .key_of(&missing)
                .unwrap_err()
                .contains("range key attribute \"sk\"")
        );
        let wrong = item(&[("pk", Value::S("1".into())), ("sk", Value::S("x".into()))]);
        assert!(
            schema
                .key_of(&wrong)
                .unwrap_err()
                .contains("must be of type N")
        );
        let binary = KeySchema::parse("b:B").expect("schema");
        let empty = item(&[("b", Value::B(Vec::<u8>::new()))]);
        assert!(
            binary
                .key_of(&empty)
                .unwrap_err()
                .contains("must not be empty")
        );
        let long = item(&[("b", Value::B(vec![1; MAX_PARTITION_KEY_BYTES + 1]))]);
        assert!(
            binary
                .key_of(&long)
                .unwrap_err()
                .contains("over 2048 bytes")
        );
    }
}
