//! The `scanstream` command line, one module per verb over the parts they share:
//!
//! - [`pull`]: one table read over many invocations of the streamer, exactly once.
//! - [`changes`]: the table's changes from a time on, exactly once, or followed.
//! - [`seed`]: the seeder function over many invocations.
//! - [`plan`]: what a full read will take and cost, before it starts.
//! - [`seeder`]: the seeder's own command line (generate or load, on this machine).
//! - [`args`]: the flags every verb shares.
//! - [`transport`]: sign, send, and read the status of a call to a Function URL.
//! - [`output`]: the committed output, its checkpoint, spools, locks, the export layout.
//! - [`progress`]: the bar, or plain lines, while a verb runs.
//! - [`pace`]: a slice's read rate (`--max-rcu`), and calls at once after a 429.

pub mod args;
pub mod changes;
pub mod output;
pub mod pace;
pub mod plan;
pub mod progress;
pub mod pull;
pub mod seed;
pub mod seeder;
pub mod transport;

use clap::{Parser, Subcommand};
use plan::PlanArgs;
use pull::args::PullArgs;
use seed::SeedArgs;

/// Read a whole DynamoDB table through the scanstream function, spread over many
/// invocations, exactly once.
#[derive(Debug, Parser)]
#[command(name = "scanstream", version)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read every item of the table behind the streamer at URL into a file.
    Pull(Box<PullArgs>),
    /// Read the table's changes from a time on (a snapshot's start) into a file, or
    /// follow them.
    Changes(Box<changes::ChangesArgs>),
    /// Seed the table through the seeder function at URL, several invocations at once.
    Seed(SeedArgs),
    /// Before a big read: what reading the table behind the streamer at URL will take and
    /// cost, from its approximate size and one small sample call.
    Plan(PlanArgs),
}

