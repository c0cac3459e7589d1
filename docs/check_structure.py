#!/usr/bin/env python3
"""Checks two structural rules of issue 12, so they stay true:

1. no module circle inside any crate (a module's `crate::x` imports, outside
   its tests and comments, never lead back to it);
2. no function in the core (`crates/esession/src`) longer than 120 lines.

A plain scan of the sources, not a Rust parser: good enough for our code
style (rustfmt'ed, braces balanced per line). Exits 1 with what broke.
"""
import collections
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MAX_FN_LINES = 120


def sources(base):
    for root, _, files in os.walk(base):
        for name in sorted(files):
            if name.endswith(".rs"):
                yield os.path.join(root, name)


def strip(text):
    """The code without tests, comments or string contents."""
    text = text.split("#[cfg(test)]")[0]
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    return re.sub(r"//.*", "", text)


def module_graph(src_dir):
    graph = collections.defaultdict(set)
    tops = set()
    for path in sources(src_dir):
        parts = os.path.relpath(path, src_dir)[:-3].split(os.sep)
        if parts[-1] == "mod":
            parts = parts[:-1]
        if parts in (["lib"], ["main"]):
            continue
        tops.add(parts[0])
        with open(path, encoding="utf-8") as f:
            graph[parts[0]].update(re.findall(r"crate::(\w+)", strip(f.read())))
    return {m: {d for d in deps if d in tops and d != m} for m, deps in graph.items()}


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def long_functions(src_dir):
    start = re.compile(r"\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?fn\s+(\w+)")
    for path in sources(src_dir):
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        for i, line in enumerate(lines):
            m = start.match(line)
            if not m:
                continue
            depth, opened = 0, False
            for j in range(i, len(lines)):
                code = strip(lines[j])
                if not opened and ";" in code and "{" not in code:
                    break  # a declaration without a body
                depth += code.count("{") - code.count("}")
                opened = opened or "{" in code
                if opened and depth <= 0:
                    if j - i + 1 > MAX_FN_LINES:
                        yield os.path.relpath(path, ROOT), m.group(5), j - i + 1
                    break


def main():
    failed = False
    crates = os.path.join(ROOT, "crates")
    for crate in sorted(os.listdir(crates)):
        src = os.path.join(crates, crate, "src")
        for component in cycles(module_graph(src)) if os.path.isdir(src) else ():
            print(f"module circle in {crate}: {' <-> '.join(component)}")
            failed = True
    for path, name, length in long_functions(os.path.join(crates, "esession", "src")):
        print(f"{path}: fn {name} is {length} lines (at most {MAX_FN_LINES})")
        failed = True
    print("structure: " + ("FAILED" if failed else "ok (no module circle, no core function over 120 lines)"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
