"""Every plot writes a non-empty PNG of the expected size."""

from amrlib import plots
from amrlib.models import build_model
from amrlib.pruning import channel_stage


def _size(path):
    from PIL import Image
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_accuracy_vs_snr_and_confusion(tmp_path):
    p = plots.accuracy_vs_snr({"parent": {-10: 0.2, 0: 0.5, 10: 0.9}, "pruned": {"-10": 0.1, "0": 0.4, "10": 0.85}},
                              tmp_path / "snr.png")
    assert _size(p) == (700, 400) and p.stat().st_size > 5000
    p = plots.confusion_matrix([[5, 1], [2, 7]], ["BPSK", "QPSK"], tmp_path / "c.png")
    assert _size(p) == (700, 600)


def test_widths_probe_and_pareto(tmp_path):
    m = build_model("resnet20", 4, 128)
    pruned, _ = channel_stage(m, keep_ratio=0.5)
    p = plots.channel_widths(plots.group_widths(m), plots.group_widths(pruned), tmp_path / "w.png")
    assert _size(p) == (800, 408)                 # horizontal bars: one readable row per group
    diag = [{"block": f"b{i}", "probe_accuracy": 0.1 * i, "removed": i == 3} for i in range(6)]
    assert _size(plots.probe_curve({"pruned": diag}, tmp_path / "p.png")) == (900, 400)
    pts = [{"method": "fcos", "macs": 4e6, "accuracy": 0.6}, {"method": "l1", "macs": 4e6, "accuracy": 0.5},
           {"method": "fcos", "macs": 8e6, "accuracy": 0.62}]
    p = plots.pareto(pts, tmp_path / "pareto.png", baseline={"macs": 4e7, "accuracy": 0.63})
    assert _size(p) == (700, 450) and p.stat().st_size > 5000
