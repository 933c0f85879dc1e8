//! Case 8 (`BENCH_CASES=load scripts/bench.sh`): the loader, in one run.
//!
//! - items/s of `seeder --from FILE` (the typed JSON of 20k seeder records) against the
//!   seeder writing the same 20k records generated, concurrency 4, `REPS` runs each;
//! - the loader's peak RSS (`VmHWM`, read from `/proc` every 10 ms while it runs) loading
//!   20k and 200k items from a file: memory bounded by the batches in flight stays flat;
//! - the whole copy, `curl '<streamer>?format=dynamodb' | seeder --from -` and
//!   `scanstream pull --format dynamodb --trailer | seeder --from -`, against the seeder
//!   alone writing the same number of records, the streamer under
//!   `cargo lambda watch --release`;
//! - `scanstream pull --layout export -o DIR` against `scanstream pull -o FILE` (the
//!   export's gzip and key check), and the restore `seeder --from DIR` against the seeder
//!   alone.
//!
//! Results in `bench-results/load.md` and `load.json`.

use crate::cases::{local_client, seed, seeder_command, start_watch, streamer_url, warm_up};
use crate::report::{Stat, machine};
use crate::services::Service;
use crate::{REPS, ROOT, Result};
use scanstream::format::json::Format;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One timed run of the seeder binary.
#[derive(Debug, Clone, Copy, Serialize)]
struct Run {
    items: u64,
    seconds: f64,
    peak_rss_bytes: u64,
}

impl Run {
    fn items_per_s(&self) -> f64 {
        self.items as f64 / self.seconds
    }
}

