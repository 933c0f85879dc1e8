"""Checks the shape docs/architecture.md promises, which neither the compiler nor clippy
holds in one crate: no source file over its size before its tests, no import cycle
between files, SDK types only in the adapter, and every link in README.md and docs/
resolving to a file and, with `#anchor`, to a heading in it.

    python3 scripts/check_shape.py [--report]

Exits 1 naming each breach; `--report` prints the figures (sizes, cycles) and exits 0.
Plain standard library: it reads the source as text.
"""

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Lines a file may have before its `#[cfg(test)]` module; binaries are only glue.
MAX_LINES = 600
MAX_BIN_LINES = 60
# Where SDK types may be named: the adapter. Everything else sees the library's own types.
SDK_CRATES = ("aws_sdk_dynamodb", "aws_sdk_dynamodbstreams", "aws_sdk_s3", "aws_smithy_")
ADAPTER = os.environ.get("SHAPE_ADAPTER", "src/dynamo/").split(",")

cli = argparse.ArgumentParser()
cli.add_argument("--report", action="store_true", help="print the figures, never fail")
args = cli.parse_args()
problems = []


def rust_files():
    return sorted(p for p in (ROOT / "src").rglob("*.rs"))


def before_tests(text):
    """The file's lines up to its first top-level `#[cfg(test)]`."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#[cfg(test)]"):
            return lines[:i]
    return lines


def module_of(path):
    """`src/a/b.rs` -> ("a", "b"); `src/a/mod.rs` -> ("a",); `src/lib.rs` -> ()."""
    rel = path.relative_to(ROOT / "src").with_suffix("")
    parts = list(rel.parts)
    if parts and parts[0] == "bin":
        return None
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def unit_of(module, units):
    """The file a module path lands in: the longest known prefix."""
    for n in range(len(module), -1, -1):
        if module[:n] in units:
            return module[:n]
    return None


USE = re.compile(r"\b(crate|super|self)((?:::\w+)+)")


def imports(module, code, is_mod_rs):
    """Module paths named by `crate::`, `super::` and `self::` paths in `code`."""
    # A mod.rs's `self::`/`super::` are relative to its own module; a leaf file's to it too.
    here = list(module)
    for m in USE.finditer(code):
        root, rest = m.group(1), m.group(2).split("::")[1:]
        if root == "crate":
            base = []
        elif root == "self":
            base = list(here)
        else:
            base = list(here)
            while rest and rest[0] == "super":
                rest = rest[1:]
                base = base[:-1]
            base = base[:-1]
        yield tuple(base + rest)


files = rust_files()
units = {}
for path in files:
    module = module_of(path)
    if module is not None:
        units[module] = path

sizes = []
edges = {}
for path in files:
    rel = path.relative_to(ROOT).as_posix()
    text = path.read_text(encoding="utf-8")
    body = before_tests(text)
    limit = MAX_BIN_LINES if rel.startswith("src/bin/") else MAX_LINES
    sizes.append((len(body), rel))
    if len(body) > limit:
        problems.append(f"{rel}: {len(body)} lines before its tests (at most {limit})")
    code = "\n".join(line for line in body if not line.lstrip().startswith("//"))
    if not any(rel.startswith(a) for a in ADAPTER):
        for crate in SDK_CRATES:
            if re.search(rf"\b{crate}", code):
                problems.append(f"{rel}: names {crate}* outside the adapter ({', '.join(ADAPTER)})")
                break
    module = module_of(path)
    if module is None:
        continue
    targets = set()
    for named in imports(module, code, path.name == "mod.rs"):
        unit = unit_of(named, units)
        if unit is None or unit == module:
            continue
        # A mod.rs and its own children count as one.
        if unit[: len(module)] == module or module[: len(unit)] == unit:
            continue
        targets.add(unit)
    edges[module] = targets


def cycles(graph):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def name(module):
    return "::".join(module) or "lib"


for component in cycles(edges):
    problems.append("import cycle: " + " <-> ".join(name(m) for m in component))


# Links: every relative link in README.md and docs/*.md names a file that exists, and an
# anchor names a heading of that file (GitHub's slugs).
def slugs(md_path):
    seen, out = {}, set()
    in_code = False
    for line in md_path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip()
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


LINK = re.compile(r"\]\(([^)\s]+)\)")
for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
    if not md.exists():
        continue
    in_code = False
    for number, line in enumerate(md.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        for target in LINK.findall(line):
            if re.match(r"^[a-z]+:", target):
                continue  # http:, https:, mailto:
            file, _, anchor = target.partition("#")
            dest = (md.parent / file).resolve() if file else md
            where = f"{md.relative_to(ROOT)}:{number}"
            if not dest.exists():
                problems.append(f"{where}: link to {target}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in slugs(dest):
                problems.append(f"{where}: link to {target}: no such heading")

if args.report:
    print("largest files (lines before tests):")
    for n, rel in sorted(sizes, reverse=True)[:12]:
        print(f"  {n:5d} {rel}")
    print("\n".join(problems) or "no breaches")
    sys.exit(0)
if problems:
    sys.exit("shape:\n  " + "\n  ".join(problems))
print(f"shape: {len(files)} source files within {MAX_LINES} lines, no import cycle, "
      "SDK types only in the adapter, every link resolves")
