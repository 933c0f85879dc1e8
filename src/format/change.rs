//! A table's change as DynamoDB Streams records it, and what applying it does.
//!
//! A change line is AWS's own stream record shape (the one Lambda's DynamoDB event
//! source hands a function), one a line:
//! `{"eventName":"MODIFY","dynamodb":{"Keys":{...},"NewImage":{...},"OldImage":{...},
//! "SequenceNumber":"...","ApproximateCreationDateTime":...}}`, its attributes in typed
//! JSON. Applying one is idempotent: INSERT and MODIFY put the whole new image, REMOVE
//! deletes the key. So a key's changes applied in stream order leave it as the source
//! left it, however many of them were applied before.

use crate::format::item::Item;
use crate::format::json::read::item_of_object;
use serde_json::Value as Json;

/// What applying a change writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The item as it is now, whole.
    Put(Item),
    /// The key of an item that is gone.
    Delete(Item),
}

impl Change {
    /// The item whose key says which item this changes.
    pub fn keyed(&self) -> &Item {
        match self {
            Self::Put(item) | Self::Delete(item) => item,
        }
    }
}

/// One change line, read.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeLine {
    /// What to write.
    pub change: Change,
    /// The record's key attributes (`dynamodb.Keys`).
    pub keys: Item,
    /// `dynamodb.SequenceNumber`.
    pub sequence: String,
}

/// Reads a change line: `eventName` INSERT, MODIFY or REMOVE, and `dynamodb` with `Keys`
/// and (but for REMOVE) `NewImage`. A record without a new image (a stream of view type
/// `KEYS_ONLY` or `OLD_IMAGE`) cannot be applied, and says so.
pub fn parse_change_line(line: &str) -> Result<ChangeLine, String> {
    let value: Json = serde_json::from_str(line).map_err(|err| format!("not JSON: {err}"))?;
    let Json::Object(mut record) = value else {
        return Err("not a JSON object".into());
    };
    let event = match record.get("eventName") {
        Some(Json::String(name)) => name.clone(),
        _ => return Err("no eventName: not a stream record".into()),
    };
    let Some(Json::Object(mut dynamodb)) = record.remove("dynamodb") else {
        return Err("no dynamodb object: not a stream record".into());
    };
    let object =
        |dynamodb: &mut serde_json::Map<String, Json>, name: &str| match dynamodb.remove(name) {
            Some(Json::Object(object)) => item_of_object(object)
                .map(Some)
                .map_err(|why| format!("dynamodb.{name}: {why}")),
            Some(_) => Err(format!("dynamodb.{name} is not an object")),
            None => Ok(None),
        };
    let keys = object(&mut dynamodb, "Keys")?.ok_or("no dynamodb.Keys")?;
    let sequence = match dynamodb.get("SequenceNumber") {
        Some(Json::String(sequence)) => sequence.clone(),
        _ => return Err("no dynamodb.SequenceNumber".into()),
    };
    let change = match event.as_str() {
        "INSERT" | "MODIFY" => {
            Change::Put(object(&mut dynamodb, "NewImage")?.ok_or_else(|| {
                format!(
                    "{event} without dynamodb.NewImage: the stream's view type must be \
                 NEW_IMAGE or NEW_AND_OLD_IMAGES to apply it"
                )
            })?)
        }
        "REMOVE" => Change::Delete(keys.clone()),
        other => return Err(format!("eventName {other:?}: INSERT, MODIFY or REMOVE")),
    };
    Ok(ChangeLine {
        change,
        keys,
        sequence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::item::Value;

    #[test]
    fn records_become_puts_of_the_new_image_and_deletes_of_the_key() {
        let modify = r#"{"eventID":"1","eventName":"MODIFY","eventSource":"aws:dynamodb","dynamodb":{"ApproximateCreationDateTime":1765000000,"Keys":{"pk":{"S":"a"}},"NewImage":{"pk":{"S":"a"},"n":{"N":"2"}},"OldImage":{"pk":{"S":"a"},"n":{"N":"1"}},"SequenceNumber":"100","SizeBytes":20,"StreamViewType":"NEW_AND_OLD_IMAGES"}}"#;
        let read = parse_change_line(modify).expect("valid");
        let Change::Put(item) = &read.change else {
            panic!("a put: {read:?}")
        };
        assert_eq!(item["n"], Value::N("2".into()));
        assert_eq!(read.sequence, "100");
        let remove = r#"{"eventName":"REMOVE","dynamodb":{"Keys":{"pk":{"S":"a"}},"OldImage":{"pk":{"S":"a"}},"SequenceNumber":"101"}}"#;
        let read = parse_change_line(remove).expect("valid");
        assert_eq!(read.change, Change::Delete(read.keys.clone()));
    }

    #[test]
    fn what_cannot_be_applied_says_why() {
        for (line, says) in [
            (
                r#"{"eventName":"INSERT","dynamodb":{"Keys":{"pk":{"S":"a"}},"SequenceNumber":"1"}}"#,
                "NEW_AND_OLD_IMAGES",
            ),
            (
                r#"{"eventName":"TOUCH","dynamodb":{"Keys":{"pk":{"S":"a"}},"SequenceNumber":"1"}}"#,
                "TOUCH",
            ),
            (
                r#"{"dynamodb":{"Keys":{"pk":{"S":"a"}},"SequenceNumber":"1"}}"#,
                "eventName",
            ),
            (
                r#"{"eventName":"REMOVE","dynamodb":{"SequenceNumber":"1"}}"#,
                "Keys",
            ),
            (
                r#"{"eventName":"REMOVE","dynamodb":{"Keys":{"pk":{"S":"a"}}}}"#,
                "SequenceNumber",
            ),
            (
                r#"{"eventName":"REMOVE","dynamodb":{"Keys":{"pk":{"X":"a"}},"SequenceNumber":"1"}}"#,
                "dynamodb.Keys",
            ),
            ("[1]", "not a JSON object"),
            ("{", "not JSON"),
        ] {
            let err = parse_change_line(line).expect_err(line);
            assert!(err.contains(says), "{line}: {err}");
        }
    }
}
