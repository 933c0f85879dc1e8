//! Lines of DynamoDB's typed JSON to items, checked by DynamoDB's rules.
//!
//! One item per line, either bare (`{"id":{"S":"a"},"n":{"N":"1"}}`) or wrapped as in
//! DynamoDB's S3 export (`{"Item":{...}}`). Typed JSON is the only lossless text form:
//! plain JSON cannot tell a string from binary or a list from a set. Every line is checked
//! as DynamoDB would (types, numbers, sets, the key, the 400 KB limit, nesting depth) so a
//! bad line is reported with its number before anything is written. `crate::seed::ndjson`
//! is this module under its old name.

use super::batch::Batcher;
use super::key::KeySchema;
use crate::encode::is_json_number;
use crate::scan::trailer::Trailer;
use crate::scan::{Item, KeyType};
use crate::seed::MAX_ITEM_BYTES;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use std::collections::HashSet;

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
    /// The streamer's trailer, when the input ends with one (it is not an item).
    pub trailer: Option<Trailer>,
}

/// Parses every non-blank line of `text` (a small file, whole in memory: tests and
/// tools; loads stream through [`crate::load`]). Items must carry the string key `key`;
/// a key repeated within one batch of 25 is an error, as DynamoDB refuses such a batch.
pub fn parse(text: &str, key: &str) -> Parsed {
    parse_keyed(text, &KeySchema::hash_only(key, KeyType::S))
}

/// As [`parse`], for any key schema.
pub fn parse_keyed(text: &str, schema: &KeySchema) -> Parsed {
    let mut parsed = Parsed::default();
    let mut batcher = Batcher::default();
    let last = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, _)| index)
        .last();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        if let Some(trailer) = Trailer::parse_line(line.as_bytes()) {
            if Some(index) == last {
                parsed.trailer = Some(trailer);
            } else {
                parsed.errors.push(LineError {
                    line: number,
                    message: "a trailer before the last line: streams were joined".into(),
                });
            }
            continue;
        }
        let result = parse_line(line, schema)
            .and_then(|(item, key)| batcher.push(number as u64, item, key, line.len()));
        match result {
            Ok(full) => parsed.items.extend(full.into_iter().flat_map(numbered)),
            Err(message) => parsed.errors.push(LineError {
                line: number,
                message,
            }),
        }
    }
    parsed
        .items
        .extend(batcher.finish().into_iter().flat_map(numbered));
    parsed
}

fn numbered(batch: super::batch::Batch) -> impl Iterator<Item = (usize, Item)> {
    let lines: Vec<usize> = batch.positions.iter().map(|p| p.line as usize).collect();
    lines.into_iter().zip(batch.items)
}

/// Parses one line into an item keyed by the string attribute `key`.
pub fn parse_item(line: &str, key: &str) -> Result<Item, String> {
    parse_line(line, &KeySchema::hash_only(key, KeyType::S)).map(|(item, _)| item)
}

/// Parses one line into an item and its key, checked against `schema`.
pub fn parse_line(line: &str, schema: &KeySchema) -> Result<(Item, super::key::ItemKey), String> {
    let item = item_of_line(line)?;
    let key = schema.key_of(&item)?;
    Ok((item, key))
}

/// Parses one line into an item by DynamoDB's rules, its key not checked.
pub fn item_of_line(line: &str) -> Result<Item, String> {
    let value: Value = serde_json::from_str(line).map_err(|err| format!("not JSON: {err}"))?;
    let Value::Object(mut object) = value else {
        return Err("not a JSON object".into());
    };
    if object.len() == 1
        && let Some(Value::Object(inner)) = object.remove("Item")
    {
        object = inner;
    }
    // The size is counted while converting, so a line far over the limit stops at the
    // attribute that passes it instead of building the whole item first.
    let mut size = 0;
    attributes(&object, "", 0, &mut size)
}

