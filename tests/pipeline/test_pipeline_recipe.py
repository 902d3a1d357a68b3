"""The pipeline's training sections take the recipe, the sparsity term, the stop rule and the device."""
from __future__ import annotations

import pytest

from amrlib.train import RECIPES, TrainConfig
from settings.pipeline import REPO_ROOT, ConfigError, load_config


def test_reference_recipe_fills_what_is_left_out_and_keeps_what_is_given(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text((REPO_ROOT / "configs" / "default.yaml").read_text())
    cfg = load_config(cfg_file, {"finetune": {"recipe": "reference", "epochs": None, "l1": None}})
    assert cfg.finetune.l1 == RECIPES["reference"]["l1"] == 1e-4
    assert cfg.finetune.epochs == RECIPES["reference"]["epochs"]
    kwargs = cfg.finetune.fit_kwargs()
    assert "recipe" not in kwargs
    TrainConfig(**{k: v for k, v in kwargs.items() if k not in ("kd_alpha", "kd_temperature")}).validate()
    given = load_config(cfg_file, {"pretrain": {"recipe": "reference", "epochs": 3}})
    assert given.pretrain.epochs == 3                  # an explicit setting wins over the recipe
    assert given.pretrain.l1 == 1e-4                   # not written in the shipped file: the recipe fills it
    assert given.pretrain.lr == 1e-3 and given.pretrain.batch_size == 128


def test_new_fusion_and_collapse_settings_reach_the_stages():
    cfg = load_config(REPO_ROOT / "configs" / "default.yaml", {"lacd": {"confidence": 0.9, "resamples": 30}})
    assert cfg.channel_stage.stage_kwargs()["scale_aware"] is True
    assert cfg.lacd.stage_kwargs()["confidence"] == 0.9 and cfg.lacd.stage_kwargs()["resamples"] == 30


@pytest.mark.parametrize("override, message", [
    ({"pretrain": {"device": "gpu"}}, "device must be auto, cpu, cuda or cuda:N"),
    ({"pretrain": {"lr": float("inf")}}, "finite"),
    ({"finetune": {"l1": 2.0}}, "l1"),
    ({"finetune": {"recipe": "fast"}}, "recipe"),
    ({"lacd": {"confidence": 1.0}}, "confidence"),
])
def test_impossible_training_settings_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(REPO_ROOT / "configs" / "default.yaml", override)
