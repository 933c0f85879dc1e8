//! Builds the DynamoDB client once, through the SDK's standard configuration chain.
//!
//! Credentials, region and endpoint all come from the usual places (environment, profile,
//! instance role). `AWS_ENDPOINT_URL_DYNAMODB` or `AWS_ENDPOINT_URL` point the client at
//! DynamoDB Local; nothing here is specific to this project.

use aws_config::BehaviorVersion;

/// Loads the shared AWS configuration and builds a DynamoDB client from it.
///
/// Call this once at cold start and share the client: it holds the connection pool.
pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
    aws_sdk_dynamodb::Client::new(&shared)
}
