//! `GET /?segments=&limit=...` (or the same parameters form-encoded in a `POST` body, for
//! cursors or `pk` lists too long for a URL): the table as one NDJSON stream, from a
//! parallel Scan or a fan-out of Queries over `pk` values (with a sort-key condition and
//! an order), either one filtered or counted.
//!
//! Every parameter is checked before anything is read. The status line is committed only
//! once the first page (or the first error) is in, so a missing table is a real 404
//! rather than a 200 with an error inside.

use super::lambda::Handler;
use super::{
    ApiError, ErrorCode, Invocation, Params, ResponseBody, error_response, quoted, response,
    time_budget,
};
use crate::compress::Compression;
use crate::config::Config;
use crate::dynamo::source::PageSource;
use crate::error::{ErrorKind, UpstreamError};
use crate::format::json::Format;
use crate::format::key::{KeyAttribute, KeySchema, KeyType, KeyValue};
use crate::format::limits;
use crate::format::limits::MAX_TOTAL_SEGMENTS as DYNAMODB_MAX_TOTAL_SEGMENTS;
use crate::format::number::{Number, is_json_number};
use crate::format::shape::{Filter, QueryShape, ReadShape, SortCondition, SortOp};
use crate::scan::cursor::{Cursor, Position};
use crate::scan::filtered;
use crate::scan::stream::{self, CursorSeal, ScanPlan};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use futures::future::Either;
use http_body::Frame;
use lambda_http::http::{Method, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Every parameter this endpoint understands, and whether a cursor fixes it: one list,
/// so a new parameter cannot be known without saying whether a resumed read may give it.
/// A parameter a cursor fixes is refused beside a cursor, rather than silently ignored or
/// allowed to contradict it; the others shape how the rest is delivered.
const PARAMETER_TABLE: &[(&str, Resume)] = &[
    ("segments", Resume::Fixed),
    ("limit", Resume::Free),
    ("total_segments", Resume::Fixed),
    ("segment_offset", Resume::Fixed),
    ("cursor", Resume::Free),
    ("max_items", Resume::Free),
    ("fields", Resume::Fixed),
    ("consistent", Resume::Fixed),
    ("index", Resume::Fixed),
    ("pk", Resume::Fixed),
    ("sk_eq", Resume::Fixed),
    ("sk_lt", Resume::Fixed),
    ("sk_le", Resume::Fixed),
    ("sk_gt", Resume::Fixed),
    ("sk_ge", Resume::Fixed),
    ("sk_prefix", Resume::Fixed),
    ("sk_from", Resume::Fixed),
    ("sk_to", Resume::Fixed),
    ("order", Resume::Fixed),
    ("filter", Resume::Fixed),
    ("names", Resume::Fixed),
    ("values", Resume::Fixed),
    ("select", Resume::Fixed),
    ("format", Resume::Free),
    ("compress", Resume::Free),
    ("max_rcu", Resume::Free),
];

/// Whether a resumed read may give a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resume {
    /// The cursor fixes it: refused with a cursor.
    Fixed,
    /// It may change between calls of one read.
    Free,
}

/// The names of [`PARAMETER_TABLE`] whose [`Resume`] is `which` (all when `None`).
const fn names<const N: usize>(which: Option<Resume>) -> [&'static str; N] {
    let mut out = [""; N];
    let (mut i, mut n) = (0, 0);
    while i < PARAMETER_TABLE.len() {
        let (name, resume) = PARAMETER_TABLE[i];
        let wanted = match which {
            None => true,
            Some(Resume::Fixed) => matches!(resume, Resume::Fixed),
            Some(Resume::Free) => matches!(resume, Resume::Free),
        };
        if wanted {
            out[n] = name;
            n += 1;
        }
        i += 1;
    }
    assert!(n == N, "the array's length is the count of such parameters");
    out
}

/// How many parameters of [`PARAMETER_TABLE`] a cursor fixes.
const fn fixed_count() -> usize {
    let (mut i, mut n) = (0, 0);
    while i < PARAMETER_TABLE.len() {
        if matches!(PARAMETER_TABLE[i].1, Resume::Fixed) {
            n += 1;
        }
        i += 1;
    }
    n
}

/// The parameters this endpoint understands.
pub const PARAMETERS: &[&str] = &names::<{ PARAMETER_TABLE.len() }>(None);

/// Parameters that may be given more than once: `pk=a&pk=b` queries both partitions.
const REPEATABLE: &[&str] = &["pk"];

/// The sort-key conditions, by parameter; `sk_from` and `sk_to` together are one.
const SORT_CONDITIONS: &[(&str, SortOp)] = &[
    ("sk_eq", SortOp::Eq),
    ("sk_lt", SortOp::Lt),
    ("sk_le", SortOp::Le),
    ("sk_gt", SortOp::Gt),
    ("sk_ge", SortOp::Ge),
    ("sk_prefix", SortOp::Prefix),
    ("sk_from", SortOp::Between),
];

/// Parameters a cursor already fixes.
const FIXED_BY_CURSOR: &[&str] = &names::<{ fixed_count() }>(Some(Resume::Fixed));

/// DynamoDB's largest `max_items` worth asking for; bounds the arithmetic, not the use.
const MAX_ITEMS: u64 = 1_000_000_000_000;
/// The `Limit` of a `select=count` page when the request gives no `limit`: DynamoDB's
/// largest, so the page ends where DynamoDB ends it, at 1 MB read.
pub const COUNT_PAGE_LIMIT: u32 = i32::MAX as u32;
/// The longest `pk` text: the base64 of DynamoDB's largest partition key (2048 bytes).
const MAX_PK_TEXT_BYTES: usize = limits::MAX_PARTITION_KEY_BYTES.div_ceil(3) * 4;
/// Projections of more attributes than this are refused (DynamoDB caps expressions at 4 KB).
const MAX_FIELDS: usize = 100;

/// A sort-key condition as given: its comparison and text, typed once the key schema
/// is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortRequest {
    /// The parameter (`sk_lt`...; `sk_from` for a range), to name in errors.
    pub parameter: &'static str,
    /// The comparison.
    pub op: SortOp,
    /// The value (the lower bound of a range).
    pub value: String,
    /// The upper bound of a range (`sk_to`).
    pub to: Option<String>,
}

