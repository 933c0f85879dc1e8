//! SDK errors read once: each sorted into the [`ErrorKind`] a client can act on, with the
//! SDK's error kept as the source, so the rest of the crate deals in [`UpstreamError`]
//! kinds and never in SDK types. A read's own errors ([`classify_read`]) also tell a
//! missing index and an expression the user wrote that DynamoDB refused.

use crate::format::error::{ErrorKind, UpstreamError};
use crate::format::shape::ReadShape;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use std::error::Error as StdError;
use std::fmt;
use tracing::error;

/// Sorts an SDK error into the kind a client can act on, keeping it as the source.
///
/// - Transport failures are `Unavailable`, timed-out attempts `TimedOut`.
/// - Service errors go by their code. An unknown code falls back on the HTTP status:
///   5xx is `Unavailable` (worth retrying), 4xx `InvalidRequest`.
/// - Credentials that cannot be loaded are `Internal` (a fault of the deployment, not of
///   DynamoDB), logged as such, so the logs say "credentials", not "unavailable".
pub fn classify<E, R>(err: SdkError<E, R>) -> UpstreamError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: HttpStatus + fmt::Debug + Send + Sync + 'static,
{
    if let Some(cause) = credentials_failure(&err) {
        error!(cause = %cause, "could not load AWS credentials");
        let message = format!("could not load AWS credentials: {cause}");
        return UpstreamError::new(
            ErrorKind::Internal,
            CredentialsFailure {
                message,
                err: Box::new(err),
            },
        );
    }
    let kind = match &err {
        SdkError::TimeoutError(_) => ErrorKind::TimedOut,
        SdkError::DispatchFailure(failure) if failure.is_timeout() => ErrorKind::TimedOut,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => ErrorKind::Unavailable,
        SdkError::ServiceError(service) => {
            kind_of_code(err.code()).unwrap_or_else(|| kind_of_status(service.raw().status_code()))
        }
        _ => ErrorKind::Internal,
    };
    if let SdkError::ServiceError(service) = &err {
        let code = err.code().map_or_else(
            || format!("HTTP {}", service.raw().status_code()),
            str::to_string,
        );
        let message = err.message().unwrap_or_default().to_string();
        return UpstreamError::new(
            kind,
            ServiceRefusal {
                code,
                message,
                sdk: Box::new(err),
            },
        );
    }
    UpstreamError::new(kind, err)
}

/// An error DynamoDB answered with, shown as its code and message (`ValidationException:
/// ...`). The SDK's error is kept for the logs' `Debug` form but is not this error's
/// source: its `Display` chain (`service error: unhandled error (Code): Error { code: ..,
/// aws_request_id: .. }`) is a struct dump that an error chain printed for a user
/// (`{:#}`) would repeat after the code and message.
#[derive(Debug, thiserror::Error)]
#[error("{code}{}{message}", if message.is_empty() { "" } else { ": " })]
pub struct ServiceRefusal {
    /// DynamoDB's error code, or the HTTP status when it sent none.
    pub code: String,
    /// DynamoDB's message (may be empty).
    pub message: String,
    /// The SDK's error, for the logs.
    sdk: Box<dyn StdError + Send + Sync>,
}

/// The HTTP status of a raw response, whatever its type.
pub trait HttpStatus {
    /// The status code.
    fn status_code(&self) -> u16;
}

impl HttpStatus for HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// A credentials failure, named as one, with the SDK error behind it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct CredentialsFailure {
    message: String,
    #[source]
    err: Box<dyn StdError + Send + Sync>,
}

/// The credentials error somewhere in `err`'s chain of sources, if there is one.
fn credentials_failure<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a CredentialsError> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = next {
        if let Some(found) = current.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        next = current.source();
    }
    None
}

/// DynamoDB error codes by kind; the list follows the DynamoDB API reference.
fn kind_of_code(code: Option<&str>) -> Option<ErrorKind> {
    Some(match code? {
        "ResourceNotFoundException" => ErrorKind::NotFound,
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "MissingAuthenticationTokenException"
        | "ExpiredTokenException" => ErrorKind::AccessDenied,
        "ProvisionedThroughputExceededException"
        | "RequestLimitExceeded"
        | "ThrottlingException" => ErrorKind::Throttled,
        "InternalServerError" | "ServiceUnavailable" => ErrorKind::Unavailable,
        "ValidationException" => ErrorKind::InvalidRequest,
        _ => return None,
    })
}

/// The kind of a service error whose code we do not know, by its HTTP status.
fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        500..=599 => ErrorKind::Unavailable,
        400..=499 => ErrorKind::InvalidRequest,
        _ => ErrorKind::Internal,
    }
}

