//! DynamoDB items to NDJSON lines, in one of two [`Format`]s; [`read`] reads typed JSON
//! back into items.
//!
//! `format=dynamodb` writes DynamoDB's typed JSON, `{"Item":{"id":{"S":"a"},...}}`: the
//! line format of DynamoDB's export to S3, lossless (sets stay sets, binary stays binary,
//! numbers are strings of their digits), what `seeder --from` reads back. The default,
//! `format=json`, is plain JSON, the shape most tools expect (documented in docs/http.md):
//!
//! | DynamoDB | JSON |
//! |---|---|
//! | S | string |
//! | N | number, every digit kept (written as DynamoDB sent it, never through `f64`) |
//! | B | string, standard base64 |
//! | BOOL | `true` / `false` |
//! | NULL | `null` |
//! | L | array |
//! | M | object |
//! | SS / NS / BS | array of strings / numbers / base64 strings |
//!
//! Object keys, and the members of sets (which DynamoDB returns in no particular order),
//! are written sorted, so the same item always encodes to the same bytes: output can be
//! diffed and hashed.

mod fast;
pub mod read;

use crate::format::item::{Item, Value};
use crate::format::number::is_json_number;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The line format of a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// Plain JSON, one object per item.
    #[default]
    Json,
    /// DynamoDB's typed JSON, `{"Item":{...}}` per item.
    Dynamodb,
}

impl Format {
    /// The names `format=` takes.
    pub const NAMES: &'static [&'static str] = &["json", "dynamodb"];

    /// The format called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "json" => Some(Self::Json),
            "dynamodb" => Some(Self::Dynamodb),
            _ => None,
        }
    }

    /// Appends `item` to `out` as one line in this format.
    pub fn write_line(self, out: &mut Vec<u8>, item: &Item) {
        match self {
            Self::Json => write_line(out, item),
            Self::Dynamodb => {
                out.extend_from_slice(b"{\"Item\":");
                write_map(out, item, write_typed);
                out.extend_from_slice(b"}\n");
            }
        }
    }
}

/// Appends `item` to `out` as one plain JSON object followed by `\n`.
pub fn write_line(out: &mut Vec<u8>, item: &Item) {
    write_map(out, item, write_value);
    out.push(b'\n');
}

/// Encodes one item as a line; a convenience over [`write_line`] for tests and tools.
pub fn to_line(item: &Item) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_line(&mut out, item);
    out
}

/// Appends `item` to `out` as DynamoDB's typed JSON object, `{"id":{"S":"a"},...}`, with no
/// line end: an image inside a larger record.
pub fn write_typed_map(out: &mut Vec<u8>, item: &Item) {
    write_map(out, item, write_typed);
}

/// Appends `text` to `out` as a JSON string.
pub fn write_json_str(out: &mut Vec<u8>, text: &str) {
    write_str(out, text);
}

/// One value in DynamoDB's typed JSON (`{"S":"a"}`, `{"N":"1.50"}`), as a JSON value:
/// how a cursor carries a filter's values.
pub fn typed_json(value: &Value) -> serde_json::Value {
    let mut out = Vec::new();
    write_typed(&mut out, value);
    // Our own writer makes valid JSON; `null` only if that ever failed.
    serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null)
}

/// A value from DynamoDB's typed JSON, checked as `seeder --from` checks items (types,
/// numbers as DynamoDB takes them, sets without repeats, base64, nesting depth): what
/// a request's `values` are read with.
pub fn typed_value(json: &serde_json::Value) -> Result<Value, String> {
    // The item reader checks whole items: wrap the value as an attribute of an item,
    // beside the key the loader used to require (kept, so sizes count as before).
    const KEY: &str = "@key";
    let mut object = serde_json::Map::new();
    object.insert(KEY.to_string(), serde_json::json!({"S": "k"}));
    object.insert("value".to_string(), json.clone());
    let line = serde_json::Value::Object(object).to_string();
    let mut item =
        read::item_of_line(&line).map_err(|why| why.trim_start_matches("value: ").to_string())?;
    item.remove("value")
        .ok_or_else(|| "a typed value like {\"S\": \"...\"}".to_string())
}

fn write_map(out: &mut Vec<u8>, map: &Item, write_value: fn(&mut Vec<u8>, &Value)) {
    // Sorted with their values: looking each key up again would hash it a second time.
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    members.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    for (i, (key, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_value(out, value);
    }
    out.push(b'}');
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::S(s) => write_str(out, s),
        Value::N(n) => write_number(out, n),
        Value::B(b) => write_base64(out, b),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Null(_) => out.extend_from_slice(b"null"),
        Value::L(list) => write_array(out, list, write_value),
        Value::M(map) => write_map(out, map, write_value),
        // Sets have no order in DynamoDB (it returns them in any order): members are
        // written sorted, by their text or bytes, so equal items encode equally.
        Value::Ss(set) => write_array(out, &sorted(set, String::as_str), |out, s| {
            write_str(out, s)
        }),
        Value::Ns(set) => write_array(out, &sorted(set, String::as_str), |out, n| {
            write_number(out, n)
        }),
        Value::Bs(set) => write_array(out, &sorted(set, Vec::as_slice), |out, b| {
            write_base64(out, b)
        }),
        // A type newer than the SDK: `null` keeps the line valid JSON; the key still shows.
        Value::Unsupported => out.extend_from_slice(b"null"),
    }
}

