#!/usr/bin/env bash
# Installs the project's pinned tools (Java 17 if missing, DynamoDB Local, cargo-lambda,
# cfn-lint). The other scripts call this themselves.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_tools
log "tools ready: $(java -version 2>&1 | head -1); $(cargo-lambda lambda --version); $(cfn-lint --version)"
