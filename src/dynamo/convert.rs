//! The one place that knows both the SDK's `AttributeValue` and the crate's own
//! [`Value`]: a page's items are moved into [`Item`]s as they arrive, and items, keys and
//! expression values are moved back into the SDK's type as they are sent.
//!
//! Reading moves: strings and byte buffers change hands, nothing is copied. Writing can
//! fail on one value only, [`Value::Unsupported`] (a type newer than this build, which
//! only a page read from DynamoDB can hold): it is refused, never sent as something else.
//! Items written come from typed JSON or the generator, which never make one.

use crate::format::item::{Item, Value};
use crate::format::key::KeyValue;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// A value of a type this build does not know, which cannot be sent to DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a value of a type this build does not know cannot be sent to DynamoDB")]
pub struct Unsupported;

/// The `item` and `value` readers of one SDK's `AttributeValue`: DynamoDB's and DynamoDB
/// Streams' are two types of the same shape, read the same way.
macro_rules! readers {
    ($item:ident, $value:ident, $sdk:ident) => {
        /// The item of an SDK attribute map, by move.
        pub fn $item(attributes: HashMap<String, $sdk::types::AttributeValue>) -> Item {
            attributes
                .into_iter()
                .map(|(name, attribute)| (name, $value(attribute)))
                .collect()
        }

        /// The value of an SDK attribute, by move; a type newer than the SDK is
        /// [`Value::Unsupported`].
        pub fn $value(attribute: $sdk::types::AttributeValue) -> Value {
            use $sdk::primitives::Blob;
            use $sdk::types::AttributeValue as A;
            match attribute {
                A::S(s) => Value::S(s),
                A::N(n) => Value::N(n),
                A::B(b) => Value::B(b.into_inner()),
                A::Bool(b) => Value::Bool(b),
                A::Null(b) => Value::Null(b),
                A::L(list) => Value::L(list.into_iter().map($value).collect()),
                A::M(map) => Value::M($item(map)),
                A::Ss(set) => Value::Ss(set),
                A::Ns(set) => Value::Ns(set),
                A::Bs(set) => Value::Bs(set.into_iter().map(Blob::into_inner).collect()),
                _ => Value::Unsupported,
            }
        }
    };
}

readers!(item, value, aws_sdk_dynamodb);
readers!(stream_item, stream_value, aws_sdk_dynamodbstreams);

/// Whether every value of `item` can be sent: none is [`Value::Unsupported`], however
/// deep in a list or map.
pub fn sendable(item: &Item) -> bool {
    fn sendable_value(value: &Value) -> bool {
        match value {
            Value::Unsupported => false,
            Value::L(list) => list.iter().all(sendable_value),
            Value::M(map) => map.values().all(sendable_value),
            _ => true,
        }
    }
    item.values().all(sendable_value)
}

/// The SDK attribute map of an item, by move: what `PutRequest`, `ExclusiveStartKey` and
/// `ExpressionAttributeValues` take.
pub fn attributes(item: Item) -> Result<HashMap<String, AttributeValue>, Unsupported> {
    item.into_iter()
        .map(|(name, value)| Ok((name, attribute(value)?)))
        .collect()
}

/// The SDK attribute of a value, by move.
pub fn attribute(value: Value) -> Result<AttributeValue, Unsupported> {
    Ok(match value {
        Value::S(s) => AttributeValue::S(s),
        Value::N(n) => AttributeValue::N(n),
        Value::B(b) => AttributeValue::B(Blob::new(b)),
        Value::Bool(b) => AttributeValue::Bool(b),
        Value::Null(b) => AttributeValue::Null(b),
        Value::L(list) => {
            AttributeValue::L(list.into_iter().map(attribute).collect::<Result<_, _>>()?)
        }
        Value::M(map) => AttributeValue::M(attributes(map)?),
        Value::Ss(set) => AttributeValue::Ss(set),
        Value::Ns(set) => AttributeValue::Ns(set),
        Value::Bs(set) => AttributeValue::Bs(set.into_iter().map(Blob::new).collect()),
        Value::Unsupported => return Err(Unsupported),
    })
}

/// The SDK attribute of a key value (keys are strings, numbers or binary: always sent).
pub fn key(value: &KeyValue) -> AttributeValue {
    match value {
        KeyValue::S(s) => AttributeValue::S(s.clone()),
        KeyValue::N(n) => AttributeValue::N(n.clone()),
        KeyValue::B(b) => AttributeValue::B(Blob::new(b.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_type() -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("s".to_string(), AttributeValue::S("hé".into())),
            ("n".to_string(), AttributeValue::N("-12.50".into())),
            ("b".to_string(), AttributeValue::B(Blob::new(vec![0, 255]))),
            ("t".to_string(), AttributeValue::Bool(true)),
            ("z".to_string(), AttributeValue::Null(true)),
            (
                "l".to_string(),
                AttributeValue::L(vec![
                    AttributeValue::N("1".into()),
                    AttributeValue::M(HashMap::from([(
                        "x".to_string(),
                        AttributeValue::Bool(false),
                    )])),
                ]),
            ),
            (
                "ss".to_string(),
                AttributeValue::Ss(vec!["b".into(), "a".into()]),
            ),
            (
                "ns".to_string(),
                AttributeValue::Ns(vec!["2".into(), "1".into()]),
            ),
            (
                "bs".to_string(),
                AttributeValue::Bs(vec![Blob::new(vec![2]), Blob::new(vec![1])]),
            ),
        ])
    }

    #[test]
    fn every_type_moves_across_and_back_unchanged() {
        let read = item(every_type());
        assert_eq!(read["b"], Value::B(vec![0, 255]));
        assert_eq!(
            read["ss"],
            Value::Ss(vec!["b".into(), "a".into()]),
            "order kept"
        );
        assert_eq!(
            read["l"],
            Value::L(vec![
                Value::N("1".into()),
                Value::M(Item::from([("x".to_string(), Value::Bool(false))])),
            ])
        );
        assert_eq!(attributes(read), Ok(every_type()));
    }

    #[test]
    fn a_type_newer_than_the_sdk_is_never_sent() {
        // The SDK's `Unknown` cannot be built outside it: the reading side is the match's
        // catch-all arm above.
        let read = Item::from([
            ("k".to_string(), Value::S("a".into())),
            ("new".to_string(), Value::Unsupported),
        ]);
        assert_eq!(attributes(read), Err(Unsupported));
        assert_eq!(
            attribute(Value::L(vec![Value::Unsupported])),
            Err(Unsupported)
        );
    }

    #[test]
    fn keys_become_their_sdk_values() {
        assert_eq!(key(&KeyValue::S("a".into())), AttributeValue::S("a".into()));
        assert_eq!(
            key(&KeyValue::N("1.5".into())),
            AttributeValue::N("1.5".into())
        );
        assert_eq!(
            key(&KeyValue::B(vec![1, 2])),
            AttributeValue::B(Blob::new(vec![1, 2]))
        );
    }
}