/// A request whose parameters are all valid; `pk` still needs the key schema to be read.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRequest {
    /// Segments scanned concurrently.
    pub segments: u32,
    /// `TotalSegments`.
    pub total_segments: u32,
    /// The first segment read.
    pub segment_offset: u32,
    /// Items per Scan call.
    pub limit: u32,
    /// Stop after this many items.
    pub max_items: Option<u64>,
    /// Where each segment starts: from a cursor, or all from the start.
    pub positions: Vec<Position>,
    /// Projection, consistency, index (the partition comes from `pk` below or a cursor).
    pub shape: ReadShape,
    /// The raw `pk` values, read against the key schema before querying; empty for a
    /// Scan.
    pub pks: Vec<String>,
    /// The raw sort-key condition, read against the key schema with the `pk` values.
    pub sort: Option<SortRequest>,
    /// `order=desc`: newest (largest sort key) first.
    pub descending: bool,
    /// How items are written (`format=`); a resumed read may change it.
    pub format: Format,
    /// How the body is compressed (`compress=`); a resumed read may change it.
    pub compression: Compression,
    /// Read capacity units a second for the invocation (`max_rcu=`, or
    /// `DEFAULT_MAX_RCU`); a resumed read may change it.
    pub max_rcu: Option<f64>,
}

/// Media types a `POST` body may have (compared without case or parameters); no
/// `content-type` at all is read as a form too, as curl's `--data` without a header.
pub const FORM_MEDIA_TYPES: &[&str] = &["application/x-www-form-urlencoded", "text/plain"];

/// The parameters of an invocation: the query string, and for `POST` the form body too.
fn params_of(invocation: &Invocation<'_>, config: &Config) -> Result<Params, ApiError> {
    let query = invocation.uri.query().unwrap_or_default();
    match *invocation.method {
        Method::GET => Params::parse_repeatable(query, PARAMETERS, REPEATABLE),
        Method::POST => {
            let form = invocation.content_type.is_none_or(|ct| {
                let media_type = ct.split(';').next().unwrap_or_default().trim();
                FORM_MEDIA_TYPES
                    .iter()
                    .any(|form| media_type.eq_ignore_ascii_case(form))
            });
            if !form {
                return Err(ApiError::new(
                    415,
                    ErrorCode::UnsupportedMediaType,
                    format!(
                        "POST a form body ({}), e.g. cursor=...",
                        FORM_MEDIA_TYPES.join(" or ")
                    ),
                ));
            }
            let max_body = max_body_bytes(config);
            if invocation.body.len() > max_body {
                return Err(ApiError::new(
                    413,
                    ErrorCode::BodyTooLarge,
                    format!("the body may hold at most {max_body} bytes"),
                ));
            }
            let body = std::str::from_utf8(invocation.body).map_err(|_| {
                ApiError::bad_request(ErrorCode::InvalidParameter, "the body is not UTF-8".into())
            })?;
            Params::parse_repeatable(&format!("{query}&{body}"), PARAMETERS, REPEATABLE)
        }
        _ => Err(ApiError::method_not_allowed(invocation.method, "GET, POST")),
    }
}

/// The largest POST body: a cursor of `MAX_CURSOR_BYTES`, or `MAX_PARTITIONS` `pk`
/// values of the largest size percent-encoded, with a filter at its bounds, and room
/// for the other parameters.
pub fn max_body_bytes(config: &Config) -> usize {
    let per_pk = "&pk=".len() + 3 * MAX_PK_TEXT_BYTES;
    let filter = 3
        * (limits::MAX_EXPRESSION_BYTES
            + limits::MAX_VALUES_BYTES
            + limits::MAX_PLACEHOLDERS
                * (limits::MAX_PLACEHOLDER_BYTES + limits::MAX_NAME_BYTES + 8));
    let query = config.max_partitions as usize * per_pk + filter;
    config.max_cursor_bytes.max(query) + 16 * 1024
}

/// Checks every parameter of an invocation: method, body, names, values, cursor.
pub fn parse_request(
    invocation: &Invocation<'_>,
    config: &Config,
) -> Result<StreamRequest, ApiError> {
    let params = params_of(invocation, config)?;
    // Where to read: from a cursor, or from the parameters. The rest may be given either way.
    let read = match params.text("cursor") {
        Some(token) => resumed(&params, token, config)?,
        None => fresh(&params, config)?,
    };
    let count = read.shape.count;
    Ok(StreamRequest {
        segments: read.segments,
        total_segments: read.total_segments,
        segment_offset: read.segment_offset,
        positions: read.positions,
        shape: read.shape,
        pks: read.pks,
        sort: read.sort,
        descending: read.descending,
        limit: match params.optional_integer("limit", 1, config.max_limit)? {
            Some(limit) => limit,
            // A count sends no items, so nothing bounds its page but the 1 MB DynamoDB
            // reads for one: fewer, larger pages. `limit` still applies when given.
            None if count => COUNT_PAGE_LIMIT,
            None => config.default_limit,
        },
        max_items: match params.optional_integer("max_items", 1, MAX_ITEMS)? {
            Some(_) if count => {
                return Err(invalid(
                    "max_items cannot be combined with select=count: a count sends no items".into(),
                ));
            }
            max_items => max_items,
        },
        format: params.choice("format", Format::Json, Format::NAMES, Format::from_name)?,
        compression: params.choice(
            "compress",
            Compression::None,
            Compression::NAMES,
            Compression::from_name,
        )?,
        max_rcu: params
            .positive_decimal("max_rcu", config.max_rcu)?
            .or(config.default_max_rcu),
    })
}

/// What a request reads and where each segment starts.
struct Read {
    segments: u32,
    total_segments: u32,
    segment_offset: u32,
    positions: Vec<Position>,
    shape: ReadShape,
    pks: Vec<String>,
    sort: Option<SortRequest>,
    descending: bool,
}

fn invalid(message: String) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidParameter, message)
}

