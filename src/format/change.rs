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
use crate::format::json::{write_json_str, write_typed_map};
use serde_json::Value as Json;

/// One record of a table's stream, as `GetRecords` returned it: what the streamer's
/// `changes=true` writes a line of ([`StreamRecord::write_line`]), in the shape Lambda's
/// DynamoDB event source gives a function, so tools that read those read these.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    /// `eventID`: unique per record.
    pub event_id: String,
    /// `eventName`: INSERT, MODIFY or REMOVE.
    pub event_name: String,
    /// `eventVersion`.
    pub event_version: String,
    /// `awsRegion`.
    pub region: String,
    /// `dynamodb.ApproximateCreationDateTime`, in milliseconds since the epoch.
    pub created_ms: Option<u64>,
    /// `dynamodb.Keys`.
    pub keys: Item,
    /// `dynamodb.NewImage`, as the stream's view type gives it.
    pub new_image: Option<Item>,
    /// `dynamodb.OldImage`, as the stream's view type gives it.
    pub old_image: Option<Item>,
    /// `dynamodb.SequenceNumber`: the record's place in its shard.
    pub sequence: String,
    /// `dynamodb.SizeBytes`.
    pub size_bytes: Option<i64>,
    /// `dynamodb.StreamViewType`.
    pub view_type: String,
    /// `userIdentity.principalId` of a record made by DynamoDB itself (a TTL delete).
    pub by_service: Option<String>,
}

impl StreamRecord {
    /// Appends the record to `out` as one line; `stream` is its `eventSourceARN`.
    pub fn write_line(&self, out: &mut Vec<u8>, stream: &str) {
        let field = |out: &mut Vec<u8>, name: &str, value: &str| {
            write_json_str(out, name);
            out.push(b':');
            write_json_str(out, value);
            out.push(b',');
        };
        out.push(b'{');
        field(out, "eventID", &self.event_id);
        field(out, "eventName", &self.event_name);
        field(out, "eventVersion", &self.event_version);
        field(out, "eventSource", "aws:dynamodb");
        field(out, "awsRegion", &self.region);
        field(out, "eventSourceARN", stream);
        if let Some(principal) = &self.by_service {
            out.extend_from_slice(br#""userIdentity":{"type":"Service","principalId":"#);
            write_json_str(out, principal);
            out.extend_from_slice(b"},");
        }
        out.extend_from_slice(br#""dynamodb":{"#);
        if let Some(ms) = self.created_ms {
            let (seconds, fraction) = (ms / 1000, ms % 1000);
            out.extend_from_slice(br#""ApproximateCreationDateTime":"#);
            out.extend_from_slice(seconds.to_string().as_bytes());
            if fraction > 0 {
                let digits = format!(".{fraction:03}");
                out.extend_from_slice(digits.trim_end_matches('0').as_bytes());
            }
            out.push(b',');
        }
        out.extend_from_slice(br#""Keys":"#);
        write_typed_map(out, &self.keys);
        for (name, image) in [("NewImage", &self.new_image), ("OldImage", &self.old_image)] {
            if let Some(image) = image {
                out.push(b',');
                write_json_str(out, name);
                out.push(b':');
                write_typed_map(out, image);
            }
        }
        out.push(b',');
        field(out, "SequenceNumber", &self.sequence);
        if let Some(size) = self.size_bytes {
            out.extend_from_slice(format!(r#""SizeBytes":{size},"#).as_bytes());
        }
        write_json_str(out, "StreamViewType");
        out.push(b':');
        write_json_str(out, &self.view_type);
        out.extend_from_slice(b"}}\n");
    }
}

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
    fn a_record_is_written_as_lambda_gives_it_and_applied_back() {
        let key = Item::from([("pk".to_string(), Value::S("a\"b".into()))]);
        let mut image = key.clone();
        image.insert("n".into(), Value::N("2".into()));
        let record = StreamRecord {
            event_id: "e1".into(),
            event_name: "MODIFY".into(),
            event_version: "1.1".into(),
            region: "us-east-1".into(),
            created_ms: Some(1_765_000_000_500),
            keys: key.clone(),
            new_image: Some(image.clone()),
            old_image: Some(key.clone()),
            sequence: "100".into(),
            size_bytes: Some(20),
            view_type: "NEW_AND_OLD_IMAGES".into(),
            by_service: Some("dynamodb.amazonaws.com".into()),
        };
        let mut out = Vec::new();
        record.write_line(&mut out, "arn:aws:dynamodb:us-east-1:1:table/t/stream/x");
        assert_eq!(out.last(), Some(&b'\n'));
        let line = std::str::from_utf8(&out).expect("UTF-8");
        let json: Json = serde_json::from_str(line).expect("one JSON object");
        assert_eq!(
            json["dynamodb"]["ApproximateCreationDateTime"],
            serde_json::json!(1_765_000_000.5)
        );
        assert_eq!(json["dynamodb"]["OldImage"]["pk"]["S"], "a\"b");
        assert_eq!(
            json["userIdentity"]["principalId"],
            "dynamodb.amazonaws.com"
        );
        assert_eq!(
            json["eventSourceARN"],
            "arn:aws:dynamodb:us-east-1:1:table/t/stream/x"
        );
        let read = parse_change_line(line.trim_end()).expect("applies");
        assert_eq!(read.change, Change::Put(image));
        assert_eq!((read.keys, read.sequence), (key, "100".to_string()));
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
