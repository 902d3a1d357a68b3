"""A configuration whose dataset would not fit in memory is refused from an estimate, before Prefect starts
and before anything is generated (issue 19: ``frames_per_key=120000`` started Prefect and died 40 s later
with a raw MemoryError). ``amr-prune run`` runs in a child process with its own PREFECT_HOME, which must stay
empty: Prefect's temporary server would create its database there."""
from __future__ import annotations

import pytest

from datastore.dvc_store import fetch
from datastore.memory import MemoryEstimateError, check_recipe, planned_dataset
from fixtures_pipeline import TINY_DATA, make_project, tiny_config
from helpers.cli_process import run_cli


def _run(root, cfg, home, *sets, env=None):
    args = [a for s in sets for a in ("--set", s)]
    return run_cli("run", "--config", cfg, *args, cwd=root, env={"PREFECT_HOME": str(home), **(env or {})},
                   timeout=600)


def test_generated_dataset_too_big_is_refused_before_prefect_starts(tmp_path):
    root = make_project(tmp_path / "proj", tmp_path / "remote")
    cfg = tiny_config(root)
    home = tmp_path / "prefect-home"
    code, out, _ = _run(root, cfg, home, "data.synthetic.frames_per_key=100000000")
    assert code == 1, out
    text = " ".join(out.split())
    assert "error: data.synthetic" in text or "error: generating" in text, out
    assert "1,600,000,000 frames of 128 samples" in text and "more than the" in text and "hint:" in text
    assert "Traceback" not in out and "MemoryError" not in out
    assert not home.exists() or not any(home.iterdir())                  # Prefect never started
    assert not (root / "tiny.dvc").exists() and not (root / "data").exists()   # nothing generated


def test_tracked_dataset_over_the_budget_is_refused_before_prefect_starts(tmp_path):
    root = make_project(tmp_path / "proj", tmp_path / "remote")
    fetch(root, "tiny.dvc", None, TINY_DATA, log=lambda *a: None)         # 192 frames, tracked
    cfg = tiny_config(root)
    home = tmp_path / "prefect-home"
    code, out, _ = _run(root, cfg, home, env={"AMR_PRUNE_MEMORY_BUDGET": "64M"})
    assert code == 1, out
    text = " ".join(out.split())
    assert "data/tiny.h5 (tracked by tiny.dvc): 192 frames of 128 samples" in text, out
    assert "more than the 64.0 MiB AMR_PRUNE_MEMORY_BUDGET=64M" in text and "hint:" in text, out
    assert not home.exists() or not any(home.iterdir())
    assert not (root / "runs").exists() or not any((root / "runs").rglob("result.json"))


def test_estimate_reads_the_header_the_pointer_and_the_settings(tmp_path):
    root = make_project(tmp_path / "proj", tmp_path / "remote")
    plan = planned_dataset(root, "tiny.dvc", {**TINY_DATA, "frame_length": 128})
    assert plan["frames"] == 12 * 4 * 4 and plan["bytes"] == 192 * (2 * 128 * 4 + 16)
    fetch(root, "tiny.dvc", None, TINY_DATA, log=lambda *a: None)
    assert planned_dataset(root, "tiny.dvc", {})["frames"] == 192                     # from the file's header
    (root / "data" / "tiny.h5").unlink()
    assert planned_dataset(root, "tiny.dvc", {})["frames"] == 192                     # from meta.synthetic
    with pytest.raises(MemoryEstimateError, match=r"generating x.h5: 10,000,000,000 frames per key"):
        check_recipe({"frames_per_key": 10**10, "snrs": [0], "classes": ["BPSK", "QPSK"]}, "x.h5")


def test_data_synth_too_big_is_refused_from_the_estimate(tmp_path):
    out_file = tmp_path / "big.h5"
    code, out, _ = run_cli("data", "synth", "--frames-per-key", "100000000", "--out", out_file, cwd=tmp_path)
    assert code == 1, out
    text = " ".join(out.split())
    assert "22,000,000,000 frames of 128 samples" in text and "generating it needs about" in text, out
    assert "MemoryError" not in out and not out_file.exists()
