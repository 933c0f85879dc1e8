//! `seeder --apply FILE|-`: a table's change lines applied ([`crate::load::apply`]), with
//! progress on standard error and a summary line on standard output.

use super::{Args, Shown, refused};
use crate::dynamo::client::Dynamo;
use crate::dynamo::writer::BatchWriter;
use crate::load::apply::{ApplyOptions, apply as apply_changes};
use crate::load::input::Source;
use anyhow::bail;
use std::time::Instant;

/// Applies the change lines of `source` to `args.table`.
pub(super) async fn apply(
    args: &Args,
    client: &Dynamo,
    writer: BatchWriter,
    source: Source,
) -> anyhow::Result<()> {
    if matches!(source, Source::Directory(_)) {
        bail!("--apply takes a file of change lines or `-`, not a directory");
    }
    let name = source.name();
    let options = ApplyOptions {
        table: args.table.clone(),
        source,
        checkpoint: args.checkpoint.clone(),
        workers: usize::from(args.concurrency),
        allow_incomplete: args.allow_incomplete,
    };
    let started = Instant::now();
    let mut shown = Shown(None);
    let outcome = apply_changes(client, writer, &options, &mut shown).await;
    if let Some(progress) = &shown.0 {
        progress.finish();
    }
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err) => return Err(refused(&name, err)),
    };
    let report = &outcome.report;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(through) = outcome.resumed_through {
        eprintln!("resuming from the checkpoint: lines up to {through} were applied before");
    }
    println!(
        "{}: {} changes ({} puts, {} deletes) applied in {} writes (a key's changes within \
         one batch are one write) in {seconds:.2} s; batches {}, retries {}, unprocessed \
         re-sent {}",
        args.table,
        outcome.changes,
        outcome.puts,
        outcome.deletes,
        report.written,
        report.batches,
        report.retries,
        report.unprocessed_resent
    );
    if !report.is_complete() {
        let why = report
            .error_detail
            .as_deref()
            .or(report.error.map(|kind| kind.message()))
            .unwrap_or("unknown");
        bail!(
            "a batch was not applied ({why}), and applying stopped there: a key's later \
             changes must not pass an earlier one; keys of the batch, first: {}; running it \
             again is safe",
            report
                .failed_keys
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(why) = &outcome.aborted {
        bail!("applying stopped short: {why}; running it again is safe");
    }
    if let Some(line) = &outcome.stopped {
        bail!("{name}: stopped at a bad line ({line}); the changes before it were applied");
    }
    if let Some(why) = &outcome.incomplete {
        if !args.allow_incomplete {
            bail!(
                "{name} is incomplete: {why}. The changes that arrived were applied \
                 (--allow-incomplete accepts that)"
            );
        }
        eprintln!(
            "{name} is incomplete ({why}); what arrived was applied, as --allow-incomplete asks"
        );
    }
    if let Some(err) = &outcome.checkpoint_error {
        bail!("the changes are applied, but the checkpoint could not be kept: {err}");
    }
    Ok(())
}
