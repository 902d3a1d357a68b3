"""Stage keys and the cache policy: stable for equal inputs, different for any changed input, blind to
the tracking context, and a record whose stage output is gone is dropped so the stage runs again."""
from __future__ import annotations

import json

from stages.cache import (
    StageCache,
    code_fingerprint,
    key_of,
    read_result,
    results_dir,
    stage_dir,
    stage_key,
    write_result,
)

INPUTS = {"settings": {"epochs": 1}, "data": {"md5": "abc"}, "runs": "/x"}


def test_keys_are_stable_and_input_sensitive():
    assert stage_key("pretrain", INPUTS) == stage_key("pretrain", json.loads(json.dumps(INPUTS)))
    assert stage_key("pretrain", INPUTS) != stage_key("pretrain", {**INPUTS, "data": {"md5": "abd"}})
    assert stage_key("pretrain", INPUTS) != stage_key("finetune", INPUTS)
    assert key_of("pretrain", {**INPUTS, "tracking": {"parent_run_id": "r1"}}) == \
        key_of("pretrain", {**INPUTS, "tracking": {"parent_run_id": "r2"}})


def test_code_fingerprint_covers_the_stage_code_only(tmp_path, monkeypatch):
    import stages.cache as cache
    (tmp_path / "amrlib" / "train").mkdir(parents=True)
    (tmp_path / "amrlib" / "pruning" / "peers").mkdir(parents=True)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "amrlib" / "train" / "loop.py").write_text("a = 1\n")
    (tmp_path / "amrlib" / "pruning" / "peers" / "x.py").write_text("b = 1\n")
    monkeypatch.setattr(cache, "ROOT", tmp_path)
    before = code_fingerprint("pretrain")
    (tmp_path / "amrlib" / "pruning" / "peers" / "x.py").write_text("b = 2\n")     # not pretrain's code
    assert code_fingerprint("pretrain") == before
    (tmp_path / "amrlib" / "train" / "loop.py").write_text("a = 2\n")
    assert code_fingerprint("pretrain") != before


def test_policy_drops_a_record_whose_output_is_gone(tmp_path):
    runs = tmp_path / "runs"
    inputs = {**INPUTS, "runs": str(runs), "tracking": {"x": 1}}
    policy = StageCache(stage="pretrain")
    key = policy.compute_key(None, inputs, {})
    assert key == key_of("pretrain", inputs)
    record = results_dir(runs) / key
    record.parent.mkdir(parents=True)
    record.write_text("{}")                                   # a Prefect record without the stage's output
    assert policy.compute_key(None, inputs, {}) == key and not record.exists()

    write_result(stage_dir(runs, "pretrain", key), {"ok": True})
    record.write_text("{}")
    assert policy.compute_key(None, inputs, {}) == key and record.exists()      # output there: record kept
    assert read_result(stage_dir(runs, "pretrain", key)) == {"ok": True}

    invalid = StageCache(stage="pretrain", still_valid=lambda result: False)   # e.g. a deleted model version
    assert invalid.compute_key(None, inputs, {}) == key and not record.exists()


def _roots(deps):
    """The files CODE_DEPS names (directories: every .py below; globs), computed here independently."""
    from stages.cache import ROOT
    files = set()
    for dep in deps:
        p = ROOT / dep
        files.update(ROOT.glob(dep) if "*" in dep else p.rglob("*.py") if p.is_dir() else [p] if p.exists() else [])
    return files


def test_code_fingerprint_covers_every_amrlib_module_the_roots_import():
    """Every amrlib module a stage's listed sources import, directly or through other amrlib modules (also
    from inside functions), is part of the stage's fingerprint: editing it invalidates the cached stage."""
    from stages.cache import CODE_DEPS, ROOT, code_files
    from test_layering import PACKAGES, collect_modules, imports_of
    mods = collect_modules(ROOT, PACKAGES)
    name_of = {f.resolve(): n for n, f in mods.items()}
    known = set(mods)
    for stage, deps in CODE_DEPS.items():
        todo = [name_of[f.resolve()] for f in _roots(deps)]
        needed: set[str] = set()
        while todo:
            name = todo.pop()
            if name in needed:
                continue
            needed.add(name)
            todo += [t for t, _ in imports_of(name, mods[name], known) if t in known and t.split(".")[0] == "amrlib"]
        covered = {name_of[f.resolve()] for f in code_files(stage)}
        missing = sorted(needed - covered)
        assert not missing, f"stage {stage}: imported amrlib modules outside its code fingerprint: {missing}"
    pretrain = {name_of[f.resolve()] for f in code_files("pretrain")}
    assert {"amrlib.data.readers_rml", "amrlib.data.safe_pickle"} <= pretrain      # what readers.py imports


def test_code_fingerprint_follows_imports(tmp_path, monkeypatch):
    import stages.cache as cache
    files = {"amrlib/data/readers.py": "from .readers_rml import read\n\ndef f():\n    from amrlib.data import late\n",
             "amrlib/data/__init__.py": "", "amrlib/data/readers_rml.py": "from . import safe_pickle\n",
             "amrlib/data/safe_pickle.py": "x = 1\n", "amrlib/data/late.py": "y = 1\n",
             "amrlib/data/unused.py": "z = 1\n"}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    monkeypatch.setattr(cache, "ROOT", tmp_path)
    monkeypatch.setattr(cache, "CODE_DEPS", {"s": ("amrlib/data/readers.py",)})
    assert {p.relative_to(tmp_path).as_posix() for p in cache.code_files("s")} == {
        "amrlib/data/readers.py", "amrlib/data/__init__.py", "amrlib/data/readers_rml.py",
        "amrlib/data/safe_pickle.py", "amrlib/data/late.py"}
    before = cache.code_fingerprint("s")
    (tmp_path / "amrlib/data/unused.py").write_text("z = 2\n")
    assert cache.code_fingerprint("s") == before
    (tmp_path / "amrlib/data/safe_pickle.py").write_text("x = 2  # a changed file of another size\n")
    assert cache.code_fingerprint("s") != before