/// A value in DynamoDB's typed JSON: `{"<type>":<value>}`, numbers as strings.
fn write_typed(out: &mut Vec<u8>, value: &Value) {
    let tagged = |out: &mut Vec<u8>, tag: &[u8], body: &dyn Fn(&mut Vec<u8>)| {
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(tag);
        out.extend_from_slice(b"\":");
        body(out);
        out.push(b'}');
    };
    match value {
        Value::S(s) => tagged(out, b"S", &|out| write_str(out, s)),
        Value::N(n) => tagged(out, b"N", &|out| write_str(out, n)),
        Value::B(b) => tagged(out, b"B", &|out| write_base64(out, b)),
        Value::Bool(b) => tagged(out, b"BOOL", &|out| {
            out.extend_from_slice(if *b { b"true" } else { b"false" })
        }),
        Value::Null(_) => tagged(out, b"NULL", &|out| out.extend_from_slice(b"true")),
        Value::L(list) => tagged(out, b"L", &|out| write_array(out, list, write_typed)),
        Value::M(map) => tagged(out, b"M", &|out| write_map(out, map, write_typed)),
        Value::Ss(set) => tagged(out, b"SS", &|out| {
            write_array(out, &sorted(set, String::as_str), |out, s| {
                write_str(out, s)
            })
        }),
        Value::Ns(set) => tagged(out, b"NS", &|out| {
            write_array(out, &sorted(set, String::as_str), |out, n| {
                write_str(out, n)
            })
        }),
        Value::Bs(set) => tagged(out, b"BS", &|out| {
            write_array(out, &sorted(set, Vec::as_slice), |out, b| {
                write_base64(out, b)
            })
        }),
        // A type newer than the SDK cannot be written typed: a bare `null` makes the
        // line invalid for `seeder --from`, which then names it, rather than losing it.
        Value::Unsupported => out.extend_from_slice(b"null"),
    }
}

fn sorted<'a, T, K: Ord + ?Sized + 'a>(set: &'a [T], key: impl Fn(&'a T) -> &'a K) -> Vec<&'a T> {
    let mut members: Vec<&T> = set.iter().collect();
    members.sort_by(|a, b| key(a).cmp(key(b)));
    members
}

fn write_array<T>(out: &mut Vec<u8>, values: &[T], write: impl Fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, value);
    }
    out.push(b']');
}

fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    out.resize(
        start + base64::encoded_len(bytes.len(), true).unwrap_or(0),
        0,
    );
    let written = BASE64.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

/// DynamoDB numbers arrive as decimal strings of up to 38 significant digits. They are
/// written verbatim when they are valid JSON numbers (they always are from DynamoDB) and
/// as a JSON string otherwise, so a line is never invalid JSON.
fn write_number(out: &mut Vec<u8>, n: &str) {
    if is_json_number(n) {
        out.extend_from_slice(n.as_bytes());
    } else {
        write_str(out, n);
    }
}

