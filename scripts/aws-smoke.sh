#!/usr/bin/env bash
# A smoke test of a real deployment: deploy a throwaway stack, seed it, pull it back over
# several invocations, check every item arrived once and whole, print what it cost, and
# delete the stack.
#
#   scripts/aws-smoke.sh --yes-create-aws-resources [--region R] [--count N] [--invocations K]
#                        [--architecture arm64|x86_64] [--keep]
#   scripts/aws-smoke.sh --local [--count N] [--invocations K]
#
# The AWS mode creates a CloudFormation stack `scanstream-smoke-<time>-<random>` (a table,
# two functions with Function URLs, a secret, a managed policy) with `sam deploy`, and
# deletes it with `sam delete` on every exit: success, failure, Ctrl-C (`--keep` keeps it).
# It needs AWS credentials allowed to deploy SAM stacks, and signs its calls with them.
# The local mode runs the same steps against DynamoDB Local and `cargo lambda watch`
# instead of `sam deploy`; scripts/test.sh runs it, and runs the AWS mode's deploy and
# delete with a stand-in `sam` (SMOKE_SAM) that fails or is interrupted.
#
# For tests: SMOKE_SAM is the sam command (default sam), SMOKE_BIN a directory holding
# built scanstream and seeder binaries (default: built here, release).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

MODE= COUNT=2000 INVOCATIONS=4 REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}" ARCH=arm64 KEEP=
SEED=42
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --yes-create-aws-resources) MODE=aws ;;
    --local) MODE=local ;;
    --region) REGION="${2:?--region needs a value}"; shift ;;
    --count) COUNT="${2:?--count needs a value}"; shift ;;
    --invocations) INVOCATIONS="${2:?--invocations needs a value}"; shift ;;
    --architecture) ARCH="${2:?--architecture needs a value}"; shift ;;
    --keep) KEEP=1 ;;
    -h | --help) usage ;;
    *) printf 'error: unknown argument %s\n' "$1" >&2; usage ;;
  esac
  shift
done
[[ "$COUNT" =~ ^[1-9][0-9]{0,6}$ ]] || die "--count must be a whole number from 1 to 9999999"
[[ "$INVOCATIONS" =~ ^[1-9][0-9]{0,2}$ ]] || die "--invocations must be a whole number from 1 to 999"
[[ "$ARCH" =~ ^(arm64|x86_64)$ ]] || die "--architecture must be arm64 or x86_64"
if [ -z "$MODE" ]; then
  cat >&2 <<MSG
error: this creates resources in your AWS account, so it asks you to say so.

It deploys a CloudFormation stack named scanstream-smoke-<time>-<random> in region
${REGION:-<from --region or AWS_REGION>}: a DynamoDB table (on demand), two Lambda functions
with Function URLs, a Secrets Manager secret and an IAM managed policy. It writes $COUNT
items, reads them back, and deletes the stack when it ends (docs/deploy.md says what a run
costs).

  scripts/aws-smoke.sh --yes-create-aws-resources [--region R] [--count N] [--invocations K]
  scripts/aws-smoke.sh --local     # the same steps against DynamoDB Local and the emulator
MSG
  exit 2
fi
SAM="${SMOKE_SAM:-sam}"
export SAM_CLI_TELEMETRY=0

