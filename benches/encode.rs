//! Encoding cost per item (an item to an NDJSON line), with criterion: on the seed-data
//! hard cases one by one, and on typical generated records; a page of the SDK's items to
//! lines, their move into the crate's values included; and the cost per item of
//! compressing those records page by page (100 items a page, flushed after each, as the
//! streamer does) at the levels offered and their neighbours, with the ratio.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use scanstream::dynamo::convert;
use scanstream::format::compress::{Compression, Compressor};
use scanstream::format::item::Item;
use scanstream::format::json::write_line;
use scanstream::generate::record;
use scanstream::load::lines as ndjson;
use std::hint::black_box;

fn hard_cases() -> Vec<(String, Item)> {
    let text = include_str!("../seed-data/hard-cases.ndjson");
    ndjson::parse(text, record::KEY)
        .items
        .into_iter()
        .map(|(_, item)| {
            let name = item
                .get(record::KEY)
                .and_then(|id| match id {
                    scanstream::format::item::Value::S(id) => Some(id),
                    _ => None,
                })
                .map(|id| {
                    id.chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
                        .collect::<String>()
                })
                .unwrap_or_default();
            (name.trim().replace(' ', "-"), item)
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let typical: Vec<Item> = (0..1000).map(|i| record::record(42, i)).collect();
    let bytes: usize = typical
        .iter()
        .map(|item| scanstream::format::json::to_line(item).len())
        .sum();
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(typical.len() as u64));
    group.bench_function(
        format!("typical-records-1000 ({} B avg)", bytes / typical.len()),
        |b| {
            let mut out = Vec::with_capacity(bytes);
            b.iter(|| {
                out.clear();
                for item in &typical {
                    write_line(&mut out, black_box(item));
                }
                black_box(out.len())
            })
        },
    );
    group.throughput(Throughput::Elements(1));
    for (name, item) in hard_cases() {
        group.bench_function(format!("hard-case {name}"), |b| {
            let mut out = Vec::new();
            b.iter(|| {
                out.clear();
                write_line(&mut out, black_box(&item));
                black_box(out.len())
            })
        });
    }
    group.finish();
}

fn compress(c: &mut Criterion) {
    let pages: Vec<Vec<u8>> = (0..10)
        .map(|p| {
            let mut page = Vec::new();
            for i in 0..100 {
                write_line(&mut page, &record::record(42, p * 100 + i));
            }
            page
        })
        .collect();
    let plain: usize = pages.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("compress");
    group.throughput(Throughput::Elements(1000));
    for (compression, level) in [
        (Compression::Gzip, 1),
        (Compression::Gzip, 6),
        (Compression::Zstd, 1),
        (Compression::Zstd, 3),
    ] {
        let run = || {
            let mut encoder = Compressor::with_level(compression, level).expect("an encoder");
            let mut wire = 0;
            for page in &pages {
                wire += encoder.page(black_box(page)).len();
            }
            wire + encoder.finish(b"").len()
        };
        let ratio = plain as f64 / run() as f64;
        group.bench_function(
            format!("{compression:?}-{level} (1000 records, ratio {ratio:.2})"),
            |b| b.iter(run),
        );
    }
    group.finish();
}

/// One page as the SDK hands it over (100 typical records) to lines: what a segment does
/// with each page, the move into the crate's own values (`dynamo::convert`) included.
fn page(c: &mut Criterion) {
    let page: Vec<_> = (0..100)
        .map(|i| convert::attributes(record::record(42, i)).expect("sendable"))
        .collect();
    let mut group = c.benchmark_group("page");
    group.throughput(Throughput::Elements(page.len() as u64));
    group.bench_function("sdk-page-to-lines 100 typical records", |b| {
        let mut out = Vec::with_capacity(128 * 1024);
        b.iter_batched(
            || page.clone(),
            |page| {
                out.clear();
                let items: Vec<Item> = page.into_iter().map(convert::item).collect();
                for item in &items {
                    write_line(&mut out, black_box(item));
                }
                black_box(out.len());
                // The page is dropped once encoded, as a segment drops it.
                drop(items);
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, encode, page, compress);
criterion_main!(benches);
