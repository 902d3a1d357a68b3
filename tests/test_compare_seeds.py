"""bench/compare_seeds.py: mean and spread of several seeds' accuracy changes, per method and target."""
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import compare_seeds  # noqa: E402


def _run(seed, parent, rows):
    return {"settings": {"seed": seed}, "models": {"resnet20": {"parent": {"accuracy": parent}, "rows": rows}}}


def _row(method, target, acc, cut=None, met=True):
    return {"method": method, "target": target, "accuracy": acc, "macs_reduction": cut or target, "target_met": met}


def test_mean_and_spread_against_each_seeds_parent():
    runs = [_run(0, 0.50, [_row("fcos", 0.8, 0.52), _row("l1", 0.8, 0.47), _row("lcp", 0.8, 0.45, 0.7, False),
                           {"method": "bn_scale", "target": 0.8, "error": "no BatchNorm"}]),
            _run(1, 0.60, [_row("fcos", 0.8, 0.60), _row("l1", 0.8, 0.59), _row("lcp", 0.8, 0.58, 0.7, False),
                           {"method": "bn_scale", "target": 0.8, "error": "no BatchNorm"}])]
    data = compare_seeds.collect(runs)
    cell = data["resnet20"]["cells"][("fcos", 0.8)]
    assert cell["delta"] == pytest.approx([0.02, 0.0])
    mean, sd = compare_seeds.summary(cell["delta"])
    assert mean == pytest.approx(0.01) and sd == pytest.approx(0.0141421, rel=1e-4)
    md = compare_seeds.matrix(data, 2)
    assert "| fcos | **+1.0 ± 1.4 pt** |" in md           # best mean among methods that met the target
    assert "| l1 | -2.0 ± 1.4 pt |" in md
    assert "| lcp | -3.5 ± 2.1 pt (70%, short) |" in md
    assert "| bn_scale | cannot |" in md
    assert "55.00% ± 7.1 pt over 2 seeds" in md


def test_runs_with_the_same_seed_are_refused(tmp_path, monkeypatch):
    import json
    monkeypatch.setattr(compare_seeds, "RESULTS", tmp_path)
    for tag in ("a", "b"):
        (tmp_path / f"compare_{tag}.json").write_text(json.dumps(_run(0, 0.5, [_row("fcos", 0.8, 0.5)])))
    with pytest.raises(SystemExit):
        compare_seeds.main(["--tags", "a", "b", "--out", "x"])
    with pytest.raises(SystemExit):
        compare_seeds.main(["--tags", "a", "missing", "--out", "x"])
