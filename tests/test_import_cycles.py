"""No import cycle between the modules of ``src/dlbench``: a module's dependencies sit below it.

A static check over the AST of every module. It counts every ``import`` / ``from ... import`` statement
in a module, at module level and inside functions, classes and ``if`` blocks alike (a function-level
import that closes a loop is a loop all the same; it only hides it until the call). An edge goes to the
module named: ``from dlbench.a import b`` is an edge to ``dlbench.a.b`` when that is a module, else to
``dlbench.a`` (a package's ``__init__``); and, as Python runs a package's ``__init__`` before any module
in it, an edge to each package on the way (``dlbench.a``) that does not already hold the importer. Names
loaded by ``importlib.import_module`` (a package's lazy ``__getattr__``) are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "dlbench"


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The dlbench modules ``name`` (at ``path``) imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.add(sub if sub in known else target)
    for m in list(found):  # the packages on the way, outside the importer's own
        parts = m.split(".")
        for i in range(2, len(parts)):
            pkg = ".".join(parts[:i])
            if not (name == pkg or name.startswith(pkg + ".")):
                found.add(pkg)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    for v in sorted(g):
        if v not in index:
            visit(v)
    return [(_one_cycle(g, comp), sorted(comp)) for comp in comps]


def _one_cycle(g: dict[str, set[str]], comp: set[str]) -> list[str]:
    """The shortest cycle through the component's first module (breadth first, inside the component)."""
    start = min(comp)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(g[v] & comp):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return sorted(comp)


def test_the_check_sees_a_cycle():
    loop = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(loop) == [(["a", "b", "c", "a"], ["a", "b", "c"])]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_check_reads_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from . import b\n    from p.c import thing\n")
    (pkg / "q.py").write_text("import p.sub.x\n")
    known = {"p", "p.a", "p.b", "p.c", "p.sub", "p.sub.x", "p.q"}
    assert imports("p.a", pkg / "a.py", known) == {"p.b", "p.c"}
    # importing p.sub.x runs p/sub/__init__.py first
    assert imports("p.q", pkg / "q.py", known) == {"p.sub", "p.sub.x"}


def test_no_import_cycle_between_dlbench_modules():
    g = graph()
    assert len(g) > 50  # the check read the package
    found = cycles(g)
    assert not found, "import cycles: " + "; ".join(
        f"{' -> '.join(c)} (in a loop of {len(comp)}: {', '.join(comp)})" for c, comp in found
    )
