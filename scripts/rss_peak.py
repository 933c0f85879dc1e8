"""The streamer's peak RSS with every segment's page in memory at once (issue 25, item 5).

Seeds a table of escape-heavy items (control characters, quotes, non-ASCII: the JSON line
of an item is five to six times its stored bytes), serves the streamer with
`cargo lambda watch`, asks for `segments=S&limit=L` and then reads nothing more than the
first bytes: every segment task fetches a page, encodes it and parks it in the merge's
channel (one slot per segment), which is the most memory a request can hold. The peak is
the streamer process's `VmHWM` once its RSS has stopped growing.

    AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:PORT python scripts/rss_peak.py \
        --segments 212 --limit 10000 --memory 4096 [--table NAME] [--items 3200]

`--memory` is the AWS_LAMBDA_FUNCTION_MEMORY_SIZE the function is given. Run it with
the venv's python (boto3), from the repository's root; it prints one markdown row.
"""

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3

cli = argparse.ArgumentParser()
cli.add_argument("--segments", type=int, default=212)
cli.add_argument("--limit", type=int, default=10000)
cli.add_argument("--memory", type=int, default=4096, help="AWS_LAMBDA_FUNCTION_MEMORY_SIZE, MB")
cli.add_argument("--table", help="reuse this table if it exists (seeded by an earlier run)")
cli.add_argument("--items", type=int, default=3200)
cli.add_argument("--item-kb", type=int, default=100)
cli.add_argument("--release", action="store_true", help="cargo lambda watch --release")
cli.add_argument("--seed-only", action="store_true", help="create and seed the table, then stop")
cli.add_argument("--control-only", action="store_true", help="items of control characters only")
args = cli.parse_args()

endpoint = os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
ddb = boto3.client(
    "dynamodb",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="local",
    aws_secret_access_key="local",
)
table = args.table or f"rss-peak-{os.getpid()}-{int(time.time())}"

# Mostly control characters (six bytes each as JSON: \u0001), some quotes and
# backslashes (two), some non-ASCII (as stored).
ALPHABET = [chr(c) for c in range(1, 32) if c not in (9, 10, 13)] * 8 + ['"', "\\"] * 6 + ["é", "☃"] * 3
if args.control_only:
    ALPHABET = [chr(c) for c in range(1, 32) if c not in (9, 10, 13)]


def value(rng, size):
    text, stored = [], 0
    while stored < size:
        ch = rng.choice(ALPHABET)
        text.append(ch)
        stored += len(ch.encode())
    return "".join(text)


def seed():
    if table in ddb.list_tables(Limit=100).get("TableNames", []):
        return
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )

    # A request is at most 16 MB, and the wire JSON escapes a control character in 6 bytes.
    per_batch = max(1, min(25, 14_000 // (args.item_kb * 6)))

    def batch(start):
        rng = random.Random(start)
        requests = [
            {"PutRequest": {"Item": {"id": {"S": f"{i:07d}"}, "s": {"S": value(rng, args.item_kb * 1000)}}}}
            for i in range(start, min(start + per_batch, args.items))
        ]
        while requests:
            left = ddb.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems", {})
            requests = left.get(table, [])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(batch, range(0, args.items, per_batch)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def parent(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def streamer_pid(watch):
    """The streamer process `watch` started: found by its parent chain."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != "streamer":
                    continue
        except OSError:
            continue
        pid = int(entry)
        while pid > 1:
            pid = parent(pid)
            if pid == watch:
                return int(entry)
    return None


def get(port, query, first_only):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    conn.request("GET", f"/lambda-url/streamer/?{query}")
    response = conn.getresponse()
    if first_only:
        return conn, response, response.read1(65536)
    body = response.read()
    conn.close()
    return None, response, body


started = time.time()
seed()
seeded = time.time() - started
if args.seed_only:
    sys.exit(f"table {table} seeded in {seeded:.0f} s")
port = free_port()
env = {
    "TABLE_NAME": table,
    "MAX_SEGMENTS": str(args.segments),
    "MAX_LIMIT": str(args.limit),
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(args.memory),
    "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "CURSOR_SECRET": "rss",
    # DynamoDB Local serves 212 pages of 1 MB at once slowly: wait for them, do not retry.
    "CALL_TIMEOUT_MS": "60000",
    "OPERATION_TIMEOUT_MS": "900000",
    "RUST_LOG": "warn",
}
command = ["cargo", "lambda", "watch"] + (["--release"] if args.release else [])
command += ["-A", "127.0.0.1", "-P", str(port), "--ignore-changes"]
command += ["--env-var", ",".join(f"{k}={v}" for k, v in env.items())]
os.makedirs("target", exist_ok=True)
log = open("target/rss-peak-watch.log", "w")
watch = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
try:
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    _, response, body = get(port, "segments=1&limit=1&max_items=1", first_only=False)
    if response.status != 200:
        sys.exit(f"warm-up: {response.status} {body[:500]!r}")
    pid = streamer_pid(watch.pid)
    if pid is None:
        sys.exit("streamer process not found")
    idle = status(pid, "VmRSS")
    conn, response, first = get(port, f"segments={args.segments}&limit={args.limit}", first_only=True)
    if response.status != 200:
        sys.exit(f"read: {response.status} {first[:500]!r}")
    # Read nothing more: wait until the parked pages stop adding to the RSS.
    rss, still, waited = 0, 0, 0
    while still < 60 and waited < 900:
        time.sleep(1)
        waited += 1
        now = status(pid, "VmRSS")
        still = still + 1 if now <= rss + (4 << 20) else 0
        rss = max(rss, now)
    peak = status(pid, "VmHWM")
    # The rest, to see the read was not cut short by an error while the pages piled up.
    rest = response.read()
    trailer = (first + rest).rstrip(b"\n").rsplit(b"\n", 1)[-1].decode(errors="replace")
    conn.close()
finally:
    os.killpg(watch.pid, signal.SIGTERM)
    watch.wait(30)

stored = args.items * args.item_kb * 1000
mb = 1e6
print(f"table {table}: {args.items} items of {args.item_kb} KB ({stored / mb:.0f} MB stored), seeded in {seeded:.0f} s")
print(f"waited {waited} s for the RSS to settle; then read {len(first) + len(rest)} bytes")
try:
    stop = json.loads(trailer)["@scanstream"]
    print(f"trailer: complete {stop.get('complete')}, reason {stop.get('reason')}, error {stop.get('error')}, pages {stop.get('pages')}")
except (ValueError, KeyError):
    print(f"no trailer: {trailer[:300]!r}")
print("| segments | limit | memory MB | idle RSS MB | peak RSS MB | peak per segment MB |")
print("|---|---|---|---|---|---|")
print(
    f"| {args.segments} | {args.limit} | {args.memory} | {idle / mb:.1f} | {peak / mb:.1f} | "
    f"{(peak - idle) / args.segments / mb:.2f} |"
)
