//! Lines of DynamoDB's typed JSON to keyed items: each line read by
//! [`crate::format::json::read`], its key checked against the table's key schema, and its
//! line number kept, so a bad line is reported with its number before anything is written.

use super::batch::{Batch, Batcher};
use crate::format::item::Item;
use crate::format::json::read::item_of_line;
use crate::format::key::{ItemKey, KeySchema, KeyType};
use crate::format::trailer::Trailer;

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
    parse_keyed(text, &KeySchema::partition_only(key, KeyType::S))
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

fn numbered(batch: Batch) -> impl Iterator<Item = (usize, Item)> {
    let lines: Vec<usize> = batch.positions.iter().map(|p| p.line as usize).collect();
    lines.into_iter().zip(batch.items)
}

/// Parses one line into an item keyed by the string attribute `key`.
pub fn parse_item(line: &str, key: &str) -> Result<Item, String> {
    parse_line(line, &KeySchema::partition_only(key, KeyType::S)).map(|(item, _)| item)
}

/// Parses one line into an item and its key, checked against `schema`.
pub fn parse_line(line: &str, schema: &KeySchema) -> Result<(Item, ItemKey), String> {
    let item = item_of_line(line)?;
    let key = schema.key_of(&item)?;
    Ok((item, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::item::Value;
    use crate::format::limits::MAX_ITEM_BYTES;

    #[test]
    fn typed_lines_parse_into_items() {
        let line = r#"{"id":{"S":"a"},"n":{"N":"-1.5E3"},"b":{"B":"AAE="},"t":{"BOOL":true},"z":{"NULL":true},
            "l":{"L":[{"S":"x"},{"M":{"k":{"N":"1"}}}]},"ss":{"SS":["a","b"]},"ns":{"NS":["1","2"]},"bs":{"BS":["AA=="]}}"#
            .replace('\n', "");
        let item = parse_item(&line, "id").expect("valid");
        assert_eq!(item.len(), 9);
        assert_eq!(item["b"], Value::B(vec![0, 1]));
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
