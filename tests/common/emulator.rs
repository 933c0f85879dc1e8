//! `cargo lambda watch`, started and stopped by a test: the real Function URL emulator.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `cargo lambda watch` serving this package's binaries.
pub struct Emulator {
    child: Child,
    port: u16,
    /// Where the emulator and the functions log; printed when a test fails.
    pub log: PathBuf,
}

impl Emulator {
    /// Starts the emulator with `env` passed to the functions, and waits until it listens.
    pub fn start(name: &str, env: &[(&str, String)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let root = env!("CARGO_MANIFEST_DIR");
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("watch-{name}.log"));
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new("cargo")
            .args([
                "lambda",
                "watch",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .args(["--ignore-changes", "--env-var", &vars.join(",")])
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group, so stopping it also stops the functions it started.
            .process_group(0)
            .spawn()
            .expect("cargo lambda is not installed: run the tests with scripts/test.sh");
        let mut emulator = Self { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = emulator.child.try_wait() {
                panic!(
                    "cargo lambda watch exited with {status}; log: {}",
                    emulator.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not listen within 120 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        emulator
    }

    /// The Function URL of `function` with `query`.
    pub fn url(&self, function: &str, query: &str) -> String {
        format!(
            "http://127.0.0.1:{}/lambda-url/{function}/?{query}",
            self.port
        )
    }

    /// What the emulator and functions logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}
