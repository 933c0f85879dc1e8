#!/usr/bin/env bash
# Every test, on a fresh machine: installs the pinned tools, checks formatting and the
# code's shape (layers, sizes, cycles, SDK types, links: docs/architecture.md), validates
# template.yml (and its parameter bounds against the built streamer), starts DynamoDB
# Local and the local S3 server, runs the unit, mocked, DynamoDB Local and end-to-end (cargo lambda watch) tests
# and the AWS smoke script's local mode, runs clippy, and builds the deploy artifact with
# `sam build` (x86_64, in the background meanwhile) and runs its seeder. Stops what it
# started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_tools
cd "$ROOT"
SAM_PID=
stop_all() {
  stop_dynamodb_local
  stop_s3_local
  if [ -n "$SAM_PID" ]; then kill -- "-$SAM_PID" 2>/dev/null || true; fi
}
trap stop_all EXIT

log "cargo fmt --check"
cargo fmt --check

python3=("$VENV/bin/python")
log "the code's shape (docs/architecture.md), and the checker failing on broken trees"
"${python3[@]}" scripts/check_shape_test.py
"${python3[@]}" scripts/check_shape.py

log "template.yml: cfn-lint and invoke-mode check"
cfn-lint template.yml
"${python3[@]}" scripts/check_template.py template.yml

# The deploy artifact, as `sam build` makes it. Its cold release build is minutes of CPU,
# so it starts now, in its own process group at the lowest priority: it takes the CPU the
# tests leave idle (they mostly wait on DynamoDB Local and the emulator) and gives way to
# them, and its release target directory is not the tests' debug one. x86_64: the aarch64
# Rust target is not installable offline; arm64 (the template's default) builds the same
# way where it is.
log "sam build (x86_64), in the background at low priority"
SAM_LOG="$RUN_DIR/sam-build.log"
SAM_CLI_TELEMETRY=0 setsid --wait nice -n 19 \
  sam build --beta-features --parameter-overrides Architecture=x86_64 >"$SAM_LOG" 2>&1 &
SAM_PID=$!

# cargo lambda watch runs `cargo run --bin <fn>` on the first request: build the binaries
# first, so that request does not wait for a cold compile.
log "building the functions (a cold build takes several minutes)"
cargo build --bins --quiet

log "template.yml: every parameter bound is one the streamer accepts (its own --check-config)"
"${python3[@]}" scripts/check_template.py template.yml --streamer target/debug/streamer

start_dynamodb_local
start_s3_local
log "cargo test (unit, mocked SDK, DynamoDB Local, end to end)"
# Not --all-targets: the benches are harness = false programs that would run in full.
# --no-fail-fast: every test file runs, so one failure does not hide the others.
cargo test --no-fail-fast --lib --bins --tests -- --test-threads="${TEST_THREADS:-4}"

log "the AWS smoke test's logic, in its local mode (DynamoDB Local and cargo lambda watch)"
scripts/aws-smoke.sh --local --count 3000 --invocations 3
# With SIGINT ignored on entry, as CI and any background job start it: the check must
# hold however it is launched (it resets the signal for the run it interrupts).
(trap '' INT && exec scripts/check_smoke_cleanup.sh)

log "cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings

log "sam build: waiting for the background build"
if ! wait "$SAM_PID"; then
  SAM_PID=
  cat "$SAM_LOG" >&2
  die "sam build failed (its output is above)"
fi
SAM_PID=
tail -n 4 "$SAM_LOG" >&2
"${python3[@]}" scripts/check_bootstrap.py x86_64 .aws-sam/build StreamerFunction SeederFunction
log "the built seeder bootstrap runs: 100 items into DynamoDB Local"
.aws-sam/build/SeederFunction/bootstrap --table sam-artifact-check --count 100 --create-table
log "all tests passed"