/// The peak RSS so far of a running process, from `/proc/PID/status`.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Waits for `child`, sampling its peak RSS until it exits; fails if it fails.
fn watch_child(mut child: Child, started: Instant, items: u64, what: &str) -> Result<Run> {
    let pid = child.id();
    let mut peak = 0;
    loop {
        if let Some(rss) = peak_rss(pid) {
            peak = peak.max(rss);
        }
        if let Some(status) = child.try_wait()? {
            let seconds = started.elapsed().as_secs_f64();
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
            }
            if !status.success() {
                return Err(format!("{what}: {stderr}").into());
            }
            return Ok(Run {
                items,
                seconds,
                peak_rss_bytes: peak,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes the typed JSON of records `0..count` of `seed` to a file under target/.
fn records_file(seed: u64, count: u64) -> Result<PathBuf> {
    let path = Path::new(ROOT).join(format!("target/bench-load-{seed}-{count}.ndjson"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut line = Vec::new();
    for index in 0..count {
        line.clear();
        Format::Dynamodb.write_line(
            &mut line,
            &scanstream::generate::record::record(seed, index),
        );
        out.write_all(&line)?;
    }
    out.flush()?;
    Ok(path)
}

async fn drop_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    client.delete_table().table_name(table).send().await?;
    Ok(())
}

/// `seeder --table TABLE --create-table --concurrency 4`: every load here writes a fresh
/// table the same way, its standard error piped for [`watch_child`].
fn load_into(ddb: &Service, table: &str) -> Command {
    let mut command = seeder_command(ddb);
    command
        .args(["--table", table, "--create-table", "--concurrency", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// `seeder --from path` into a fresh table.
fn load_run(ddb: &Service, table: &str, path: &Path, items: u64) -> Result<Run> {
    let started = Instant::now();
    let child = load_into(ddb, table).arg("--from").arg(path).spawn()?;
    watch_child(child, started, items, "seeder --from")
}

/// `seeder --count items --seed seed` into a fresh table.
fn generated_run(ddb: &Service, table: &str, seed: u64, items: u64) -> Result<Run> {
    let started = Instant::now();
    let child = load_into(ddb, table)
        .args(["--count", &items.to_string(), "--seed", &seed.to_string()])
        .spawn()?;
    watch_child(child, started, items, "seeder --count")
}

/// `curl -sN url | seeder --from -` into a fresh table, timed from curl's start.
fn copy_run(ddb: &Service, table: &str, url: &str, items: u64) -> Result<Run> {
    let started = Instant::now();
    let mut curl = Command::new("curl")
        .args(["-sSfN", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let body = curl.stdout.take().ok_or("curl without stdout")?;
    let child = load_into(ddb, table)
        .args(["--from", "-"])
        .stdin(Stdio::from(body))
        .spawn()?;
    let run = watch_child(child, started, items, "curl | seeder --from -")?;
    if !curl.wait()?.success() {
        return Err("curl failed".into());
    }
    Ok(run)
}

/// The release `scanstream` with `args`, for a copy or an export.
fn scanstream_command(args: &[&str]) -> Command {
    let mut command = Command::new(Path::new(ROOT).join("target/release/scanstream"));
    command.args(args).stdin(Stdio::null());
    command
}

/// The client's usual read of the bench table: K = 2 invocations of 2 segments.
const PULL: [&str; 6] = ["--invocations", "2", "--segments", "2", "--limit", "100"];

/// `scanstream pull url --format dynamodb --trailer | seeder --from -` into a fresh table,
/// timed from the client's start.
fn pull_copy_run(ddb: &Service, table: &str, url: &str, items: u64) -> Result<Run> {
    let started = Instant::now();
    let mut pull = scanstream_command(&["pull", url, "--format", "dynamodb", "--trailer"])
        .args(PULL)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let body = pull.stdout.take().ok_or("scanstream without stdout")?;
    let child = load_into(ddb, table)
        .args(["--from", "-"])
        .stdin(Stdio::from(body))
        .spawn()?;
    let run = watch_child(child, started, items, "scanstream pull | seeder --from -")?;
    if !pull.wait()?.success() {
        return Err("scanstream pull failed".into());
    }
    Ok(run)
}

/// `scanstream pull url --format dynamodb` into `out` (a file, or with `--layout export`
/// a directory), from nothing.
fn pull_run(url: &str, out: &Path, extra: &[&str], items: u64) -> Result<Run> {
    let _ = std::fs::remove_dir_all(out);
    let _ = std::fs::remove_file(out);
    let started = Instant::now();
    let child = scanstream_command(&["pull", url, "--format", "dynamodb"])
        .args(PULL)
        .args(extra)
        .arg("-o")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    watch_child(child, started, items, "scanstream pull -o")
}

/// Everything of case 8, written to `out_dir`.
pub async fn run(out_dir: &Path) -> Result<()> {
    const SMALL: u64 = 20_000;
    const LARGE: u64 = 200_000;
    let ddb = Service::dynamodb_local(Path::new(ROOT).join("target/bench-dynamodb-local.log"))?;
    let client = local_client(&ddb.endpoint()).await;
    let small = records_file(7, SMALL)?;
    let large = records_file(8, LARGE)?;

    // DynamoDB Local's JIT warms on its first writes (the first 20k took twice as long
    // as the next): untimed loads of both kinds first. The first measured run may still
    // be slower (it was, once): the table shows every run's ratio.
    generated_run(&ddb, "bench-load-warm-up", 9, SMALL)?;
    drop_table(&client, "bench-load-warm-up").await?;
    load_run(&ddb, "bench-load-warm-up-file", &small, SMALL)?;
    drop_table(&client, "bench-load-warm-up-file").await?;

    // Loaded against generated, the same records, in turns so drift hits both.
    let (mut loaded, mut generated) = (Vec::new(), Vec::new());
    for rep in 0..REPS {
        for turn in 0..2 {
            if (rep + turn) % 2 == 0 {
                let table = format!("bench-load-file-{rep}");
                loaded.push(load_run(&ddb, &table, &small, SMALL)?);
                drop_table(&client, &table).await?;
            } else {
                let table = format!("bench-load-gen-{rep}");
                generated.push(generated_run(&ddb, &table, 7, SMALL)?);
                drop_table(&client, &table).await?;
            }
        }
        eprintln!("load vs generated, run {rep} done");
    }

    // Peak RSS at 20k and 200k items.
    let mut memory = Vec::new();
    for (path, items) in [(&small, SMALL), (&large, LARGE)] {
        let table = format!("bench-load-rss-{items}");
        let run = load_run(&ddb, &table, path, items)?;
        drop_table(&client, &table).await?;
        eprintln!(
            "load {items}: peak RSS {:.1} MB",
            run.peak_rss_bytes as f64 / 1e6
        );
        memory.push(run);
    }

    // The whole copy through the streamer against the seeder alone.
    let source = seed(&ddb, "bench-load-source-20k", SMALL)?;
    let watch = start_watch(&ddb, &source, &[])?;
    warm_up(&watch).await?;
    let url = streamer_url(&watch, "format=dynamodb&limit=100&segments=4");
    let base = streamer_url(&watch, "");
    let base = base.trim_end_matches('?');
    let (mut copies, mut pulled_copies, mut alone) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..REPS {
        for turn in 0..3 {
            match (rep + turn) % 3 {
                0 => {
                    let table = format!("bench-load-copy-{rep}");
                    copies.push(copy_run(&ddb, &table, &url, SMALL)?);
                    drop_table(&client, &table).await?;
                }
                1 => {
                    let table = format!("bench-load-pullcopy-{rep}");
                    pulled_copies.push(pull_copy_run(&ddb, &table, base, SMALL)?);
                    drop_table(&client, &table).await?;
                }
                _ => {
                    let table = format!("bench-load-alone-{rep}");
                    alone.push(generated_run(&ddb, &table, 42, SMALL)?);
                    drop_table(&client, &table).await?;
                }
            }
        }
        eprintln!("copy vs seeder alone, run {rep} done");
    }

    // The export: written against a file of the same lines, restored against the seeder.
    let target = Path::new(ROOT).join("target");
    let (export_dir, lines_file) = (
        target.join("bench-export"),
        target.join("bench-export.ndjson"),
    );
    let (mut exports, mut files, mut restores, mut restore_alone) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rep in 0..REPS {
        // In turns, as above; the restore reads the export, so it comes after it.
        let export_first = rep % 2 == 0;
        if !export_first {
            files.push(pull_run(base, &lines_file, &[], SMALL)?);
            let table = format!("bench-load-restore-alone-{rep}");
            restore_alone.push(generated_run(&ddb, &table, 42, SMALL)?);
            drop_table(&client, &table).await?;
        }
        exports.push(pull_run(
            base,
            &export_dir,
            &["--layout", "export", "--key", "id:S"],
            SMALL,
        )?);
        let table = format!("bench-load-restore-{rep}");
        restores.push(load_run(&ddb, &table, &export_dir, SMALL)?);
        drop_table(&client, &table).await?;
        if export_first {
            files.push(pull_run(base, &lines_file, &[], SMALL)?);
            let table = format!("bench-load-restore-alone-{rep}");
            restore_alone.push(generated_run(&ddb, &table, 42, SMALL)?);
            drop_table(&client, &table).await?;
        }
        eprintln!("export and restore, run {rep} done");
    }
    let export_bytes: u64 = std::fs::read_dir(export_dir.join("AWSDynamoDB"))?
        .flatten()
        .flat_map(|e| {
            std::fs::read_dir(e.path().join("data"))
                .into_iter()
                .flatten()
        })
        .flatten()
        .filter_map(|f| f.metadata().ok().map(|m| m.len()))
        .sum();
    let lines_bytes = std::fs::metadata(&lines_file)?.len();
    drop(watch);

    let rate = |runs: &[Run]| Stat::of(runs.iter().map(Run::items_per_s));
    // The median of the per-run ratios, with the runs' own: one slow run shows.
    let ratio = |a: &[Run], b: &[Run]| {
        let ratios: Vec<f64> = a
            .iter()
            .zip(b)
            .map(|(a, b)| a.items_per_s() / b.items_per_s())
            .collect();
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        format!("{:.2}x (runs {})", Stat::of(ratios).median, each.join(", "))
    };
    let stat = |s: &Stat| format!("{:.0} ({:.0}-{:.0})", s.median, s.min, s.max);
    let mut text = format!(
        "Machine: {}\n\nRelease binaries, DynamoDB Local in memory, concurrency 4, {REPS} runs each (median, min-max). Command: `BENCH_CASES=load scripts/bench.sh`.\n\n",
        machine()
    );
    text += &format!(
        "### Load from a file against generated records ({SMALL} seeder records, the same items)\n\n| writer | items/s | ratio (median of the per-run ratios) |\n|---|---|---|\n| `seeder --from FILE` | {} | {} |\n| `seeder --count` | {} | 1.00x |\n\n",
        stat(&rate(&loaded)),
        ratio(&loaded, &generated),
        stat(&rate(&generated)),
    );
    text += "### Peak RSS of `seeder --from FILE`\n\n| items | file bytes | peak RSS | items/s |\n|---|---|---|---|\n";
    for (run, path) in memory.iter().zip([&small, &large]) {
        text += &format!(
            "| {} | {} | {:.1} MB | {:.0} |\n",
            run.items,
            std::fs::metadata(path)?.len(),
            run.peak_rss_bytes as f64 / 1e6,
            run.items_per_s()
        );
    }
    text += &format!(
        "\n### The whole copy against the seeder alone ({SMALL} items)\n\n| writer | items/s | ratio (median of the per-run ratios) |\n|---|---|---|\n| `curl '<streamer>?format=dynamodb&limit=100&segments=4' \\| seeder --from -` | {} | {} |\n| `seeder --count` | {} | 1.00x |\n",
        stat(&rate(&copies)),
        ratio(&copies, &alone),
        stat(&rate(&alone)),
    );
    text += &format!(
        "| `scanstream pull --format dynamodb --trailer {} \\| seeder --from -` | {} | {} |\n",
        PULL.join(" "),
        stat(&rate(&pulled_copies)),
        ratio(&pulled_copies, &alone),
    );
    text += &format!(
        "\n### Export and restore ({SMALL} items)\n\n| run | items/s | ratio (median of the per-run ratios) |\n|---|---|---|\n| `scanstream pull --format dynamodb {} -o FILE` ({lines_bytes} bytes) | {} | 1.00x |\n| `scanstream pull --format dynamodb {} --layout export --key id:S -o DIR` ({export_bytes} bytes of gzip) | {} | {} |\n| `seeder --from DIR` (the export) | {} | {} of `seeder --count` |\n| `seeder --count` | {} | 1.00x |\n",
        PULL.join(" "),
        stat(&rate(&files)),
        PULL.join(" "),
        stat(&rate(&exports)),
        ratio(&exports, &files),
        stat(&rate(&restores)),
        ratio(&restores, &restore_alone),
        stat(&rate(&restore_alone)),
    );
    println!("{text}");
    std::fs::write(out_dir.join("load.md"), &text)?;
    let json = serde_json::json!({
        "loaded": loaded, "generated": generated, "memory": memory,
        "copy": copies, "pull_copy": pulled_copies, "alone": alone,
        "export": exports, "pull_file": files, "restore": restores,
        "restore_alone": restore_alone,
        "export_bytes": export_bytes, "lines_bytes": lines_bytes,
    });
    std::fs::write(
        out_dir.join("load.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    Ok(())
}
