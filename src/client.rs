//! Builds the DynamoDB client once, through the SDK's standard configuration chain.
//!
//! Credentials, region and endpoint all come from the usual places (environment, profile,
//! instance role). `AWS_ENDPOINT_URL_DYNAMODB` or `AWS_ENDPOINT_URL` point the client at
//! DynamoDB Local; nothing here is specific to this project.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;

/// Loads the shared AWS configuration and builds a DynamoDB client from it, with the
/// SDK's standard retry mode (exponential backoff with jitter on throttling and
/// transient errors).
///
/// Call this once at cold start and share the client: it holds the connection pool.
pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    dynamodb_with_attempts(3).await
}

/// As [`dynamodb`], making at most `max_attempts` attempts per call.
pub async fn dynamodb_with_attempts(max_attempts: u32) -> aws_sdk_dynamodb::Client {
    let retry = RetryConfig::standard().with_max_attempts(max_attempts.max(1));
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&shared)
}
