//! A request's filter: `filter`, `names` and `values`, DynamoDB's own filter expression
//! and its placeholders, checked before anything is read.

use super::invalid;
use crate::format::limits;
use crate::format::shape::Filter;
use crate::read::params::{Params, RequestError, quoted};

/// `filter`, `names` and `values`: DynamoDB's own filter expression with its
/// placeholders, checked before anything is read (sizes, placeholders defined and used,
/// typed values, no placeholder of ours).
pub(super) fn filter(params: &Params) -> Result<Option<Filter>, RequestError> {
    let Some(expression) = params.text("filter") else {
        if let Some(name) = ["names", "values"].iter().find(|n| params.has(n)) {
            return Err(invalid(format!(
                "{name} needs filter: it defines placeholders of a filter expression"
            )));
        }
        return Ok(None);
    };
    if expression.trim().is_empty() || expression.len() > limits::MAX_EXPRESSION_BYTES {
        return Err(invalid(format!(
            "filter must be 1 to {} bytes (DynamoDB's limit for an expression)",
            limits::MAX_EXPRESSION_BYTES
        )));
    }
    let object = |name: &str| -> Result<serde_json::Map<String, serde_json::Value>, RequestError> {
        let Some(text) = params.text(name) else {
            return Ok(serde_json::Map::new());
        };
        if text.len() > limits::MAX_VALUES_BYTES {
            return Err(invalid(format!(
                "{name} may hold at most {} bytes of JSON",
                limits::MAX_VALUES_BYTES
            )));
        }
        match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(map)) if map.len() <= limits::MAX_PLACEHOLDERS => Ok(map),
            Ok(serde_json::Value::Object(_)) => Err(invalid(format!(
                "{name} may define at most {} placeholders",
                limits::MAX_PLACEHOLDERS
            ))),
            _ => Err(invalid(format!("{name} must be a JSON object"))),
        }
    };
    let mut names = std::collections::BTreeMap::new();
    for (placeholder, value) in object("names")? {
        placeholder_syntax("names", &placeholder, '#')?;
        match value {
            serde_json::Value::String(name)
                if !name.is_empty() && name.len() <= limits::MAX_NAME_BYTES =>
            {
                names.insert(placeholder, name);
            }
            _ => {
                return Err(invalid(format!(
                    "names: {} must stand for an attribute name of 1 to {} bytes",
                    quoted(&placeholder),
                    limits::MAX_NAME_BYTES
                )));
            }
        }
    }
    let mut values = std::collections::BTreeMap::new();
    for (placeholder, value) in object("values")? {
        placeholder_syntax("values", &placeholder, ':')?;
        let typed = crate::format::json::typed_value(&value).map_err(|why| {
            invalid(format!(
                "values: {} is not a DynamoDB typed value ({}), e.g. {{\"S\":\"text\"}} or {{\"N\":\"1\"}}",
                quoted(&placeholder),
                why.chars().take(120).collect::<String>()
            ))
        })?;
        values.insert(placeholder, typed);
    }
    let (used_names, used_values) = placeholders_in(expression);
    for used in used_names.iter().chain(&used_values) {
        if reserved(used) {
            return Err(invalid(format!(
                "filter uses {}: placeholders beginning with {} are reserved for the projection and key condition",
                quoted(used),
                crate::format::shape::RESERVED_PLACEHOLDER_PREFIX
            )));
        }
    }
    for (used, defined, what) in [
        (&used_names, names.keys().collect::<Vec<_>>(), "names"),
        (&used_values, values.keys().collect::<Vec<_>>(), "values"),
    ] {
        if let Some(missing) = used.iter().find(|u| !defined.contains(u)) {
            return Err(invalid(format!(
                "filter uses {}, which {what} does not define",
                quoted(missing)
            )));
        }
        if let Some(unused) = defined.iter().find(|d| !used.contains(**d)) {
            return Err(invalid(format!(
                "{what} defines {}, which filter does not use",
                quoted(unused)
            )));
        }
    }
    Ok(Some(Filter {
        expression: expression.to_string(),
        names,
        values,
    }))
}

/// A placeholder as DynamoDB writes them: `sigil` then 1 or more of `A-Z a-z 0-9 _`,
/// at most 255 bytes, and not one of ours.
fn placeholder_syntax(parameter: &str, placeholder: &str, sigil: char) -> Result<(), RequestError> {
    let valid = placeholder.len() <= limits::MAX_PLACEHOLDER_BYTES
        && placeholder
            .strip_prefix(sigil)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(placeholder_byte));
    if !valid {
        return Err(invalid(format!(
            "{parameter}: {} is not a placeholder ({sigil} then letters, digits or _, at most {} bytes)",
            quoted(placeholder),
            limits::MAX_PLACEHOLDER_BYTES
        )));
    }
    if reserved(placeholder) {
        return Err(invalid(format!(
            "{parameter}: {}: placeholders beginning with {} are reserved for the projection and key condition",
            quoted(placeholder),
            crate::format::shape::RESERVED_PLACEHOLDER_PREFIX
        )));
    }
    Ok(())
}

fn placeholder_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether a placeholder is one scanstream generates (compared without case, so that
/// none can even look like one).
fn reserved(placeholder: &str) -> bool {
    let prefix = crate::format::shape::RESERVED_PLACEHOLDER_PREFIX;
    placeholder
        .get(1..1 + prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// The name (`#x`) and value (`:x`) placeholders an expression uses. DynamoDB's
/// expressions have no string literals, so every `#` or `:` followed by a name
/// character begins a placeholder.
fn placeholders_in(expression: &str) -> (Vec<String>, Vec<String>) {
    let bytes = expression.as_bytes();
    let (mut names, mut values) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < bytes.len() {
        let sigil = bytes[i];
        i += 1;
        if sigil != b'#' && sigil != b':' {
            continue;
        }
        let start = i;
        while i < bytes.len() && placeholder_byte(bytes[i]) {
            i += 1;
        }
        if i > start {
            let token = format!("{}{}", char::from(sigil), &expression[start..i]);
            let list = if sigil == b'#' {
                &mut names
            } else {
                &mut values
            };
            if !list.contains(&token) {
                list.push(token);
            }
        }
    }
    (names, values)
}
