"""The layering, read from the source (``ast``; nothing is imported or executed). Each package may import
only the ones below it (and third-party libraries), never one above:

    amrlib      the pure library: none of prefect, mlflow, dvc, nor any package of the project below
    settings    the configuration schemas: amrlib only (no prefect, mlflow, dvc)
    datastore   the DVC adapter: amrlib, settings (no prefect, mlflow)
    tracking    the MLflow adapter: amrlib, settings, datastore (no Prefect task modules: never stages/tasks)
    stages      what the stage tasks share: the adapters, never tasks or flows
    tasks       the Prefect tasks: never flows (flows are built from tasks, not the other way round) nor cli
    flows       the Prefect flows: never cli
    cli         the command line, on top

neither at the top of a module nor inside a function; and the project's modules import each other without
a cycle, counting imports inside functions too (a function-level import hides a cycle from Python's start-up
but not from a reader).

The checks work on any tree of sources, so the tests also run them on small planted violations to show
that they catch each kind.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: the project's packages, lowest layer first
PACKAGES = ("amrlib", "settings", "datastore", "tracking", "stages", "tasks", "flows", "cli")
#: what each package must not import: every package above it, and the services it does not adapt
FORBIDDEN: dict[str, tuple[str, ...]] = {
    pkg: PACKAGES[i + 1:] + {"amrlib": ("prefect", "mlflow", "dvc"), "settings": ("prefect", "mlflow", "dvc"),
                             "datastore": ("prefect", "mlflow")}.get(pkg, ())
    for i, pkg in enumerate(PACKAGES)}
FORBIDDEN_IN_AMRLIB = FORBIDDEN["amrlib"]
#: entry scripts (run with ``python -m``, imported by no module) allowed to import the package above them
ENTRY_SCRIPTS = {"flows.__main__": ("cli",)}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def collect_modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """{dotted module name: file} for every .py file under the packages."""
    mods = {}
    for pkg in packages:
        for f in sorted((root / pkg).rglob("*.py")):
            mods[module_name(f, root)] = f
    return mods


def imports_of(name: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """Every module ``path`` imports, absolute and dotted, with its line, wherever the statement is (module
    level, a function, a class, a try block). ``from X import y`` counts X, and X.y when that is a module;
    ``importlib.import_module("X")`` with a literal name counts X."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                up = node.level - 1
                if up >= len(base_parts):
                    raise AssertionError(f"{path}:{node.lineno}: relative import beyond the top-level package")
                base = ".".join(base_parts[:len(base_parts) - up])
                target = ".".join(p for p in (base, node.module) if p)
            else:
                target = node.module or ""
            if target:
                found.append((target, node.lineno))
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                if sub in known:
                    found.append((sub, node.lineno))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and (getattr(node.func, "attr", None) == "import_module"
                   or getattr(node.func, "id", None) in ("import_module", "__import__"))):
            found.append((node.args[0].value, node.lineno))
    return found


def _top(mod: str) -> str:
    return mod.split(".")[0]


def forbidden_imports(root: Path) -> list[str]:
    """Layering violations: a package importing one above it or a service it must not use (:data:`FORBIDDEN`)."""
    mods = collect_modules(root)
    known = set(mods)
    bad = []
    for name, path in mods.items():
        rel = path.relative_to(root)
        for target, line in imports_of(name, path, known):
            if _top(target) in FORBIDDEN.get(_top(name), ()) and _top(target) not in ENTRY_SCRIPTS.get(name, ()):
                bad.append(f"{rel}:{line}: {_top(name)} imports {target}")
    return bad