/// A read resumed from `token`, which fixes everything but the delivery parameters.
fn resumed(params: &Params, token: &str, config: &Config) -> Result<Read, ApiError> {
    if let Some(fixed) = FIXED_BY_CURSOR.iter().find(|name| params.has(name)) {
        return Err(invalid(format!(
            "{fixed} cannot be combined with cursor: the cursor already fixes it"
        )));
    }
    let bad_cursor = |message: String| ApiError::bad_request(ErrorCode::InvalidCursor, message);
    let cursor = Cursor::decode(token, &config.cursor_secret, config.max_cursor_bytes)
        .map_err(|err| bad_cursor(err.to_string()))?;
    if cursor.table != config.table_name {
        return Err(bad_cursor("cursor belongs to another table".into()));
    }
    check_cursor_shape(&cursor.shape).map_err(bad_cursor)?;
    let positions = u32::try_from(cursor.positions.len()).unwrap_or(u32::MAX);
    let segments = match &cursor.shape.query {
        Some(query) => {
            if positions > config.max_partitions {
                return Err(bad_cursor(format!(
                    "cursor spans {positions} partitions, more than the {} allowed",
                    config.max_partitions
                )));
            }
            query.concurrency
        }
        None => positions,
    };
    if segments > config.max_segments {
        return Err(bad_cursor(format!(
            "cursor spans {segments} segments, more than the {} allowed",
            config.max_segments
        )));
    }
    Ok(Read {
        segments,
        total_segments: cursor.total_segments,
        segment_offset: cursor.segment_offset,
        positions: cursor.positions,
        shape: cursor.shape,
        pks: Vec::new(),
        sort: None,
        descending: false,
    })
}

/// A read from the start, shaped by the parameters.
fn fresh(params: &Params, config: &Config) -> Result<Read, ApiError> {
    let pks = params.all("pk").to_vec();
    if pks.len() > config.max_partitions as usize {
        return Err(invalid(format!(
            "pk may be given at most {} times (MAX_PARTITIONS), got {}",
            config.max_partitions,
            pks.len()
        )));
    }
    for (i, pk) in pks.iter().enumerate() {
        // The text only: a B key's base64 is a third longer than the key, whose own size
        // is checked once it is typed by the key schema.
        if pk.is_empty() || pk.len() > MAX_PK_TEXT_BYTES {
            return Err(invalid(format!(
                "pk must be 1 to {} bytes (1 to {MAX_PK_TEXT_BYTES} as base64 for a binary key)",
                limits::MAX_PARTITION_KEY_BYTES
            )));
        }
        if pks[..i].contains(pk) {
            return Err(invalid(format!("pk names {} twice", quoted(pk))));
        }
    }
    let query = !pks.is_empty();
    if query
        && let Some(name) = ["total_segments", "segment_offset"]
            .iter()
            .find(|n| params.has(n))
    {
        return Err(invalid(format!(
            "{name} cannot be combined with pk: a Query reads each partition unsegmented"
        )));
    }
    let partitions = u32::try_from(pks.len()).unwrap_or(u32::MAX);
    let default_segments = if query {
        config.default_segments.min(partitions)
    } else {
        config.default_segments
    };
    let segments = params.integer("segments", default_segments, 1, config.max_segments)?;
    if query && segments > partitions {
        return Err(invalid(format!(
            "segments must be at most the number of pk values ({partitions}) with pk: a Query reads each partition unsegmented"
        )));
    }
    let (total_segments, segment_offset) = if query {
        (partitions, 0)
    } else {
        let total = params.integer("total_segments", segments, 1, DYNAMODB_MAX_TOTAL_SEGMENTS)?;
        let offset = params.integer("segment_offset", 0, 0, total - 1)?;
        if u64::from(offset) + u64::from(segments) > u64::from(total) {
            return Err(invalid(format!(
                "segment_offset + segments ({offset} + {segments}) must not exceed total_segments ({total})"
            )));
        }
        (total, offset)
    };
    let sort = sort_request(params, query)?;
    let descending = params.choice("order", false, &["asc", "desc"], |o| match o {
        "asc" => Some(false),
        "desc" => Some(true),
        _ => None,
    })?;
    if params.has("order") && !query {
        return Err(invalid(
            "order needs pk: a Scan has no order, a Query reads in sort-key order".into(),
        ));
    }
    let count = params.choice("select", false, &["items", "count"], |o| match o {
        "items" => Some(false),
        "count" => Some(true),
        _ => None,
    })?;
    let fields = fields(params)?;
    if count && !fields.is_empty() {
        return Err(invalid(
            "select=count cannot be combined with fields: a count returns no attributes".into(),
        ));
    }
    Ok(Read {
        segments,
        total_segments,
        segment_offset,
        positions: vec![Position::Start; if query { pks.len() } else { segments as usize }],
        shape: ReadShape {
            fields,
            consistent: params.boolean("consistent")?,
            index: index(params)?,
            query: None,
            filter: filter(params)?,
            count,
        },
        pks,
        sort,
        descending,
    })
}

