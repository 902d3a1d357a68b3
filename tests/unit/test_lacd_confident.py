"""LaCD's confident collapse rule: a gain within the probe's noise is not a collapse; a zeroed block still is."""
import copy

import numpy as np
import pytest
import torch

from amrlib.pruning import PruningError, diagnose_collapse, lacd
from amrlib.pruning.probes import probe_blocks
from conftest import toy_dataset
from helpers.tiny_models import one_epoch_models


def _rec(name, point, replicates, removable=True):
    return {"block": name, "probe_accuracy": point, "removable": removable, "reason": "",
            "probe_accuracy_resamples": list(replicates)}


def test_noisy_small_gain_is_kept_but_consistent_loss_is_collapsed():
    rng = np.random.default_rng(0)
    base = 0.60 + 0.01 * rng.standard_normal(200)
    probes = [_rec("stem", 0.60, base),
              _rec("noisy", 0.604, base + 0.004 + 0.02 * rng.standard_normal(200)),   # point gain 0.4 pt, sd 2 pt
              _rec("flat", 0.59, np.maximum.accumulate([base, base + 0.004])[-1] - 0.01)]
    point = {r["block"]: r for r in diagnose_collapse(probes, margin=0.005)}
    assert point["noisy"]["collapsed"]                       # the point rule calls it by chance
    conf = {r["block"]: r for r in diagnose_collapse(probes, margin=0.005, confidence=0.9)}
    assert not conf["noisy"]["collapsed"] and "upper bound" in conf["noisy"]["decision"]
    assert conf["noisy"]["gain_upper"] > 0.005 and conf["noisy"]["gain_sd"] > 0.01
    assert conf["flat"]["collapsed"] and conf["flat"]["removed"]
    assert "probe_accuracy_resamples" not in conf["flat"]    # the replicates do not bloat the plan


def test_confident_rule_needs_replicates_and_a_sane_level():
    probes = [{"block": "a", "probe_accuracy": 0.5, "removable": True, "reason": ""}]
    with pytest.raises(PruningError, match="resamples"):
        diagnose_collapse(probes, confidence=0.9)
    with pytest.raises(PruningError, match="confidence"):
        diagnose_collapse([_rec("a", 0.5, [0.5])], confidence=1.0)


@pytest.fixture(scope="module")
def trained():
    ds = toy_dataset(n=500)
    return one_epoch_models(("resnet20",), ds)["resnet20"], ds


def test_replicates_are_deterministic_and_a_zeroed_block_is_still_removed(trained):
    model, ds = trained
    model = copy.deepcopy(model)
    with torch.no_grad():
        model.get_submodule("layer2.1").bn2.weight.zero_()
        model.get_submodule("layer2.1").bn2.bias.zero_()
    train, val = ds.subset(range(300)), ds.subset(range(300, 400))
    a = probe_blocks(model, train, val, resamples=5, seed=3)
    b = probe_blocks(model, train, val, resamples=5, seed=3)
    assert [r["probe_accuracy_resamples"] for r in a] == [r["probe_accuracy_resamples"] for r in b]
    assert all(len(r["probe_accuracy_resamples"]) == 5 for r in a)
    _, diag = lacd(model, train, val, margin=0.0, confidence=0.9, resamples=20)
    assert "layer2.1" in diag["removed"]                     # identical features: gain 0 in every replicate
    assert diag["settings"]["confidence"] == 0.9 and diag["settings"]["resamples"] == 20