def import_graph(root: Path, packages: str | tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the project modules it imports (function-level imports included), over ``packages``."""
    if isinstance(packages, str):
        packages = (packages,)
    mods = {n: p for n, p in collect_modules(root, packages).items()}
    known = set(mods)
    graph: dict[str, set[str]] = {n: set() for n in mods}
    for name, path in mods.items():
        for target, _ in imports_of(name, path, known):
            if target in known and target != name:
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# ---- the repository ----------------------------------------------------------------------------------

def test_every_package_is_parsed():
    mods = collect_modules(ROOT)
    for pkg in PACKAGES:
        assert pkg in mods, f"{pkg}/__init__.py not found"
    assert "tracking.outbox" in mods and "cli" in mods and "amrlib.pruning.peers" in mods


def test_every_top_level_package_is_checked():
    """A new top-level package must be given its place in the layering (and the package list)."""
    found = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert found - {"bench", "tests"} <= set(PACKAGES), f"packages outside the layering: {found - set(PACKAGES)}"


def test_every_package_keeps_its_layer():
    bad = forbidden_imports(ROOT)
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_no_module_imports_an_entry_script():
    mods = collect_modules(ROOT)
    users = [n for n, p in mods.items() for target, _ in imports_of(n, p, set(mods)) if target in ENTRY_SCRIPTS]
    assert not users, users


def test_importing_the_cli_has_no_side_effect():
    """``import cli`` sets no environment variable and imports neither torch, Prefect nor MLflow (each command
    imports what it needs when it runs): ``amr-prune --help`` stays fast."""
    import subprocess
    import sys
    code = ("import os, sys; before = dict(os.environ); import cli; "
            "heavy = sorted(m for m in ('torch', 'prefect', 'mlflow', 'dvc') if m in sys.modules); "
            "changed = sorted(k for k in set(os.environ) | set(before) if os.environ.get(k) != before.get(k)); "
            "print(heavy, changed)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] []", out.stdout


def test_tasks_hold_prefect_tasks_only():
    """Every module of tasks/ defines a Prefect task (the adapters, schemas and stage helpers live elsewhere)."""
    for f in sorted((ROOT / "tasks").glob("*.py")):
        if f.name != "__init__.py":
            assert "@task(" in f.read_text(), f"{f.relative_to(ROOT)} defines no Prefect task"


def test_no_import_cycle():
    graph = import_graph(ROOT)
    assert graph["tracking.runs"] and graph["tasks.registry"], "the graph lost the project-internal imports"
    found = cycles(graph)
    assert not found, "import cycles between modules: " + "; ".join(" <-> ".join(c) for c in found)


# ---- the checks catch planted violations -------------------------------------------------------------

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir(exist_ok=True)
        (tmp_path / pkg / "__init__.py").touch()
    for rel, text in files.items():
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return tmp_path


@pytest.mark.parametrize("source", [
    "import mlflow\n",
    "def f():\n    from prefect import flow\n",
    "def f():\n    import dvc.api\n",
    "class C:\n    def m(self):\n        from settings.pipeline import load_config\n",
    "try:\n    import cli\nexcept ImportError:\n    pass\n",
    "import importlib\nM = importlib.import_module('mlflow.tracking')\n",
])
def test_amrlib_violation_is_caught(tmp_path, source):
    root = _tree(tmp_path, {"amrlib/data/__init__.py": "", "amrlib/data/x.py": source})
    assert forbidden_imports(root), source


@pytest.mark.parametrize("source", ["from flows.context import X\n", "def f():\n    import flows\n"])
def test_tasks_importing_flows_is_caught(tmp_path, source):
    root = _tree(tmp_path, {"tasks/x.py": source})
    assert forbidden_imports(root), source


@pytest.mark.parametrize("rel, source", [
    ("tracking/x.py", "from tasks.registry import register\n"),           # an adapter importing a task
    ("datastore/x.py", "def f():\n    from tracking.runs import client_for\n"),
    ("settings/x.py", "import mlflow\n"),
    ("stages/x.py", "from flows.context import X\n"),
])
def test_an_adapter_importing_above_it_is_caught(tmp_path, rel, source):
    root = _tree(tmp_path, {rel: source})
    assert forbidden_imports(root), (rel, source)


def test_allowed_imports_pass(tmp_path):
    root = _tree(tmp_path, {"amrlib/x.py": "import torch\nfrom .y import z\nimport prefectlike\n",
                            "amrlib/y.py": "", "tasks/x.py": "import amrlib\nfrom amrlib.x import a\n",
                            "flows/x.py": "import tasks.x\nimport prefect\n"})
    assert forbidden_imports(root) == []


@pytest.mark.parametrize("a_src, b_src", [
    ("from .b import f\n", "def g():\n    from .a import h\n"),          # function-level, as outbox was
    ("import tasks.b\n", "from tasks import a\n"),                        # absolute forms
    ("from . import b\n", "from .c import x\n"),                          # through a third module
])
def test_tasks_cycle_is_caught(tmp_path, a_src, b_src):
    root = _tree(tmp_path, {"tasks/a.py": a_src, "tasks/b.py": b_src, "tasks/c.py": "from .a import y\n"})
    found = cycles(import_graph(root, "tasks"))
    assert found and {"tasks.a", "tasks.b"} <= set(found[0])


def test_no_cycle_without_one(tmp_path):
    root = _tree(tmp_path, {"tasks/a.py": "from .b import f\n", "tasks/b.py": "from .c import g\n",
                            "tasks/c.py": "import os\n"})
    assert cycles(import_graph(root, "tasks")) == []
