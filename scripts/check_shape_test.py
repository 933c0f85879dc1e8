"""Shows that each rule of scripts/check_shape.py fails when it is broken: a clean tree
passes, and each small tree below, broken in one way, fails naming that breach.

    python3 scripts/check_shape_test.py
"""

import subprocess
import sys
import tempfile
from pathlib import Path

CHECK = Path(__file__).resolve().parent / "check_shape.py"

CLEAN = {
    "src/lib.rs": "//! map\npub mod format;\npub mod dynamo;\npub mod read;\npub mod lambda;\npub mod logging;\n",
    "src/format/mod.rs": "//! values\npub mod number;\n",
    "src/format/number.rs": "//! numbers\npub struct Number;\n",
    "src/dynamo/mod.rs": "//! adapter\nuse aws_sdk_dynamodb::Client;\nuse crate::format::number::Number;\n",
    "src/read/mod.rs": "//! read\nuse crate::dynamo::Thing;\nuse crate::format::number::Number;\n",
    "src/lambda/mod.rs": "//! edge\nuse crate::read::Thing;\nuse crate::logging::init;\n",
    "src/logging.rs": "//! logs\npub fn init() {}\n",
    "src/bin/streamer.rs": "fn main() {}\n",
    "README.md": "# x\n\n[map](docs/architecture.md#layers)\n",
    "docs/architecture.md": "# Architecture\n\n## Layers\n",
}

BROKEN = {
    "a file over 600 lines": (
        {"src/format/number.rs": "//! numbers\n" + "const A: u8 = 1;\n" * 600},
        "601 lines before its tests",
    ),
    "lines after the tests do not count, a binary over 60 does": (
        {
            "src/format/number.rs": "//! n\n#[cfg(test)]\nmod tests {\n" + "// x\n" * 700 + "}\n",
            "src/bin/streamer.rs": "fn main() {}\n" * 61,
        },
        "src/bin/streamer.rs: 61 lines",
    ),
    "an import cycle": (
        {
            "src/format/mod.rs": "//! values\npub mod number;\npub mod key;\n",
            "src/format/number.rs": "//! n\nuse super::key::Key;\n",
            "src/format/key.rs": "//! k\nuse crate::format::number::Number;\n",
        },
        "import cycle: format::key <-> format::number",
    ),
    "a lower layer using a higher one": (
        {"src/format/number.rs": "//! n\nuse crate::dynamo::Client;\n"},
        "format::number -> dynamo: uses a higher layer",
    ),
    "an edge using another edge": (
        {
            "src/lib.rs": CLEAN["src/lib.rs"] + "pub mod cli;\n",
            "src/cli/mod.rs": "//! cli\nuse crate::lambda::Thing;\n",
        },
        "cli -> lambda: uses another module of its own layer",
    ),
    "a module in no layer": (
        {"src/lib.rs": CLEAN["src/lib.rs"] + "pub mod misc;\n", "src/misc.rs": "//! m\n"},
        "misc: misc is in no layer",
    ),
    "a job using the edges' logging": (
        {"src/read/mod.rs": "//! read\nuse crate::logging::init;\n"},
        "read -> logging: only cli, lambda use logging",
    ),
    "an SDK type outside the adapter": (
        {"src/read/mod.rs": "//! read\nuse aws_sdk_dynamodb::types::AttributeValue;\n"},
        "src/read/mod.rs: names aws_sdk_dynamodb",
    ),
    "a re-export for an old path": (
        {"src/read/mod.rs": "//! read\npub use crate::format::number::Number;\n"},
        "src/read/mod.rs: `pub use crate::…` re-exports",
    ),
    "a link to a missing heading": (
        {"README.md": "# x\n\n[map](docs/architecture.md#nowhere)\n"},
        "link to docs/architecture.md#nowhere: no such heading",
    ),
    "a link to a missing file": (
        {"README.md": "# x\n\n[gone](docs/gone.md)\n"},
        "link to docs/gone.md: no such file",
    ),
}


def run(files):
    with tempfile.TemporaryDirectory() as root:
        for rel, text in files.items():
            path = Path(root) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, str(CHECK), "--root", root], capture_output=True, text=True
        )
        return done.returncode, done.stdout + done.stderr


failures = []
code, out = run(CLEAN)
if code != 0:
    failures.append(f"the clean tree failed:\n{out}")
for what, (change, expected) in BROKEN.items():
    code, out = run({**CLEAN, **change})
    if code == 0 or expected not in out:
        failures.append(f"{what}: exit {code}, expected {expected!r} in:\n{out}")
if failures:
    sys.exit("check_shape_test:\n" + "\n".join(failures))
print(f"check_shape_test: the clean tree passes and {len(BROKEN)} broken trees fail")
