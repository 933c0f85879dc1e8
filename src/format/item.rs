//! An item: attribute names to typed values ([`Value`], the crate's own, so nothing above
//! the DynamoDB adapter names the SDK), and its size as DynamoDB counts it.

use std::collections::HashMap;

/// One DynamoDB item: attribute names to typed values.
pub type Item = HashMap<String, Value>;

/// One attribute's value, a DynamoDB type each. The variants are the SDK's, so the
/// adapter (`crate::dynamo::convert`) moves one into the other attribute by attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (`S`).
    S(String),
    /// A number (`N`), as DynamoDB's decimal text, never through `f64`.
    N(String),
    /// Binary (`B`).
    B(Vec<u8>),
    /// A boolean (`BOOL`).
    Bool(bool),
    /// `NULL` (always `true` on the wire).
    Null(bool),
    /// A list (`L`).
    L(Vec<Value>),
    /// A map (`M`).
    M(HashMap<String, Value>),
    /// A string set (`SS`), in the order DynamoDB gave it.
    Ss(Vec<String>),
    /// A number set (`NS`).
    Ns(Vec<String>),
    /// A binary set (`BS`).
    Bs(Vec<Vec<u8>>),
    /// A type newer than the SDK this was built with: read, written as `null`, never
    /// sent back (the adapter refuses to).
    Unsupported,
}

/// An item's size as DynamoDB counts it (close enough to check the 400 KB limit): names
/// and string/binary values by their bytes, numbers by about half their digits, one byte
/// for booleans and nulls, three bytes of overhead per list or map.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &Value) -> usize {
    let number = |n: &String| n.trim_start_matches('-').len().div_ceil(2) + 1;
    match value {
        Value::S(s) => s.len(),
        Value::N(n) => number(n),
        Value::B(b) => b.len(),
        Value::Bool(_) | Value::Null(_) => 1,
        Value::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        Value::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        Value::Ss(set) => set.iter().map(String::len).sum(),
        Value::Ns(set) => set.iter().map(number).sum(),
        Value::Bs(set) => set.iter().map(Vec::len).sum(),
        Value::Unsupported => 0,
    }
}

/// Items for tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Item, Value};

    /// The item of `pairs`.
    pub(crate) fn item(pairs: &[(&str, Value)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}
