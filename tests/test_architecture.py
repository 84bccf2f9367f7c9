"""The shape of the code, checked from its imports (ast), so that it stays as the README draws it:

    cli -> run -> executors -> trial -> (trainer, evaluation) -> store

No import cycle among bench's modules (imports inside functions included), no private name
imported across modules, no module importing a layer above it, and the results store and the
report load without torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1] / "bench"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(path: Path) -> list[tuple[str, str]]:
    """``(module, name)`` for every ``import``/``from ... import`` of a bench module anywhere in
    the file (``name`` is the imported name, '' for a plain ``import``)."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, "") for a in node.names if a.name.split(".")[0] == "bench"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "bench":
                out += [(node.module, a.name) for a in node.names]
    return out


def edges() -> dict[str, set[str]]:
    """module -> the bench modules it imports (``from pkg import submodule`` counts as the submodule)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, name in imports(path):
            sub = f"{target}.{name}"
            graph[module].add(sub if sub in MODULES else target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt == node:
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_walk_of_imports_finds_what_it_should():
    """The checker itself: it sees imports inside functions and finds a planted cycle."""
    graph = edges()
    assert "bench.trial" in graph["bench.executors.local"]
    assert "bench.store.rows" in graph["bench.trial"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    assert find_cycle(edges()) is None


def test_no_private_name_crosses_a_module_boundary():
    crossing = [f"{module} imports {target}.{name}"
                for module, path in MODULES.items() for target, name in imports(path)
                if name.startswith("_") and not name.startswith("__") and target != module]
    assert crossing == []


# A module may import the layers below it, never one above: (module prefix, what it must not import).
UPWARD = [
    ("bench.store", ("bench.",)),  # the store imports only itself
    ("bench.trial", ("bench.run", "bench.executors", "bench.cli", "bench.report")),
    ("bench.executors", ("bench.run", "bench.cli", "bench.report")),
    ("bench.run", ("bench.cli",)),
    ("bench.trainer", ("bench.run", "bench.executors", "bench.trial", "bench.cli", "bench.evaluation")),
    ("bench.evaluation", ("bench.run", "bench.executors", "bench.trial", "bench.cli", "bench.trainer")),
    ("bench.metrics", ("bench.run", "bench.executors", "bench.trial", "bench.cli", "bench.evaluation")),
    ("bench.report", ("bench.run", "bench.executors", "bench.trial", "bench.cli", "bench.trainer",
                      "bench.evaluation", "bench.variant")),
]


@pytest.mark.parametrize("prefix, forbidden", UPWARD, ids=[p for p, _ in UPWARD])
def test_imports_go_downward(prefix, forbidden):
    graph = edges()
    upward = [f"{m} -> {t}" for m, targets in graph.items() if m == prefix or m.startswith(prefix + ".")
              for t in targets
              if any(t == f.rstrip(".") or t.startswith(f if f.endswith(".") else f + ".") or t == f
                     for f in forbidden)
              and not (prefix == "bench.store" and t.startswith("bench.store"))]
    assert upward == []


def test_store_report_and_command_line_load_without_torch():
    code = ("import sys, bench.store, bench.store.retire, bench.report, bench.cli, bench.metrics.builtin; "
            "bad = [m for m in ('torch', 'ray', 'torch_fidelity') if m in sys.modules]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_one_atomic_writer_one_jsonl_reader_one_trial_name():
    """The small things of the store are written once: nobody else renames temporary files,
    parses JSON lines or formats a trial name."""
    offenders = []
    for module, path in MODULES.items():
        if module.startswith("bench.store"):
            continue
        text = path.read_text()
        for needle in ("os.replace(", "tempfile.mkstemp(", 'split(b"\\n")', "splitlines()", '-s{seed}"'):
            if needle in text and not (needle == "splitlines()" and "json.loads" not in text):
                offenders.append(f"{module}: {needle}")
    assert offenders == []
