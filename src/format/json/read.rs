//! DynamoDB's typed JSON to items, checked by DynamoDB's rules.
//!
//! One item per line, either bare (`{"id":{"S":"a"},"n":{"N":"1"}}`) or wrapped as in
//! DynamoDB's S3 export (`{"Item":{...}}`). Typed JSON is the only lossless text form:
//! plain JSON cannot tell a string from binary or a list from a set. Every line is checked
//! as DynamoDB would (types, numbers, sets, the 400 KB limit, nesting depth); the key is
//! the loader's to check ([`crate::load::lines`]).

use super::fast;
use crate::format::item::{Item, Value};
use crate::format::limits::{MAX_ITEM_BYTES, MAX_NESTING_DEPTH};
use crate::format::number::Number;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value as Json};
use std::collections::HashSet;
use std::fmt;

/// Parses one line into an item by DynamoDB's rules, its key not checked.
pub fn item_of_line(line: &str) -> Result<Item, String> {
    match fast::item(line) {
        Some(item) => Ok(item),
        None => exact_item(line),
    }
}

/// A JSON object of typed attributes (a stream record's `Keys`, `NewImage`) as an item,
/// by the same rules as a line.
pub fn item_of_object(object: Map<String, Json>) -> Result<Item, String> {
    let mut size = 0;
    attributes(object, &Path::Root, 0, &mut size)
}

/// The reference conversion, through `serde_json::Value`: it gives every line its exact
/// error, and takes the lines the fast path gives up on.
fn exact_item(line: &str) -> Result<Item, String> {
    let value: Json = serde_json::from_str(line).map_err(|err| format!("not JSON: {err}"))?;
    let Json::Object(mut object) = value else {
        return Err("not a JSON object".into());
    };
    // Only an object is the wrapper: `{"Item":5}` is an attribute `Item` with a bad value,
    // and says so, rather than an empty item.
    if object.len() == 1
        && matches!(object.get("Item"), Some(Json::Object(_)))
        && let Some(Json::Object(inner)) = object.remove("Item")
    {
        object = inner;
    }
    // The size is counted while converting, so a line far over the limit stops at the
    // attribute that passes it instead of building the whole item first.
    let mut size = 0;
    attributes(object, &Path::Root, 0, &mut size)
}

