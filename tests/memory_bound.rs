//! Memory of a resumed read: each segment task keeps its own start key, never a copy of
//! every segment's position (which grew with the square of the segments: 64 segments
//! resumed after 2 KB keys cost 64 x 64 x 2 KB = 8 MB before the first page).

use aws_sdk_dynamodb::types::AttributeValue;
use scanstream::scan::Item;
use scanstream::scan::cursor::Position;
use scanstream::scan::memory::MemorySource;
use scanstream::scan::stream::{ScanPlan, start};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

#[test]
fn a_resumed_read_of_64_segments_allocates_per_segment_not_per_segment_squared() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let segments = 64u32;
    let positions: Vec<Position> = (0..segments)
        .map(|i| {
            let key = format!("{i:04}{}", "k".repeat(2044));
            Position::After(Item::from([("id".to_string(), AttributeValue::S(key))]))
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
