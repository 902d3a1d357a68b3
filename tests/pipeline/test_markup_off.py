"""Text from a user's file or from the registry is printed as written, never read as Rich markup or emoji
codes (issue 19: a key named like an emoji code was printed as the emoji; ``[...]`` in a name or the
aliases of ``amr-prune models`` vanished as a markup tag). Each case runs the command line in a child
process."""
from __future__ import annotations

import json

import h5py
import numpy as np

from fixtures_pipeline import make_project, tiny_config
from helpers.cli_process import data_info, run_cli

N, L = 24, 32


def _generic(path, keys=("X", "Y", "Z"), classes=("BPSK", "QPSK", "WBFM")):
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(N, 2, L)).astype(np.float32), np.eye(3)[np.arange(N) % 3],
              np.repeat([-10, 0, 10, 20], N // 4).astype(np.int64)]
    with h5py.File(path, "w") as f:
        for k, v in zip(keys, arrays):
            f.create_dataset(k, data=v)
        f.attrs["classes"] = json.dumps(list(classes))


def test_error_text_from_a_file_is_not_markup_or_emoji(tmp_path):
    bad = tmp_path / "odd-keys.h5"
    _generic(bad, keys=(":smile:", "[red]Y", "Z"))
    code, out, _ = data_info(bad, cwd=tmp_path)
    assert code == 1, out
    assert "missing dataset 'X'" in out
    assert ":smile:" in out and "[red]Y" in out and "\U0001f604" not in out, out


def test_class_names_and_path_from_a_file_print_as_written(tmp_path):
    folder = tmp_path / "[bold]sets"
    folder.mkdir()
    good = folder / "odd-classes.h5"
    _generic(good, classes=("[bold]BPSK", ":smile:", "QPSK[/]"))
    code, out, _ = data_info(good, cwd=tmp_path)
    assert code == 0, out
    assert "[bold]BPSK (8)" in out and ":smile: (8)" in out and "QPSK[/] (8)" in out, out
    assert "[bold]sets" in out and "\U0001f604" not in out


def test_registry_aliases_and_names_print_as_written(tmp_path):
    from mlflow import MlflowClient
    root = make_project(tmp_path / "proj", None)
    cfg = tiny_config(root)
    uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    (root / "mlflow").mkdir()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("amr-cnn1d-fcos")
    mv = client.create_model_version("amr-cnn1d-fcos", source=str(tmp_path / "model"),
                                     tags={"method": "[bold]fcos", "test_accuracy": "0.5", "macs": "1000"})
    client.set_registered_model_alias("amr-cnn1d-fcos", "champion", mv.version)
    for columns in ("200", "100"):                  # the table on a wide terminal, one line per version else
        code, out, _ = run_cli("models", "--config", cfg, cwd=root, env={"COLUMNS": columns})
        assert code == 0, out
        line = " ".join(next(x for x in out.splitlines() if "amr-cnn1d-fcos v1" in x).split())
        assert line.startswith("amr-cnn1d-fcos v1 champion [bold]fcos" if columns == "200"
                               else "amr-cnn1d-fcos v1 [champion] [bold]fcos"), out
