//! Items from NDJSON files in DynamoDB's typed JSON (`--from FILE`, the `seed-data/` sets).
//!
//! One item per line, either bare (`{"id":{"S":"a"},"n":{"N":"1"}}`) or wrapped as in
//! DynamoDB's S3 export (`{"Item":{...}}`). Typed JSON is the only lossless text form:
//! plain JSON cannot tell a string from binary or a list from a set. Every line is checked
//! as DynamoDB would (types, numbers, sets, the key, the 400 KB limit, nesting depth) so a
//! bad line is reported with its number before anything is written.

use super::{MAX_ITEM_BYTES, item_size};
use crate::encode::{Item, is_json_number};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// DynamoDB's nesting limit for lists and maps.
const MAX_DEPTH: usize = 32;

/// A line that is not a valid item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    /// 1-based line number in the file.
    pub line: usize,
    /// What is wrong, naming the attribute.
    pub message: String,
}

/// The items of a file and the lines that failed, in file order.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Valid items with their line numbers.
    pub items: Vec<(usize, Item)>,
    /// Invalid lines.
    pub errors: Vec<LineError>,
}

/// Parses every non-blank line of `text`; items must carry the string key `key`, unique
/// across the file (two writes of one key in concurrent batches would race).
pub fn parse(text: &str, key: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let result = parse_item(line, key).and_then(|item| {
            let id = item
                .get(key)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            match seen.insert(id.clone(), number) {
                Some(first) => Err(format!("key {id:?} is already on line {first}")),
                None => Ok(item),
            }
        });
        match result {
            Ok(item) => parsed.items.push((number, item)),
            Err(message) => parsed.errors.push(LineError {
                line: number,
                message,
            }),
        }
    }
    parsed
}

/// Parses one line into an item.
pub fn parse_item(line: &str, key: &str) -> Result<Item, String> {
    let value: Value = serde_json::from_str(line).map_err(|err| format!("not JSON: {err}"))?;
    let Value::Object(mut object) = value else {
        return Err("not a JSON object".into());
    };
    if object.len() == 1
        && let Some(Value::Object(inner)) = object.remove("Item")
    {
        object = inner;
    }
    let item = attributes(&object, "", 0)?;
    match item.get(key) {
        Some(AttributeValue::S(id)) if !id.is_empty() => {}
        Some(_) => {
            return Err(format!(
                "key attribute {key:?} must be a non-empty string (S)"
            ));
        }
        None => return Err(format!("key attribute {key:?} is missing")),
    }
    let size = item_size(&item);
    if size > MAX_ITEM_BYTES {
        return Err(format!(
            "item is {size} bytes, over DynamoDB's {MAX_ITEM_BYTES}"
        ));
    }
    Ok(item)
}

fn attributes(object: &Map<String, Value>, path: &str, depth: usize) -> Result<Item, String> {
    object
        .iter()
        .map(|(name, value)| {
            if name.is_empty() {
                return Err(format!("{path}: empty attribute name"));
            }
            let here = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            Ok((name.clone(), attribute(value, &here, depth)?))
        })
        .collect()
}

