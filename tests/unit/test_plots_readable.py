"""Plots stay readable: the channel-width labels keep their size however many groups a network has, one far
outlier does not flatten an accuracy-vs-reduction plot (the axis is clipped and the point marked), and the model
card's loading snippet does not carry this machine's absolute store path."""
from __future__ import annotations

import pytest
from PIL import Image

from amrlib import plots
from amrlib.model_card import _portable_uri
from amrlib.pareto import accuracy_vs_reduction, robust_limits


def test_channel_widths_grow_in_height_not_shrink(tmp_path):
    few = {f"g{i}": 16 for i in range(6)}
    many = {f"layer{i // 9}.{i % 9}.conv1": 16 for i in range(60)}
    sizes = {}
    for name, widths in (("few", few), ("many", many)):
        with Image.open(plots.channel_widths(widths, {k: 8 for k in widths}, tmp_path / f"{name}.png")) as im:
            sizes[name] = im.size
    assert sizes["few"][0] == sizes["many"][0] == 800
    assert sizes["many"][1] >= 0.24 * 100 * 60                  # about 24 px per group row


def test_one_outlier_does_not_set_the_axis(tmp_path):
    accs = [0.61, 0.60, 0.58, 0.55, 0.62, 0.59, 0.09]
    lo, hi = robust_limits(accs)
    assert 0.5 < lo < 0.55 and hi > 0.62
    assert robust_limits([0.61, 0.60, 0.58, 0.55]) is None        # nothing far out: matplotlib's own limits
    pts = [{"label": "m", "macs_reduction": 0.1 * i, "accuracy": a, "group": "g"} for i, a in enumerate(accs)]
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    seen = {}
    real_close = plt.close

    def keep_limits(fig=None):
        if fig is not None and hasattr(fig, "axes") and fig.axes:
            seen["ylim"] = fig.axes[0].get_ylim()
        return real_close(fig)
    plt.close = keep_limits
    try:
        accuracy_vs_reduction(pts, tmp_path / "p.png")
    finally:
        plt.close = real_close
    assert seen["ylim"] == pytest.approx((lo, hi))


def test_card_store_uri_is_portable():
    assert _portable_uri("sqlite:////home/me/amr-prune/mlflow/mlflow.db")[0] == "sqlite:///mlflow/mlflow.db"
    assert _portable_uri("http://mlflow.team:5000")[0] == "http://mlflow.team:5000"
