//! A read request: the parameters of `GET /?segments=&limit=...` (or the same form-encoded
//! in a `POST` body) to a typed, validated [`StreamRequest`], from a parallel Scan or a
//! fan-out of Queries over `pk` values (with a sort-key condition and an order), either
//! one filtered or counted, fresh or resumed from a cursor.
//!
//! Every parameter is checked before anything is read, against the deployment's
//! [`Bounds`]; a refusal is a [`RequestError`]. What needs the table's key schema (the
//! `pk` values' and sort-key condition's types) is typed by [`query`] once it is read.
//!
//! - [`export`]: `to=`, an export's destination, and what an export cannot be.
//! - [`filter`]: the filter expression and its placeholders.
//! - [`query`]: the sort-key condition, and the Query typed by the key schema.
//! - [`shape`]: the projection and index, and a cursor's shape held to the same bounds.

pub mod export;
pub mod filter;
pub mod query;
pub mod shape;

use self::filter::filter;
use self::query::{MAX_PK_TEXT_BYTES, sort_request};
use self::shape::{check_cursor_shape, fields, index};
use crate::format::compress::Compression;
use crate::format::cursor::{Cursor, Position};
use crate::format::json::Format;
use crate::format::limits;
use crate::format::limits::MAX_TOTAL_SEGMENTS;
use crate::format::location::S3Location;
use crate::format::shape::{ReadShape, SortOp};
use crate::read::params::{ErrorCode, Params, RequestError, quoted};

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
    ("to", Resume::Free),
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
pub const REPEATABLE: &[&str] = &["pk"];

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
    /// Where the items go instead of the response (`to=`): an export's files, in
    /// DynamoDB JSON, compressed as `compression` says (gzip unless told).
    pub to: Option<S3Location>,
}

/// What the deployment allows a request, read once from its settings: the defaults and
/// upper bounds of the parameters, and what a cursor must match.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    /// The table every request reads; a cursor of another table is refused.
    pub table_name: String,
    /// Keys the cursors' HMAC.
    pub cursor_secret: Vec<u8>,
    /// Longest cursor accepted.
    pub max_cursor_bytes: usize,
    /// Upper bound of `segments`.
    pub max_segments: u32,
    /// `segments` when the request does not say.
    pub default_segments: u32,
    /// Upper bound of `limit`.
    pub max_limit: u32,
    /// `limit` when the request does not say (and it is not a count).
    pub default_limit: u32,
    /// Most `pk` values one request may Query (and partitions a cursor may span).
    pub max_partitions: u32,
    /// Upper bound of `max_rcu`.
    pub max_rcu: f64,
    /// `max_rcu` when the request does not say.
    pub default_max_rcu: Option<f64>,
    /// The one location exports may be written under (`EXPORT_BUCKET`, `EXPORT_PREFIX`);
    /// without it `to=` is refused.
    pub export: Option<S3Location>,
}

