#!/usr/bin/env python3
"""The shape of the emulator's source: long functions, large files, import cycles.

Prints, for emulator/src (or the directory given):
  - every function longer than --fn-lines lines (default 80), longest first;
  - every file longer than --file-lines lines (default 600), largest first;
  - the import cycles between modules: the strongly connected components (more than one module)
    of the graph "module A names crate::B" (a `use crate::…` or a `crate::…` path anywhere in A,
    and `super::…` paths resolved), with one module per file (`graph/mod.rs` is `graph`).

Test modules (`#[cfg(test)] mod tests { … }`) count towards the file's lines, and their functions
are listed like any other (each `fn` is measured from its line to its closing brace); their imports
make no cycle.

Usage: hack/emulator-shape.py [DIR] [--fn-lines N] [--file-lines N]
"""
import argparse
import os
import re
import sys


def strip_code(text):
    """The text with comments, strings and char literals blanked (newlines kept), so braces and
    `crate::` paths are only counted in code."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            # A char literal ('a', '\n', '\u{..}') or a lifetime ('a): only the former is blanked.
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")


def functions(code):
    """(name, first line, line count) of every fn with a body."""
    lines = code.split("\n")
    found = []
    for no, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        depth, opened = 0, False
        for end in range(no, len(lines)):
            for ch in lines[end]:
                if ch == "{":
                    depth, opened = depth + 1, True
                elif ch == "}":
                    depth -= 1
                elif ch == ";" and not opened and depth == 0:
                    break  # a declaration without a body (trait method)
            else:
                if opened and depth == 0:
                    found.append((m.group(1), no + 1, end - no + 1))
                    break
                continue
            break
    return found


def module_of(rel):
    """`graph/mod.rs` -> `graph`, `identity/token.rs` -> `identity::token`, lib.rs/main.rs -> crate."""
    parts = rel[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts in (["lib"], ["main"]):
        return "crate"
    return "::".join(parts)


def resolve(path, modules):
    """The longest known module that `path` (a::b::c) starts with."""
    parts = path.split("::")
    for k in range(len(parts), 0, -1):
        cand = "::".join(parts[:k])
        if cand in modules:
            return cand
    return None


def use_paths(tree):
    """Expands a use tree (`a::{b, c::{d, e as f}}`) into its paths."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    out, depth, start = [], 0, 0
    if "{" not in tree:
        return [tree]
    i = tree.index("{")
    head, body = tree[:i], tree[i + 1 : tree.rindex("}")]
    for j, ch in enumerate(body + ","):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            part = body[start:j]
            start = j + 1
            if part:
                out += [head + p for p in use_paths(part)]
    return out


def without_tests(code):
    """The code without its `#[cfg(test)]` items: what only a test imports makes no cycle."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]", code):
        if m.start() < i:
            continue
        j = code.find("{", m.end())
        semi = code.find(";", m.end())
        if semi != -1 and (j == -1 or semi < j):
            end = semi + 1  # `#[cfg(test)] use …;`
        else:
            depth, end = 0, j
            while end < len(code):
                depth += {"{": 1, "}": -1}.get(code[end], 0)
                end += 1
                if depth == 0:
                    break
        out.append(code[i : m.start()])
        out.append(re.sub(r"[^\n]", " ", code[m.start() : end]))
        i = end
    out.append(code[i:])
    return "".join(out)


def imports(mod, code, modules):
    """The modules `mod` names: by `use` trees and by inline `crate::`, `super::`, `self::` or
    submodule paths."""
    base = mod.split("::") if mod != "crate" else []
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", code):
        paths += use_paths(m.group(1))
    paths += re.findall(r"(?<![:\w])((?:crate|super|self)(?:::\w+)+)", code)
    # A module names its own submodules without a prefix (`server::start(…)`, `routes::TABLE`).
    paths += ["self::" + p for p in re.findall(r"(?<![:\w])(\w+(?:::\w+)*)::", code)
              if p.split("::")[0] not in ("crate", "super", "self")]
    deps = set()
    for p in paths:
        parts = [x for x in p.split("::") if x and x != "*"]
        if not parts:
            continue
        kind = parts[0]
        if kind == "crate":
            full = parts[1:]
        elif kind == "super":
            up = 0
            while parts and parts[0] == "super":
                up, parts = up + 1, parts[1:]
            full = base[: max(len(base) - up, 0)] + parts
        elif kind == "self":
            full = base + parts[1:]
        else:
            continue  # an external crate
        t = resolve("::".join(full), modules) if full else None
        if t is None and kind != "self":
            t = "crate"  # an item of lib.rs (`crate::Config`)
        if t:
            deps.add(t)
    deps.discard(mod)
    return deps


def sccs(graph):
    """Tarjan's strongly connected components."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "emulator", "src"))
    ap.add_argument("--fn-lines", type=int, default=80)
    ap.add_argument("--file-lines", type=int, default=600)
    a = ap.parse_args()
    root = os.path.normpath(a.dir)
    files = {}
    for d, _, names in os.walk(root):
        for f in names:
            if f.endswith(".rs"):
                p = os.path.join(d, f)
                files[os.path.relpath(p, root)] = open(p, encoding="utf-8").read()

    long_fns, big_files, all_fns = [], [], []
    for rel, text in files.items():
        nlines = text.count("\n") + (0 if text.endswith("\n") else 1)
        if nlines > a.file_lines:
            big_files.append((nlines, rel))
        for name, line, count in functions(strip_code(text)):
            all_fns.append(count)
            if count > a.fn_lines:
                long_fns.append((count, f"{rel}:{line}", name))

    print(f"== functions over {a.fn_lines} lines ({len(long_fns)} of {len(all_fns)}) ==")
    for count, where, name in sorted(long_fns, reverse=True):
        print(f"{count:5}  {name:28} {where}")
    print(f"\n== files over {a.file_lines} lines ({len(big_files)} of {len(files)}; "
          f"{sum(t.count(chr(10)) for t in files.values())} lines in all) ==")
    for n, rel in sorted(big_files, reverse=True):
        print(f"{n:5}  {rel}")

    modules = {module_of(rel) for rel in files if rel != "main.rs"}
    graph = {}
    for rel, text in files.items():
        if rel == "main.rs":
            continue  # the binary uses the library by its crate name, not crate::
        mod = module_of(rel)
        code = without_tests(strip_code(text))
        graph.setdefault(mod, set()).update(imports(mod, code, modules))
    cycles = [c for c in sccs(graph) if len(c) > 1]
    print(f"\n== import cycles between modules ({len(cycles)} cycles; {len(graph)} modules) ==")
    for c in sorted(cycles, key=len, reverse=True):
        print(f"{len(c):3} modules: {', '.join(c)}")

    # The same graph with every module folded into its top-level one (`graph::routes` -> `graph`):
    # cycles here are circles between surfaces / layers, not within one.
    top = {}
    for m, deps in graph.items():
        t = m.split("::")[0]
        top.setdefault(t, set()).update(d.split("::")[0] for d in deps)
        top[t].discard(t)
    cycles = [c for c in sccs(top) if len(c) > 1]
    print(f"\n== import cycles between top-level modules ({len(cycles)} cycles; {len(top)} top-level modules) ==")
    for c in sorted(cycles, key=len, reverse=True):
        print(f"{len(c):3} modules: {', '.join(c)}")


if __name__ == "__main__":
    main()
