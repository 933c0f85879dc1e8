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

    /// [`Emulator::start`], then [`Emulator::warm`].
    pub async fn start_warm(name: &str, env: &[(&str, String)]) -> Self {
        let emulator = Self::start(name, env);
        emulator.warm().await;
        emulator
    }

    /// Makes the first call, which builds and starts the function (minutes on a loaded
    /// machine): no part of what a test measures, throttles or times.
    pub async fn warm(&self) {
        let warm = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(1200))
            .build()
            .expect("http client")
            .get(self.url("streamer", "max_items=1"))
            .send()
            .await;
        let status = warm.as_ref().map(reqwest::Response::status).ok();
        // Read to its end: a body dropped half read makes the emulator log "response
        // channel closed" for the function's next chunk.
        if let Ok(response) = warm {
            let _ = response.bytes().await;
        }
        assert_eq!(status, Some(reqwest::StatusCode::OK), "{}", self.log_text());
    }

    /// What the emulator and functions logged so far.
    pub fn log_text(&self) -> String {
        self.0.log_text()
    }
}
