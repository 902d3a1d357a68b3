"""Stage identity and caching: what makes a re-run skip a finished stage.

Every cached stage has a **stage key**: a SHA-256 of its name, its JSON-able inputs (its configuration
section, the upstream stages' results — which carry checkpoint md5s — and the data md5) and a code
fingerprint (the sources the stage runs: the roots in :data:`CODE_DEPS` and every amrlib module they
import, directly or through other amrlib modules: :func:`code_files`). The stage writes everything into
``<runs>/<stage>/<key[:16]>/`` and last of all ``result.json``.

Prefect caches the task under the same key (:class:`StageCache`), with the result record persisted as
JSON (never pickle) under ``<runs>/.prefect-results``. Before Prefect looks the key up, the policy checks
that the stage's ``result.json`` still exists (and, for registry stages, that what it recorded still
exists); if not, it deletes the stale record so the stage runs again instead of returning paths to files
that are gone.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from prefect.cache_policies import CachePolicy

ROOT = Path(__file__).resolve().parents[1]
RESULTS_SUBDIR = ".prefect-results"
RESULT_FILE = "result.json"

_COMMON = ("amrlib/models", "amrlib/measure.py", "amrlib/data/dataset.py", "amrlib/data/store.py",
           "amrlib/data/split.py", "amrlib/data/readers.py", "amrlib/data/readers_generic.py",
           "stages/stage.py", "stages/cache.py")
#: the roots of the code each stage's output depends on (directories: every .py below; globs allowed);
#: :func:`code_files` adds every amrlib module they import, so only what a stage calls directly is listed
CODE_DEPS: dict[str, tuple[str, ...]] = {
    "pretrain": _COMMON + ("amrlib/train", "tasks/train.py", "stages/torchrun.py"),
    "finetune": _COMMON + ("amrlib/train", "tasks/train.py", "stages/torchrun.py"),
    "interim_finetune": _COMMON + ("amrlib/train", "tasks/train.py", "stages/torchrun.py"),
    "channel_stage": _COMMON + ("amrlib/pruning/*.py", "amrlib/plots.py", "tasks/prune.py"),
    "lacd": _COMMON + ("amrlib/pruning/*.py", "amrlib/train", "amrlib/plots.py", "tasks/prune.py"),
    "match_target": _COMMON + ("amrlib/pruning/*.py", "amrlib/train", "tasks/prune.py"),
    "peer_stage": _COMMON + ("amrlib/pruning", "amrlib/train", "amrlib/plots.py", "tasks/prune.py", "tasks/peers.py"),
    "evaluate": _COMMON + ("amrlib/train", "amrlib/plots.py", "tasks/evaluate.py", "tracking/runs.py"),
    "register": _COMMON + ("tasks/registry.py", "tracking/registry.py", "tracking/mlflow_model.py", "tracking/runs.py",
                           "amrlib/model_card.py", "amrlib/plots.py"),
}


def _root_files(deps: tuple[str, ...]) -> set[Path]:
    files: set[Path] = set()
    for dep in deps:
        p = ROOT / dep
        if "*" in dep:
            files.update(ROOT.glob(dep))
        elif p.is_dir():
            files.update(p.rglob("*.py"))
        elif p.exists():
            files.add(p)
    return files


#: (file, mtime_ns, size) -> the dotted names its import statements name (parsed once per version of a file)
_PARSED: dict[tuple[Path, int, int], frozenset[str]] = {}


def imported_names(path: Path) -> frozenset[str]:
    """Dotted names of what ``path`` imports, wherever the statement is (module level or inside a
    function), relative imports resolved; ``from X import y`` gives X and X.y (y may be a submodule).
    Read with ``ast``: nothing is imported."""
    st = path.stat()
    cached = _PARSED.get((path, st.st_mtime_ns, st.st_size))
    if cached is not None:
        return cached
    rel = path.relative_to(ROOT).with_suffix("").parts
    package = rel[:-1]                       # for a package's __init__.py, the package itself
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target:
                names.add(target)
            names.update(f"{target}.{alias.name}" if target else alias.name for alias in node.names)
    found = frozenset(names)
    _PARSED[(path, st.st_mtime_ns, st.st_size)] = found
    return found


def _amrlib_file(name: str) -> Path | None:
    """The source file of the amrlib module ``name`` (``amrlib.x.y``), or None if it is not one."""
    if name != "amrlib" and not name.startswith("amrlib."):
        return None
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def code_files(stage: str) -> list[Path]:
    """The sources ``stage`` depends on: its roots (:data:`CODE_DEPS`; all of amrlib/, tasks/ and stages/ for an
    unknown stage) and, transitively, every amrlib module they import. A package's ``__init__.py`` counts
    when it is imported by name (``from amrlib.data import split``), not as the parent of a submodule."""
    todo = list(_root_files(CODE_DEPS.get(stage, ("amrlib", "tasks", "stages"))))
    files: set[Path] = set()
    while todo:
        f = todo.pop()
        if f in files:
            continue
        files.add(f)
        for name in imported_names(f):
            dep = _amrlib_file(name)
            if dep is not None and dep not in files:
                todo.append(dep)
    return sorted(files)


def code_fingerprint(stage: str) -> str:
    """SHA-256 of the sources ``stage`` depends on (:func:`code_files`): editing them invalidates that
    stage's cached results, editing anything else does not."""
    h = hashlib.sha256()
    for f in code_files(stage):
        h.update(str(f.relative_to(ROOT)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_default)


def _default(obj):
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not part of a stage key")


def stage_key(stage: str, inputs: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({"stage": stage, "inputs": inputs,
                                     "code": code_fingerprint(stage)}).encode()).hexdigest()


def stage_dir(runs: str | os.PathLike, stage: str, key: str) -> Path:
    return Path(runs) / stage / key[:16]


def results_dir(runs: str | os.PathLike) -> Path:
    return Path(runs) / RESULTS_SUBDIR


def write_result(directory: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Write ``result.json`` atomically (the stage's completion marker) and return the result."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{RESULT_FILE}.tmp"
    tmp.write_text(json.dumps(result, indent=1, sort_keys=True))
    os.replace(tmp, directory / RESULT_FILE)
    return result


def read_result(directory: Path) -> dict[str, Any] | None:
    f = directory / RESULT_FILE
    try:
        return json.loads(f.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@dataclass
class StageCache(CachePolicy):
    """Prefect cache policy: key = :func:`stage_key` of the task's inputs minus ``exclude``.

    ``runs_param`` names the task parameter holding the runs directory. ``still_valid(result)`` may add
    a check on the recorded result (e.g. the registered model version still exists).
    """
    stage: str = ""
    runs_param: str = "runs"
    exclude: tuple[str, ...] = ("tracking",)
    still_valid: Callable[[dict], bool] | None = None

    def compute_key(self, task_ctx, inputs, flow_parameters, **kwargs) -> str | None:
        inputs = dict(inputs or {})
        runs = inputs.get(self.runs_param)
        if runs is None:
            return None
        keyed = {k: v for k, v in inputs.items() if k not in self.exclude}
        key = stage_key(self.stage, keyed)
        result = read_result(stage_dir(runs, self.stage, key))
        if result is None or (self.still_valid is not None and not self.still_valid(result)):
            stale = results_dir(runs) / key
            if stale.exists():
                stale.unlink()
        return key


def key_of(stage: str, inputs: dict[str, Any], exclude: tuple[str, ...] = ("tracking",)) -> str:
    """The same key the task's :class:`StageCache` computes, from inside the task body."""
    return stage_key(stage, {k: v for k, v in inputs.items() if k not in exclude})
