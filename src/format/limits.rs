//! DynamoDB's, Lambda's and S3's limits, written once, and the few bounds of our own that
//! depend on them (each marked "Ours").
//!
//! Where DynamoDB has a quota the constant says so; where it has none, the bound is ours
//! (the cursor's worst case at cold start depends on these).

/// DynamoDB: a partition key value is at most 2,048 bytes.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
/// DynamoDB: a sort key value is at most 1,024 bytes.
pub const MAX_SORT_KEY_BYTES: usize = 1024;
/// DynamoDB: a key attribute's name is 1 to 255 bytes.
pub const MAX_KEY_NAME_BYTES: usize = 255;

/// DynamoDB: an index name has at least 3 characters.
pub const MIN_INDEX_NAME_BYTES: usize = 3;
/// DynamoDB: an index name has at most 255 characters.
pub const MAX_INDEX_NAME_BYTES: usize = 255;

/// DynamoDB: the hard ceiling on a parallel Scan's `TotalSegments`.
pub const MAX_TOTAL_SEGMENTS: u32 = 1_000_000;

/// DynamoDB: an item is at most 400 KB.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// DynamoDB: lists and maps nest at most 32 levels deep.
pub const MAX_NESTING_DEPTH: usize = 32;

/// DynamoDB: one `BatchWriteItem` call carries at most 25 requests.
pub const MAX_BATCH_WRITE_ITEMS: usize = 25;

/// DynamoDB: one `BatchWriteItem` call carries at most 16 MB.
pub const MAX_BATCH_WRITE_BYTES: usize = 16 << 20;

/// DynamoDB: the size of one read unit's item ("Capacity unit consumption for read
/// operations", Amazon DynamoDB Developer Guide): a Scan sums the sizes of the items it
/// reads and rounds up to 4 KB; a strongly consistent read costs one unit per 4 KB, an
/// eventually consistent one half.
pub const READ_UNIT_BYTES: u64 = 4096;

/// DynamoDB: an expression string is at most 4 KB.
pub const MAX_EXPRESSION_BYTES: usize = 4096;
/// DynamoDB: a single expression attribute name or value placeholder is at most
/// 255 bytes, its `#` or `:` included.
pub const MAX_PLACEHOLDER_BYTES: usize = 255;
/// Ours: name placeholders, and value placeholders, of one filter.
pub const MAX_PLACEHOLDERS: usize = 100;
/// Ours: an attribute name a placeholder stands for (the `fields` bound too).
pub const MAX_NAME_BYTES: usize = 255;
/// Ours: the `values` JSON text (DynamoDB allows 2 MB of substitutions; a cursor
/// carries them, so they are bounded far below).
pub const MAX_VALUES_BYTES: usize = 16 * 1024;

/// Lambda: the first bytes of a streamed response sent at full speed ("Bandwidth limits
/// for response streaming", AWS Lambda Developer Guide,
/// <https://docs.aws.amazon.com/lambda/latest/dg/configuration-response-streaming.html>).
pub const BURST_BYTES: u64 = 6_000_000;
/// Lambda: the rate of a streamed response after the burst (same page: "at a maximum rate
/// of 2 MBps").
pub const CAPPED_BYTES_PER_S: f64 = 2_000_000.0;
/// Lambda: the largest streamed response ("Bandwidth limits for response streaming",
/// AWS Lambda Developer Guide: "payloads up to 200 MB").
pub const LAMBDA_MAX_RESPONSE_BYTES: u64 = 200_000_000;
/// Ours: where the streamer ends a response with a cursor when `MAX_RESPONSE_BYTES` is
/// not set, under [`LAMBDA_MAX_RESPONSE_BYTES`] so the trailer always fits.
pub const STREAMER_RESPONSE_BUDGET: u64 = 150_000_000;

/// S3: a general purpose bucket's name has 3 to 63 characters ("General purpose bucket
/// naming rules", Amazon S3 User Guide).
pub const MIN_BUCKET_NAME_BYTES: usize = 3;
/// S3: see [`MIN_BUCKET_NAME_BYTES`].
pub const MAX_BUCKET_NAME_BYTES: usize = 63;
/// S3: an object key is at most 1,024 bytes.
pub const MAX_S3_KEY_BYTES: usize = 1024;
/// Ours: an export's prefix, leaving room under [`MAX_S3_KEY_BYTES`] for the
/// `AWSDynamoDB/<ExportId>/data/<file>` a prefix is followed by.
pub const MAX_S3_PREFIX_BYTES: usize = 800;
/// S3: every part of a multipart upload but the last is at least 5 MiB ("Amazon S3
/// multipart upload limits").
pub const MIN_PART_BYTES: usize = 5 << 20;
