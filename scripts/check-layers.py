#!/usr/bin/env python3
"""Checks that host/src depends one way: no import circles between files, and no layer
importing a layer above it.

Layers, ground floor first: model; sandbox and backend (siblings: neither imports the other);
tenant; pipeline; sources (what feeds the host: Redis Streams, PostgreSQL). The crate root (lib.rs) and the binary (bin/) may import anything.

An import is any `crate::a::b` or `super::x` path in a file (use lines and inline paths).
A folder's face (its mod.rs) declaring and re-exporting its own children is not counted as
an import of them, so `impl` blocks split across sibling files can name their parent's types;
a circle between siblings, or through a parent, is still found.

Exit 0 when clean; 1 with every violation listed. Run: python3 scripts/check-layers.py [SRC]
"""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "host", "src"
)
RANK = {"model": 0, "sandbox": 1, "backend": 1, "tenant": 2, "pipeline": 3, "sources": 4}

PATH = re.compile(r"\b(crate|super)((?:::(?:[A-Za-z_][A-Za-z0-9_]*|\{[^;]*?\}))+)", re.S)


def module_of(rel):
    """host/src-relative file path -> module path list (lib.rs -> [])."""
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return parts


def files():
    out = {}
    for dirpath, _, names in os.walk(ROOT):
        for n in names:
            if n.endswith(".rs"):
                rel = os.path.relpath(os.path.join(dirpath, n), ROOT)
                if rel.startswith("bin" + os.sep):
                    continue
                out[tuple(module_of(rel))] = rel
    return out


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def expand(segments):
    """'::a::{b, c::d}' -> [[a, b], [a, c, d]] (first level of braces is enough here)."""
    m = re.match(r"((?:::[A-Za-z_][A-Za-z0-9_]*)*)(?:::\{(.*)\})?$", segments, re.S)
    if not m:
        return []
    head = [s for s in m.group(1).split("::") if s]
    if m.group(2) is None:
        return [head]
    out = []
    for item in re.split(r",(?![^{]*\})", m.group(2)):
        item = item.strip()
        if not item:
            continue
        tail = [s for s in re.split(r"::", re.sub(r"\{.*", "", item)) if s and s != "self"]
        out.append(head + [t.split(" as ")[0].strip() for t in tail])
    return out


def resolve(mods, path):
    """The longest module prefix of `path` that is a file."""
    for end in range(len(path), -1, -1):
        if tuple(path[:end]) in mods:
            return tuple(path[:end])
    return None


def main():
    mods = files()
    edges = {m: set() for m in mods}
    problems = []
    for mod, rel in mods.items():
        text = strip_comments(open(os.path.join(ROOT, rel), encoding="utf-8").read())
        # Code under #[cfg(test)] may use anything of its own module's parents.
        text = text.split("#[cfg(test)]")[0]
        is_face = rel.endswith("mod.rs") or rel == "lib.rs"
        for m in PATH.finditer(text):
            base = [] if m.group(1) == "crate" else list(mod[:-1] if not is_face else mod[:-1])
            if m.group(1) == "super" and is_face:
                base = list(mod[:-1])
            for p in expand(m.group(2)):
                target = resolve(mods, base + p)
                if target is None or target == mod:
                    continue
                if is_face and target[: len(mod)] == mod:
                    continue  # a folder's face naming its own children
                edges[mod].add(target)
    # Layers.
    for mod, targets in edges.items():
        if not mod or mod[0] not in RANK:
            continue
        for t in targets:
            if not t or t[0] not in RANK or t[0] == mod[0]:
                continue
            if RANK[t[0]] >= RANK[mod[0]]:
                problems.append(f"layer: {mods[mod]} ({mod[0]}) imports {mods[t]} ({t[0]})")
    # Circles (Tarjan's strongly connected components).
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    for comp in sccs:
        problems.append("circle: " + " -> ".join(sorted(mods[m] for m in comp)))
    n_edges = sum(len(t) for t in edges.values())
    if problems:
        print("\n".join(problems))
        print(f"{len(problems)} problem(s) in {len(mods)} files, {n_edges} imports")
        return 1
    print(f"layers ok: {len(mods)} files, {n_edges} imports, no circles, nothing reaches up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
