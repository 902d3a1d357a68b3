"""Stage keys and the cache policy: stable for equal inputs, different for any changed input, blind to
the tracking context, and a record whose stage output is gone is dropped so the stage runs again."""
from __future__ import annotations

import json

from tasks.cache import (StageCache, code_fingerprint, key_of, read_result, results_dir, stage_dir, stage_key,
                         write_result)

INPUTS = {"settings": {"epochs": 1}, "data": {"md5": "abc"}, "runs": "/x"}


def test_keys_are_stable_and_input_sensitive():
    assert stage_key("pretrain", INPUTS) == stage_key("pretrain", json.loads(json.dumps(INPUTS)))
    assert stage_key("pretrain", INPUTS) != stage_key("pretrain", {**INPUTS, "data": {"md5": "abd"}})
    assert stage_key("pretrain", INPUTS) != stage_key("finetune", INPUTS)
    assert key_of("pretrain", {**INPUTS, "tracking": {"parent_run_id": "r1"}}) == \
        key_of("pretrain", {**INPUTS, "tracking": {"parent_run_id": "r2"}})


def test_code_fingerprint_covers_the_stage_code_only(tmp_path, monkeypatch):
    import tasks.cache as cache
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
