#!/usr/bin/env bash
# Benchmarks: builds the release binaries, runs the harness (it starts DynamoDB Local and
# `cargo lambda watch --release` itself, seeds, measures, writes bench-results/), then the
# criterion encoding benchmark. Takes 15-30 minutes on 2 cores, most of it building.
# BENCH_CASES=client runs only the scanstream client rows (a few minutes after building),
# BENCH_CASES=rate only the max_rcu rows (bench-results/rate.md), BENCH_CASES=filter only
# the filtered pull under --max-items-per-call (bench-results/filter.md), BENCH_CASES=export
# the exports straight to S3 (bench-results/export.md), BENCH_CASES=restore the restores
# from S3 through the seeder function (bench-results/restore.md), BENCH_CASES=changes the
# copy kept current (bench-results/changes.md). For client and
# filter, BENCH_BASELINE_ROOT=<a worktree of an earlier commit, built with cargo build
# --release --bins> runs that build's streamer and client on the same reads in the same
# run, as "before".
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_tools
cd "$ROOT"
log "building release binaries"
cargo build --release --bins --quiet
log "benchmark harness"
cargo bench --bench harness
if [ "${BENCH_CASES:-all}" != all ]; then
  log "only the ${BENCH_CASES} rows: bench-results/${BENCH_CASES}.md"
  exit 0
fi
log "encoding cost (criterion)"
cargo bench --bench encode 2>&1 | tee bench-results/encode.txt
log "results in bench-results/"
