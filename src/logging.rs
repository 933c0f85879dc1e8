//! Logging, set up once per process: Lambda's format inside Lambda (JSON when the
//! function's `LoggingConfig` says so, as `template.yml` does), plain text on standard
//! error everywhere else. `RUST_LOG` (or `AWS_LAMBDA_LOG_LEVEL`) sets the level. [`exit`]
//! ends every binary the same way: one line per error, no backtrace.

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

/// Ends `main`: an error prints as one line, `error: ` and its causes, on standard error,
/// and the status is 1. Returning the error from `main` instead would print its `Debug`
/// form, with a stack backtrace whenever `RUST_BACKTRACE` is set, as it often is.
pub fn exit(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
