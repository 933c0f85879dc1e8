//! One pass over a load's input: every line read, checked against the key schema and the
//! indexes' keys, counted, and (on the writing pass) handed to the writer in batches; and
//! what the counts say about whether the input is a whole copy.

use super::batch::{Batch, Batcher, Position};
use super::checkpoint::Keeper;
use super::input::{Line, MAX_LINE_BYTES, Source, read_line};
use super::lines;
use super::{LoadError, Observer, SHOWN_ERRORS};
use crate::dynamo::writer::{BatchWriter, WriteReport};
use crate::format::key::{IndexKeys, KeySchema};
use crate::format::trailer::Trailer;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Why a stream is not a whole copy: no trailer, a trailer that says so, or one that
/// counts other items than arrived.
pub(super) fn stream_incomplete(tally: &Tally) -> Option<String> {
    if let Some((line, why)) = &tally.cut_by {
        return Some(format!(
            "reading it failed after line {line} ({why}), without a trailer: the stream was \
             cut off (a whole copy is `scanstream pull --trailer`)"
        ));
    }
    if let Some(line) = tally.cut_mid_line {
        return Some(format!(
            "it ends inside line {line}, without a trailer: the stream was cut off"
        ));
    }
    match &tally.trailer {
        None => Some(
            "it ends without a trailer: the stream was cut off, or was not written by the \
             streamer or `scanstream pull --trailer`"
                .to_string(),
        ),
        Some(trailer) => trailer_incomplete(trailer, tally.item_lines),
    }
}

/// A file without a trailer is a data set; one with a trailer is checked like a stream.
pub(super) fn file_incomplete(tally: &Tally) -> Option<String> {
    tally
        .trailer
        .as_ref()
        .and_then(|t| trailer_incomplete(t, tally.item_lines))
}

fn trailer_incomplete(trailer: &Trailer, item_lines: u64) -> Option<String> {
    if !trailer.complete {
        return Some(format!(
            "its trailer says complete:false (reason {}): it holds only part of the table; \
             resume the read with the trailer's cursor",
            trailer
                .reason
                .map_or("unknown".to_string(), |r| format!("{r:?}"))
        ));
    }
    if trailer.items != item_lines {
        return Some(format!(
            "its trailer counts {} items but {item_lines} item lines came before it: lines \
             were lost or added",
            trailer.items
        ));
    }
    None
}

/// How lines are read in a pass.
#[derive(Debug, Clone)]
pub(super) struct Pass {
    pub(super) schema: KeySchema,
    /// Checked on the items that carry them, so DynamoDB refuses no batch for them.
    pub(super) indexes: IndexKeys,
    /// A stream stops at its first bad line.
    pub(super) stop_on_error: bool,
    /// Whether a last line may be a trailer (not in an export's data files).
    pub(super) trailers: bool,
    /// A last line that does not parse and has no `\n` was cut off (streams).
    pub(super) cut_off_tail: bool,
}

/// What a pass over the input found.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// Non-blank lines that are not the trailer.
    pub(super) item_lines: u64,
    /// Item lines of each source.
    pub(super) per_file: Vec<u64>,
    /// Valid items (after the resume position).
    pub(super) valid: u64,
    /// Bad lines, all of them counted.
    pub(super) error_count: u64,
    /// The first of them.
    pub(super) errors: Vec<String>,
    /// The trailer, when the input ends with one.
    pub(super) trailer: Option<Trailer>,
    /// The bad line a stream stopped at.
    pub(super) stopped: Option<String>,
    /// The stream ended inside this line.
    pub(super) cut_mid_line: Option<u64>,
    /// Reading the stream failed (its decoder, at a cut) after this many lines, and why.
    pub(super) cut_by: Option<(u64, String)>,
    /// A failure to keep the checkpoint.
    pub(super) checkpoint_error: Option<String>,
    /// The writer stopped taking batches (DynamoDB refused one), so reading stopped.
    pub(super) abandoned: bool,
}

impl Tally {
    pub(super) fn bad(&mut self, message: String) {
        self.error_count += 1;
        if self.errors.len() < SHOWN_ERRORS {
            self.errors.push(message);
        }
    }
}

