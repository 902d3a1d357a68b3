"""The comparison benchmark (protocol v2) at a tiny size: paired seeds share parents, a re-run resumes
(from the journal, or on a new machine from the committed report),
bad arguments are refused before any training."""
import json
import shutil

import pytest

from helpers.bench_compare_run import results as _results
from helpers.bench_compare_run import run_bench as _bench


@pytest.mark.slow
def test_paired_seeds_share_parents_and_a_rerun_resumes(tmp_path):
    args = ["--preset", "tiny", "--methods", "fcos", "l1", "scratch", "--jobs", "2", "--mlflow-uri", ""]
    log = _bench(tmp_path, *args).stdout
    assert "6 rows on 2 worker(s)" in log
    journal = [json.loads(x) for x in (tmp_path / "out" / "compare_tiny.jsonl").read_text().splitlines()]
    parents = [r for r in journal if r["method"] == "__parent__"]
    assert sorted(r["seed"] for r in parents) == [0, 1]
    assert all(r["stop"]["stop_reason"] in ("plateau", "max_epochs") and r["stop"]["l1"] == 1e-4 for r in parents)
    rows = [r for r in journal if r["method"] != "__parent__"]
    assert len(rows) == 6 and all("error" not in r and r["stop"]["device"] == "cpu" for r in rows)
    res = _results(tmp_path, "tiny")["models"]["cnn1d"]
    cells = {c["method"]: c for c in res["cells"]}
    assert set(cells) == {"fcos", "l1", "scratch"}
    for c in cells.values():                       # each difference is paired over both seeds
        acc = {r["seed"]: r["accuracy"] for r in rows if r["method"] == c["method"]}
        par = {r["seed"]: r["accuracy"] for r in parents}
        assert c["vs_parent"]["n"] == 2
        assert c["vs_parent"]["mean"] == pytest.approx(sum(acc[s] - par[s] for s in (0, 1)) / 2)
    assert cells["fcos"]["vs_fcos"] is None and cells["l1"]["vs_fcos"]["n"] == 2
    md = (tmp_path / "results" / "compare_tiny.md").read_text()
    assert "accuracy change vs the parent (paired, 95% CI)" in md and "| scratch |" in md
    assert (tmp_path / "results" / "compare_tiny_cnn1d.png").stat().st_size > 0
    assert (tmp_path / "results" / "compare_tiny_cnn1d_snr500.png").stat().st_size > 0
    again = _bench(tmp_path, *args).stdout                   # every row is in the journal: nothing is retrained
    assert "rows on" not in again and "training the parent" not in again
    assert _results(tmp_path, "tiny")["models"]["cnn1d"]["cells"] == res["cells"]
    assert len(list((tmp_path / "results" / "parents").glob("cnn1d_*.pt"))) == 2     # the parents are kept
    shutil.rmtree(tmp_path / "out")               # a new machine: only the committed results are left
    fresh = _bench(tmp_path, *args).stdout        # the journal is seeded from the report, the parents are the kept ones
    assert "resuming from the 8 rows of" in fresh and "rows on" not in fresh and "training the parent" not in fresh
    assert len((tmp_path / "out" / "compare_tiny.jsonl").read_text().splitlines()) == 8
    assert _results(tmp_path, "tiny")["models"]["cnn1d"]["cells"] == res["cells"]


def test_a_test_split_below_the_protocol_minimum_is_refused(tmp_path):
    out = _bench(tmp_path, "--preset", "cpu", "--frames-per-key", "4", "--mlflow-uri", "", ok=False)
    assert out.returncode != 0 and "fewer than --min-test 6000" in out.stderr
    assert not (tmp_path / "out" / "parents").exists()         # refused before any training
