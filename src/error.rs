//! Upstream (DynamoDB) failures, sorted into the few kinds a client must tell apart.
//!
//! The SDK error is kept as the `source` for logs; clients only ever see the kind's code
//! and fixed message, never internal error text.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
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
    /// DynamoDB rejected the request as invalid.
    InvalidRequest,
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
            Self::InvalidRequest => "InvalidRequest",
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
            Self::InvalidRequest => "DynamoDB rejected the request",
            Self::Internal => "internal error",
        }
    }

    /// The HTTP status for this failure when it happens before the first byte.
    pub fn status(self) -> u16 {
        match self {
            Self::NotFound | Self::IndexNotFound => 404,
            Self::AccessDenied => 403,
            Self::Throttled => 429,
            Self::Unavailable => 503,
            Self::InvalidRequest => 400,
            Self::Internal => 500,
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Throttled | Self::Unavailable)
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
        }
    }

    /// Sorts an SDK error by its transport failure or service error code.
    pub fn from_sdk<E, R>(err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        let kind = match &err {
            SdkError::DispatchFailure(_)
            | SdkError::TimeoutError(_)
            | SdkError::ResponseError(_) => ErrorKind::Unavailable,
            SdkError::ServiceError(_) => kind_of_code(err.code()),
            _ => ErrorKind::Internal,
        };
        Self::new(kind, err)
    }
}

/// DynamoDB error codes by kind; the list follows the DynamoDB API reference.
fn kind_of_code(code: Option<&str>) -> ErrorKind {
    match code {
        Some("ResourceNotFoundException") => ErrorKind::NotFound,
        Some(
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "MissingAuthenticationTokenException"
            | "ExpiredTokenException",
        ) => ErrorKind::AccessDenied,
        Some(
            "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded"
            | "ThrottlingException",
        ) => ErrorKind::Throttled,
        Some("InternalServerError" | "ServiceUnavailable") => ErrorKind::Unavailable,
        Some("ValidationException") => ErrorKind::InvalidRequest,
        _ => ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_kinds_clients_act_on() {
        assert_eq!(
            kind_of_code(Some("ResourceNotFoundException")),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind_of_code(Some("AccessDeniedException")),
            ErrorKind::AccessDenied
        );
        assert_eq!(
            kind_of_code(Some("ProvisionedThroughputExceededException")),
            ErrorKind::Throttled
        );
        assert_eq!(kind_of_code(Some("SomethingNew")), ErrorKind::Internal);
        assert_eq!(kind_of_code(None), ErrorKind::Internal);
    }

    #[test]
    fn the_display_text_is_the_safe_text() {
        let err = UpstreamError::new(ErrorKind::NotFound, "secret internal detail");
        assert_eq!(err.to_string(), "TableNotFound: the table does not exist");
        assert_eq!(ErrorKind::NotFound.status(), 404);
    }
}