fn attribute(value: &Value, path: &str, depth: usize) -> Result<AttributeValue, String> {
    if depth > MAX_DEPTH {
        return Err(format!("{path}: nested deeper than {MAX_DEPTH} levels"));
    }
    let Value::Object(typed) = value else {
        return Err(format!(
            "{path}: expected a typed value like {{\"S\": \"...\"}}"
        ));
    };
    let mut entries = typed.iter();
    let (Some((kind, inner)), None) = (entries.next(), entries.next()) else {
        return Err(format!("{path}: a typed value has exactly one type key"));
    };
    let bad = |what: &str| format!("{path}: {kind} {what}");
    let string = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| bad("must be a string"))
    };
    let number = |v: &Value| {
        let n = string(v)?;
        let digits = n
            .trim_start_matches('-')
            .split(['e', 'E'])
            .next()
            .unwrap_or_default()
            .replace('.', "");
        if !is_json_number(&n) || digits.trim_start_matches('0').len() > 38 {
            return Err(bad(
                "must be a number of at most 38 significant digits, as a string",
            ));
        }
        Ok(n)
    };
    let binary = |v: &Value| {
        let text = string(v)?;
        STANDARD
            .decode(text)
            .map(Blob::new)
            .map_err(|_| bad("must be base64"))
    };
    let array = |v: &Value| v.as_array().cloned().ok_or_else(|| bad("must be an array"));
    let set = |v: &Value| {
        let values = array(v)?;
        if values.is_empty() {
            return Err(bad("must not be empty"));
        }
        let distinct: HashSet<String> = values.iter().map(Value::to_string).collect();
        if distinct.len() != values.len() {
            return Err(bad("must not repeat a value"));
        }
        Ok(values)
    };
    Ok(match kind.as_str() {
        "S" => AttributeValue::S(string(inner)?),
        "N" => AttributeValue::N(number(inner)?),
        "B" => AttributeValue::B(binary(inner)?),
        "BOOL" => AttributeValue::Bool(
            inner
                .as_bool()
                .ok_or_else(|| bad("must be true or false"))?,
        ),
        "NULL" if inner == &Value::Bool(true) => AttributeValue::Null(true),
        "NULL" => return Err(bad("must be true")),
        "L" => AttributeValue::L(
            array(inner)?
                .iter()
                .enumerate()
                .map(|(i, v)| attribute(v, &format!("{path}[{i}]"), depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        "M" => {
            let map = inner.as_object().ok_or_else(|| bad("must be an object"))?;
            AttributeValue::M(attributes(map, path, depth + 1)?)
        }
        "SS" => AttributeValue::Ss(set(inner)?.iter().map(string).collect::<Result<_, _>>()?),
        "NS" => AttributeValue::Ns(set(inner)?.iter().map(number).collect::<Result<_, _>>()?),
        "BS" => AttributeValue::Bs(set(inner)?.iter().map(binary).collect::<Result<_, _>>()?),
        other => return Err(format!("{path}: unknown type {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_lines_parse_into_items() {
        let line = r#"{"id":{"S":"a"},"n":{"N":"-1.5E3"},"b":{"B":"AAE="},"t":{"BOOL":true},"z":{"NULL":true},
            "l":{"L":[{"S":"x"},{"M":{"k":{"N":"1"}}}]},"ss":{"SS":["a","b"]},"ns":{"NS":["1","2"]},"bs":{"BS":["AA=="]}}"#
            .replace('\n', "");
        let item = parse_item(&line, "id").expect("valid");
        assert_eq!(item.len(), 9);
        assert_eq!(item["b"], AttributeValue::B(Blob::new(vec![0, 1])));
        let wrapped = format!(r#"{{"Item":{line}}}"#);
        assert_eq!(parse_item(&wrapped, "id"), Ok(item));
    }

    #[test]
    fn bad_lines_are_named_with_their_line_and_attribute() {
        let text = [
            r#"{"id":{"S":"ok"}}"#,
            r#"not json"#,
            r#"{"id":{"S":"x"},"n":{"N":"12a"}}"#,
            r#"{"n":{"N":"1"}}"#,
            r#"{"id":{"N":"1"}}"#,
            r#"{"id":{"S":"y"},"ss":{"SS":[]}}"#,
            r#"{"id":{"S":"y2"},"ss":{"SS":["a","a"]}}"#,
            r#"{"id":{"S":"z"},"m":{"M":{"deep":{"Q":"?"}}}}"#,
            r#"{"id":{"S":"ok"}}"#,
            "",
            r#"{"id":{"S":"w"},"n":{"N":"123456789012345678901234567890123456789"}}"#,
            r#"{"id":{"S":"v"},"b":{"B":"***"}}"#,
        ]
        .join("\n");
        let parsed = parse(&text, "id");
        assert_eq!(parsed.items.len(), 1);
        let lines: Vec<usize> = parsed.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8, 9, 11, 12]);
        let text: Vec<String> = parsed.errors.iter().map(ToString::to_string).collect();
        assert!(text[1].contains("line 3: n: N"), "{}", text[1]);
        assert!(text[6].contains("m.deep: unknown type"), "{}", text[6]);
        assert!(text[7].contains("already on line 1"), "{}", text[7]);
    }

    #[test]
    fn items_over_400_kb_and_too_deep_are_refused() {
        let big = format!(
            r#"{{"id":{{"S":"big"}},"s":{{"S":"{}"}}}}"#,
            "x".repeat(MAX_ITEM_BYTES)
        );
        assert!(
            parse_item(&big, "id")
                .unwrap_err()
                .contains("over DynamoDB's")
        );
        let mut nested = r#"{"S":"leaf"}"#.to_string();
        for _ in 0..40 {
            nested = format!(r#"{{"L":[{nested}]}}"#);
        }
        let deep = format!(r#"{{"id":{{"S":"d"}},"x":{nested}}}"#);
        assert!(parse_item(&deep, "id").unwrap_err().contains("deeper than"));
    }
}