/// Checks every parameter of a request (whose names [`Params`] already checked against
/// [`PARAMETERS`]): values, their combinations, the cursor.
pub fn parse_request(params: &Params, bounds: &Bounds) -> Result<StreamRequest, RequestError> {
    // Where to read: from a cursor, or from the parameters. The rest may be given either way.
    let read = match params.text("cursor") {
        Some(token) => resumed(params, token, bounds)?,
        None => fresh(params, bounds)?,
    };
    let count = read.shape.count;
    let to = export::destination(params, bounds.export.as_ref())?;
    if to.is_some() {
        export::check_whole_table(params, &read.shape, !read.pks.is_empty())?;
    }
    let (format, compression) = match to {
        None => (Format::Json, Compression::None),
        Some(_) => (Format::Dynamodb, Compression::Gzip),
    };
    Ok(StreamRequest {
        segments: read.segments,
        total_segments: read.total_segments,
        segment_offset: read.segment_offset,
        positions: read.positions,
        shape: read.shape,
        pks: read.pks,
        sort: read.sort,
        descending: read.descending,
        limit: match params.optional_integer("limit", 1, bounds.max_limit)? {
            Some(limit) => limit,
            // A count sends no items, so nothing bounds its page but the 1 MB DynamoDB
            // reads for one: fewer, larger pages. `limit` still applies when given.
            None if count => COUNT_PAGE_LIMIT,
            None => bounds.default_limit,
        },
        max_items: match params.optional_integer("max_items", 1, MAX_ITEMS)? {
            Some(_) if count => {
                return Err(invalid(
                    "max_items cannot be combined with select=count: a count sends no items".into(),
                ));
            }
            max_items => max_items,
        },
        format: params.choice("format", format, Format::NAMES, Format::from_name)?,
        compression: params.choice(
            "compress",
            compression,
            Compression::NAMES,
            Compression::from_name,
        )?,
        max_rcu: params
            .positive_decimal("max_rcu", bounds.max_rcu)?
            .or(bounds.default_max_rcu),
        to,
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

/// A parameter's value is malformed, out of bounds, or does not go with another's.
fn invalid(message: String) -> RequestError {
    RequestError::new(ErrorCode::InvalidParameter, message)
}

/// A read resumed from `token`, which fixes everything but the delivery parameters.
fn resumed(params: &Params, token: &str, bounds: &Bounds) -> Result<Read, RequestError> {
    if let Some(fixed) = FIXED_BY_CURSOR.iter().find(|name| params.has(name)) {
        return Err(invalid(format!(
            "{fixed} cannot be combined with cursor: the cursor already fixes it"
        )));
    }
    let bad_cursor = |message: String| RequestError::new(ErrorCode::InvalidCursor, message);
    let cursor = Cursor::decode(token, &bounds.cursor_secret, bounds.max_cursor_bytes)
        .map_err(|err| bad_cursor(err.to_string()))?;
    if cursor.table != bounds.table_name {
        return Err(bad_cursor("cursor belongs to another table".into()));
    }
    check_cursor_shape(&cursor.shape).map_err(bad_cursor)?;
    let positions = u32::try_from(cursor.positions.len()).unwrap_or(u32::MAX);
    let segments = match &cursor.shape.query {
        Some(query) => {
            if positions > bounds.max_partitions {
                return Err(bad_cursor(format!(
                    "cursor spans {positions} partitions, more than the {} allowed",
                    bounds.max_partitions
                )));
            }
            query.concurrency
        }
        None => positions,
    };
    if segments > bounds.max_segments {
        return Err(bad_cursor(format!(
            "cursor spans {segments} segments, more than the {} allowed",
            bounds.max_segments
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
fn fresh(params: &Params, bounds: &Bounds) -> Result<Read, RequestError> {
    let pks = params.all("pk").to_vec();
    if pks.len() > bounds.max_partitions as usize {
        return Err(invalid(format!(
            "pk may be given at most {} times (MAX_PARTITIONS), got {}",
            bounds.max_partitions,
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
        bounds.default_segments.min(partitions)
    } else {
        bounds.default_segments
    };
    let segments = params.integer("segments", default_segments, 1, bounds.max_segments)?;
    if query && segments > partitions {
        return Err(invalid(format!(
            "segments must be at most the number of pk values ({partitions}) with pk: a Query reads each partition unsegmented"
        )));
    }
    let (total_segments, segment_offset) = if query {
        (partitions, 0)
    } else {
        let total = params.integer("total_segments", segments, 1, MAX_TOTAL_SEGMENTS)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What a deployment with the default settings allows (`TABLE_NAME=t`).
    pub(super) fn bounds() -> Bounds {
        Bounds {
            table_name: "t".into(),
            cursor_secret: Vec::new(),
            max_cursor_bytes: 2 << 20,
            max_segments: 64,
            default_segments: 4,
            max_limit: 1000,
            default_limit: 100,
            max_partitions: 100,
            max_rcu: 40_000.0,
            default_max_rcu: None,
            export: None,
        }
    }

    /// The request of a query string, as [`Params`] reads it.
    pub(super) fn get(query: &str) -> Result<StreamRequest, RequestError> {
        let params = Params::parse_repeatable(query, PARAMETERS, REPEATABLE)?;
        parse_request(&params, &bounds())
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
                err.code,
                ErrorCode::InvalidCursor,
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
            crate::format::item::Value::N("1".into())
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
            assert_eq!(err.code, ErrorCode::InvalidParameter, "{query}");
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
                "max_rcu",
                "to"
            ]
        );
    }
}
