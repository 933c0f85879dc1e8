//! The cursor's payload as it is serialised: short field names, keys with their type,
//! and the conversions between these and the crate's own values. A cursor minted by an
//! earlier build must still decode, so these shapes change only with the version.

use super::Position;
use crate::format::item::{Item, Value};
use crate::format::key::KeyValue;
use crate::format::shape::{QueryShape, SortCondition, SortOp};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A key value with its DynamoDB type, as serialised in the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum KeyRepr {
    S(String),
    N(String),
    /// Base64 (standard alphabet).
    B(String),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Payload {
    #[serde(rename = "t")]
    pub(super) table: String,
    #[serde(rename = "n")]
    pub(super) total_segments: u32,
    #[serde(rename = "o")]
    pub(super) segment_offset: u32,
    /// `"s"` not started, `"d"` done, or the key to continue after.
    #[serde(rename = "p")]
    pub(super) positions: Vec<PositionRepr>,
    #[serde(rename = "f", default, skip_serializing_if = "Vec::is_empty")]
    pub(super) fields: Vec<String>,
    #[serde(rename = "c", default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) consistent: bool,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub(super) index: Option<String>,
    /// One partition, as cursors before the Query fan-out wrote it; read, never written.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub(super) partition: Option<(String, KeyRepr)>,
    #[serde(rename = "q", default, skip_serializing_if = "Option::is_none")]
    pub(super) query: Option<QueryRepr>,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub(super) filter: Option<FilterRepr>,
    #[serde(rename = "z", default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) count: bool,
}

/// A Query's shape: key attribute, partitions (one per position), sort condition, order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QueryRepr {
    #[serde(rename = "k")]
    pub(super) key: String,
    #[serde(rename = "v")]
    pub(super) partitions: Vec<KeyRepr>,
    #[serde(rename = "w")]
    pub(super) concurrency: u32,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub(super) sort: Option<SortRepr>,
    #[serde(rename = "d", default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) descending: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SortRepr {
    #[serde(rename = "k")]
    pub(super) key: String,
    #[serde(rename = "o")]
    pub(super) op: String,
    #[serde(rename = "v")]
    pub(super) value: KeyRepr,
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub(super) to: Option<KeyRepr>,
}

/// A filter: the expression, its names, and its values in DynamoDB's typed JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FilterRepr {
    #[serde(rename = "e")]
    pub(super) expression: String,
    #[serde(rename = "n", default)]
    pub(super) names: BTreeMap<String, String>,
    #[serde(rename = "v", default)]
    pub(super) values: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum PositionRepr {
    Mark(String),
    After(BTreeMap<String, KeyRepr>),
}

pub(super) fn position_repr(position: &Position) -> PositionRepr {
    match position {
        Position::Start => PositionRepr::Mark("s".into()),
        Position::Done => PositionRepr::Mark("d".into()),
        Position::After(key) => PositionRepr::After(
            key.iter()
                .filter_map(|(name, value)| Some((name.clone(), key_value(value)?)))
                .collect(),
        ),
    }
}

pub(super) fn position_of(repr: PositionRepr) -> Option<Position> {
    match repr {
        PositionRepr::Mark(mark) if mark == "s" => Some(Position::Start),
        PositionRepr::Mark(mark) if mark == "d" => Some(Position::Done),
        PositionRepr::Mark(_) => None,
        PositionRepr::After(key) if key.is_empty() => None,
        PositionRepr::After(key) => key
            .into_iter()
            .map(|(name, value)| Some((name, attribute_of(value)?)))
            .collect::<Option<Item>>()
            .map(Position::After),
    }
}

/// Keys are only ever S, N or B; anything else is not a key and is left out.
pub(super) fn key_value(value: &Value) -> Option<KeyRepr> {
    match value {
        Value::S(s) => Some(KeyRepr::S(s.clone())),
        Value::N(n) => Some(KeyRepr::N(n.clone())),
        Value::B(b) => Some(KeyRepr::B(STANDARD.encode(b))),
        _ => None,
    }
}

pub(super) fn repr_of_key(value: &KeyValue) -> KeyRepr {
    match value {
        KeyValue::S(s) => KeyRepr::S(s.clone()),
        KeyValue::N(n) => KeyRepr::N(n.clone()),
        KeyValue::B(b) => KeyRepr::B(STANDARD.encode(b)),
    }
}

pub(super) fn key_of_repr(value: KeyRepr) -> Option<KeyValue> {
    Some(match value {
        KeyRepr::S(s) => KeyValue::S(s),
        KeyRepr::N(n) => KeyValue::N(n),
        KeyRepr::B(b) => KeyValue::B(STANDARD.decode(b).ok()?),
    })
}

pub(super) fn query_of(query: QueryRepr) -> Option<QueryShape> {
    let sort = match query.sort {
        None => None,
        Some(sort) => Some(SortCondition {
            key: sort.key,
            op: SortOp::from_name(&sort.op)?,
            value: key_of_repr(sort.value)?,
            to: match sort.to {
                None => None,
                Some(to) => Some(key_of_repr(to)?),
            },
        }),
    };
    Some(QueryShape {
        key: query.key,
        partitions: query
            .partitions
            .into_iter()
            .map(key_of_repr)
            .collect::<Option<_>>()?,
        concurrency: query.concurrency,
        sort,
        descending: query.descending,
    })
}

pub(super) fn attribute_of(value: KeyRepr) -> Option<Value> {
    Some(match value {
        KeyRepr::S(s) => Value::S(s),
        KeyRepr::N(n) => Value::N(n),
        KeyRepr::B(b) => Value::B(STANDARD.decode(b).ok()?),
    })
}
