"""Requests that are impossible whatever the weights fail before training (amrlib.pruning.preflight), and the
torch-free names (amrlib.names) agree with the registries they stand in for."""
from __future__ import annotations

import pytest

from amrlib import names
from amrlib.models import build_model
from amrlib.pruning.api import PruningError
from amrlib.pruning.methods import METHOD_KINDS
from amrlib.pruning.preflight import max_layer_reduction, preflight


def test_names_match_the_registries():
    from amrlib.data.synth import RML2016A_CLASSES
    from amrlib.models import MODEL_NAMES
    from amrlib.train.config import RECIPES
    assert names.BUILTIN_METHOD_KINDS == METHOD_KINDS
    assert (MODEL_NAMES, RML2016A_CLASSES, RECIPES) == (names.MODEL_NAMES, names.RML2016A_CLASSES, names.RECIPES)


def test_bn_scale_needs_batchnorm():
    with pytest.raises(PruningError, match="cnn1d has no BatchNorm") as err:
        preflight("bn_scale", build_model("cnn1d", 4, 128), 0.5)
    assert "--method l1" in err.value.hint
    preflight("bn_scale", build_model("resnet20", 4, 128), 0.5)


def test_layer_target_beyond_removing_every_unit():
    vgg = build_model("vgg16", 4, 128)
    best = max_layer_reduction(vgg)
    assert 0.3 < best < 0.9
    with pytest.raises(PruningError, match="removing every removable unit cuts") as err:
        preflight("lcp", vgg, best + 0.1)
    assert f"peer.target_macs_reduction={int(best * 100) / 100}" in err.value.hint
    preflight("lcp", vgg, best)                                    # reachable: nothing to say
    preflight("l1", vgg, best + 0.1)                               # a channel method is not bounded by units


def test_unknown_method():
    with pytest.raises(PruningError, match="unknown pruning method 'nope'"):
        preflight("nope", build_model("cnn1d", 4, 128), 0.5)


def test_unknown_option_is_refused_before_training_with_the_closest_name():
    with pytest.raises(PruningError, match=r"unknown option 'tolerence' \(did you mean 'tolerance'\?\)") as err:
        preflight("l1", build_model("resnet20", 4, 128), 0.5, {"tolerence": 0.01})
    assert "group_reduction" in err.value.hint and "min_channels" in err.value.hint
    with pytest.raises(PruningError, match="random: unknown option 'group_reduction'"):
        preflight("random", build_model("resnet20", 4, 128), 0.5, {"group_reduction": "max"})
    preflight("lcp", build_model("resnet20", 4, 128), 0.1, {"probe_frames": 64})


def test_every_method_registers_the_options_it_accepts():
    from amrlib.pruning.api import registered
    from amrlib.pruning.methods import FCOS_OPTIONS
    info = registered()
    assert info["fcos"].options == FCOS_OPTIONS and "tolerance" in info["ssbn"].options
    assert all(m.options for m in info.values())
