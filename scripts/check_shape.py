"""Checks the shape docs/architecture.md promises, which neither the compiler nor clippy
holds in one crate: no source file over its size before its tests, no import cycle
between files, imports only down the layers, SDK types only in the adapter, no `pub use`
of another module's item, and every link in README.md and docs/ resolving to a file and,
with `#anchor`, to a heading in it.

    python3 scripts/check_shape.py [--report] [--root DIR]

Exits 1 naming each breach; `--report` prints the figures (sizes, layer edges) and exits 0.
`--root` checks another tree (scripts/check_shape_test.py uses it to see each rule fail).
Plain standard library: it reads the source as text.
"""

import argparse
import os
import re
import sys
from pathlib import Path

cli = argparse.ArgumentParser()
cli.add_argument("--report", action="store_true", help="print the figures, never fail")
cli.add_argument("--root", help="the tree to check (default: this repository)")
args = cli.parse_args()
ROOT = Path(args.root).resolve() if args.root else Path(__file__).resolve().parent.parent
# Lines a file may have before its `#[cfg(test)]` module; binaries are only glue.
MAX_LINES = 600
MAX_BIN_LINES = 60
# Where SDK types may be named: the adapter. Everything else sees the library's own types.
SDK_CRATES = ("aws_sdk_dynamodb", "aws_sdk_dynamodbstreams", "aws_sdk_s3", "aws_smithy_")
ADAPTER = os.environ.get("SHAPE_ADAPTER", "src/dynamo/").split(",")
# The layers, low to high (docs/architecture.md). A module may use its own top-level module
# or one in a lower layer; two modules of one layer never use each other.
LAYERS = {"format": 0, "dynamo": 1, "read": 2, "load": 2, "generate": 2, "lambda": 3, "cli": 3}
# Root glue outside the layers, and who may use it.
ROOT_MODULES = {"logging": {"lambda", "cli"}}
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
    for m in re.finditer(r"^\s*pub(?:\([^)]*\))?\s+use\s+(crate|super)::", code, re.M):
        problems.append(f"{rel}: `pub use {m.group(1)}::…` re-exports another module's item")
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


def name(module):
    return "::".join(module) or "lib"


def layer_breach(src, dst):
    """Why `src` may not use `dst` (top-level module names), or None."""
    if src == dst:
        return None
    if dst in ROOT_MODULES:
        return None if src in ROOT_MODULES[dst] else f"only {', '.join(sorted(ROOT_MODULES[dst]))} use {dst}"
    if src not in LAYERS and src not in ROOT_MODULES:
        return f"{src} is in no layer"
    if dst not in LAYERS:
        return f"{dst} is in no layer"
    low = LAYERS.get(src, -1)
    if LAYERS[dst] > low:
        return "uses a higher layer"
    if LAYERS[dst] == low:
        return "uses another module of its own layer"
    return None


layer_edges = {}
for module, targets in edges.items():
    if not module:
        continue  # lib.rs declares the modules
    for target in targets:
        if not target:
            continue
        why = layer_breach(module[0], target[0])
        if module[0] != target[0]:
            layer_edges.setdefault((module[0], target[0]), set()).add(name(module))
        if why:
            problems.append(f"{name(module)} -> {name(target)}: {why}")
for module in units:
    if module and module[0] not in LAYERS and module[0] not in ROOT_MODULES:
        problems.append(f"{name(module)}: {module[0]} is in no layer (docs/architecture.md)")


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
    print("layer edges (from -> to: files):")
    for (a, b), users in sorted(layer_edges.items()):
        print(f"  {a} -> {b}: {len(users)}")
    print("\n".join(problems) or "no breaches")
    sys.exit(0)
if problems:
    sys.exit("shape:\n  " + "\n  ".join(problems))
print(f"shape: {len(files)} source files within {MAX_LINES} lines, no import cycle, "
      "imports only down the layers, SDK types only in the adapter, no re-exports, "
      "every link resolves")
