#!/usr/bin/env bash
# The main job on local defaults: DynamoDB Local, a seeded table of ~10,000 items, the
# streamer under `cargo lambda watch`, and `?limit=100&segments=4` streamed to the terminal. Standard output
# carries only the stream; everything else goes to standard error.
#
#   scripts/demo.sh              # COUNT=10000 SEGMENTS=4 LIMIT=100 by default
#
# On a terminal it then keeps everything running and prints the curl command to try by
# hand; Ctrl-C stops it. Without a terminal (CI, pipes) it stops after the stream.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
COUNT="${COUNT:-10000}"
SEGMENTS="${SEGMENTS:-4}"
LIMIT="${LIMIT:-100}"
TABLE="${TABLE:-scanstream-demo}"

ensure_tools
cd "$ROOT"
log "building (the first build takes a few minutes)"
cargo build --bins --quiet

WATCH_PID=
cleanup() {
  if [ -n "$WATCH_PID" ]; then kill -- -"$WATCH_PID" 2>/dev/null || true; fi
  stop_dynamodb_local
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_dynamodb_local
log "seeding $COUNT items into $TABLE"
target/debug/seeder --table "$TABLE" --count "$COUNT" --create-table >&2

PORT="$(free_port)"
log "starting the streamer under cargo lambda watch on port $PORT"
set -m
cargo lambda watch -A 127.0.0.1 -P "$PORT" --ignore-changes \
  --env-var "TABLE_NAME=$TABLE,AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB,AWS_REGION=$AWS_REGION,AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY,RUST_LOG=${RUST_LOG:-info}" \
  >"$RUN_DIR/watch.log" 2>&1 &
WATCH_PID=$!
set +m
wait_for_port "$PORT" 120 "cargo lambda watch"

# Parameters in sorted order: curl before 8 signs them unsorted with --aws-sigv4.
URL="http://127.0.0.1:$PORT/lambda-url/streamer/?limit=$LIMIT&segments=$SEGMENTS"
log "curl -N '$URL'"
curl -sS -N --fail-with-body "$URL"
log "the last line above is the trailer: complete, counts, elapsed_ms and ttfb_ms"

if [ -t 0 ] && [ -t 1 ]; then
  cat >&2 <<MSG

Everything is still running. Try, in another terminal:
  curl -N '$URL'
  curl -N 'http://127.0.0.1:$PORT/lambda-url/streamer/?limit=10&segments=1' | head
  curl -i 'http://127.0.0.1:$PORT/lambda-url/streamer/?segments=0'     # 400, JSON error
Function logs: $RUN_DIR/watch.log. Press Ctrl-C to stop.
MSG
  while true; do sleep 3600; done
fi
