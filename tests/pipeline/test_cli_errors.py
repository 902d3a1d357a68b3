"""Every request the command line can know is impossible fails before Prefect starts and before any training,
as one ``error:`` line and a ``hint:`` line (exit status 1), run as a real process (python -m flows ...): unknown
settings with a did-you-mean that says where they came from, a method that cannot prune the model, an option the
method does not accept, a target a layer method cannot reach, a missing dataset, a missing base model to reuse
(with the ignored pretrain settings warned about), ``lineage NAME champion``, and ``promote`` with nothing to do
(exit 0, no Prefect) or nothing to promote."""
from __future__ import annotations

import json

import pytest
import yaml

from fixtures_pipeline import make_project, tiny_config
from helpers.cli_process import run_cli


@pytest.fixture(scope="module")
def proj(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli-errors")
    root = make_project(tmp / "proj", tmp / "remote")
    return root, tiny_config(root)


def failing(root, *args, env=None) -> tuple[str, str, str]:
    """(error line, hint line, whole output) of a command that must fail with exactly one error."""
    code, out, _ = run_cli(*args, cwd=root, env=env)
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    hints = [line for line in out.splitlines() if line.startswith("hint:")]
    assert code == 1 and len(errors) == 1 and len(hints) == 1, out
    assert "Traceback" not in out, out
    return errors[0], hints[0], out


def no_training(root) -> None:
    runs = root / "runs"
    assert not runs.exists() or not any(p.name.startswith(("pretrain", "peer_stage", "channel_stage"))
                                        for p in runs.iterdir())


def test_unknown_key_from_set(proj):
    root, cfg = proj
    error, hint, _ = failing(root, "run", "-c", cfg, "--set", "pretrain.epoch=3")
    assert "pretrain.epoch: unknown setting (from --set); did you mean pretrain.epochs?" in error
    assert "docs/CONFIGURATION.md" in hint


def test_unknown_key_in_the_file(proj):
    root, cfg = proj
    data = yaml.safe_load(cfg.read_text())
    data["finetune"]["epoks"] = 2
    bad = root / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    error, _, _ = failing(root, "run", "-c", bad, "--set", "pretrain.epochs=1")
    assert f"finetune.epoks: unknown setting (in {bad}); did you mean finetune.epochs?" in error


def test_method_that_cannot_prune_the_model(proj):
    root, cfg = proj                                       # the tiny configuration's model is cnn1d
    error, hint, out = failing(root, "run", "-c", cfg, "--method", "bn_scale")
    assert "bn_scale cannot prune cnn1d" in error and "BatchNorm" in error
    assert "--method l1" in hint and "model.name=resnet20" in hint
    no_training(root)


def test_target_a_layer_method_cannot_reach(proj):
    root, cfg = proj
    error, hint, _ = failing(root, "run", "-c", cfg, "--method", "lcp", "--set", "model.name=vgg16",
                             "--set", "peer.target_macs_reduction=0.9")
    assert "lcp cannot cut 90% of vgg16's MACs" in error and "removing every removable unit cuts" in error
    assert "peer.target_macs_reduction=0.5" in hint
    no_training(root)


def test_unknown_peer_option(proj):
    root, cfg = proj
    error, hint, _ = failing(root, "run", "-c", cfg, "--method", "fpgm", "--set", "peer.options.min_channel=2")
    assert "fpgm: unknown option 'min_channel' (did you mean 'min_channels'?)" in error
    assert "fpgm accepts:" in hint and "group_reduction" in hint
    no_training(root)


def test_missing_dataset(proj):
    root, cfg = proj
    (root / "missing.dvc").write_text(yaml.safe_dump({"outs": [{"md5": "0" * 32, "size": 10, "hash": "md5",
                                                                "path": "data/missing.h5"}]}))
    error, hint, _ = failing(root, "run", "-c", cfg, "--set", "data.dvc_file=missing.dvc")
    assert "data/missing.h5" in error and "is not in DVC remote" in error and "dvc push" in error
    no_training(root)


def test_reuse_alias_that_does_not_exist_and_ignored_settings(proj):
    root, cfg = proj
    error, _, out = failing(root, "run", "-c", cfg, "--set", "pretrain.reuse_alias=champion",
                            "--set", "pretrain.epochs=3")
    # epochs from --set, batch_size from the file (32, not the default 128)
    assert "warning: pretrain.epochs, pretrain.batch_size ignored: pretrain.reuse_alias=champion reuses the " \
           "registered amr-cnn1d-base@champion" in out
    assert "no MLflow store" in error or "amr-cnn1d-base" in error


def test_lineage_alias_without_at(proj):
    root, cfg = proj
    error, hint, _ = failing(root, "lineage", "amr-cnn1d-fcos", "champion", "-c", cfg)
    assert "neither a version number nor an @alias" in error
    assert "amr-prune lineage amr-cnn1d-fcos@champion" in hint


def _registry(uri: str, challenger: bool) -> None:
    from mlflow import MlflowClient
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("amr-cnn1d-fcos")
    if challenger:
        mv = client.create_model_version("amr-cnn1d-fcos", "file:///nonexistent", tags={"role": "pruned"})
        for alias in ("challenger", "champion"):
            client.set_registered_model_alias("amr-cnn1d-fcos", alias, mv.version)


@pytest.mark.parametrize("challenger", [True, False])
def test_promote_nothing_to_do_or_nothing_to_promote(tmp_path, challenger):
    root = make_project(tmp_path / "proj", tmp_path / "remote")
    cfg = tiny_config(root)
    uri = yaml.safe_load(cfg.read_text())["tracking"]["uri"]
    (root / "mlflow").mkdir()
    _registry(uri, challenger)
    home = tmp_path / "prefect-home"
    env = {"PREFECT_HOME": str(home)}
    if challenger:
        code, out, _ = run_cli("promote", "-c", cfg, "--json", cwd=root, env=env)
        assert code == 0, out
        summary = json.loads(out[out.index("{"):])
        assert summary["passed"] is None and summary["challenger"] == summary["champion_after"] == "1"
        assert not home.exists(), "nothing to do must not start Prefect"
    else:
        error, hint, out = failing(root, "promote", "-c", cfg, env=env)
        assert "amr-cnn1d-fcos has no 'challenger' version" in error and "amr-prune run" in hint
        assert "vNone" not in out and not home.exists()
