"""The sweep configuration (configs/sweep.yaml): combinations, their pipeline overrides, clear errors; and the
Pareto front the sweep report marks."""
from __future__ import annotations

import pytest
import yaml

# Prefect and MLflow are imported here (flows.sweep), at collection: their log handlers bind to pytest's stream,
# not to the CliRunner's, which is closed after the command
import flows.sweep  # noqa: F401
from amrlib.pareto import accuracy_vs_reduction, pareto_front
from settings.pipeline import REPO_ROOT, ConfigError
from settings.sweep import combination_configs, load_sweep_config, parse_sweep_config


def test_shipped_sweep_config_is_valid_and_its_combinations_validate():
    sw = load_sweep_config(REPO_ROOT / "configs" / "sweep.yaml")
    assert sw.runner == "local" and sw.workers >= 1 and sw.dask.address is None
    combos = combination_configs(sw)
    assert len(combos) == len(sw.methods) * len(sw.targets) * len(sw.models)
    for combo, _, _, cfg in combos:
        assert cfg.method == combo.method and cfg.model.name == combo.model
        if combo.method == "fcos":
            assert cfg.channel_stage.target_macs_reduction == combo.target and cfg.channel_stage.keep_ratio is None


def test_combinations_are_ordered_by_model_and_carry_their_overrides():
    sw = parse_sweep_config({"methods": ["fcos", "l1"], "targets": [0.5, 0.8], "models": ["cnn1d", "resnet20"]})
    combos = sw.combinations()
    assert [c.name for c in combos[:4]] == ["cnn1d-fcos-0.5", "cnn1d-fcos-0.8", "cnn1d-l1-0.5", "cnn1d-l1-0.8"]
    assert {c.model for c in combos[4:]} == {"resnet20"}
    fcos, l1 = combos[1], combos[2]
    assert fcos.overrides() == {"method": "fcos", "model": {"name": "cnn1d"},
                                "channel_stage": {"keep_ratio": None, "target_macs_reduction": 0.8,
                                                  "target_params_reduction": None, "distance_threshold": None}}
    assert l1.overrides() == {"method": "l1", "model": {"name": "cnn1d"}, "peer": {"target_macs_reduction": 0.5}}


def test_sweep_overrides_merge_under_each_combination(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"pipeline": str(REPO_ROOT / "configs" / "default.yaml"), "methods": ["l1"],
                                    "targets": [0.6], "models": ["cnn1d"],
                                    "overrides": {"finetune": {"epochs": 1}, "peer": {"options": {"scope": "x"}}}}))
    (combo, _, overrides, cfg), = combination_configs(load_sweep_config(path))
    assert cfg.finetune.epochs == 1 and cfg.peer.options == {"scope": "x"} and cfg.peer.target_macs_reduction == 0.6


@pytest.mark.parametrize("data, message", [
    ({"methods": ["fcoss"]}, "unknown pruning method(s) ['fcoss']"),
    ({"models": ["resnet21"]}, "unknown model(s) ['resnet21']"),
    ({"targets": [0.5, 1.0]}, "each in (0, 1); got [1.0]"),
    ({"targets": []}, "targets"),
    ({"runner": "ray"}, "runner"),
    ({"workers": 0}, "workers"),
    ({"dask": {"address": "tcp://h:8786"}}, "dask.address is set but runner is local"),
    ({"training": {"max_concurrent": 0}}, "training.max_concurrent"),
    ({"trainig": {}}, "trainig: unknown setting"),
])
def test_bad_sweep_settings_are_clear_errors(data, message):
    with pytest.raises(ConfigError) as err:
        parse_sweep_config(data, "s.yaml")
    assert message in str(err.value) and "s.yaml" in str(err.value)


def test_a_combination_with_an_invalid_pipeline_config_fails_before_anything_runs(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"pipeline": str(REPO_ROOT / "configs" / "default.yaml"),
                                    "overrides": {"finetune": {"epoks": 1}}}))
    with pytest.raises(ConfigError, match="(?s)combination resnet20-fcos-0.5: .*finetune.epoks: unknown setting"):
        combination_configs(load_sweep_config(path))
    with pytest.raises(ConfigError, match="no such sweep configuration file"):
        load_sweep_config(tmp_path / "missing.yaml")


def test_pareto_front(tmp_path):
    pts = [{"macs_reduction": r, "accuracy": a} for r, a in
           [(0.5, 0.60), (0.7, 0.62), (0.8, 0.50), (0.9, 0.55), (0.9, 0.40), (0.3, 0.58)]]
    # (0.5, .60) and (0.3, .58) are beaten by (0.7, .62); (0.8, .50) by (0.9, .55); (0.9, .40) by (0.9, .55)
    assert pareto_front(pts) == [1, 3]
    assert pareto_front([]) == []
    png = accuracy_vs_reduction([{**p, "label": "m", "group": "g"} for p in pts], tmp_path / "p.png", {"g": 0.7})
    assert png.stat().st_size > 1000


def test_cli_sweep_refuses_a_bad_sweep_config_before_starting_anything(tmp_path):
    from typer.testing import CliRunner

    from cli import app
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"methods": ["fcos", "nope"]}))
    out = CliRunner().invoke(app, ["sweep", "-s", str(path)])
    assert out.exit_code == 1 and "unknown pruning method(s) ['nope']" in out.output
    out = CliRunner().invoke(app, ["sweep", "-s", str(REPO_ROOT / "configs" / "sweep.yaml"), "--target", "1.5"])
    assert out.exit_code == 1 and "each in (0, 1); got [1.5]" in out.output
