//! The shape of a read: projection, consistency, index, Query, filter and count. A cursor
//! carries it, so a resumed read returns the same kind of items.

use crate::format::item::Value;
use crate::format::key::KeyValue;

/// What a read returns, beyond "every item of the table": the parameters that shape the
/// result. A cursor carries them, so a resumed read returns the same kind of items.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadShape {
    /// Top-level attributes to return (a projection); empty means all.
    pub fields: Vec<String>,
    /// Strongly consistent reads.
    pub consistent: bool,
    /// Read this global secondary index instead of the table.
    pub index: Option<String>,
    /// Query partitions (their values are per position, in the plan and the cursor)
    /// instead of scanning segments.
    pub query: Option<QueryShape>,
    /// A filter expression applied by DynamoDB to what it read.
    pub filter: Option<Filter>,
    /// Count the items (DynamoDB's `Select=COUNT`) instead of returning them.
    pub count: bool,
}

/// What a Query of each partition looks like: the key attribute, an optional sort-key
/// condition, and the order.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryShape {
    /// The partition key attribute of the table or index.
    pub key: String,
    /// The partitions read, one per position of the plan (and of the cursor).
    pub partitions: Vec<KeyValue>,
    /// How many partitions are queried at once (`segments`).
    pub concurrency: u32,
    /// A condition on the sort key, when one was asked for.
    pub sort: Option<SortCondition>,
    /// Newest first: `ScanIndexForward=false`.
    pub descending: bool,
}

/// One condition on the sort key of a Query, typed by the key schema.
#[derive(Debug, Clone, PartialEq)]
pub struct SortCondition {
    /// The sort key attribute.
    pub key: String,
    /// The comparison.
    pub op: SortOp,
    /// The value compared with (the lower bound, for `Between`).
    pub value: KeyValue,
    /// The upper bound, for `Between` only.
    pub to: Option<KeyValue>,
}

/// The comparisons a key condition allows on a sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOp {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `begins_with`
    Prefix,
    /// `BETWEEN ... AND ...`, inclusive.
    Between,
}

impl SortOp {
    /// Every comparison, each with the short name the cursor stores it under.
    pub const ALL: &'static [(SortOp, &'static str)] = &[
        (Self::Eq, "eq"),
        (Self::Lt, "lt"),
        (Self::Le, "le"),
        (Self::Gt, "gt"),
        (Self::Ge, "ge"),
        (Self::Prefix, "prefix"),
        (Self::Between, "between"),
    ];

    /// The short name (`eq`, `lt`, ..., `between`).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(op, _)| *op == self)
            .map_or("eq", |(_, name)| name)
    }

    /// The comparison called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(op, _)| *op)
    }
}

/// A filter expression in DynamoDB's own language, with its placeholders. Values are
/// never spliced into the expression: they travel as `ExpressionAttributeValues`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The expression, as DynamoDB writes it (`#s = :v AND size(#n) > :len`).
    pub expression: String,
    /// Name placeholders (`#s`) to attribute names.
    pub names: std::collections::BTreeMap<String, String>,
    /// Value placeholders (`:v`) to typed values.
    pub values: std::collections::BTreeMap<String, Value>,
}

/// Every placeholder scanstream generates (for the projection and the key condition)
/// begins with this, after its `#` or `:`; user placeholders may not, so they never
/// collide.
pub const RESERVED_PLACEHOLDER_PREFIX: &str = "scanstream";
