//! The Query of a request: its sort-key condition as given, then its `pk` values and
//! that condition typed by the table's (or index's) key schema once it is read; and a
//! resumed Query's keys held to that schema.

use super::{SORT_CONDITIONS, SortRequest, StreamRequest, invalid};
use crate::format::key::{KeyAttribute, KeySchema, KeyType, KeyValue};
use crate::format::limits;
use crate::format::number::{Number, is_json_number};
use crate::format::shape::{QueryShape, SortCondition, SortOp};
use crate::read::params::{ErrorCode, Params, RequestError, quoted};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The longest `pk` text: the base64 of DynamoDB's largest partition key (2048 bytes).
pub const MAX_PK_TEXT_BYTES: usize = limits::MAX_PARTITION_KEY_BYTES.div_ceil(3) * 4;

/// The one sort-key condition a request may give: `sk_eq`, `sk_lt`, `sk_le`, `sk_gt`,
/// `sk_ge`, `sk_prefix`, or `sk_from` with `sk_to`; each only with `pk`.
pub(super) fn sort_request(
    params: &Params,
    query: bool,
) -> Result<Option<SortRequest>, RequestError> {
    let given: Vec<&str> = SORT_CONDITIONS
        .iter()
        .map(|(name, _)| *name)
        .chain(["sk_to"])
        .filter(|name| params.has(name))
        .collect();
    let Some(first) = given.first() else {
        return Ok(None);
    };
    if !query {
        return Err(invalid(format!(
            "{first} needs pk: a sort-key condition applies to a Query of a partition"
        )));
    }
    match (params.has("sk_from"), params.has("sk_to")) {
        (true, false) => return Err(invalid("sk_from needs sk_to (BETWEEN, inclusive)".into())),
        (false, true) => return Err(invalid("sk_to needs sk_from (BETWEEN, inclusive)".into())),
        _ => {}
    }
    let conditions: Vec<&str> = given.iter().copied().filter(|n| *n != "sk_to").collect();
    if conditions.len() > 1 {
        return Err(invalid(format!(
            "only one sort-key condition at a time, got {}",
            conditions.join(" and ")
        )));
    }
    let (parameter, op) = SORT_CONDITIONS
        .iter()
        .find(|(name, _)| *name == conditions[0])
        .copied()
        .ok_or_else(|| invalid("unknown sort-key condition".into()))?;
    let text = |name: &str| -> Result<String, RequestError> {
        let value = params.text(name).unwrap_or_default();
        if value.is_empty() || value.len() > 4 * limits::MAX_SORT_KEY_BYTES {
            return Err(invalid(format!("{name} must be 1 to 1024 bytes")));
        }
        Ok(value.to_string())
    };
    Ok(Some(SortRequest {
        parameter,
        op,
        value: text(parameter)?,
        to: (op == SortOp::Between).then(|| text("sk_to")).transpose()?,
    }))
}

/// A resumed Query's key names and types against the table's (or index's) key schema.
pub fn resumed_query_fits(query: &QueryShape, schema: &KeySchema) -> Result<(), String> {
    let typed = |value: &KeyValue, key_type: KeyType| {
        matches!(
            (value, key_type),
            (KeyValue::S(_), KeyType::S)
                | (KeyValue::N(_), KeyType::N)
                | (KeyValue::B(_), KeyType::B)
        )
    };
    if query.key != schema.partition.name
        || !query
            .partitions
            .iter()
            .all(|pk| typed(pk, schema.partition.key_type))
    {
        return Err("the cursor's partition key does not fit the table's key schema".into());
    }
    if let Some(sort) = &query.sort {
        let fits = schema.sort.as_ref().is_some_and(|key| {
            sort.key == key.name
                && std::iter::once(&sort.value)
                    .chain(sort.to.as_ref())
                    .all(|v| typed(v, key.key_type))
        });
        if !fits {
            return Err(
                "the cursor's sort-key condition does not fit the table's key schema".into(),
            );
        }
    }
    Ok(())
}

/// Reads the text of `parameter` as the key's type: S as is, N as a number DynamoDB
/// takes, B as base64; at most `max` bytes once typed (DynamoDB's key size limits).
fn key_value(
    parameter: &str,
    text: &str,
    key_type: KeyType,
    max: usize,
) -> Result<KeyValue, RequestError> {
    let bad = |what: &str| {
        RequestError::new(
            ErrorCode::InvalidParameter,
            format!(
                "{parameter} must be {what} for this key, got {}",
                quoted(text)
            ),
        )
    };
    let value = match key_type {
        KeyType::S => KeyValue::S(text.to_string()),
        KeyType::N if is_json_number(text) && Number::parse(text).is_ok() => {
            KeyValue::N(text.to_string())
        }
        KeyType::N => return Err(bad("a number")),
        KeyType::B => STANDARD
            .decode(text)
            .map(KeyValue::B)
            .map_err(|_| bad("base64"))?,
    };
    if value.is_empty() || value.len() > max {
        return Err(bad(&format!("1 to {max} bytes")));
    }
    Ok(value)
}

