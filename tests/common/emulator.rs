//! `cargo lambda watch`, started and stopped by a test: the real Function URL emulator.

use super::services::Service;
use std::path::PathBuf;

/// A running `cargo lambda watch` serving this package's binaries.
pub struct Emulator(Service);

impl Emulator {
    /// Starts the emulator with `env` passed to the functions, and waits until it listens.
    pub fn start(name: &str, env: &[(&str, String)]) -> Self {
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("watch-{name}.log"));
        Self(
            Service::lambda_watch(env, false, log)
                .unwrap_or_else(|err| panic!("cargo lambda watch: {err}")),
        )
    }

    /// The Function URL of `function` with `query`.
    pub fn url(&self, function: &str, query: &str) -> String {
        self.0.url(function, query)
    }

    /// What the emulator and functions logged so far.
    pub fn log_text(&self) -> String {
        self.0.log_text()
    }
}
