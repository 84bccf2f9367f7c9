"""The shape of the code, checked from its imports (ast), so that it stays as the README draws it:

    cli -> run -> executors -> trial -> (trainer, evaluation) -> store

No import cycle among bench's modules (imports inside functions included), no private name
imported across modules, no module importing a layer above it, and the results store and the
report load without torch. And the tests mirror the code: ``tests/a/test_b.py`` tests
``bench/a/b.py`` (``tests/plugins/test_x.py`` tests ``plugins/x.py``), every module has its test
file or names the one that exercises it, and every test file has a fast test.
"""

from __future__ import annotations

import ast
import functools
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


@functools.cache
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


def plugin_imports(path: Path) -> list[str]:
    """The modules a plugin file imports (anywhere in it, ``from x import y`` as ``x``)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


PLUGIN_FILES = sorted([*(ROOT.parent / "plugins").glob("*.py"), *(ROOT.parent / "examples").rglob("*.py")])


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=[p.name if p.parent.name == "plugins" else
                                                     f"{p.parent.name}/{p.name}" for p in PLUGIN_FILES])
def test_plugins_import_only_public_bench(path):
    """A built-in is written as a third party writes a plugin: from bench's public modules, never
    from another plugin (``bench_plugins``), the sweep layer or a private module."""
    bad = [m for m in plugin_imports(path)
           if m.split(".")[0] == "bench_plugins" or m.startswith("bench.sweep")
           or (m.split(".")[0] == "bench" and any(part.startswith("_") for part in m.split(".")))]
    assert bad == []


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


# -- the tests mirror the code ------------------------------------------------------------------

TESTS = Path(__file__).parent
REPO = TESTS.parent
# Test files that mirror no single module: the package's shape (this file), the built-ins as a set.
WHOLE = {"test_architecture.py", "plugins/test_builtins.py"}
# Modules without a test file of their own, and the test file that exercises them.
TESTED_IN = {
    "bench/adversarial.py": "plugins/test_gan.py",
    "bench/autoencoder.py": "plugins/test_vae.py",
    "bench/backbones/base.py": "test_backbones.py",
    "bench/backbones/builtin.py": "test_backbones.py",
    "bench/checkpoint.py": "test_run.py",
    "bench/flops.py": "test_trainer.py",
    "bench/hookspecs.py": "test_plugins.py",
    "bench/options.py": "test_config.py",
    "bench/perf_evaluation.py": "test_perf.py",
    "bench/perf_trackers.py": "test_perf.py",
    "bench/registry.py": "test_plugins.py",
    "bench/testing/probes.py": "plugins/test_gan.py",
    "bench/data/builtin.py": "data/test_imagefolder.py",
    "bench/data/dataset.py": "test_latents.py",
    "bench/data/image_source.py": "test_evaluation.py",
    "bench/executors/base.py": "test_run.py",
    "bench/executors/local.py": "test_trial.py",
    "bench/executors/ray_options.py": "test_config.py",
    "bench/metrics/builtin.py": "report/test_load.py",
    "bench/metrics/errors.py": "metrics/test_fidelity.py",
    "bench/metrics/features.py": "metrics/test_fidelity.py",
    "bench/metrics/inception_network.py": "metrics/test_inception.py",
    "bench/metrics/inception_openvino.py": "metrics/test_inception.py",
    "bench/metrics/reference_cache.py": "metrics/test_fidelity.py",
    "bench/report/comparable.py": "report/test_build.py",
    "bench/report/format.py": "report/test_build.py",
    "bench/report/plots.py": "report/test_build.py",
    "bench/report/sections.py": "report/test_build.py",
    "bench/report/timing.py": "report/test_best.py",
    "bench/store/columns.py": "report/test_load.py",
    "bench/store/files.py": "test_trainer.py",
    "bench/store/layout.py": "test_trial.py",
    "bench/store/provenance.py": "test_cli.py",
    "bench/store/retire.py": "test_run.py",
    "bench/store/rows.py": "test_trainer.py",
    "bench/store/status.py": "test_trial.py",
    "bench/store/sweep.py": "sweep/test_run.py",
    "bench/sweep/protocol.py": "test_config.py",
    "bench/sweep/space.py": "test_space.py",
    "bench/sweep/study.py": "sweep/test_run.py",
}


def all_test_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if "benchmarks" not in p.relative_to(TESTS).parts)


def mirrored(test_file: Path) -> Path:
    """The code a test file tests, by its path: tests/a/test_b.py -> bench/a/b.py (or the package
    bench/a/b/), tests/plugins/test_x.py -> plugins/x.py, tests/examples/test_x_y.py -> examples/x-y."""
    rel = test_file.relative_to(TESTS)
    name = rel.stem.removeprefix("test_")
    if rel.parts[0] == "plugins":
        return REPO / "plugins" / f"{name}.py"
    if rel.parts[0] == "examples":
        return REPO / "examples" / name.replace("_", "-")
    module = REPO / "bench" / rel.parent / f"{name}.py"
    return module if module.exists() else REPO / "bench" / rel.parent / name


def modules() -> list[str]:
    """Every module of bench and every built-in plugin, as a path from the repository root."""
    paths = [*(REPO / "bench").rglob("*.py"), *(REPO / "plugins").glob("*.py")]
    return sorted(str(p.relative_to(REPO)) for p in paths
                  if p.name != "__init__.py" and not p.name.startswith("test_"))


def test_every_test_file_mirrors_a_module():
    strays = [str(p.relative_to(TESTS)) for p in all_test_files()
              if str(p.relative_to(TESTS)) not in WHOLE and not mirrored(p).exists()]
    assert strays == [], "name each test file after the module it tests (tests/a/test_b.py: bench/a/b.py)"


def test_every_module_has_its_test_file_or_names_the_one_that_exercises_it():
    have = {str(mirrored(p).relative_to(REPO)) for p in all_test_files() if mirrored(p).exists()}
    untested = [m for m in modules() if m not in have and m not in TESTED_IN]
    assert untested == [], "add tests/<same path>/test_<module>.py, or say in TESTED_IN where it is tested"
    stale = {m: t for m, t in TESTED_IN.items()
             if m in have or m not in modules() or not (TESTS / t).exists()}
    assert stale == {}, "TESTED_IN lists a module that has its own test file now, or is gone"


def is_slow(node: ast.FunctionDef) -> bool:
    return any("slow" in ast.unparse(d) for d in node.decorator_list)


def test_every_test_file_has_a_fast_test():
    """The fast lane (``pytest -m "not slow"``) reaches every module: each test file keeps at least
    one test under about 2 s."""
    only_slow = []
    for path in all_test_files():
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in n.targets)
               and "slow" in ast.unparse(n.value) for n in tree.body):
            only_slow.append(str(path.relative_to(TESTS)))
            continue
        tests = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
        imported = any(isinstance(n, ast.ImportFrom) and any(a.name.startswith("test_") for a in n.names)
                       for n in tree.body)
        if tests and all(is_slow(n) for n in tests) or not tests and not imported:
            only_slow.append(str(path.relative_to(TESTS)))
    assert only_slow == []


def test_every_package_is_installed():
    """A non-editable install (CI's, a user's) ships only the packages pyproject.toml lists."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "bench").rglob("__init__.py")}
    assert packages - listed == set(), "add them to [tool.setuptools] packages in pyproject.toml"
