//! Upstream (DynamoDB) failures, sorted into the few kinds a client must tell apart.
//!
//! The original error is kept as the `source` for logs; clients only ever see the kind's
//! code and fixed message, never internal error text. Sorting SDK errors into kinds is the
//! DynamoDB adapter's job ([`crate::dynamo::error::classify`]): nothing here knows the SDK.

use std::error::Error as StdError;
use std::fmt;

/// What went wrong upstream, at the level of detail a client can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The table does not exist.
    NotFound,
    /// The index does not exist on the table.
    IndexNotFound,
    /// The credentials may not read (or write) the table.
    AccessDenied,
    /// DynamoDB throttled us and the retries did not get through.
    Throttled,
    /// DynamoDB could not be reached or failed on its side.
    Unavailable,
    /// DynamoDB did not answer in time (attempts timed out, or the deadline came first).
    TimedOut,
    /// DynamoDB rejected the request as invalid.
    InvalidRequest,
    /// S3 failed or refused a call writing an export (its retries made).
    Storage,
    /// Anything else, including bugs of ours.
    Internal,
}

impl ErrorKind {
    /// The stable code clients match on, in error bodies and trailers.
    pub fn code(self) -> &'static str {
        match self {
            Self::NotFound => "TableNotFound",
            Self::IndexNotFound => "IndexNotFound",
            Self::AccessDenied => "AccessDenied",
            Self::Throttled => "Throttled",
            Self::Unavailable => "Unavailable",
            Self::TimedOut => "TimedOut",
            Self::InvalidRequest => "InvalidRequest",
            Self::Storage => "S3Error",
            Self::Internal => "Internal",
        }
    }

    /// A message safe to show a client: fixed text, no upstream detail.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotFound => "the table does not exist",
            Self::IndexNotFound => "the index does not exist on this table",
            Self::AccessDenied => "access to the table was denied",
            Self::Throttled => "DynamoDB throttled the request and retries did not get through",
            Self::Unavailable => "DynamoDB is unavailable",
            Self::TimedOut => "DynamoDB did not answer in time",
            Self::InvalidRequest => "DynamoDB rejected the request",
            Self::Storage => "S3 failed or refused a write of the export",
            Self::Internal => "internal error",
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Throttled | Self::Unavailable | Self::TimedOut)
    }
}

/// An upstream failure: its kind, and the original error for the logs.
#[derive(Debug, thiserror::Error)]
pub struct UpstreamError {
    /// What a client is told.
    pub kind: ErrorKind,
    /// What the logs are told.
    #[source]
    pub source: Box<dyn StdError + Send + Sync>,
    /// Attempts beyond the first that the failed call made (throttling, transient
    /// errors, timed-out attempts), so a failure's retries are counted too.
    pub retries: u64,
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.kind.message())
    }
}

impl UpstreamError {
    /// An error of `kind` caused by `source`.
    pub fn new(kind: ErrorKind, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            kind,
            source: source.into(),
            retries: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_display_text_is_the_safe_text() {
        let err = UpstreamError::new(ErrorKind::NotFound, "secret internal detail");
        assert_eq!(err.to_string(), "TableNotFound: the table does not exist");
    }
}