/// Reads the `pk` text as the key's type: S as is, N as a number, B as base64.
fn partition_value(text: &str, key_type: KeyType) -> Result<KeyValue, RequestError> {
    key_value("pk", text, key_type, limits::MAX_PARTITION_KEY_BYTES)
}

/// The sort-key condition typed by the sort key of the table or index.
fn sort_condition(
    request: &SortRequest,
    sort_key: Option<&KeyAttribute>,
) -> Result<SortCondition, RequestError> {
    let parameter = request.parameter;
    let Some(key) = sort_key else {
        return Err(invalid(format!(
            "{parameter} needs a sort key, and this table (or index) has none"
        )));
    };
    if request.op == SortOp::Prefix && key.key_type == KeyType::N {
        return Err(invalid(
            "sk_prefix needs a string or binary sort key; this one is a number".into(),
        ));
    }
    let max = limits::MAX_SORT_KEY_BYTES;
    let value = key_value(parameter, &request.value, key.key_type, max)?;
    let to = match &request.to {
        Some(to) => Some(key_value("sk_to", to, key.key_type, max)?),
        None => None,
    };
    if let Some(to) = &to
        && compare_keys(&value, to) == Some(std::cmp::Ordering::Greater)
    {
        return Err(invalid(format!(
            "sk_from ({}) must not be greater than sk_to ({})",
            quoted(&request.value),
            quoted(request.to.as_deref().unwrap_or_default())
        )));
    }
    Ok(SortCondition {
        key: key.name.clone(),
        op: request.op,
        value,
        to,
    })
}

/// Orders two key values as DynamoDB does: strings and binary by their bytes, numbers
/// by value. `None` for values of different types, or a number that does not parse.
fn compare_keys(a: &KeyValue, b: &KeyValue) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (KeyValue::S(a), KeyValue::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (KeyValue::B(a), KeyValue::B(b)) => Some(a.cmp(b)),
        (KeyValue::N(a), KeyValue::N(b)) => {
            Some(Number::parse(a).ok()?.cmp(&Number::parse(b).ok()?))
        }
        _ => None,
    }
}

