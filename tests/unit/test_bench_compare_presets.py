"""The comparison's presets: CNN1D (no BatchNorm) trains without the L1 term unless the user asks for it."""
import sys

from conftest import ROOT


def test_cnn1d_preset_uses_the_plain_recipe_and_the_flag_wins(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    sys.modules.pop("bench_compare", None)
    from bench_compare import parse_args
    assert parse_args(["--preset", "cpu-cnn1d"]).recipe == "plain"
    assert parse_args(["--preset", "cpu"]).recipe == "reference"
    assert parse_args(["--preset", "cpu-cnn1d", "--recipe", "reference"]).recipe == "reference"