/// Where an attribute sits in its item (`a.b[2]`), written out only when an error names
/// it: formatting every attribute's path on the way cost more than parsing the line.
enum Path<'a> {
    Root,
    Name(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Name(Path::Root, name) => f.write_str(name),
            Path::Name(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Adds `bytes` to the item's running DynamoDB size, refusing it once over the limit.
fn count(size: &mut usize, bytes: usize, path: &Path) -> Result<(), String> {
    *size = size.saturating_add(bytes);
    if *size > MAX_ITEM_BYTES {
        return Err(format!(
            "item is over DynamoDB's {MAX_ITEM_BYTES} bytes (passed at {path})"
        ));
    }
    Ok(())
}

/// The parsed line is taken apart, not copied: its strings become the item's.
fn attributes(
    object: Map<String, Json>,
    path: &Path,
    depth: usize,
    size: &mut usize,
) -> Result<Item, String> {
    // Top-level names count their length; names in a map also one byte each.
    let per_name = usize::from(depth > 0);
    let mut item = Item::with_capacity(object.len());
    for (name, value) in object {
        if name.is_empty() {
            return Err(format!("{path}: empty attribute name"));
        }
        let here = Path::Name(path, &name);
        count(size, per_name + name.len(), &here)?;
        let value = attribute(value, &here, depth, size)?;
        item.insert(name, value);
    }
    Ok(item)
}

fn attribute(value: Json, path: &Path, depth: usize, size: &mut usize) -> Result<Value, String> {
    if depth > MAX_NESTING_DEPTH {
        return Err(format!(
            "{path}: nested deeper than {MAX_NESTING_DEPTH} levels"
        ));
    }
    let Json::Object(typed) = value else {
        return Err(format!(
            "{path}: expected a typed value like {{\"S\": \"...\"}}"
        ));
    };
    let mut entries = typed.into_iter();
    let (Some((kind, inner)), None) = (entries.next(), entries.next()) else {
        return Err(format!("{path}: a typed value has exactly one type key"));
    };
    let bad = |what: &str| format!("{path}: {kind} {what}");
    let string = |v: Json| match v {
        Json::String(s) => Ok(s),
        _ => Err(bad("must be a string")),
    };
    let number = |v: Json| {
        let n = string(v)?;
        Number::parse(&n).map_err(|why| bad(&why))?;
        Ok::<_, String>(n)
    };
    let binary = |v: Json| {
        let text = string(v)?;
        STANDARD.decode(text).map_err(|_| bad("must be base64"))
    };
    let array = |v: Json| match v {
        Json::Array(values) => Ok(values),
        _ => Err(bad("must be an array")),
    };
    let set = |v: Json| {
        let values = array(v)?;
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
            Value::S(s)
        }
        "N" => {
            let n = number(inner)?;
            count(size, number_size(&n), path)?;
            Value::N(n)
        }
        "B" => {
            let b = binary(inner)?;
            count(size, b.len(), path)?;
            Value::B(b)
        }
        "BOOL" => {
            let b = inner
                .as_bool()
                .ok_or_else(|| bad("must be true or false"))?;
            count(size, 1, path)?;
            Value::Bool(b)
        }
        "NULL" if inner == Json::Bool(true) => {
            count(size, 1, path)?;
            Value::Null(true)
        }
        "NULL" => return Err(bad("must be true")),
        "L" => {
            let values = array(inner)?;
            count(size, 3, path)?;
            let mut list = Vec::with_capacity(values.len());
            for (i, v) in values.into_iter().enumerate() {
                let here = Path::Index(path, i);
                count(size, 1, &here)?;
                list.push(attribute(v, &here, depth + 1, size)?);
            }
            Value::L(list)
        }
        "M" => {
            let Json::Object(map) = inner else {
                return Err(bad("must be an object"));
            };
            count(size, 3, path)?;
            Value::M(attributes(map, path, depth + 1, size)?)
        }
        "SS" => {
            let mut members = Vec::new();
            for v in set(inner)? {
                let s = string(v)?;
                count(size, s.len(), path)?;
                members.push(s);
            }
            distinct(members.iter(), bad)?;
            Value::Ss(members)
        }
        "NS" => {
            let mut members = Vec::new();
            for v in set(inner)? {
                let n = number(v)?;
                count(size, number_size(&n), path)?;
                members.push(n);
            }
            distinct(members.iter().filter_map(|n| Number::parse(n).ok()), bad)?;
            Value::Ns(members)
        }
        "BS" => {
            let mut members = Vec::new();
            for v in set(inner)? {
                let b = binary(v)?;
                count(size, b.len(), path)?;
                members.push(b);
            }
            distinct(members.iter(), bad)?;
            Value::Bs(members)
        }
        other => return Err(format!("{path}: unknown type {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The fast path's answer on `line`, which must be the exact path's when it gives one.
    fn both_paths(line: &str) -> Option<Item> {
        let fast = fast::item(line);
        if let Some(item) = &fast {
            assert_eq!(exact_item(line).as_ref(), Ok(item), "{line}");
        }
        fast
    }

    #[test]
    fn the_fast_path_takes_every_generated_record_bare_or_wrapped_as_the_exact_path_does() {
        let mut line = Vec::new();
        for index in 0..300 {
            let record = crate::generate::record::record(11, index);
            line.clear();
            crate::format::json::Format::Dynamodb.write_line(&mut line, &record);
            let wrapped = std::str::from_utf8(&line).expect("utf-8").trim_end();
            let bare = &wrapped[r#"{"Item":"#.len()..wrapped.len() - 1];
            for text in [wrapped, bare] {
                let item = both_paths(text).expect("the fast path reads it");
                assert_eq!(sets_sorted(item), sets_sorted(record.clone()), "{text}");
            }
        }
    }

    /// `item` with its sets' members in one order: a set has none, and the encoder sorts.
    fn sets_sorted(item: Item) -> Item {
        fn sorted(value: Value) -> Value {
            match value {
                Value::Ss(mut v) => {
                    v.sort();
                    Value::Ss(v)
                }
                Value::Ns(mut v) => {
                    v.sort();
                    Value::Ns(v)
                }
                Value::Bs(mut v) => {
                    v.sort();
                    Value::Bs(v)
                }
                Value::L(v) => Value::L(v.into_iter().map(sorted).collect()),
                Value::M(m) => Value::M(sets_sorted(m)),
                other => other,
            }
        }
        item.into_iter().map(|(k, v)| (k, sorted(v))).collect()
    }

    #[test]
    fn the_fast_path_gives_up_where_the_exact_path_reads_a_line_otherwise() {
        // Each is read by the exact path alone, its item or its error unchanged.
        let cases = [
            // A name or a type key given twice: JSON keeps the last.
            r#"{"id":{"S":"a"},"id":{"S":"b"}}"#,
            r#"{"id":{"S":"a","S":"b"}}"#,
            // `Item` beside other keys is an attribute, not the wrapper: the fast path
            // reads the first `Item` as the wrapper and gives up at the key after it.
            r#"{"Item":{"id":{"S":"a"}},"id":{"S":"b"}}"#,
            r#"{"Item":{"S":"x"},"id":{"S":"a"}}"#,
            r#"{"Item":{"id":{"S":"a"}},"Item":{"id":{"S":"b"}}}"#,
            // A type key written with an escape.
            r#"{"id":{"\u0053":"a"}}"#,
            // Bad values of every kind.
            r#"{"id":{"S":1}}"#,
            r#"{"n":{"N":"1e400"}}"#,
            r#"{"b":{"B":"not base64"}}"#,
            r#"{"z":{"NULL":false}}"#,
            r#"{"s":{"SS":[]}}"#,
            r#"{"s":{"NS":["1","1.0"]}}"#,
            r#"{"s":{"BS":["AA==","AA=="]}}"#,
            r#"{"":{"S":"a"}}"#,
            r#"{"x":{"Q":"a"}}"#,
            r#"{"Item":[]}"#,
            r#"[1]"#,
            r#"{"id":{"S":"a"}} x"#,
        ];
        for line in cases {
            assert_eq!(fast::item(line), None, "{line}");
        }
        let twice = exact_item(r#"{"id":{"S":"a"},"id":{"S":"b"}}"#).expect("the last one");
        assert_eq!(twice["id"], Value::S("b".into()));
        let sibling = exact_item(r#"{"Item":{"S":"x"},"id":{"S":"a"}}"#).expect("an attribute");
        assert_eq!(sibling["Item"], Value::S("x".into()));
        for line in [r#"{"Item":5}"#, r#"{"Item":[]}"#, r#"{"Item":null}"#] {
            assert_eq!(
                exact_item(line),
                Err(r#"Item: expected a typed value like {"S": "..."}"#.to_string()),
                "{line} is an attribute with a bad value, not an empty item"
            );
        }
    }

    #[test]
    fn the_fast_path_leaves_items_at_the_size_and_depth_limits_to_the_exact_path() {
        let fits = format!(r#"{{"id":{{"S":"{}"}}}}"#, "x".repeat(MAX_ITEM_BYTES - 2));
        assert!(both_paths(&fits).is_some());
        let over = format!(r#"{{"id":{{"S":"{}"}}}}"#, "x".repeat(MAX_ITEM_BYTES - 1));
        assert_eq!(fast::item(&over), None);
        assert!(exact_item(&over).is_err());
        let deep = |levels: usize| {
            let mut value = r#"{"S":"x"}"#.to_string();
            for _ in 0..levels {
                value = format!(r#"{{"L":[{value}]}}"#);
            }
            format!(r#"{{"id":{{"S":"a"}},"d":{value}}}"#)
        };
        assert!(both_paths(&deep(MAX_NESTING_DEPTH)).is_some());
        assert_eq!(fast::item(&deep(MAX_NESTING_DEPTH + 1)), None);
        assert!(exact_item(&deep(MAX_NESTING_DEPTH + 1)).is_err());
    }

    #[test]
    fn the_fast_path_counts_every_kind_of_attribute_as_the_exact_path_does_at_the_limit() {
        // Each shape padded to exactly DynamoDB's 400 KB by its size as the exact path
        // counts it (and as item_size does), then to one byte over.
        let shapes = [
            r#""l":{"L":[{"S":"ab"},{"N":"-12.5"},{"L":[]},{"BOOL":true},{"NULL":true}]}"#,
            r#""m":{"M":{"k":{"S":"v"},"deeper":{"M":{"x":{"N":"1"},"y":{"B":"AAE="}}}}}"#,
            r#""ss":{"SS":["a","bc"]},"ns":{"NS":["1","-22.75","3E5"]},"bs":{"BS":["AA==","AAE="]}"#,
            r#""lm":{"L":[{"M":{"a":{"L":[{"M":{}}]}}},{"SS":["z"]}]}"#,
            r#""n":{"N":"12345678901234567890123456789012345678"},"b":{"B":""}"#,
        ];
        for shape in shapes {
            let line = |pad: usize| {
                format!(
                    r#"{{"id":{{"S":"a"}},{shape},"pad":{{"S":"{}"}}}}"#,
                    "x".repeat(pad)
                )
            };
            let base = exact_item(&line(0)).expect("the shape is valid");
            let free = MAX_ITEM_BYTES - crate::format::item::item_size(&base);
            let full = line(free);
            assert!(both_paths(&full).is_some(), "exactly at the limit: {shape}");
            let over = line(free + 1);
            assert_eq!(fast::item(&over), None, "one byte over: {shape}");
            assert!(exact_item(&over).is_err(), "one byte over: {shape}");
        }
    }

    /// Typed values, mostly valid, from small alphabets so that sets repeat members and
    /// numbers are written two ways.
    fn typed() -> impl Strategy<Value = Json> {
        let text = prop::sample::select(vec!["", "a", "b", "AAE=", "AA==", "1", "1.0", "x y"]);
        let number = prop::sample::select(vec!["1", "1.0", "-0", "10E-1", "1e400", "x", "-7.5"]);
        let one = |kind: &str, value: Json| {
            Json::Object([(kind.to_string(), value)].into_iter().collect())
        };
        let strings = |s: &[&str]| Json::Array(s.iter().map(|s| Json::from(*s)).collect());
        let leaf = prop_oneof![
            text.clone().prop_map(move |s| one("S", s.into())),
            number.clone().prop_map(move |n| one("N", n.into())),
            text.clone().prop_map(move |b| one("B", b.into())),
            any::<bool>().prop_map(move |b| one("BOOL", b.into())),
            any::<bool>().prop_map(move |b| one("NULL", b.into())),
            prop::collection::vec(text.clone(), 0..3).prop_map(move |s| one("SS", strings(&s))),
            prop::collection::vec(number, 0..3).prop_map(move |s| one("NS", strings(&s))),
            prop::collection::vec(text, 0..3).prop_map(move |s| one("BS", strings(&s))),
            Just(Json::from(1)),
        ];
        leaf.prop_recursive(4, 32, 3, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3)
                    .prop_map(move |l| one("L", Json::Array(l))),
                typed_map(inner).prop_map(move |m| one("M", m)),
            ]
        })
    }

    fn typed_map(values: impl Strategy<Value = Json>) -> impl Strategy<Value = Json> {
        let name = prop::sample::select(vec!["id", "a", "Item", "S", ""]);
        prop::collection::vec((name, values), 0..4).prop_map(|pairs| {
            Json::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn what_the_fast_path_reads_the_exact_path_reads_the_same(
            item in typed_map(typed()),
            wrap in any::<bool>(),
        ) {
            let line = if wrap {
                serde_json::json!({ "Item": item }).to_string()
            } else {
                item.to_string()
            };
            both_paths(&line);
        }
    }

    #[test]
    fn the_running_size_matches_item_size() {
        let line = r#"{"id":{"S":"a"},"n":{"N":"-1.5E3"},"b":{"B":"AAE="},"t":{"BOOL":true},"z":{"NULL":true},"l":{"L":[{"S":"x"},{"M":{"k":{"N":"1"}}}]},"ss":{"SS":["a","b"]},"ns":{"NS":["1","22"]},"bs":{"BS":["AA=="]}}"#;
        let value: Json = serde_json::from_str(line).expect("json");
        let mut size = 0;
        let Json::Object(object) = value else {
            panic!("not an object")
        };
        let item = attributes(object, &Path::Root, 0, &mut size).expect("item");
        assert_eq!(size, crate::format::item::item_size(&item));
    }
}
