//! What a read's shape may hold, wherever it comes from: the projection (`fields`) and
//! the index of a request, and a cursor's whole shape, held to the same bounds.

use super::invalid;
use crate::format::limits;
use crate::format::shape::ReadShape;
use crate::read::params::{Params, RequestError, quoted};

/// Projections of more attributes than this are refused (DynamoDB caps expressions at 4 KB).
const MAX_FIELDS: usize = 100;

/// `fields=a,b,c`: top-level attribute names, each passed to DynamoDB through
/// `ExpressionAttributeNames`, so reserved words and odd characters are safe.
pub(super) fn fields(params: &Params) -> Result<Vec<String>, RequestError> {
    let Some(raw) = params.text("fields") else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = raw.split(',').map(str::to_string).collect();
    check_fields(&names).map_err(invalid)?;
    Ok(names)
}

/// The bounds of a projection, wherever it comes from: a request or a cursor.
fn check_fields(names: &[String]) -> Result<(), String> {
    if names.len() > MAX_FIELDS {
        return Err(format!("fields may name at most {MAX_FIELDS} attributes"));
    }
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() || name.len() > limits::MAX_NAME_BYTES {
            return Err("fields must be comma-separated attribute names of 1 to 255 bytes".into());
        }
        if names[..i].contains(name) {
            return Err(format!("fields names {} twice", quoted(name)));
        }
    }
    Ok(())
}

/// DynamoDB index names: 3 to 255 of `[A-Za-z0-9_.-]`.
pub(super) fn index(params: &Params) -> Result<Option<String>, RequestError> {
    let Some(name) = params.text("index") else {
        return Ok(None);
    };
    check_index(name).map_err(invalid)?;
    Ok(Some(name.to_string()))
}

/// DynamoDB's rule for index names, wherever the name comes from: a request or a cursor.
fn check_index(name: &str) -> Result<(), String> {
    let valid = (limits::MIN_INDEX_NAME_BYTES..=limits::MAX_INDEX_NAME_BYTES).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !valid {
        return Err(format!(
            "index must be 3 to 255 characters of A-Z a-z 0-9 _ . -, got {}",
            quoted(name)
        ));
    }
    Ok(())
}

/// A cursor's shape checked as strictly as the same parameters of a fresh request, so a
/// cursor minted by someone holding the secret (or by an older streamer) cannot carry
/// what a request could not: a thousand field names, an index named `../x`, keys past
/// DynamoDB's sizes, an expression past its limits. Keys are typed by the table when the
/// read starts, as on a fresh request.
pub(super) fn check_cursor_shape(shape: &ReadShape) -> Result<(), String> {
    check_fields(&shape.fields)?;
    if let Some(index) = &shape.index {
        check_index(index)?;
    }
    if let Some(query) = &shape.query {
        let name_ok = |name: &str| !name.is_empty() && name.len() <= limits::MAX_NAME_BYTES;
        if !name_ok(&query.key) {
            return Err("the cursor's partition key name is not a DynamoDB attribute name".into());
        }
        for pk in &query.partitions {
            if pk.is_empty() || pk.len() > limits::MAX_PARTITION_KEY_BYTES {
                return Err("the cursor's pk must be 1 to 2048 bytes".into());
            }
        }
        if let Some(sort) = &query.sort {
            let values = std::iter::once(&sort.value).chain(sort.to.as_ref());
            if !name_ok(&sort.key)
                || values
                    .into_iter()
                    .any(|v| v.is_empty() || v.len() > limits::MAX_SORT_KEY_BYTES)
            {
                return Err("the cursor's sort-key condition is past DynamoDB's key sizes".into());
            }
        }
    }
    if let Some(filter) = &shape.filter {
        let placeholder_ok = |p: &str| p.len() >= 2 && p.len() <= limits::MAX_PLACEHOLDER_BYTES;
        if filter.expression.trim().is_empty()
            || filter.expression.len() > limits::MAX_EXPRESSION_BYTES
            || filter.names.len() > limits::MAX_PLACEHOLDERS
            || filter.values.len() > limits::MAX_PLACEHOLDERS
            || !filter
                .names
                .keys()
                .all(|p| placeholder_ok(p) && p.starts_with('#'))
            || !filter
                .values
                .keys()
                .all(|p| placeholder_ok(p) && p.starts_with(':'))
            || !filter
                .names
                .values()
                .all(|n| !n.is_empty() && n.len() <= limits::MAX_NAME_BYTES)
        {
            return Err("the cursor's filter is past the bounds of a filter parameter".into());
        }
    }
    Ok(())
}