/// Writes `s` as a JSON string: quotes, backslashes and control characters escaped,
/// everything else (all of Unicode) passed through as UTF-8.
fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut plain_from = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain_from..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        plain_from = i + 1;
    }
    out.extend_from_slice(&bytes[plain_from..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::item::testing::item;
    use serde_json::{Value as Json, json};

    fn encode(pairs: &[(&str, Value)]) -> String {
        String::from_utf8(to_line(&item(pairs))).expect("utf-8")
    }

    #[test]
    fn a_type_newer_than_this_build_is_written_as_null_in_both_formats() {
        let item = item(&[
            ("id", Value::S("a".into())),
            ("new", Value::Unsupported),
            ("in", Value::L(vec![Value::Unsupported])),
        ]);
        let line = |format: Format| {
            let mut out = Vec::new();
            format.write_line(&mut out, &item);
            String::from_utf8(out).expect("utf-8")
        };
        assert_eq!(
            line(Format::Json),
            "{\"id\":\"a\",\"in\":[null],\"new\":null}\n"
        );
        assert_eq!(
            line(Format::Dynamodb),
            "{\"Item\":{\"id\":{\"S\":\"a\"},\"in\":{\"L\":[null]},\"new\":null}}\n"
        );
    }

    #[test]
    fn every_type_maps_to_plain_json() {
        let line = encode(&[
            ("s", Value::S("hé \"x\"\n".into())),
            ("n", Value::N("-12.5E+3".into())),
            ("b", Value::B(vec![0, 1, 2, 255])),
            ("t", Value::Bool(true)),
            ("z", Value::Null(true)),
            (
                "l",
                Value::L(vec![Value::N("1".into()), Value::S("a".into())]),
            ),
            ("m", Value::M(item(&[("inner", Value::Bool(false))]))),
            ("ss", Value::Ss(vec!["a".into(), "b".into()])),
            ("ns", Value::Ns(vec!["1".into(), "2.5".into()])),
            ("bs", Value::Bs(vec![b"hi".to_vec()])),
        ]);
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        let parsed: Json = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(
            parsed,
            json!({
                "s": "hé \"x\"\n", "n": -12500.0, "b": "AAEC/w==", "t": true, "z": null,
                "l": [1, "a"], "m": {"inner": false}, "ss": ["a", "b"], "ns": [1, 2.5],
                "bs": ["aGk="]
            })
        );
    }

    #[test]
    fn numbers_keep_every_digit() {
        let big = "12345678901234567890123456789012345678";
        let line = encode(&[("n", Value::N(big.into()))]);
        assert_eq!(line, format!("{{\"n\":{big}}}\n"));
        let tiny = "-0.00000000000000000000000000000000000001";
        assert_eq!(
            encode(&[("n", Value::N(tiny.into()))]),
            format!("{{\"n\":{tiny}}}\n")
        );
    }

    #[test]
    fn a_number_that_is_not_json_becomes_a_string() {
        for bad in ["", "-", "01", "1.", ".5", "1e", "+1", "NaN", "1 "] {
            assert!(!is_json_number(bad), "{bad:?}");
            let line = encode(&[("n", Value::N(bad.into()))]);
            serde_json::from_str::<Json>(&line).expect("still valid JSON");
        }
        for good in ["0", "-0", "10", "1.25", "1e5", "1E+5", "-2.5e-3"] {
            assert!(is_json_number(good), "{good:?}");
        }
    }

    #[test]
    fn control_characters_and_unicode_round_trip() {
        let s: String = (0u8..0x20).map(char::from).collect::<String>() + "\\\"😀 ü \u{2028}";
        let line = encode(&[("s", Value::S(s.clone()))]);
        let parsed: Json = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(parsed["s"], Json::String(s));
    }

    #[test]
    fn set_members_are_sorted_so_equal_sets_encode_equally() {
        let a = encode(&[("ns", Value::Ns(vec!["2".into(), "-1".into(), "10".into()]))]);
        let b = encode(&[("ns", Value::Ns(vec!["10".into(), "2".into(), "-1".into()]))]);
        assert_eq!(a, b);
        assert_eq!(a, "{\"ns\":[-1,10,2]}\n");
        let a = encode(&[("bs", Value::Bs(vec![vec![2], vec![1]]))]);
        assert_eq!(a, "{\"bs\":[\"AQ==\",\"Ag==\"]}\n");
    }

    #[test]
    fn keys_are_sorted_so_equal_items_encode_equally() {
        let line = encode(&[
            ("b", Value::N("2".into())),
            ("a", Value::N("1".into())),
            (
                "c",
                Value::M(item(&[("y", Value::Null(true)), ("x", Value::Null(true))])),
            ),
        ]);
        assert_eq!(line, "{\"a\":1,\"b\":2,\"c\":{\"x\":null,\"y\":null}}\n");
    }

    #[test]
    fn typed_lines_read_back_into_the_same_items() {
        for index in 0..300 {
            let item = crate::generate::record::record(7, index);
            let mut line = Vec::new();
            Format::Dynamodb.write_line(&mut line, &item);
            assert!(
                line.starts_with(b"{\"Item\":{"),
                "{}",
                String::from_utf8_lossy(&line)
            );
            assert_eq!(line.last(), Some(&b'\n'));
            let text = std::str::from_utf8(&line).expect("UTF-8");
            let back = read::item_of_line(text.trim_end()).expect("valid");
            assert_eq!(to_line(&back), to_line(&item), "record {index}");
        }
    }

    #[test]
    fn typed_values_keep_their_types() {
        let item = Item::from([
            ("n".to_string(), Value::N("12.50".into())),
            ("ns".to_string(), Value::Ns(vec!["3".into(), "1".into()])),
            ("z".to_string(), Value::Null(true)),
        ]);
        let mut line = Vec::new();
        Format::Dynamodb.write_line(&mut line, &item);
        assert_eq!(
            String::from_utf8(line).expect("UTF-8"),
            "{\"Item\":{\"n\":{\"N\":\"12.50\"},\"ns\":{\"NS\":[\"1\",\"3\"]},\"z\":{\"NULL\":true}}}\n"
        );
    }
}