/// Adds `bytes` to the item's running DynamoDB size, refusing it once over the limit.
fn count(size: &mut usize, bytes: usize, path: &str) -> Result<(), String> {
    *size = size.saturating_add(bytes);
    if *size > MAX_ITEM_BYTES {
        return Err(format!(
            "item is over DynamoDB's {MAX_ITEM_BYTES} bytes (passed at {path})"
        ));
    }
    Ok(())
}

fn attributes(
    object: &Map<String, Value>,
    path: &str,
    depth: usize,
    size: &mut usize,
) -> Result<Item, String> {
    // Top-level names count their length; names in a map also one byte each.
    let per_name = usize::from(depth > 0);
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
            count(size, per_name + name.len(), &here)?;
            Ok((name.clone(), attribute(value, &here, depth, size)?))
        })
        .collect()
}

fn attribute(
    value: &Value,
    path: &str,
    depth: usize,
    size: &mut usize,
) -> Result<AttributeValue, String> {
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
        dynamo_number(&n).map_err(|why| bad(&why))?;
        Ok::<_, String>(n)
    };
    let binary = |v: &Value| {
        let text = string(v)?;
        STANDARD
            .decode(text)
            .map(Blob::new)
            .map_err(|_| bad("must be base64"))
    };
    // Borrowed, not copied: a copy per level kept a deep list alive once per level.
    let array = || {
        inner
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| bad("must be an array"))
    };
    let set = || {
        let values = array()?;
        if values.is_empty() {
            return Err(bad("must not be empty"));
        }
        Ok(values)
    };
    // Set members are distinct by value, as DynamoDB compares them: numbers by their
    // value ("1" and "1.0" are one number), binary by its bytes.
    fn distinct<T: Eq + std::hash::Hash>(
        members: impl IntoIterator<Item = T>,
        bad: impl Fn(&str) -> String,
    ) -> Result<(), String> {
        let mut seen = HashSet::new();
        for member in members {
            if !seen.insert(member) {
                return Err(bad("must not repeat a value"));
            }
        }
        Ok(())
    }
    let number_size = |n: &str| n.trim_start_matches('-').len().div_ceil(2) + 1;
    Ok(match kind.as_str() {
        "S" => {
            let s = string(inner)?;
            count(size, s.len(), path)?;
            AttributeValue::S(s)
        }
        "N" => {
            let n = number(inner)?;
            count(size, number_size(&n), path)?;
            AttributeValue::N(n)
        }
        "B" => {
            let b = binary(inner)?;
            count(size, b.as_ref().len(), path)?;
            AttributeValue::B(b)
        }
        "BOOL" => {
            let b = inner
                .as_bool()
                .ok_or_else(|| bad("must be true or false"))?;
            count(size, 1, path)?;
            AttributeValue::Bool(b)
        }
        "NULL" if inner == &Value::Bool(true) => {
            count(size, 1, path)?;
            AttributeValue::Null(true)
        }
        "NULL" => return Err(bad("must be true")),
        "L" => {
            let values = array()?;
            count(size, 3, path)?;
            let mut list = Vec::with_capacity(values.len());
            for (i, v) in values.iter().enumerate() {
                let here = format!("{path}[{i}]");
                count(size, 1, &here)?;
                list.push(attribute(v, &here, depth + 1, size)?);
            }
            AttributeValue::L(list)
        }
        "M" => {
            let map = inner.as_object().ok_or_else(|| bad("must be an object"))?;
            count(size, 3, path)?;
            AttributeValue::M(attributes(map, path, depth + 1, size)?)
        }
        "SS" => {
            let mut members = Vec::new();
            for v in set()? {
                let s = string(v)?;
                count(size, s.len(), path)?;
                members.push(s);
            }
            distinct(members.iter(), bad)?;
            AttributeValue::Ss(members)
        }
        "NS" => {
            let mut members = Vec::new();
            for v in set()? {
                let n = number(v)?;
                count(size, number_size(&n), path)?;
                members.push(n);
            }
            distinct(members.iter().filter_map(|n| dynamo_number(n).ok()), bad)?;
            AttributeValue::Ns(members)
        }
        "BS" => {
            let mut members = Vec::new();
            for v in set()? {
                let b = binary(v)?;
                count(size, b.as_ref().len(), path)?;
                members.push(b);
            }
            distinct(members.iter().map(Blob::as_ref), bad)?;
            AttributeValue::Bs(members)
        }
        other => return Err(format!("{path}: unknown type {other:?}")),
    })
}

