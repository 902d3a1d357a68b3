"""The pipeline configuration: shipped files are valid, bad settings are clear errors."""
from __future__ import annotations

import pytest

from settings.pipeline import REPO_ROOT, ConfigError, load_config, parse_config


@pytest.mark.parametrize("name", ["default.yaml", "full.yaml"])
def test_shipped_configs_are_valid(name):
    cfg = load_config(REPO_ROOT / "configs" / name)
    assert cfg.model.name in ("resnet20", "resnet56")
    assert 0 < cfg.channel_stage.keep_ratio < 1
    assert cfg.gate.min_macs_reduction < 1


def test_default_is_sized_for_two_cores():
    cfg = load_config(REPO_ROOT / "configs" / "default.yaml")
    frames = cfg.data.synthetic.frames_per_key * 11 * len(cfg.data.synthetic.snrs)
    assert frames <= 20_000 and cfg.pretrain.epochs <= 10 and cfg.finetune.epochs <= 5
    assert cfg.model.name == "resnet20"


def test_relative_config_path_resolves_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config("configs/default.yaml").model.name == "resnet20"


@pytest.mark.parametrize("override, message", [
    ({"model": {"name": "resnet21"}}, "unknown model 'resnet21'"),
    ({"channel_stage": {"keep_ratio": 1.0}}, "keep_ratio must be in (0, 1)"),
    ({"channel_stage": {"keep_ratio": 0}}, "keep_ratio must be in (0, 1)"),
    ({"channel_stage": {"keep_ratio": {"stem.conv": 1.5}}}, "keep_ratio must be in (0, 1)"),
    ({"channel_stage": {"target_macs_reduction": 0.5}}, "give exactly one of keep_ratio"),
    ({"pretrain": {"epochs": -1}}, "pretrain.epochs"),
    ({"finetune": {"lr": 0}}, "finetune.lr"),
    ({"pretrain": {"epoks": 3}}, "pretrain.epoks: unknown setting"),
    ({"gate": {"min_macs_reduction": 1.0}}, "min_macs_reduction must be in [0, 1)"),
    ({"gate": {"max_accuracy_drop": -0.1}}, "max_accuracy_drop must be in [0, 1)"),
    ({"data": {"split_fractions": [0.5, 0.5, 0.0]}}, "split_fractions"),
    ({"data": {"synthetic": {"classes": ["BPSK", "FM-RADIO"]}}}, "unknown: ['FM-RADIO']"),
    ({"finetune": {"kd_alpha": 0.5}}, "kd_alpha > 0 needs use_teacher"),
    ({"method": "l2"}, "unknown pruning method 'l2'"),
    ({"peer": {"target_macs_reduction": 1.0}}, "peer.target_macs_reduction must be in (0, 1)"),
    ({"peer": {"seed": -1}}, "peer.seed"),
    ({"peer": {"options": {"seed": 3}}}, "['seed'] cannot be method options"),
    ({"peer": {"target": 0.5}}, "peer.target: unknown setting"),
    ({"lacd": {"interim_epochs": -1}}, "lacd.interim_epochs"),
    ({"lacd": {"interim_epochs": 2, "enabled": False}}, "interim_epochs > 0 is the recovery before LaCD"),
    ({"channel_stage": {"target_scope": "final"}}, "target_scope: final is a MAC target for the finished network"),
    ({"channel_stage": {"target_scope": "everything"}}, "channel_stage.target_scope"),
    ({"channel_stage": {"keep_ratio": None, "target_macs_reduction": 0.8, "target_scope": "final"},
      "lacd": {"enabled": False, "interim_epochs": 0}}, "it needs lacd.enabled: true"),
])
def test_bad_settings_are_named(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(REPO_ROOT / "configs" / "default.yaml", override)
    assert message in str(err.value)
    assert "default.yaml" in str(err.value)


def test_method_settings():
    """Peers are chosen by name; FCOS's interim recovery is off by default in code, on (2) in full.yaml."""
    cfg = parse_config({"method": "LCP", "model": {"name": "cnn1d"},
                        "peer": {"target_macs_reduction": 0.4, "options": {"probe_frames": 64}}})
    assert cfg.method == "lcp" and cfg.pruned_model_name == "amr-cnn1d-lcp"
    assert cfg.peer.stage_kwargs() == {"target_macs_reduction": 0.4, "options": {"probe_frames": 64}, "seed": 0}
    assert parse_config({}).lacd.interim_epochs == 0
    assert "interim_epochs" not in parse_config({"lacd": {"interim_epochs": 2}}).lacd.stage_kwargs()
    assert load_config(REPO_ROOT / "configs" / "full.yaml").lacd.interim_epochs == 2
    assert load_config(REPO_ROOT / "configs" / "full.yaml", {"method": "l1"}).pruned_model_name == "amr-resnet56-l1"


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        parse_config(["a"], "x.yaml")


def test_tracking_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = parse_config({"root": str(tmp_path)})
    assert cfg.tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow/mlflow.db"
    assert cfg.artifact_location() == (tmp_path.resolve() / "mlflow" / "artifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert cfg.tracking_uri() == "http://127.0.0.1:5999" and cfg.artifact_location() is None
    assert cfg.base_model_name == "amr-resnet20-base" and cfg.pruned_model_name == "amr-resnet20-fcos"


def test_cli_overrides_parse_yaml_values():
    from cli.common import parse_overrides as _overrides
    assert _overrides(["pretrain.epochs=2", "lacd.enabled=false", "model.name=cnn1d"]) == {
        "pretrain": {"epochs": 2}, "lacd": {"enabled": False}, "model": {"name": "cnn1d"}}


def test_full_yaml_is_an_overlay_on_default_yaml():
    import yaml
    raw = yaml.safe_load((REPO_ROOT / "configs" / "full.yaml").read_text())
    assert raw["extends"] == "default.yaml" and "lacd" not in raw            # only what differs is written
    full = load_config(REPO_ROOT / "configs" / "full.yaml")
    assert full.model.name == "resnet56" and full.pretrain.epochs == 50 and full.lacd.interim_epochs == 2
    assert full.channel_stage == load_config(REPO_ROOT / "configs" / "default.yaml").channel_stage


def test_overlay_chain_merges_and_refuses_cycles_and_missing_bases(tmp_path):
    (tmp_path / "a.yaml").write_text("pretrain: {epochs: 3, lr: 0.01}\nmodel: {name: cnn1d}\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\npretrain: {epochs: 5}\n")
    (tmp_path / "c.yaml").write_text("extends: b.yaml\nmodel: {name: resnet20}\n")
    cfg = load_config(tmp_path / "c.yaml", {"pretrain": {"epochs": 7}})
    assert (cfg.pretrain.epochs, cfg.pretrain.lr, cfg.model.name) == (7, 0.01, "resnet20")
    (tmp_path / "x.yaml").write_text("extends: y.yaml\n")
    (tmp_path / "y.yaml").write_text("extends: x.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "x.yaml")
    (tmp_path / "z.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml: no such configuration file"):
        load_config(tmp_path / "z.yaml")


def test_old_gate_key_still_works_with_a_warning():
    with pytest.warns(FutureWarning, match="now called gate.min_macs_reduction"):
        cfg = parse_config({"gate": {"min_mac_reduction": 0.3}})
    assert cfg.gate.min_macs_reduction == 0.3
    with pytest.raises(ConfigError, match="give gate.min_macs_reduction only"):
        parse_config({"gate": {"min_mac_reduction": 0.3, "min_macs_reduction": 0.4}})


def test_old_tag_names_are_read_under_the_new_ones():
    from tracking.tag_names import read_tags
    old = {"mac_reduction": "0.9", "param_reduction": "0.8", "gate.mac_reduction": "0.9", "macs": "10"}
    assert read_tags(old) == {**old, "macs_reduction": "0.9", "params_reduction": "0.8", "gate.macs_reduction": "0.9"}
    assert read_tags({"mac_reduction": "0.1", "macs_reduction": "0.2"})["macs_reduction"] == "0.2"


def test_latency_widths_and_allocation_are_channel_stage_settings():
    cfg = parse_config({"channel_stage": {"keep_ratio": None, "target_macs_reduction": 0.9, "width_multiple": 8,
                                          "allocation": "threshold"}})
    assert cfg.channel_stage.stage_kwargs()["width_multiple"] == 8
    assert cfg.channel_stage.stage_kwargs()["allocation"] == "threshold"
    plain = parse_config({}).channel_stage.stage_kwargs()            # at their defaults the stage's key is unchanged
    assert "width_multiple" not in plain and "allocation" not in plain
    with pytest.raises(ValueError, match="width_multiple applies to keep_ratio"):
        parse_config({"channel_stage": {"keep_ratio": None, "distance_threshold": 0.3, "width_multiple": 8}})
    with pytest.raises(ValueError, match="allocation"):
        parse_config({"channel_stage": {"allocation": "greedy"}})
