//! Memory of a resumed read: each segment task keeps its own start key, never a copy of
//! every segment's position (which grew with the square of the segments: 64 segments
//! resumed after 2 KB keys cost 64 x 64 x 2 KB = 8 MB before the first page); and a
//! forged cursor is refused before what it would inflate to is allocated.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flate2::Compression;
use flate2::write::DeflateEncoder;
use hmac::{Hmac, KeyInit, Mac};
use scanstream::dynamo::memory::MemorySource;
use scanstream::format::cursor::Position;
use scanstream::format::cursor::{Cursor, CursorError};
use scanstream::format::item::Item;
use scanstream::format::item::Value;
use scanstream::read::stream::{ScanPlan, start};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Counts the bytes every allocation asks for.
struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One measurement at a time: the counter is shared by every test's thread.
fn alone() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Bytes allocated while `run` runs (and its result).
fn allocated_by<T>(run: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCATED.load(Ordering::Relaxed);
    let out = run();
    (out, ALLOCATED.load(Ordering::Relaxed) - before)
}

/// A version 2 token of `json` as this server would seal it with an empty
/// `CURSOR_SECRET`: what anyone can make for a deployment without a secret.
fn forged(json: &[u8]) -> String {
    let mut deflate = DeflateEncoder::new(Vec::new(), Compression::default());
    deflate.write_all(json).expect("deflate");
    let body = URL_SAFE_NO_PAD.encode(deflate.finish().expect("deflate"));
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"").expect("any key");
    mac.update(format!("2.{body}").as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16]);
    format!("2.{body}.{tag}")
}

const CAP: usize = scanstream::lambda::config::DEFAULT_MAX_CURSOR_BYTES;

#[test]
fn a_cursor_that_inflates_past_the_cap_is_refused_without_allocating_it() {
    let _alone = alone();
    // 32 MiB of JSON from a token of a few dozen KB: twice what a 2 MiB cursor may hold.
    let mut json = br#"{"t":""#.to_vec();
    json.resize(32 << 20, b'a');
    let token = forged(&json);
    drop(json);
    assert!(token.len() < CAP, "{} bytes", token.len());
    let (decoded, allocated) = allocated_by(|| Cursor::decode(&token, b"", CAP));
    eprintln!(
        "{allocated} bytes allocated to refuse a {} byte token",
        token.len()
    );
    assert_eq!(decoded, Err(CursorError::PayloadTooLarge));
    assert!(allocated < 1 << 20, "{allocated} bytes allocated");
}

#[test]
fn a_cursor_of_a_million_positions_is_refused_while_decoding() {
    let _alone = alone();
    // 4 MB of JSON, well within the inflated cap, deflated to a few KB: each "s" would
    // be a String and a Position, hundreds of MB in all.
    let mut json = br#"{"t":"t","n":1000000,"o":0,"p":["s""#.to_vec();
    for _ in 1..1_000_000 {
        json.extend_from_slice(br#","s""#);
    }
    json.extend_from_slice(b"]}");
    let token = forged(&json);
    drop(json);
    let (decoded, allocated) = allocated_by(|| Cursor::decode(&token, b"", CAP));
    eprintln!(
        "{allocated} bytes allocated to refuse a million positions in a {} byte token",
        token.len()
    );
    assert_eq!(
        decoded.map(|c| c.positions.len()),
        Err(CursorError::TooManyEntries)
    );
    assert!(allocated < 1 << 20, "{allocated} bytes allocated");
}

#[test]
fn a_resumed_read_of_64_segments_allocates_per_segment_not_per_segment_squared() {
    let _alone = alone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let segments = 64u32;
    let positions: Vec<Position> = (0..segments)
        .map(|i| {
            let key = format!("{i:04}{}", "k".repeat(2044));
            Position::After(Item::from([("id".to_string(), Value::S(key))]))
        })
        .collect();
    let plan = ScanPlan {
        positions,
        ..ScanPlan::segments(segments, 10)
    };
    // An empty table: every task fails on its first page, so what is counted is
    // starting the tasks, not reading.
    let source = Arc::new(MemorySource::new(Vec::new(), "id"));
    let before = ALLOCATED.load(Ordering::Relaxed);
    let started = runtime.block_on(start(source, plan));
    let allocated = ALLOCATED.load(Ordering::Relaxed) - before;
    assert!(
        started.is_err(),
        "the empty table has none of the start keys"
    );
    let key_bytes = u64::from(segments) * 2048;
    eprintln!("{allocated} bytes allocated for {key_bytes} bytes of start keys");
    assert!(
        allocated < 16 * key_bytes,
        "{allocated} bytes allocated to start {segments} segments over {key_bytes} bytes of keys"
    );
}