/// DynamoDB refused an expression the user wrote (a filter, or a key condition built
/// from the user's values): its message is about the user's own input and is passed on.
#[derive(Debug, thiserror::Error)]
#[error("DynamoDB rejected the expression: {message}")]
pub struct ExpressionRejected {
    /// DynamoDB's message, with anything internal (the table name, control
    /// characters) taken out and cut short.
    pub message: String,
    /// The SDK error, for the logs.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Sorts an SDK error of a read of `table`. DynamoDB reports a missing index as a validation error, so
/// that one is recognised by its message and named properly. A validation error of
/// a read with the user's own expression (a filter, a sort-key condition) is about
/// that expression: its message is kept, cleaned, for the client.
pub fn classify_read<E, R>(err: SdkError<E, R>, shape: &ReadShape, table: &str) -> UpstreamError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: HttpStatus + fmt::Debug + Send + Sync + 'static,
{
    let validation = err.code() == Some("ValidationException");
    let index_missing = shape.index.is_some()
        && validation
        && err.message().is_some_and(|m| m.contains("specified index"));
    let user_expression =
        shape.filter.is_some() || shape.query.as_ref().is_some_and(|q| q.sort.is_some());
    let message = (validation && user_expression && !index_missing)
        .then(|| err.message().map(|m| clean_message(m, table)))
        .flatten();
    let mut err = classify(err);
    if index_missing {
        err.kind = ErrorKind::IndexNotFound;
    }
    if let Some(message) = message
        && err.kind == ErrorKind::InvalidRequest
    {
        let source = std::mem::replace(&mut err.source, Box::from("moved"));
        err.source = Box::new(ExpressionRejected { message, source });
    }
    err
}

/// `message` with the table's name replaced where DynamoDB writes a table: in an ARN
/// (`table/NAME`) or after `Table: `. Nowhere else: a table called `name` must leave
/// "Attribute name is a reserved keyword" readable.
fn replace_word(message: &str, word: &str, with: &str) -> String {
    let name_char = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(word) {
        let head = &rest[..at];
        let after = rest[at + word.len()..].chars().next();
        let names_the_table = (head.ends_with("table/") || head.ends_with("Table: "))
            && !after.is_some_and(name_char);
        out.push_str(head);
        out.push_str(if names_the_table { with } else { word });
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

/// DynamoDB's message, safe to show: no table name, no control characters, at most 300
/// characters.
fn clean_message(message: &str, table: &str) -> String {
    // Only the name as a whole word (or inside an ARN's `table/NAME`): a table called
    // `name` must not turn "Attribute name is a reserved keyword" into nonsense.
    let without_table = if table.is_empty() {
        message.to_string()
    } else {
        replace_word(message, table, "<table>")
    };
    let mut clean: String = without_table
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    if without_table.chars().count() > 300 {
        clean.push_str("...");
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::scan::ScanError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    fn service_error(code: Option<&str>, status: u16) -> SdkError<ScanError, HttpResponse> {
        let mut meta = ErrorMetadata::builder().message("upstream detail");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let raw = HttpResponse::new(
            StatusCode::try_from(status).expect("status"),
            SdkBody::empty(),
        );
        SdkError::service_error(ScanError::generic(meta.build()), raw)
    }

    #[test]
    fn codes_map_to_the_kinds_clients_act_on() {
        let kind = |code, status| classify(service_error(Some(code), status)).kind;
        assert_eq!(kind("ResourceNotFoundException", 400), ErrorKind::NotFound);
        assert_eq!(kind("AccessDeniedException", 400), ErrorKind::AccessDenied);
        assert_eq!(
            kind("ProvisionedThroughputExceededException", 400),
            ErrorKind::Throttled
        );
        assert_eq!(kind("ValidationException", 400), ErrorKind::InvalidRequest);
    }

    #[test]
    fn a_refusal_prints_dynamodbs_code_and_message_once() {
        let err = anyhow::Error::from(classify(service_error(Some("ValidationException"), 400)));
        assert_eq!(
            format!("{err:#}"),
            "InvalidRequest: DynamoDB rejected the request: ValidationException: upstream detail"
        );
        let err = anyhow::Error::from(classify(service_error(None, 503)));
        assert_eq!(
            format!("{err:#}"),
            "Unavailable: DynamoDB is unavailable: HTTP 503: upstream detail"
        );
    }

    #[test]
    fn an_unknown_code_falls_back_on_the_http_status() {
        let kind = |code, status| classify(service_error(code, status)).kind;
        assert_eq!(kind(Some("SomethingNew"), 503), ErrorKind::Unavailable);
        assert_eq!(kind(Some("SomethingNew"), 500), ErrorKind::Unavailable);
        assert_eq!(kind(Some("SomethingNew"), 400), ErrorKind::InvalidRequest);
        assert_eq!(kind(None, 502), ErrorKind::Unavailable);
        assert_eq!(kind(None, 404), ErrorKind::InvalidRequest);
        assert!(ErrorKind::Unavailable.is_transient());
    }

    #[tokio::test]
    async fn missing_credentials_are_an_internal_error_that_says_credentials() {
        use aws_credential_types::provider::error::CredentialsError;
        use aws_credential_types::provider::{ProvideCredentials, future};

        #[derive(Debug)]
        struct NoCredentials;
        impl ProvideCredentials for NoCredentials {
            fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
                    "no credentials in this test",
                )))
            }
        }
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            // Never reached: signing fails first.
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(NoCredentials)
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        let err = client
            .scan()
            .table_name("t")
            .send()
            .await
            .expect_err("no credentials");
        let err = classify(err);
        assert_eq!(err.kind, ErrorKind::Internal);
        assert!(
            err.source.to_string().contains("credentials"),
            "{}",
            err.source
        );
    }

    #[test]
    fn only_the_table_name_where_dynamodb_names_a_table_is_hidden() {
        let reserved = "Attribute name is a reserved keyword; reserved keyword: name";
        assert_eq!(clean_message(reserved, "name"), reserved);
        assert_eq!(
            clean_message("arn:aws:dynamodb:eu-west-1:1:table/name is bad", "name"),
            "arn:aws:dynamodb:eu-west-1:1:table/<table> is bad"
        );
        assert_eq!(
            clean_message("Table: name not found; Table: names", "name"),
            "Table: <table> not found; Table: names"
        );
    }
}
