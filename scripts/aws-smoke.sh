#!/usr/bin/env bash
# A smoke test of a real deployment: deploy a throwaway stack, seed it, pull it back over
# several invocations, check every item arrived once, print what it cost, delete the stack.
#
#   scripts/aws-smoke.sh --yes-create-aws-resources [--region R] [--count N] [--invocations K]
#                        [--architecture arm64|x86_64] [--keep]
#   scripts/aws-smoke.sh --local [--count N] [--invocations K]
#
# The AWS mode creates a CloudFormation stack `scanstream-smoke-<time>-<random>` (a table,
# two functions with Function URLs, a secret, a managed policy) with `sam deploy`, and
# deletes it with `sam delete` on exit, after a failure or Ctrl-C too (`--keep` keeps it).
# It needs AWS credentials allowed to deploy SAM stacks, and signs its own calls with them.
# The local mode runs the same steps against DynamoDB Local and `cargo lambda watch`
# instead of `sam deploy`: scripts/test.sh runs it, so the script cannot rot unseen.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

MODE= COUNT=2000 INVOCATIONS=4 REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}" ARCH=arm64 KEEP=
SEED=42
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
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
${REGION:-<from your AWS config>}: a DynamoDB table (on demand), two Lambda functions with
Function URLs, a Secrets Manager secret and an IAM managed policy. It writes $COUNT items,
reads them back, and deletes the stack when it ends (docs/deploy.md says what a run costs).

  scripts/aws-smoke.sh --yes-create-aws-resources [--region R] [--count N] [--invocations K]
  scripts/aws-smoke.sh --local     # the same steps against DynamoDB Local and the emulator
MSG
  exit 2
fi

ensure_tools
cd "$ROOT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/scanstream-smoke.XXXXXX")"
STACK= WATCH_PID=
cleanup() {
  local status=$?
  if [ -n "$WATCH_PID" ]; then kill -- -"$WATCH_PID" 2>/dev/null || true; fi
  stop_dynamodb_local
  if [ -n "$STACK" ] && [ -z "$KEEP" ]; then
    log "deleting stack $STACK"
    SAM_CLI_TELEMETRY=0 sam delete --stack-name "$STACK" --region "$REGION" --no-prompts >&2 ||
      printf 'error: could not delete stack %s: delete it yourself\n' "$STACK" >&2
  elif [ -n "$STACK" ]; then
    log "kept stack $STACK (--keep): sam delete --stack-name $STACK --region $REGION"
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$MODE" = aws ]; then
  [ -n "$REGION" ] || die "no region: pass --region or set AWS_REGION"
  log "building the client (release)"
  cargo build --release --quiet --bin scanstream --bin seeder
  BIN="$ROOT/target/release"
  STACK="scanstream-smoke-$(date +%Y%m%d%H%M%S)-$RANDOM"
  log "sam build ($ARCH)"
  SAM_CLI_TELEMETRY=0 sam build --beta-features --parameter-overrides "Architecture=$ARCH" >&2
  log "sam deploy: stack $STACK in $REGION"
  SAM_CLI_TELEMETRY=0 sam deploy --stack-name "$STACK" --region "$REGION" --resolve-s3 \
    --capabilities CAPABILITY_IAM --no-confirm-changeset --no-fail-on-empty-changeset \
    --parameter-overrides "Architecture=$ARCH" >&2
  SAM_CLI_TELEMETRY=0 sam list stack-outputs --stack-name "$STACK" --region "$REGION" \
    --output json >"$WORK/outputs.json"
  output() {
    "$VENV/bin/python" -c 'import json,sys
print(next(o["OutputValue"] for o in json.load(open(sys.argv[1])) if o["OutputKey"] == sys.argv[2]))' \
      "$WORK/outputs.json" "$1"
  }
  STREAMER_URL="$(output StreamerUrl)"
  SEEDER_URL="$(output SeederUrl)"
else
  log "building the binaries"
  cargo build --bins --quiet
  BIN="$ROOT/target/debug"
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
"$BIN/seeder" --count "$COUNT" --seed "$SEED" --print-keys >"$WORK/seeded.keys"
"$VENV/bin/python" - "$WORK/pulled.ndjson" "$WORK/seeded.keys" "$WORK/summary.json" <<'PY'
import hashlib, json, sys

pulled, seeded, summary = sys.argv[1:4]
ids = []
with open(pulled, encoding="utf-8") as f:
    for number, line in enumerate(f, 1):
        item = json.loads(line)
        if "@scanstream" in item:
            sys.exit(f"line {number} of the pull is a trailer: the output must be pure data")
        ids.append(item["id"])
with open(seeded, encoding="utf-8") as f:
    expected = [line.rstrip("\n") for line in f]
digest = lambda keys: hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
problems = []
if len(ids) != len(expected):
    problems.append(f"{len(ids)} items pulled, {len(expected)} seeded")
if len(set(ids)) != len(ids):
    problems.append(f"{len(ids) - len(set(ids))} items pulled twice")
if digest(ids) != digest(expected):
    problems.append("the digest of the pulled keys differs from the seeded keys'")
s = json.load(open(summary, encoding="utf-8"))
print(f"items       {len(ids)} (seeded {len(expected)}), key digest sha256:{digest(ids)[:16]}")
print(f"items/s     {s.get('items_per_s')}")
print(f"on the wire {s.get('wire_bytes', 0) / 1e6:.2f} MB in {s.get('calls')} calls, {s.get('retries')} retries")
print(f"throttled   {s.get('throttled_calls', 'not reported')}")
print(f"read units  {s.get('consumed_capacity', 'not reported')}")
if problems:
    sys.exit("smoke test FAILED: " + "; ".join(problems))
print("smoke test passed: every seeded item arrived exactly once")
PY