/// Runs a command; an error means a non-zero exit status.
pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Pull(args) => pull::run(*args).await,
        Command::Changes(args) => changes::run(*args).await,
        Command::Seed(args) => seed::run(args).await,
        Command::Plan(args) => plan::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{Compress, Sign};
    use crate::cli::plan::pull_options;
    use crate::cli::pull::args::{export_key, read_options};
    use crate::cli::pull::options::PullOptions;
    use crate::cli::pull::{options, slice_name};
    use clap::CommandFactory;
    use std::time::Duration;

    #[test]
    fn help_says_what_the_client_is_for() {
        let about = Args::command().get_about().map(ToString::to_string);
        assert!(
            about.is_some_and(|a| a.starts_with("Read a whole DynamoDB table")),
            "the doc comment, not the package's description"
        );
    }

    #[test]
    fn quiet_is_a_flag_of_pull_and_seed_and_plan_aims_at_ten_minutes() {
        let parse = |args: &[&str]| Args::try_parse_from(args).expect("valid").command;
        let Command::Pull(pull) = parse(&["scanstream", "pull", "http://x/", "-q"]) else {
            panic!("a pull");
        };
        assert!(pull.quiet);
        let Command::Seed(seed) =
            parse(&["scanstream", "seed", "http://x/", "--count", "5", "--quiet"])
        else {
            panic!("a seed");
        };
        assert!(seed.quiet);
        let Command::Plan(plan) = parse(&["scanstream", "plan", "http://x/"]) else {
            panic!("a plan");
        };
        assert_eq!(plan.target, Duration::from_secs(600));
        assert_eq!(
            (plan.sample_items, plan.share, plan.capacity),
            (1000, 50, None)
        );
    }

    #[test]
    fn the_plan_s_options_go_into_its_suggested_pull_and_pull_takes_them() {
        let parse = |args: &[&str]| Args::try_parse_from(args).expect("valid").command;
        let Command::Plan(plan) = parse(&[
            "scanstream",
            "plan",
            "http://x/",
            "--index",
            "by-status",
            "--consistent",
            "--fields",
            "id,status",
            "--compress",
            "none",
            "--sign",
            "always",
            "--region",
            "eu-west-1",
            "--target",
            "1h",
        ]) else {
            panic!("a plan");
        };
        let words = pull_options(&plan);
        assert_eq!(
            words,
            [
                "--index",
                "by-status",
                "--consistent",
                "--fields",
                "id,status",
                "--compress",
                "none",
                "--sign",
                "always",
                "--region",
                "eu-west-1"
            ]
        );
        let mut pull_args = vec!["scanstream", "pull", "http://x/"];
        pull_args.extend(words.iter().map(String::as_str));
        let Command::Pull(pull) = parse(&pull_args) else {
            panic!("a pull");
        };
        assert_eq!(pull.index.as_deref(), Some("by-status"));
        assert_eq!(pull.fields.as_deref(), Some("id,status"));
        assert!(pull.consistent);
        assert!(matches!(pull.compress, Compress::None));
        assert!(matches!(pull.signing.sign, Sign::Always));
        assert_eq!(pull.signing.region.as_deref(), Some("eu-west-1"));
        // The defaults add nothing.
        let Command::Plan(plain) = parse(&["scanstream", "plan", "http://x/"]) else {
            panic!("a plan");
        };
        assert!(pull_options(&plain).is_empty());
    }

    #[test]
    fn max_rcu_is_shared_between_the_invocations() {
        let args = Args::try_parse_from([
            "scanstream",
            "pull",
            "http://127.0.0.1:9/",
            "--invocations",
            "4",
            "--max-rcu",
            "100",
        ])
        .expect("valid");
        let Command::Pull(pull) = args.command else {
            panic!("a pull");
        };
        let options = options(&pull).expect("options");
        assert_eq!(options.rcu_share, Some(25.0));
        assert!(
            options
                .delivery
                .contains(&("max_rcu".to_string(), "25.000000".to_string()))
        );
    }

    #[test]
    fn negative_numbers_are_keys_and_sort_key_values() {
        let args = Args::try_parse_from([
            "scanstream",
            "pull",
            "http://127.0.0.1:9/",
            "--pk",
            "-5",
            "--sk-from",
            "-30",
            "--sk-to",
            "-1.5",
        ])
        .expect("negative numbers are values");
        let Command::Pull(pull) = args.command else {
            panic!("a pull");
        };
        let read = read_options(&pull).expect("valid");
        assert!(
            read.params
                .contains(&("sk_from".to_string(), "-30".to_string()))
        );
        assert!(
            read.params
                .contains(&("sk_to".to_string(), "-1.5".to_string()))
        );
        assert_eq!(
            read.partitions.map(|p| p.slice(0).to_vec()),
            Some(vec!["-5".to_string()])
        );
    }

    /// A pull of a loopback URL with `extra` flags, and its options when they parse.
    fn pull_with(extra: &[&str]) -> Result<PullOptions, String> {
        let args = Args::try_parse_from(
            ["scanstream", "pull", "http://127.0.0.1:9/"]
                .iter()
                .chain(extra),
        )
        .map_err(|e| e.to_string())?;
        let Command::Pull(pull) = args.command else {
            return Err("not a pull".into());
        };
        options(&pull).map_err(|e| e.to_string())
    }

    #[test]
    fn throttle_patience_is_ten_minutes_unless_told_and_bounded() {
        let patience = |extra: &[&str]| pull_with(extra).map(|o| o.throttle_patience);
        assert_eq!(patience(&[]), Ok(Duration::from_secs(600)));
        for bad in ["0", "86401", "-1", "ten"] {
            assert!(
                patience(&["--throttle-patience", bad]).is_err(),
                "--throttle-patience {bad} is refused"
            );
        }
        assert_eq!(
            patience(&["--throttle-patience", "86400"]),
            Ok(Duration::from_secs(86_400))
        );
    }

    /// `pull`'s arguments from `extra` after a loopback URL.
    fn pull_args(extra: &[&str]) -> PullArgs {
        let args = ["scanstream", "pull", "http://127.0.0.1:9/"]
            .iter()
            .chain(extra);
        match Args::try_parse_from(args).expect("valid").command {
            Command::Pull(pull) => *pull,
            _ => panic!("a pull"),
        }
    }

    #[test]
    fn an_export_of_part_of_the_table_is_refused() {
        let export = [
            "--layout",
            "export",
            "--format",
            "dynamodb",
            "--key",
            "id:S",
            "-o",
            "/nowhere/x",
        ];
        assert!(export_key(&pull_args(&export)).is_ok(), "the whole table");
        let subsets: [&[&str]; 5] = [
            &["--filter", "a = :v"],
            &["--pk", "k1"],
            &["--pk-file", "keys.txt"],
            &["--pk", "k1", "--sk-gt", "5"],
            &["--pk", "k1", "--sk-from", "1", "--sk-to", "2"],
        ];
        for subset in subsets {
            let args: Vec<&str> = export.iter().chain(subset).copied().collect();
            let err = export_key(&pull_args(&args)).expect_err("a subset is no export");
            let text = err.to_string();
            for flag in subset.iter().filter(|word| word.starts_with("--")) {
                assert!(text.contains(flag), "{subset:?}: {text}");
            }
            assert!(text.contains("whole table"), "{text}");
        }
    }

    #[test]
    fn a_values_error_has_no_stray_spaces() {
        let args = pull_args(&["--filter", "a = :v", "--values", r#"{":v":{"X":"1"}}"#]);
        let text = read_options(&args).expect_err("not typed").to_string();
        assert!(!text.contains("  "), "{text:?}");
        assert!(text.contains(r#"e.g. {"S":"text"} or {"N":"1"}"#), "{text}");
    }

    #[test]
    fn a_failed_slice_is_named_by_its_keys_or_its_segments() {
        let keys: Vec<String> = ["b", "a", "c", "d", "e"].map(String::from).to_vec();
        let partitions =
            crate::cli::pull::partitions::Partitions::read(&keys, None, 2, 2).expect("keys");
        let query = slice_name(Some(&partitions), 2, 2);
        assert_eq!(query, r#"the keys 3 to 4 of 5 (sorted), from "c" to "d""#);
        assert_eq!(slice_name(None, 4, 2), "segments 4 to 5");
        let one = slice_name(Some(&partitions), 4, 2);
        assert_eq!(one, r#"the key 5 of 5 (sorted), "e""#);
    }

    #[test]
    fn idle_timeout_help_names_the_floor_of_a_count_and_a_filter() {
        let command = Args::command();
        let pull = command.find_subcommand("pull").expect("pull");
        let help = pull
            .get_arguments()
            .find(|arg| arg.get_id() == "idle_timeout")
            .and_then(|arg| arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            help.contains("--count") && help.contains("--filter") && help.contains("960 s"),
            "{help}"
        );
    }

    #[test]
    fn idle_timeout_is_ten_minutes_unless_told_and_bounded() {
        let idle = |extra: &[&str]| pull_with(extra).map(|o| o.idle_timeout);
        assert_eq!(idle(&[]), Ok(Duration::from_secs(600)));
        for bad in ["0", "3601", "-1", "1m", ""] {
            assert!(
                idle(&["--idle-timeout", bad]).is_err(),
                "--idle-timeout {bad} is refused"
            );
        }
        assert_eq!(
            idle(&["--idle-timeout", "3600"]),
            Ok(Duration::from_secs(3600))
        );
    }
}
