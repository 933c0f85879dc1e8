//! The client run as its user runs it: a scratch folder for its files, the `pull` command,
//! what it printed, what it wrote (output, summary, checkpoint), and a run held until it
//! has committed enough to be killed in the middle.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A new, empty folder under the test target's scratch space, named after `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(super::unique_table(name));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// `scanstream pull URL -o OUT`, quiet but for warnings, with nothing on its standard input.
pub fn pull_to(url: &str, out: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scanstream"));
    command
        .args(["pull", url])
        .arg("-o")
        .arg(out)
        .stdin(Stdio::null())
        .env("RUST_LOG", "warn");
    command
}

/// What a finished run printed on its standard error.
pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The lines of an output file, each parsed as JSON, in their order.
pub fn output_items(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("output");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

/// The lines of an output file as they are, each with its newline.
pub fn output_lines(path: &Path) -> Vec<Vec<u8>> {
    let text = std::fs::read(path).expect("output");
    text.split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// The ids in an output file, sorted, duplicates kept.
pub fn output_ids(path: &Path) -> Vec<String> {
    super::ids(&output_items(path))
}

/// The JSON a run wrote with `--summary-json`.
pub fn read_summary(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("summary")).expect("JSON")
}

/// The items a run's checkpoint says are committed; 0 while there is no checkpoint (or
/// one being replaced).
pub fn committed_items(checkpoint: &Path) -> u64 {
    std::fs::read(checkpoint)
        .ok()
        .and_then(|text| serde_json::from_slice::<serde_json::Value>(&text).ok())
        .and_then(|c| c["committed_items"].as_u64())
        .unwrap_or(0)
}

/// Waits until `child`'s checkpoint has committed at least `items` items, so that a kill
/// lands in the middle of the run; fails if the run ends first or `within` passes.
pub fn wait_until_committed(child: &mut Child, checkpoint: &Path, items: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if committed_items(checkpoint) >= items {
            break;
        }
        assert!(Instant::now() < deadline, "no progress to kill in");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "finished before it was killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