/// The one sort-key condition a request may give: `sk_eq`, `sk_lt`, `sk_le`, `sk_gt`,
/// `sk_ge`, `sk_prefix`, or `sk_from` with `sk_to`; each only with `pk`.
fn sort_request(params: &Params, query: bool) -> Result<Option<SortRequest>, ApiError> {
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
    let text = |name: &str| -> Result<String, ApiError> {
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

/// `filter`, `names` and `values`: DynamoDB's own filter expression with its
/// placeholders, checked before anything is read (sizes, placeholders defined and used,
/// typed values, no placeholder of ours).
fn filter(params: &Params) -> Result<Option<Filter>, ApiError> {
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
    let object = |name: &str| -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
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
fn placeholder_syntax(parameter: &str, placeholder: &str, sigil: char) -> Result<(), ApiError> {
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

/// `fields=a,b,c`: top-level attribute names, each passed to DynamoDB through
/// `ExpressionAttributeNames`, so reserved words and odd characters are safe.
fn fields(params: &Params) -> Result<Vec<String>, ApiError> {
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
fn index(params: &Params) -> Result<Option<String>, ApiError> {
    let Some(name) = params.text("index") else {
        return Ok(None);
    };
    check_index(name).map_err(invalid)?;
    Ok(Some(name.to_string()))
}

/// DynamoDB's rule for index names, wherever the name comes from: a request or a cursor.
fn check_index(name: &str) -> Result<(), String> {
    let valid = (3..=255).contains(&name.len())
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

/// A resumed Query's key names and types against the table's (or index's) key schema.
fn resumed_query_fits(query: &QueryShape, schema: &KeySchema) -> Result<(), String> {
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

/// A cursor's shape checked as strictly as the same parameters of a fresh request, so a
/// cursor minted by someone holding the secret (or by an older streamer) cannot carry
/// what a request could not: a thousand field names, an index named `../x`, keys past
/// DynamoDB's sizes, an expression past its limits. Keys are typed by the table when the
/// read starts, as on a fresh request.
fn check_cursor_shape(shape: &ReadShape) -> Result<(), String> {
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

/// Reads the text of `parameter` as the key's type: S as is, N as a number DynamoDB
/// takes, B as base64; at most `max` bytes once typed (DynamoDB's key size limits).
fn key_value(
    parameter: &str,
    text: &str,
    key_type: KeyType,
    max: usize,
) -> Result<KeyValue, ApiError> {
    let bad = |what: &str| {
        ApiError::bad_request(
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
fn partition_value(text: &str, key_type: KeyType) -> Result<KeyValue, ApiError> {
    key_value("pk", text, key_type, limits::MAX_PARTITION_KEY_BYTES)
}

/// The sort-key condition typed by the sort key of the table or index.
fn sort_condition(
    request: &SortRequest,
    sort_key: Option<&KeyAttribute>,
) -> Result<SortCondition, ApiError> {
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
/// by value. `None` for values of different types.
fn compare_keys(a: &KeyValue, b: &KeyValue) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (KeyValue::S(a), KeyValue::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (KeyValue::B(a), KeyValue::B(b)) => Some(a.cmp(b)),
        (KeyValue::N(a), KeyValue::N(b)) => Some(compare_numbers(a, b)),
        _ => None,
    }
}

/// Compares two numbers in JSON syntax exactly (38 digits do not fit a float): by sign,
/// then by the exponent of the first significant digit, then digit by digit.
fn compare_numbers(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    /// Sign, significant digits (no leading or trailing zeros), exponent of the first.
    fn parts(text: &str) -> (bool, Vec<u8>, i64) {
        let negative = text.starts_with('-');
        let text = text.trim_start_matches(['-', '+']);
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(at) => (&text[..at], text[at + 1..].parse::<i64>().unwrap_or(0)),
            None => (text, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits: Vec<u8> = whole.bytes().chain(fraction.bytes()).collect();
        let leading = digits.iter().take_while(|&&d| d == b'0').count();
        let mut significant = digits[leading..].to_vec();
        while significant.last() == Some(&b'0') {
            significant.pop();
        }
        let first = whole.len() as i64 - leading as i64 - 1 + exponent;
        (negative && !significant.is_empty(), significant, first)
    }
    let (an, ad, ae) = parts(a);
    let (bn, bd, be) = parts(b);
    let magnitude = match (ad.is_empty(), bd.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => ae.cmp(&be).then_with(|| ad.cmp(&bd)),
    };
    match (an, bn) {
        (false, false) => magnitude,
        (true, true) => magnitude.reverse(),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
    }
}

/// The Query of a request's `pk` values, sort-key condition and order, typed by `schema`.
fn query_shape(request: &StreamRequest, schema: &KeySchema) -> Result<QueryShape, ApiError> {
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

/// The streamer: configuration and page source, built once at cold start and shared by
/// every invocation.
#[derive(Debug)]
pub struct Streamer<S> {
    /// Bounds, defaults and budgets for every request.
    config: Config,
    /// Shared with the segment tasks of every request.
    source: Arc<S>,
    /// Seals the cursors of incomplete streams.
    seal: CursorSeal,
    /// When the key-schema lookup of a filtered read under `max_items` last failed: for
    /// [`KEY_LOOKUP_FAILURE_TTL`] such reads do not ask again (a denied `DescribeTable`
    /// would cost every call a failed request before its first page).
    key_lookup_failed: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// The longest a filtered read under `max_items` waits for the table's key schema before
/// its first page; past it, and past a tenth of what is left of the deadline, it reads
/// with pages sized by the budget (slower, the same items), so a slow or throttled
/// `DescribeTable` never fails a read that needs no key.
const KEY_LOOKUP_WAIT: Duration = Duration::from_secs(2);

/// How long a failed key-schema lookup is remembered.
const KEY_LOOKUP_FAILURE_TTL: Duration = Duration::from_secs(30);

impl<S: PageSource> Streamer<S> {
    /// A streamer reading from `source` within the bounds of `config`.
    pub fn new(config: Config, source: S) -> Self {
        let seal = CursorSeal {
            table: config.table_name.clone(),
            secret: Arc::from(config.cursor_secret.as_slice()),
        };
        Self {
            config,
            source: Arc::new(source),
            seal,
            key_lookup_failed: Arc::default(),
        }
    }

    /// The attributes of an item's key in a read of the table or `index`, for a filtered
    /// read under `max_items` to read whole pages (`scan::filtered`). Not knowing them
    /// costs calls, not items: the pages are then sized by the budget. So the lookup is
    /// waited for at most [`KEY_LOOKUP_WAIT`] (or a tenth of what is left before
    /// `deadline`), a failure is logged, not returned, and remembered for
    /// [`KEY_LOOKUP_FAILURE_TTL`]. A lookup not back in time goes on by itself and fills
    /// the source's cache for the next call.
    async fn position_key(
        &self,
        index: Option<&str>,
        deadline: Option<tokio::time::Instant>,
    ) -> Vec<String> {
        let failed_at = *lock_ignoring_poison(&self.key_lookup_failed);
        if failed_at.is_some_and(|at| at.elapsed() < KEY_LOOKUP_FAILURE_TTL) {
            return Vec::new();
        }
        let wait = deadline.map_or(KEY_LOOKUP_WAIT, |at| {
            KEY_LOOKUP_WAIT.min(at.saturating_duration_since(tokio::time::Instant::now()) / 10)
        });
        let source = self.source.clone();
        let index = index.map(str::to_owned);
        let failed = self.key_lookup_failed.clone();
        let lookup = tokio::spawn(async move {
            let found = filtered::position_key(&*source, index.as_deref()).await;
            *lock_ignoring_poison(&failed) = match &found {
                Ok(_) => None,
                Err(err) => {
                    warn!(cause = %err, source = ?err.source, "no key schema: filtered pages sized by max_items");
                    Some(std::time::Instant::now())
                }
            };
            found
        });
        match tokio::time::timeout(wait, lookup).await {
            Ok(Ok(Ok(key))) => key,
            // Logged by the lookup itself.
            Ok(Ok(Err(_))) => Vec::new(),
            Ok(Err(join)) => {
                warn!(cause = %join, "the key-schema lookup panicked: filtered pages sized by max_items");
                Vec::new()
            }
            Err(_) => {
                warn!(
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "key schema not back in time: filtered pages sized by max_items"
                );
                Vec::new()
            }
        }
    }

    /// Answers one request. Never fails: every failure is a response.
    pub async fn handle(&self, invocation: Invocation<'_>) -> Response<ResponseBody> {
        let mut request = match parse_request(&invocation, &self.config) {
            Ok(request) => request,
            Err(err) => return error_response(&err),
        };
        let deadline = time_budget(
            invocation.deadline,
            Duration::from_millis(self.config.deadline_reserve_ms),
        );
        if !request.pks.is_empty() || request.shape.index.is_some() || request.shape.query.is_some()
        {
            // Finds a missing table or index (404) and the key types before any read.
            let described = self.source.key_schema(request.shape.index.as_deref());
            let described = match deadline {
                Some(at) => tokio::time::timeout_at(at, described)
                    .await
                    .unwrap_or_else(|_| {
                        Err(UpstreamError::new(
                            ErrorKind::TimedOut,
                            "the deadline passed while describing the table",
                        ))
                    }),
                None => described.await,
            };
            let schema = match described {
                Ok(schema) => schema,
                Err(err) => {
                    warn!(cause = %err, source = ?err.source, "describing the table failed");
                    return error_response(&ApiError::from(&err));
                }
            };
            if !request.pks.is_empty() {
                match query_shape(&request, &schema) {
                    Ok(query) => request.shape.query = Some(query),
                    Err(err) => return error_response(&err),
                }
            } else if let Some(query) = &request.shape.query
                && let Err(message) = resumed_query_fits(query, &schema)
            {
                // A resumed Query's keys are held to the table's schema, as a fresh one's.
                return error_response(&ApiError::bad_request(ErrorCode::InvalidCursor, message));
            }
        }
        info!(
            segments = request.segments,
            total_segments = request.total_segments,
            segment_offset = request.segment_offset,
            limit = request.limit,
            max_items = ?request.max_items,
            max_rcu = ?request.max_rcu,
            partitions = request.pks.len(),
            filter = request.shape.filter.is_some(),
            count = request.shape.count,
            "scan starting"
        );
        // A Scan's total, for the client's progress and plan; under a filter or a Query
        // it is unknown, and not sent. Only a fresh read looks it up: a client needs it
        // once, and a `DescribeTable` that is throttled need not be asked again by every
        // resumed call of a long read.
        let fresh = request
            .positions
            .iter()
            .all(|position| matches!(position, Position::Start));
        let sized = (fresh && request.shape.filter.is_none() && request.shape.query.is_none())
            .then(|| request.shape.index.clone());
        let position_key = if request.shape.filter.is_some() && request.max_items.is_some() {
            self.position_key(request.shape.index.as_deref(), deadline)
                .await
        } else {
            Vec::new()
        };
        let plan = ScanPlan {
            total_segments: request.total_segments,
            segment_offset: request.segment_offset,
            positions: request.positions,
            limit: request.limit,
            shape: Arc::new(request.shape),
            max_items: request.max_items,
            max_bytes: Some(self.config.max_response_bytes),
            deadline,
            seal: Some(self.seal.clone()),
            format: request.format,
            compression: request.compression,
            max_rcu: request.max_rcu,
            position_key,
        };
        // Beside the first page, never before it: the lookup is polled first, so a cached
        // answer is in the headers. A `DescribeTable` still out when the first page is
        // ready gets [`SIZE_LOOKUP_GRACE`] more (a cold function's first call races its
        // first page against it), then the headers go without the size and the lookup
        // goes on as a task of its own, so it fills the source's cache for the next
        // request whatever it takes (the SDK's operation timeout bounds it).
        let lookup = sized.map(|index| {
            let source = self.source.clone();
            Box::pin(async move { source.approximate_size(index.as_deref()).await })
        });
        let first = Box::pin(stream::start(self.source.clone(), plan));
        let (started, size) = match lookup {
            None => (first.await, None),
            Some(lookup) => match futures::future::select(lookup, first).await {
                Either::Left((size, first)) => (first.await, size),
                Either::Right((started, mut lookup)) => {
                    let size = match &started {
                        Ok(_) => match tokio::time::timeout(SIZE_LOOKUP_GRACE, &mut lookup).await {
                            Ok(size) => size,
                            Err(_) => {
                                tokio::spawn(lookup);
                                None
                            }
                        },
                        Err(_) => None,
                    };
                    (started, size)
                }
            },
        };
        match started {
            Ok(scan) => {
                let body = scan.map(|bytes| Ok(Frame::data(bytes))).boxed();
                let mut response =
                    response(StatusCode::OK, request.compression.content_type(), body);
                if let Some(size) = size {
                    size_headers(response.headers_mut(), size);
                }
                response
            }
            Err(err) => {
                warn!(cause = %err, source = ?err.source, "scan failed before the first page");
                error_response(&ApiError::from(&err))
            }
        }
    }
}

/// The table's approximate item count, in a response's headers (DynamoDB's `ItemCount`,
/// refreshed about every six hours: approximate).
pub const APPROX_ITEMS_HEADER: &str = "x-scanstream-approx-items";
/// The table's approximate size in bytes (`TableSizeBytes`, as approximate).
pub const APPROX_BYTES_HEADER: &str = "x-scanstream-approx-bytes";

/// The longest the headers wait for the size lookup once the first page is ready: it is
/// advisory, and a slow `DescribeTable` must not hold a stream back for long.
const SIZE_LOOKUP_GRACE: Duration = Duration::from_millis(200);

/// The lock is held for one assignment or read and never across an await, so a poisoned
/// lock still holds a consistent value.
fn lock_ignoring_poison<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn size_headers(
    headers: &mut lambda_http::http::HeaderMap,
    size: crate::dynamo::source::ApproximateSize,
) {
    for (name, value) in [
        (APPROX_ITEMS_HEADER, size.items),
        (APPROX_BYTES_HEADER, size.bytes),
    ] {
        headers.insert(name, lambda_http::http::HeaderValue::from(value));
    }
}

impl<S: PageSource> Handler for Streamer<S> {
    async fn handle(&self, invocation: Invocation<'_>) -> Response<ResponseBody> {
        Streamer::handle(self, invocation).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::Uri;
    use std::time::SystemTime;

    fn config() -> Config {
        Config::from_lookup(|name| (name == "TABLE_NAME").then(|| "t".to_string())).expect("config")
    }

    fn get(query: &str) -> Result<StreamRequest, ApiError> {
        let uri: Uri = format!("/?{query}").parse().expect("uri");
        let invocation = Invocation {
            method: &Method::GET,
            uri: &uri,
            content_type: None,
            body: b"",
            deadline: None,
        };
        parse_request(&invocation, &config())
    }

    #[test]
    fn defaults_and_bounds() {
        let r = get("").expect("valid");
        assert_eq!(
            (r.segments, r.total_segments, r.segment_offset, r.limit),
            (4, 4, 0, 100)
        );
        let r = get("segments=2&total_segments=10&segment_offset=8&limit=1000&max_items=5")
            .expect("valid");
        assert_eq!(
            (r.segments, r.total_segments, r.segment_offset, r.limit),
            (2, 10, 8, 1000)
        );
        assert_eq!(r.max_items, Some(5));
        assert_eq!(r.positions.len(), 2);
    }

    #[test]
    fn a_count_pages_by_what_dynamodb_reads_unless_given_a_limit() {
        assert_eq!(get("select=count").expect("valid").limit, COUNT_PAGE_LIMIT);
        assert_eq!(get("select=count&limit=50").expect("valid").limit, 50);
        assert_eq!(get("select=items").expect("valid").limit, 100);
        assert!(get("select=count&limit=0").is_err(), "still bounded");
    }

    #[test]
    fn shape_parameters() {
        let r = get("fields=name,status,a%2Cb&consistent=true&index=by-status").expect("valid");
        assert_eq!(r.shape.fields, ["name", "status", "a", "b"]);
        assert!(r.shape.consistent);
        assert_eq!(r.shape.index.as_deref(), Some("by-status"));
        let r = get("pk=abc").expect("valid");
        assert_eq!(
            (r.segments, r.pks.as_slice()),
            (1, &["abc".to_string()][..])
        );
    }

    #[test]
    fn a_deadline_in_the_past_is_no_deadline() {
        let epoch_plus_600s = SystemTime::UNIX_EPOCH + Duration::from_millis(600_000);
        assert_eq!(
            time_budget(Some(epoch_plus_600s), Duration::from_secs(2)),
            None
        );
        assert_eq!(time_budget(None, Duration::from_secs(2)), None);
        let soon = SystemTime::now() + Duration::from_secs(10);
        let at = time_budget(Some(soon), Duration::from_secs(2)).expect("a budget");
        let left = at - tokio::time::Instant::now();
        assert!(
            left <= Duration::from_secs(8) && left > Duration::from_secs(7),
            "{left:?}"
        );
    }

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
    fn a_forged_cursor_is_held_to_what_a_request_may_ask() {
        // Minted with the secret, as someone who holds it (or an older streamer) could:
        // refused before anything is read, as the same parameters would be.
        let forged = |shape: ReadShape| {
            let token = Cursor {
                table: "t".into(),
                total_segments: 1,
                segment_offset: 0,
                positions: vec![Position::Start],
                shape,
            }
            .encode(b"");
            get(&format!("cursor={token}")).map(|_| ())
        };
        let fields = (0..1000).map(|i| format!("f{i}")).collect();
        for (what, shape) in [
            (
                "1,000 fields",
                ReadShape {
                    fields,
                    ..ReadShape::default()
                },
            ),
            (
                "an index named ../x",
                ReadShape {
                    index: Some("../x".into()),
                    ..ReadShape::default()
                },
            ),
            (
                "a field of 300 bytes",
                ReadShape {
                    fields: vec!["x".repeat(300)],
                    ..ReadShape::default()
                },
            ),
        ] {
            let err = forged(shape).expect_err(what);
            assert_eq!(
                (err.status, err.code),
                (400, ErrorCode::InvalidCursor),
                "{what}: {}",
                err.message
            );
        }
        assert!(
            forged(ReadShape::default()).is_ok(),
            "a cursor within bounds resumes"
        );
    }

    #[test]
    fn a_cursor_fixes_the_shape_and_must_fit_the_table() {
        let cursor = Cursor {
            table: "t".into(),
            total_segments: 4,
            segment_offset: 0,
            positions: vec![Position::Start, Position::Done],
            shape: ReadShape::default(),
        };
        let token = cursor.encode(b"");
        let r = get(&format!("cursor={token}&limit=7&max_items=3")).expect("valid");
        assert_eq!((r.segments, r.total_segments, r.limit), (2, 4, 7));
        assert_eq!(r.positions, cursor.positions);
        let err = get(&format!("cursor={token}&segments=2")).unwrap_err();
        assert!(
            err.message
                .contains("segments cannot be combined with cursor"),
            "{}",
            err.message
        );
        let other = Cursor {
            table: "other".into(),
            ..cursor
        }
        .encode(b"");
        let err = get(&format!("cursor={other}")).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (ErrorCode::InvalidCursor, "cursor belongs to another table")
        );
    }

    #[test]
    fn query_filter_and_count_parameters_are_checked_before_anything_is_read() {
        let r = get("pk=a&pk=b&pk=c&segments=2&sk_ge=5&order=desc").expect("valid");
        assert_eq!((r.segments, r.total_segments, r.positions.len()), (2, 3, 3));
        assert_eq!(r.pks, ["a", "b", "c"]);
        assert!(r.descending);
        let sort = r.sort.expect("a condition");
        assert_eq!(
            (sort.parameter, sort.op, sort.value.as_str()),
            ("sk_ge", SortOp::Ge, "5")
        );
        let r = get("pk=a&pk=b").expect("valid");
        assert_eq!(
            r.segments, 2,
            "as many workers as partitions, up to the default"
        );
        let r = get(
            "filter=%23s+%3D+%3Av+AND+%23n+%3E+%3Av2&names=%7B%22%23s%22%3A%22status%22%2C%22%23n%22%3A%22n%22%7D&values=%7B%22%3Av%22%3A%7B%22S%22%3A%22open%22%7D%2C%22%3Av2%22%3A%7B%22N%22%3A%221%22%7D%7D&select=count",
        )
        .expect("valid");
        let filter = r.shape.filter.expect("a filter");
        assert_eq!(filter.names["#s"], "status");
        assert_eq!(
            filter.values[":v2"],
            aws_sdk_dynamodb::types::AttributeValue::N("1".into())
        );
        assert!(r.shape.count);
        let enc = |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
        let f = |filter: &str, names: &str, values: &str| {
            let mut q = format!("filter={}", enc(filter));
            if !names.is_empty() {
                q += &format!("&names={}", enc(names));
            }
            if !values.is_empty() {
                q += &format!("&values={}", enc(values));
            }
            q
        };
        let long_pk = "p".repeat(2733);
        let many: String = (0..101).map(|i| format!("pk=p{i}&")).collect();
        let cases: Vec<(String, &str)> = vec![
            ("sk_eq=1".into(), "sk_eq needs pk"),
            ("sk_from=1&sk_to=2".into(), "sk_from needs pk"),
            ("pk=a&sk_from=1".into(), "sk_from needs sk_to"),
            ("pk=a&sk_to=1".into(), "sk_to needs sk_from"),
            ("pk=a&sk_lt=1&sk_gt=0".into(), "only one sort-key condition"),
            (
                "pk=a&sk_prefix=x&sk_from=1&sk_to=2".into(),
                "only one sort-key condition",
            ),
            ("pk=a&sk_eq=".into(), "sk_eq must be 1 to 1024 bytes"),
            ("order=desc".into(), "order needs pk"),
            ("pk=a&order=up".into(), "order must be one of asc, desc"),
            ("pk=a&pk=a".into(), "pk names \"a\" twice"),
            (
                format!("pk={long_pk}"),
                "pk must be 1 to 2048 bytes (1 to 2732 as base64",
            ),
            (many, "pk may be given at most 100 times"),
            (
                "pk=a&pk=b&segments=3".into(),
                "segments must be at most the number of pk values (2)",
            ),
            (
                "pk=a&segment_offset=0".into(),
                "segment_offset cannot be combined with pk",
            ),
            ("select=all".into(), "select must be one of items, count"),
            (
                "select=count&fields=a".into(),
                "select=count cannot be combined with fields",
            ),
            (
                "select=count&max_items=5".into(),
                "max_items cannot be combined with select=count",
            ),
            ("names=%7B%7D".into(), "names needs filter"),
            ("values=%7B%7D".into(), "values needs filter"),
            ("filter=".into(), "filter must be 1 to 4096 bytes"),
            (
                format!("filter={}", "a".repeat(4097)),
                "filter must be 1 to 4096 bytes",
            ),
            (
                f("#a = :v", r##"{"#a":"x"}"##, ""),
                "filter uses \":v\", which values does not define",
            ),
            (
                f("#a = :v", "", r#"{":v":{"S":"x"}}"#),
                "filter uses \"#a\", which names does not define",
            ),
            (
                f("#a = :v", r##"{"#a":"x","#b":"y"}"##, r#"{":v":{"S":"x"}}"#),
                "names defines \"#b\", which filter does not use",
            ),
            (
                f(
                    "#a = :v",
                    r##"{"#a":"x"}"##,
                    r#"{":v":{"S":"x"},":w":{"S":"y"}}"#,
                ),
                "values defines \":w\", which filter does not use",
            ),
            (
                f("#a = :v", r##"{"#a":"x"}"##, r#"{":v":{"Q":"x"}}"#),
                "values: \":v\" is not a DynamoDB typed value",
            ),
            (
                f("#a = :v", r##"{"#a":"x"}"##, r#"{":v":{"N":"1e999"}}"#),
                "values: \":v\" is not a DynamoDB typed value",
            ),
            (
                f("#a = :v", r##"{"#a":"x"}"##, r#"{":v":"plain"}"#),
                "values: \":v\" is not a DynamoDB typed value",
            ),
            (
                f("#a = :v", r##"{"#a":"x"}"##, "[1]"),
                "values must be a JSON object",
            ),
            (
                f("#a = :v", "not json", r#"{":v":{"S":"x"}}"#),
                "names must be a JSON object",
            ),
            (
                f("#a = :v", r##"{"#a":""}"##, r#"{":v":{"S":"x"}}"#),
                "must stand for an attribute name",
            ),
            (
                f("#a = :v", r#"{"a":"x"}"#, r#"{":v":{"S":"x"}}"#),
                "names: \"a\" is not a placeholder",
            ),
            (
                f("#a = :v-w", r##"{"#a":"x"}"##, r#"{":v-w":{"S":"x"}}"#),
                "values: \":v-w\" is not a placeholder",
            ),
            (
                f(
                    "#scanstreamPk = :v",
                    r##"{"#scanstreamPk":"x"}"##,
                    r#"{":v":{"S":"x"}}"#,
                ),
                "reserved",
            ),
            (
                f(
                    "#a = :SCANSTREAMPK",
                    r##"{"#a":"x"}"##,
                    r#"{":SCANSTREAMPK":{"S":"x"}}"#,
                ),
                "reserved",
            ),
            (
                f(
                    "#a = :v",
                    r##"{"#a":"x"}"##,
                    &format!(r#"{{":v":{{"S":"{}"}}}}"#, "x".repeat(17_000)),
                ),
                "values may hold at most 16384 bytes",
            ),
        ];
        for (query, expected) in &cases {
            let err = get(query).expect_err(query);
            assert_eq!(err.status, 400, "{query}");
            assert!(err.message.contains(expected), "{query}: {}", err.message);
        }
        // A cursor fixes every one of them.
        let token = Cursor {
            table: "t".into(),
            total_segments: 1,
            segment_offset: 0,
            positions: vec![Position::Start],
            shape: ReadShape::default(),
        }
        .encode(b"");
        for fixed in ["pk=a", "sk_eq=1", "order=asc", "filter=x", "select=count"] {
            let err = get(&format!("cursor={token}&{fixed}")).expect_err(fixed);
            assert!(
                err.message.contains("cannot be combined with cursor"),
                "{}",
                err.message
            );
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
    fn every_parameter_is_known_once_and_a_cursor_fixes_all_but_delivery() {
        let mut names = PARAMETERS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PARAMETERS.len(), "no name twice");
        assert!(FIXED_BY_CURSOR.iter().all(|n| PARAMETERS.contains(n)));
        let free: Vec<&str> = PARAMETERS
            .iter()
            .copied()
            .filter(|n| !FIXED_BY_CURSOR.contains(n))
            .collect();
        assert_eq!(
            free,
            [
                "limit",
                "cursor",
                "max_items",
                "format",
                "compress",
                "max_rcu"
            ]
        );
    }

    #[test]
    fn numbers_compare_exactly() {
        use std::cmp::Ordering::*;
        for (a, b, want) in [
            ("1", "2", Less),
            ("10", "9.5", Greater),
            ("-1", "-2", Greater),
            ("0", "-0.0", Equal),
            ("1e2", "100", Equal),
            ("1E-2", "-3", Greater),
            (
                "12345678901234567890123456789012345678",
                "12345678901234567890123456789012345679",
                Less,
            ),
            ("0.001", "0.01", Less),
            ("-0.5", "0", Less),
        ] {
            assert_eq!(compare_numbers(a, b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn post_bodies_carry_parameters() {
        let uri: Uri = "/?limit=5".parse().expect("uri");
        let post = |content_type: Option<&'static str>, body: &'static [u8]| {
            parse_request(
                &Invocation {
                    method: &Method::POST,
                    uri: &uri,
                    content_type,
                    body,
                    deadline: None,
                },
                &config(),
            )
        };
        let r = post(Some("application/x-www-form-urlencoded"), b"segments=2").expect("valid");
        assert_eq!((r.segments, r.limit), (2, 5));
        assert_eq!(
            post(Some("application/json"), b"{}").unwrap_err().status,
            415
        );
        assert!(
            post(None, b"limit=6")
                .unwrap_err()
                .message
                .contains("more than once")
        );
    }

    /// A memory table whose size lookup takes `delay` the first time (a slow or
    /// throttled `DescribeTable`) and is then cached, as DynamoDB's source caches it.
    struct SlowSize {
        inner: crate::dynamo::memory::MemorySource,
        delay: Duration,
        cached: std::sync::atomic::AtomicBool,
    }

    impl PageSource for SlowSize {
        async fn page(
            &self,
            request: crate::dynamo::source::PageRequest,
        ) -> Result<crate::dynamo::source::Page, UpstreamError> {
            self.inner.page(request).await
        }

        async fn partition_key(
            &self,
            index: Option<&str>,
        ) -> Result<crate::format::key::KeyAttribute, UpstreamError> {
            self.inner.partition_key(index).await
        }

        async fn approximate_size(
            &self,
            _: Option<&str>,
        ) -> Option<crate::dynamo::source::ApproximateSize> {
            use std::sync::atomic::Ordering::SeqCst;
            if !self.cached.load(SeqCst) {
                tokio::time::sleep(self.delay).await;
                self.cached.store(true, SeqCst);
            }
            Some(crate::dynamo::source::ApproximateSize {
                items: 7,
                bytes: 700,
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_size_lookup_holds_no_response_back_and_still_fills_the_cache() {
        use std::sync::atomic::Ordering::SeqCst;
        let items = (0..5)
            .map(|i| {
                crate::format::item::Item::from([(
                    "id".to_string(),
                    aws_sdk_dynamodb::types::AttributeValue::S(format!("item-{i}")),
                )])
            })
            .collect();
        let streamer = Streamer::new(
            config(),
            SlowSize {
                inner: crate::dynamo::memory::MemorySource::new(items, "id"),
                delay: Duration::from_secs(5),
                cached: false.into(),
            },
        );
        let uri: Uri = "/?max_items=1".parse().expect("uri");
        let started = tokio::time::Instant::now();
        let response = streamer.handle(Invocation::get(&uri)).await;
        assert_eq!(response.status(), 200);
        // The clock is paused: only the waits in the handler move it.
        assert_eq!(
            started.elapsed(),
            SIZE_LOOKUP_GRACE,
            "the headers waited the grace, not the lookup"
        );
        assert!(response.headers().get(APPROX_ITEMS_HEADER).is_none());
        // The lookup went on after the response, past any timeout a join would have had.
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(streamer.source.cached.load(SeqCst), "the lookup finished");
        // Cached, it answers at once, and the next fresh response carries it.
        let response = streamer.handle(Invocation::get(&uri)).await;
        assert_eq!(
            response
                .headers()
                .get(APPROX_ITEMS_HEADER)
                .and_then(|v| v.to_str().ok()),
            Some("7")
        );
        assert_eq!(
            response
                .headers()
                .get(APPROX_BYTES_HEADER)
                .and_then(|v| v.to_str().ok()),
            Some("700")
        );
    }

    /// A memory table whose key-schema lookup (a `DescribeTable`) takes `delay`, or
    /// fails when `denied`; it counts the lookups.
    struct SlowKeys {
        inner: crate::dynamo::memory::MemorySource,
        delay: Duration,
        denied: bool,
        lookups: std::sync::atomic::AtomicUsize,
    }

    impl PageSource for SlowKeys {
        async fn page(
            &self,
            request: crate::dynamo::source::PageRequest,
        ) -> Result<crate::dynamo::source::Page, UpstreamError> {
            self.inner.page(request).await
        }

        async fn partition_key(
            &self,
            index: Option<&str>,
        ) -> Result<crate::format::key::KeyAttribute, UpstreamError> {
            self.lookups
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            if self.denied {
                return Err(UpstreamError::new(ErrorKind::AccessDenied, "denied"));
            }
            self.inner.partition_key(index).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_filtered_read_waits_a_bounded_time_for_the_key_and_remembers_a_denial() {
        let table = || {
            let items = (0..50)
                .map(|i| {
                    crate::format::item::Item::from([(
                        "id".to_string(),
                        aws_sdk_dynamodb::types::AttributeValue::S(format!("item-{i}")),
                    )])
                })
                .collect();
            crate::dynamo::memory::MemorySource::new(items, "id").with_filter(|_| true)
        };
        let uri: Uri = "/?max_items=3&filter=attribute_exists(id)"
            .parse()
            .expect("uri");
        // Slow: the read goes on without the key after the wait, with every item it owes.
        let streamer = Streamer::new(
            config(),
            SlowKeys {
                inner: table(),
                delay: Duration::from_secs(60),
                denied: false,
                lookups: 0.into(),
            },
        );
        let started = tokio::time::Instant::now();
        let response = streamer.handle(Invocation::get(&uri)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            started.elapsed(),
            KEY_LOOKUP_WAIT,
            "waited the bound, not the lookup"
        );
        // Denied: asked once, then remembered.
        let streamer = Streamer::new(
            config(),
            SlowKeys {
                inner: table(),
                delay: Duration::ZERO,
                denied: true,
                lookups: 0.into(),
            },
        );
        for _ in 0..3 {
            let response = streamer.handle(Invocation::get(&uri)).await;
            assert_eq!(response.status(), 200);
        }
        assert_eq!(
            streamer
                .source
                .lookups
                .load(std::sync::atomic::Ordering::SeqCst),
            1,
            "a denial is remembered"
        );
    }
}
