//! Logging, set up once per process: Lambda's format inside Lambda (JSON when the
//! function's `LoggingConfig` says so, as `template.yml` does), plain text on standard
//! error everywhere else. `RUST_LOG` (or `AWS_LAMBDA_LOG_LEVEL`) sets the level.

use tracing_subscriber::EnvFilter;

/// Installs the process's subscriber; call it first thing in `main`.
pub fn init() {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        lambda_http::tracing::init_default_subscriber();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
}