cd "$ROOT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/scanstream-smoke.XXXXXX")"
STACK= WATCH_PID=
# Runs once, on any exit. It must reach `sam delete` whatever happens meanwhile: a second
# Ctrl-C, a closed terminal or pipe (so nothing it prints may stop it), a failing command.
cleanup() {
  local status=$?
  trap '' INT TERM HUP PIPE
  trap - EXIT
  set +e
  if [ -n "$WATCH_PID" ]; then kill -- -"$WATCH_PID" 2>/dev/null; fi
  stop_dynamodb_local 2>/dev/null
  if [ -n "$STACK" ] && [ -z "$KEEP" ]; then
    log "deleting stack $STACK: $SAM delete --stack-name $STACK --region $REGION --no-prompts"
    # Into a file, not the terminal: the terminal or pipe may be gone, and sam must not die
    # writing to it before the stack is deleted.
    local delete_log="$RUN_DIR/smoke-delete-$STACK.log"
    if "$SAM" delete --stack-name "$STACK" --region "$REGION" --no-prompts >"$delete_log" 2>&1; then
      log "stack $STACK deleted"
    else
      cat "$delete_log" >&2
      printf 'error: could not delete stack %s (log: %s); delete it yourself: sam delete --stack-name %s --region %s\n' \
        "$STACK" "$delete_log" "$STACK" "$REGION" >&2
      [ "$status" -ne 0 ] || status=1
    fi
  elif [ -n "$STACK" ]; then
    log "kept stack $STACK (--keep): sam delete --stack-name $STACK --region $REGION"
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
# A reader that went away (`| tee` killed by the same Ctrl-C) must not kill the script
# outright: an untrapped SIGPIPE would skip the EXIT trap, and with it the delete.
trap 'exit 141' PIPE

if [ "$MODE" = aws ]; then
  [ -n "$REGION" ] || die "no region: pass --region or set AWS_REGION"
  ensure_python_tools
  if [ -n "${SMOKE_BIN:-}" ]; then
    BIN="$SMOKE_BIN"
  else
    log "building the client (release)"
    cargo build --release --quiet --bin scanstream --bin seeder
    BIN="$ROOT/target/release"
  fi
  STACK="scanstream-smoke-$(date +%Y%m%d%H%M%S)-$RANDOM"
  log "$SAM build ($ARCH)"
  "$SAM" build --beta-features --parameter-overrides "Architecture=$ARCH" >&2
  log "$SAM deploy: stack $STACK in $REGION"
  "$SAM" deploy --stack-name "$STACK" --region "$REGION" --resolve-s3 \
    --capabilities CAPABILITY_IAM --no-confirm-changeset --no-fail-on-empty-changeset \
    --parameter-overrides "Architecture=$ARCH" DeploySeeder=true >&2
  "$SAM" list stack-outputs --stack-name "$STACK" --region "$REGION" \
    --output json >"$WORK/outputs.json"
  output() {
    "$VENV/bin/python" -c 'import json,sys
print(next(o["OutputValue"] for o in json.load(open(sys.argv[1])) if o["OutputKey"] == sys.argv[2]))' \
      "$WORK/outputs.json" "$1"
  }
  STREAMER_URL="$(output StreamerUrl)"
  SEEDER_URL="$(output SeederUrl)"
else
  ensure_tools
  if [ -n "${SMOKE_BIN:-}" ]; then
    BIN="$SMOKE_BIN"
  else
    log "building the binaries"
    cargo build --bins --quiet
    BIN="$ROOT/target/debug"
  fi
  start_dynamodb_local
  TABLE="smoke-$(date +%s)-$RANDOM"
  log "creating table $TABLE in DynamoDB Local"
  "$BIN/seeder" --table "$TABLE" --count 1 --seed "$SEED" --create-table >&2
  PORT="$(free_port)"
  log "starting the functions under cargo lambda watch on port $PORT"
  SECRET="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
  set -m
  cargo lambda watch -A 127.0.0.1 -P "$PORT" --ignore-changes \
    --env-var "TABLE_NAME=$TABLE,CURSOR_SECRET=$SECRET,AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB,AWS_REGION=$AWS_REGION,AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY,RUST_LOG=warn" \
    >"$WORK/watch.log" 2>&1 &
  WATCH_PID=$!
  set +m
  wait_for_port "$PORT" 120 "cargo lambda watch"
  STREAMER_URL="http://127.0.0.1:$PORT/lambda-url/streamer/"
  SEEDER_URL="http://127.0.0.1:$PORT/lambda-url/seeder/"
fi

log "seeding $COUNT items (seed $SEED) over $INVOCATIONS invocations"
"$BIN/scanstream" seed "$SEEDER_URL" --count "$COUNT" --seed "$SEED" --invocations "$INVOCATIONS" >&2
log "pulling them back over $INVOCATIONS invocations, zstd"
"$BIN/scanstream" pull "$STREAMER_URL" --invocations "$INVOCATIONS" --segments 2 --compress zstd \
  -o "$WORK/pulled.ndjson" --summary-json "$WORK/summary.json" >&2

log "checking the pull against what was seeded"
"$BIN/seeder" --count "$COUNT" --seed "$SEED" --print >"$WORK/seeded.ndjson"
"$VENV/bin/python" - "$WORK/pulled.ndjson" "$WORK/seeded.ndjson" "$WORK/summary.json" <<'PY'
import hashlib, json, sys
from decimal import Decimal

pulled, seeded, summary = sys.argv[1:4]


def numbers(value):
    """Numbers by value: DynamoDB stores 161089.0 as 161089, as it may."""
    if isinstance(value, Decimal):
        return {"N": str(value.normalize())}
    if isinstance(value, dict):
        return {k: numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [numbers(v) for v in value]
    return value


def canonical(path, what):
    """Each item as sorted-key JSON, by id; a trailer line is refused (pure data)."""
    items = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            item = json.loads(line, parse_float=Decimal, parse_int=Decimal)
            if "@scanstream" in item:
                sys.exit(f"line {number} of the {what} is a trailer: the output must be pure data")
            text = json.dumps(numbers(item), sort_keys=True, ensure_ascii=False)
            if item["id"] in items:
                items[item["id"]] = None  # twice
            else:
                items[item["id"]] = text
    return items


got, want = canonical(pulled, "pull"), canonical(seeded, "seeded records")
twice = sum(1 for text in got.values() if text is None)
digest = lambda items: hashlib.sha256("\n".join(sorted(t or "" for t in items.values())).encode()).hexdigest()
problems = []
if twice:
    problems.append(f"{twice} items pulled more than once")
if got.keys() != want.keys():
    problems.append(f"{len(want.keys() - got.keys())} seeded items missing, {len(got.keys() - want.keys())} unexpected")
differ = sum(1 for key in got.keys() & want.keys() if got[key] is not None and got[key] != want[key])
if differ:
    problems.append(f"{differ} items differ from what was seeded")
s = json.load(open(summary, encoding="utf-8"))
print(f"items       {len(got)} (seeded {len(want)}), digest sha256:{digest(got)[:16]} (seeded {digest(want)[:16]})")
print(f"items/s     {s.get('items_per_s')}")
print(f"on the wire {s.get('wire_bytes', 0) / 1e6:.2f} MB in {s.get('calls')} calls, {s.get('retries')} retries")
print(f"throttled   {s.get('throttled', 'not reported')} calls (lowest concurrency {s.get('lowest_concurrency')})")
print(f"read units  {s.get('consumed_capacity', 'not reported')}")
if problems:
    sys.exit("smoke test FAILED: " + "; ".join(problems))
print("smoke test passed: every seeded item arrived exactly once, as seeded")
PY
