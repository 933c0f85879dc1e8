#!/usr/bin/env bash
# Checks that scripts/aws-smoke.sh deletes the stack it deployed on every way out, with a
# stand-in `sam` (SMOKE_SAM) that records its calls: a failed deploy, a Ctrl-C during the
# deploy followed by a second Ctrl-C during the delete, and a reader of its output that
# went away. No AWS account is involved.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
DIR="$(mktemp -d "${TMPDIR:-/tmp}/smoke-cleanup.XXXXXX")"
trap 'rm -rf "$DIR"' EXIT
FAKE="$DIR/sam"
cat >"$FAKE" <<'SAM'
#!/usr/bin/env bash
echo "$*" >>"$FAKE_SAM_LOG"
case "$1" in
  build) exit 0 ;;
  deploy)
    case "$FAKE_SAM_MODE" in
      fail) echo "Error: deploy failed (stand-in)" >&2; exit 1 ;;
      hang) sleep 30; exit 0 ;;
    esac ;;
  delete) sleep "${FAKE_SAM_DELETE_SECONDS:-0}"; echo "deleted $*" >>"$FAKE_SAM_LOG"; exit 0 ;;
esac
exit 3
SAM
chmod +x "$FAKE"
smoke=(scripts/aws-smoke.sh --yes-create-aws-resources --region us-east-1)
export SMOKE_SAM="$FAKE" SMOKE_BIN="$DIR/no-binaries"

# The stack the stand-in deployed was deleted: `deleted delete --stack-name <that stack>`.
deleted_what_was_deployed() {
  local stack
  stack="$(sed -n 's/^deploy --stack-name \([^ ]*\).*/\1/p' "$FAKE_SAM_LOG")"
  [ -n "$stack" ] || die "$1: the stand-in was never asked to deploy"
  grep -q "^deleted delete --stack-name $stack " "$FAKE_SAM_LOG" ||
    die "$1: stack $stack was not deleted; sam calls: $(tr '\n' ';' <"$FAKE_SAM_LOG")"
}

log "smoke cleanup: a failed deploy deletes the stack and fails"
export FAKE_SAM_LOG="$DIR/fail.log" FAKE_SAM_MODE=fail
if "${smoke[@]}" >/dev/null 2>"$DIR/fail.err"; then die "a failed deploy exited 0"; fi
deleted_what_was_deployed "failed deploy"

log "smoke cleanup: Ctrl-C during the deploy, then again during the delete"
export FAKE_SAM_LOG="$DIR/int.log" FAKE_SAM_MODE=hang FAKE_SAM_DELETE_SECONDS=2
# Job control: the run gets its own process group, as a terminal's foreground job does.
# A process started from a background job of a non-interactive shell (nohup, `( … &)`)
# inherits SIGINT ignored, and bash cannot un-ignore it, even with `set -m`: `env
# --default-signal` starts the run with SIGINT's default action, as a terminal would,
# so this checks the cleanup, not how the check itself was launched.
env --default-signal=INT true 2>/dev/null ||
  die "this check needs env --default-signal (GNU coreutils 8.31 or later)"
set -m
env --default-signal=INT "${smoke[@]}" >/dev/null 2>"$DIR/int.err" &
pid=$!
set +m
for _ in $(seq 100); do grep -q '^deploy' "$FAKE_SAM_LOG" 2>/dev/null && break; sleep 0.1; done
kill -INT -- -"$pid"
for _ in $(seq 100); do grep -q '^delete' "$FAKE_SAM_LOG" && break; sleep 0.1; done
kill -INT -- -"$pid" 2>/dev/null || true
status=0
wait "$pid" || status=$?
[ "$status" -eq 130 ] || die "interrupted run exited $status, not 130: $(cat "$DIR/int.err")"
deleted_what_was_deployed "interrupted deploy"

log "smoke cleanup: the reader of its output went away"
export FAKE_SAM_LOG="$DIR/pipe.log" FAKE_SAM_MODE=fail FAKE_SAM_DELETE_SECONDS=0
status=0
# It reads the first two lines (up to "sam deploy") and exits, as a killed tee would.
("${smoke[@]}" 2>&1 | head -n 2 >/dev/null) || status=$?
deleted_what_was_deployed "closed pipe"
log "smoke cleanup: the stack was deleted every time"