/// The Query of a request's `pk` values, sort-key condition and order, typed by `schema`.
pub fn query_shape(
    request: &StreamRequest,
    schema: &KeySchema,
) -> Result<QueryShape, RequestError> {
    let partitions = request
        .pks
        .iter()
        .map(|text| partition_value(text, schema.partition.key_type))
        .collect::<Result<Vec<_>, _>>()?;
    // Compared by value, as DynamoDB compares keys: `pk=1&pk=1.0` on an N key names one
    // partition, which would otherwise be read (and sent) twice.
    for (i, pk) in partitions.iter().enumerate() {
        let same = |other: &KeyValue| match (pk, other) {
            (KeyValue::N(a), KeyValue::N(b)) => Number::parse(a)
                .ok()
                .is_some_and(|a| Number::parse(b).ok() == Some(a)),
            _ => pk == other,
        };
        if partitions[..i].iter().any(same) {
            return Err(invalid(format!(
                "pk names the partition {} twice (equal numbers are one key)",
                quoted(&request.pks[i])
            )));
        }
    }
    let sort = request
        .sort
        .as_ref()
        .map(|sort| sort_condition(sort, schema.sort.as_ref()))
        .transpose()?;
    Ok(QueryShape {
        key: schema.partition.name.clone(),
        partitions,
        concurrency: request.segments,
        sort,
        descending: request.descending,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::get;
    use super::*;

    #[test]
    fn partition_values_follow_the_key_type() {
        assert_eq!(
            partition_value("x", KeyType::S),
            Ok(KeyValue::S("x".into()))
        );
        assert_eq!(
            partition_value("-1.5", KeyType::N),
            Ok(KeyValue::N("-1.5".into()))
        );
        assert!(partition_value("1e", KeyType::N).is_err());
        assert_eq!(
            partition_value("AAE=", KeyType::B),
            Ok(KeyValue::B(vec![0, 1]))
        );
        assert!(partition_value("***", KeyType::B).is_err());
    }

    #[test]
    fn a_resumed_query_is_held_to_the_key_schema() {
        let schema = KeySchema {
            partition: KeyAttribute {
                name: "pk".into(),
                key_type: KeyType::N,
            },
            sort: None,
        };
        let query = |key: &str, pk: KeyValue| QueryShape {
            key: key.into(),
            partitions: vec![pk],
            concurrency: 1,
            sort: None,
            descending: false,
        };
        assert!(resumed_query_fits(&query("pk", KeyValue::N("1".into())), &schema).is_ok());
        for (what, forged) in [
            (
                "an S value for an N key",
                query("pk", KeyValue::S("1".into())),
            ),
            (
                "another key attribute",
                query("other", KeyValue::N("1".into())),
            ),
        ] {
            assert!(resumed_query_fits(&forged, &schema).is_err(), "{what}");
        }
    }

    #[test]
    fn sort_conditions_are_typed_by_the_key_schema() {
        let key = |name: &str, key_type| KeyAttribute {
            name: name.into(),
            key_type,
        };
        let schema = |sort: Option<KeyAttribute>| KeySchema {
            partition: key("tenant", KeyType::S),
            sort,
        };
        let request = |query: &str| get(query).expect("valid");
        let n = schema(Some(key("n", KeyType::N)));
        let q = query_shape(&request("pk=a&sk_from=-5&sk_to=1e1"), &n).expect("typed");
        let sort = q.sort.expect("sort");
        assert_eq!(
            (sort.value, sort.to),
            (KeyValue::N("-5".into()), Some(KeyValue::N("1e1".into())))
        );
        for (query, schema, expected) in [
            ("pk=a&sk_eq=x", &n, "sk_eq must be a number"),
            (
                "pk=a&sk_prefix=1",
                &n,
                "sk_prefix needs a string or binary sort key",
            ),
            (
                "pk=a&sk_from=10&sk_to=9.5",
                &n,
                "sk_from (\"10\") must not be greater than sk_to",
            ),
            ("pk=a&sk_from=1E-2&sk_to=-3", &n, "must not be greater"),
            ("pk=a&sk_lt=1", &schema(None), "sk_lt needs a sort key"),
            (
                "pk=a&sk_from=b&sk_to=a",
                &schema(Some(key("s", KeyType::S))),
                "must not be greater",
            ),
            (
                "pk=a&sk_eq=%2A%2A",
                &schema(Some(key("b", KeyType::B))),
                "sk_eq must be base64",
            ),
        ] {
            let err = query_shape(&request(query), schema).expect_err(query);
            assert!(err.message.contains(expected), "{query}: {}", err.message);
        }
        let big = format!("pk=a&sk_eq={}", "s".repeat(1025));
        let err = query_shape(&request(&big), &schema(Some(key("s", KeyType::S)))).unwrap_err();
        assert!(err.message.contains("1 to 1024 bytes"), "{}", err.message);
        // N partition keys are typed too.
        let numeric = KeySchema {
            partition: key("id", KeyType::N),
            sort: None,
        };
        assert!(query_shape(&request("pk=12&pk=x"), &numeric).is_err());
        // Equal numbers are one partition, which must not be read twice.
        for twice in [
            "pk=1&pk=1.0",
            "pk=10&pk=1e1",
            "pk=0&pk=-0",
            "pk=0.10&pk=0.1",
        ] {
            let err = query_shape(&request(twice), &numeric).expect_err(twice);
            assert!(err.message.contains("twice"), "{twice}: {}", err.message);
        }
        assert!(query_shape(&request("pk=1&pk=10"), &numeric).is_ok());
    }

    /// A B key is given as base64, a third longer than its bytes: the 2048-byte limit is
    /// DynamoDB's on the key, so it is checked on the decoded bytes.
    #[test]
    fn a_binary_pk_is_held_to_2048_bytes_once_decoded() {
        let schema = |key_type| KeySchema {
            partition: KeyAttribute {
                name: "k".into(),
                key_type,
            },
            sort: None,
        };
        let b64 = |len: usize| -> String {
            form_urlencoded::byte_serialize(STANDARD.encode(vec![7u8; len]).as_bytes()).collect()
        };
        let largest = get(&format!("pk={}", b64(2048))).expect("2732 characters of base64");
        let query = query_shape(&largest, &schema(KeyType::B)).expect("2048 bytes fit");
        assert_eq!(query.partitions[0].len(), 2048);
        let over = get(&format!("pk={}", b64(2049))).expect("the text is within bounds");
        let err = query_shape(&over, &schema(KeyType::B)).expect_err("2049 bytes");
        assert!(err.message.contains("1 to 2048 bytes"), "{}", err.message);
        // An S key's text is its bytes: 2049 of them pass the text bound, not the key's.
        let text = get(&format!("pk={}", "s".repeat(2049))).expect("text bound");
        let err = query_shape(&text, &schema(KeyType::S)).expect_err("2049 bytes");
        assert!(err.message.contains("1 to 2048 bytes"), "{}", err.message);
    }

    #[test]
    fn keys_compare_as_dynamodb_orders_them() {
        // Numbers by value (format::number holds the full table), strings and binary by
        // their bytes, and no order across types.
        use std::cmp::Ordering::*;
        let (n, s, b) = (
            |v: &str| KeyValue::N(v.into()),
            |v: &str| KeyValue::S(v.into()),
            |v: &[u8]| KeyValue::B(v.to_vec()),
        );
        assert_eq!(compare_keys(&n("10"), &n("9.5")), Some(Greater));
        assert_eq!(compare_keys(&n("1e2"), &n("100")), Some(Equal));
        assert_eq!(compare_keys(&s("10"), &s("9.5")), Some(Less));
        assert_eq!(compare_keys(&b(&[0xff]), &b(&[0x00, 0xff])), Some(Greater));
        assert_eq!(compare_keys(&n("1"), &s("1")), None);
    }
}
