//! Builds the DynamoDB client once, through the SDK's standard configuration chain.
//!
//! Credentials, region and endpoint all come from the usual places (environment, profile,
//! instance role). `AWS_ENDPOINT_URL_DYNAMODB` or `AWS_ENDPOINT_URL` point the client at
//! DynamoDB Local; nothing here is specific to this project.
//!
//! How it waits and retries ([`CallSettings`]) is given to it: the functions read it from
//! their environment (`crate::lambda::config`), the command line takes the defaults.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use std::time::Duration;

/// How the DynamoDB client waits and retries; shared by both functions and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSettings {
    /// Attempts per DynamoDB call, the first included (`MAX_ATTEMPTS`, default 5): the
    /// SDK retries throttling, transient errors and timed-out attempts with backoff.
    pub max_attempts: u32,
    /// Longest wait for one attempt (`CALL_TIMEOUT_MS`, default 10,000): a connection
    /// that went half-open while the container was frozen costs this, then a retry.
    pub attempt_timeout: Duration,
    /// Longest wait for a call, retries and backoff included (`OPERATION_TIMEOUT_MS`,
    /// default 30,000), so a stalled DynamoDB becomes an error the client sees in time.
    pub operation_timeout: Duration,
}

impl Default for CallSettings {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
        }
    }
}

/// The adapter's handle on DynamoDB: what the jobs, the edges and the binaries hold and
/// hand to [`crate::dynamo`]'s sources, writer and table calls, so that none of them
/// holds an SDK value. Cloning it is cheap (the SDK client inside shares its pool).
#[derive(Debug, Clone)]
pub struct Dynamo(aws_sdk_dynamodb::Client);

impl Dynamo {
    /// The handle of a client built by [`dynamodb`], with its timeouts and retries.
    pub async fn connect(settings: &CallSettings) -> Self {
        Self(dynamodb(settings).await)
    }

    /// The SDK client, for the adapter's own calls.
    pub(in crate::dynamo) fn sdk(&self) -> &aws_sdk_dynamodb::Client {
        &self.0
    }
}

impl From<aws_sdk_dynamodb::Client> for Dynamo {
    /// The handle of a client built elsewhere (tests, with their own endpoint or mocks).
    fn from(client: aws_sdk_dynamodb::Client) -> Self {
        Self(client)
    }
}

/// The SDK's own default connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// Loads the shared AWS configuration and builds a DynamoDB client from it, with the
/// SDK's standard retry mode (exponential backoff with jitter on throttling, transient
/// errors and timed-out attempts) and a bound on every wait.
///
/// Without the timeouts the SDK waits for an answer as long as the connection stays
/// open: a pooled connection that went half-open while Lambda froze the container, or a
/// DynamoDB that stalls, would hold a request until Lambda kills the function, with no
/// status and no trailer.
///
/// Call this once at cold start and share the client: it holds the connection pool. The
/// binaries take it as a [`Dynamo`] ([`Dynamo::connect`]); tests take the SDK client itself
/// to set tables up.
pub async fn dynamodb(settings: &CallSettings) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&shared(settings).await)
}

/// The configuration every client of the crate is built from: the standard chain, with
/// `settings`' retries and timeouts.
pub(in crate::dynamo) async fn shared(settings: &CallSettings) -> aws_config::SdkConfig {
    let retry = RetryConfig::standard().with_max_attempts(settings.max_attempts.max(1));
    // Setting a timeout config replaces the SDK's default one, connect timeout included.
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(settings.attempt_timeout.min(CONNECT_TIMEOUT))
        .operation_attempt_timeout(settings.attempt_timeout)
        .operation_timeout(settings.operation_timeout)
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(timeouts)
        .load()
        .await
}