/// A number as DynamoDB holds it: sign, significant digits, and the exponent of the
/// first digit. Equal values are equal here, however they were written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DynamoNumber {
    negative: bool,
    /// Without leading or trailing zeros; empty for zero.
    digits: String,
    /// `d.ddd x 10^exponent`.
    exponent: i64,
}

/// Checks `text` as DynamoDB does: JSON number syntax, at most 38 significant digits
/// (leading and trailing zeros do not count), and a magnitude from 1E-130 up to, not
/// including, 1E126. Measured against DynamoDB Local: `1` and 39 zeros is accepted,
/// `1E126` overflows, `1E-130` is accepted and `1E-131` underflows.
pub fn dynamo_number(text: &str) -> Result<DynamoNumber, String> {
    if !is_json_number(text) {
        return Err("must be a number, as a string".into());
    }
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e),
        None => (unsigned, "0"),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all: String = [whole, fraction].concat();
    let leading = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_matches('0');
    if digits.is_empty() {
        return Ok(DynamoNumber {
            negative: false,
            digits: String::new(),
            exponent: 0,
        });
    }
    if digits.len() > 38 {
        return Err(format!(
            "must have at most 38 significant digits, has {}",
            digits.len()
        ));
    }
    // An exponent of more digits than this is out of range whatever the mantissa.
    let given: i64 = match exponent.trim_start_matches('+').parse::<i64>() {
        Ok(e) if e.abs() < 1_000_000 => e,
        _ if exponent.starts_with('-') => return Err("is too small (Number underflow)".into()),
        _ => return Err("is too large (Number overflow)".into()),
    };
    // The first significant digit sits `whole.len() - leading - 1` places left of the
    // point (negative when it is in the fraction).
    let exponent = given + whole.len() as i64 - leading as i64 - 1;
    if exponent > 125 {
        return Err("is too large: at most 9.99...E+125 (Number overflow)".into());
    }
    if exponent < -130 {
        return Err("is too small: at least 1E-130 (Number underflow)".into());
    }
    Ok(DynamoNumber {
        negative,
        digits: digits.to_string(),
        exponent,
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

    #[test]
    fn a_deep_line_over_400_kb_is_refused_where_it_passes_the_limit() {
        // 31 nested lists, each holding 8 KB of text besides the next level: about
        // 250 KB of lists within lists, two such attributes over the limit.
        let pad = "x".repeat(8 * 1024);
        let mut nested = r#"{"S":"leaf"}"#.to_string();
        for _ in 0..31 {
            nested = format!(r#"{{"L":[{{"S":"{pad}"}},{nested}]}}"#);
        }
        let line = format!(r#"{{"id":{{"S":"d"}},"a":{nested},"b":{nested}}}"#);
        let err = parse_item(&line, "id").expect_err("over the limit");
        assert!(err.contains("over DynamoDB's"), "{err}");
        // Conversion stops where the size passes the limit, inside "b": a bad value after
        // that point (attribute "z", in name order) is never reached.
        let stop = format!(r#"{{"id":{{"S":"d"}},"a":{nested},"b":{nested},"z":{{"Q":"?"}}}}"#);
        let err = parse_item(&stop, "id").expect_err("over the limit");
        assert!(
            err.contains("over DynamoDB's") && err.contains("passed at b"),
            "{err}"
        );
        // One level fewer in "b" fits and parses whole, sizes counted as item_size does.
        let single = format!(r#"{{"id":{{"S":"d"}},"a":{nested}}}"#);
        let item = parse_item(&single, "id").expect("under the limit");
        assert_eq!(item.len(), 2);
    }

    #[test]
    fn the_running_size_matches_item_size() {
        let line = r#"{"id":{"S":"a"},"n":{"N":"-1.5E3"},"b":{"B":"AAE="},"t":{"BOOL":true},"z":{"NULL":true},"l":{"L":[{"S":"x"},{"M":{"k":{"N":"1"}}}]},"ss":{"SS":["a","b"]},"ns":{"NS":["1","22"]},"bs":{"BS":["AA=="]}}"#;
        let value: Value = serde_json::from_str(line).expect("json");
        let mut size = 0;
        let item = attributes(value.as_object().expect("object"), "", 0, &mut size).expect("item");
        assert_eq!(size, crate::seed::item_size(&item));
    }

    #[test]
    fn numbers_follow_dynamodbs_rules() {
        // Each case measured against DynamoDB Local with PutItem (FIELD-NOTES).
        let accepted = [
            format!("1{}", "0".repeat(39)),
            "9.9999999999999999999999999999999999999E+125".to_string(),
            "1E-130".to_string(),
            "-1E-130".to_string(),
            "0".to_string(),
            "-0.000".to_string(),
            "0.0000000000000000000000000000000000000000001".to_string(),
            "12345678901234567890123456789012345678".to_string(),
            "1234567890123456789012345678901234567800000".to_string(),
        ];
        for n in &accepted {
            assert!(dynamo_number(n).is_ok(), "{n}: {:?}", dynamo_number(n));
        }
        let rejected = [
            ("1E126", "overflow"),
            ("10E125", "overflow"),
            ("1E-131", "underflow"),
            ("0.1E-130", "underflow"),
            ("1E999999999999", "overflow"),
            ("1E-999999999999", "underflow"),
            ("123456789012345678901234567890123456789", "38 significant"),
            ("1.", "a number"),
            ("+1", "a number"),
            ("0x10", "a number"),
        ];
        for (n, why) in rejected {
            let err = dynamo_number(n).expect_err(n);
            assert!(err.contains(why), "{n}: {err}");
        }
        assert_eq!(dynamo_number("1"), dynamo_number("1.0"));
        assert_eq!(dynamo_number("100"), dynamo_number("1E2"));
        assert_eq!(dynamo_number("0"), dynamo_number("-0.0"));
        assert_ne!(dynamo_number("1"), dynamo_number("-1"));
    }

    #[test]
    fn sets_repeat_no_value_as_dynamodb_compares_them() {
        let line = |set: &str| format!(r#"{{"id":{{"S":"a"}},"s":{set}}}"#);
        for bad in [
            r#"{"NS":["1","1.0"]}"#,
            r#"{"NS":["100","1E2"]}"#,
            r#"{"SS":["x","x"]}"#,
            r#"{"BS":["AAE=","AAE="]}"#,
        ] {
            let err = parse_item(&line(bad), "id").expect_err(bad);
            assert!(err.contains("must not repeat"), "{bad}: {err}");
        }
        for good in [r#"{"NS":["1","1.5"]}"#, r#"{"SS":["x","X"]}"#] {
            assert!(parse_item(&line(good), "id").is_ok(), "{good}");
        }
    }

    #[test]
    fn bad_numbers_are_reported_by_line_before_anything_is_written() {
        let text = [
            r#"{"id":{"S":"a"},"n":{"N":"1000000000000000000000000000000000000000"}}"#,
            r#"{"id":{"S":"b"},"n":{"N":"1E126"}}"#,
            r#"{"id":{"S":"c"},"n":{"N":"1E-130"}}"#,
            r#"{"id":{"S":"d"},"n":{"N":"1E-131"}}"#,
            r#"{"id":{"S":"e"},"ns":{"NS":["1","1.0"]}}"#,
        ]
        .join("\n");
        let parsed = parse(&text, "id");
        let bad: Vec<usize> = parsed.errors.iter().map(|e| e.line).collect();
        assert_eq!(bad, [2, 4, 5]);
        assert_eq!(parsed.items.len(), 2);
    }
}