/// Reads every source in order: checks each line, and, given `send`, hands the valid
/// items after `resume` to the writer in batches. Runs on a blocking thread.
pub(super) fn read_pass(
    pass: &Pass,
    sources: &[Source],
    resume: Option<Position>,
    send: Option<&mpsc::Sender<Batch>>,
) -> Result<Tally, LoadError> {
    let mut tally = Tally::default();
    let mut batcher = Batcher::default();
    let mut buf = Vec::new();
    let several = sources.len() > 1;
    'sources: for (index, source) in sources.iter().enumerate() {
        let file = u32::try_from(index).unwrap_or(u32::MAX);
        let io = |source_err| LoadError::Io {
            name: source.name(),
            source: source_err,
        };
        let mut reader = source.open().map_err(io)?;
        let mut lines_here = 0u64;
        let mut line = 0u64;
        // A trailer seen, and its line: the input must end there.
        let mut trailer: Option<(u64, Trailer)> = None;
        loop {
            let read = match read_line(&mut *reader, &mut buf, MAX_LINE_BYTES) {
                Ok(read) => read,
                // A cut-off gzip or zstd stream fails to decode at the cut: like a stream
                // that ends inside a line, its whole lines so far are written, then the
                // load is reported incomplete.
                Err(err) if pass.cut_off_tail => {
                    tally.cut_by = Some((line, err.to_string()));
                    break 'sources;
                }
                Err(err) => return Err(io(err)),
            };
            let Some(read) = read else { break };
            line += 1;
            let at = |message: &str| {
                if several {
                    format!("{}: line {line}: {message}", source.name())
                } else {
                    format!("line {line}: {message}")
                }
            };
            let unended = read == Line::Unended;
            let text = match read {
                Line::TooLong(bytes) => Err(format!(
                    "a line of {bytes} bytes, over the {MAX_LINE_BYTES}-byte limit"
                )),
                Line::Read | Line::Unended => Ok(&buf),
            };
            if let Ok(bytes) = &text
                && bytes.iter().all(u8::is_ascii_whitespace)
            {
                continue;
            }
            if let Some((trailer_line, _)) = trailer.take() {
                let message = format!(
                    "line {trailer_line}: a trailer before the last line: streams were joined"
                );
                tally.bad(message.clone());
                if pass.stop_on_error {
                    tally.stopped = Some(message);
                    break 'sources;
                }
            }
            if pass.trailers
                && let Ok(bytes) = &text
                && let Some(found) = Trailer::parse_line(bytes)
            {
                trailer = Some((line, found));
                continue;
            }
            tally.item_lines += 1;
            lines_here += 1;
            let position = Position { file, line };
            let resumed = resume.is_some_and(|r| position <= r);
            if resumed && send.is_some() {
                continue;
            }
            let length = text.as_ref().map_or(0, |bytes| bytes.len());
            let parsed = text.and_then(|bytes| {
                let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
                let (item, key) = lines::parse_line(text, &pass.schema)?;
                pass.indexes.check(&item)?;
                Ok((item, key))
            });
            let pushed = match parsed {
                Ok(_) if resumed => Ok(None),
                Ok((item, key)) => batcher
                    .push_at(position, item, key, length)
                    .inspect(|_| tally.valid += 1),
                Err(message) => Err(message),
            };
            match pushed {
                Ok(Some(batch)) => {
                    if let Some(tx) = send
                        && tx.blocking_send(batch).is_err()
                    {
                        tally.abandoned = true;
                        break 'sources;
                    }
                }
                Ok(None) => {}
                Err(_) if unended && pass.cut_off_tail => {
                    // The stream ended inside a line: cut off, not a bad line.
                    tally.cut_mid_line = Some(line);
                }
                Err(message) => {
                    let message = at(&message);
                    tally.bad(message.clone());
                    if pass.stop_on_error {
                        tally.stopped = Some(message);
                        break 'sources;
                    }
                }
            }
        }
        tally.per_file.push(lines_here);
        if let Some((_, found)) = trailer {
            tally.trailer = Some(found);
        }
    }
    // Before a stream's bad line, every item is valid: they are written.
    if let Some(batch) = batcher.finish()
        && let Some(tx) = send
        && tx.blocking_send(batch).is_err()
    {
        tally.abandoned = true;
    }
    Ok(tally)
}

/// Reads `sources` on a blocking thread and writes what it hands over, starting no batch
/// past `deadline`; keeps the checkpoint as batches finish, and hands it back.
pub(super) async fn write_pass<O: Observer + ?Sized>(
    writer: &BatchWriter,
    pass: Pass,
    sources: Vec<Source>,
    resume: Option<Position>,
    mut keeper: Option<Keeper>,
    deadline: Option<tokio::time::Instant>,
    observer: &mut O,
) -> Result<(WriteReport, Tally, Option<Keeper>), LoadError> {
    // As deep as the writer's concurrency: the reader stays one round of batches ahead.
    let (tx, rx) = mpsc::channel::<Batch>(writer.concurrency_level());
    let reading =
        tokio::task::spawn_blocking(move || read_pass(&pass, &sources, resume, Some(&tx)));
    // Batch index (in the order handed over) to its last position and size.
    let handed: Mutex<HashMap<u64, (Option<Position>, u64)>> = Mutex::new(HashMap::new());
    let mut next_index = 0u64;
    let batches = ReceiverStream::new(rx).map(|batch| {
        if let Ok(mut handed) = handed.lock() {
            handed.insert(next_index, (batch.last(), batch.items.len() as u64));
        }
        next_index += 1;
        batch.items
    });
    let mut checkpoint_error = None;
    let report = writer
        .write_stream(batches, deadline, |done| {
            observer.written(done.total);
            let entry = handed.lock().ok().and_then(|mut h| h.remove(&done.index));
            if let (Some(keeper), Some((last, items))) = (keeper.as_mut(), entry)
                && let Err(err) = keeper.finished(done.index, done.complete, last, items)
            {
                checkpoint_error.get_or_insert(err);
            }
        })
        .await;
    let mut tally = reading
        .await
        .map_err(|e| LoadError::Usage(format!("the reading thread failed: {e}")))??;
    if let Some(keeper) = keeper.as_mut()
        && report.is_complete()
        && let Err(err) = keeper.complete()
    {
        checkpoint_error.get_or_insert(err);
    }
    tally.checkpoint_error = checkpoint_error;
    Ok((report, tally, keeper))
}
