"""The model card: every section, the per-SNR table, compression figures and the figures it links, for a
pruned model (channel stage + removed blocks) and for an unpruned parent."""
import re

import pytest
from PIL import Image

from amrlib.measure import count_macs, count_params, machine
from amrlib.model_card import SECTIONS, render_model_card, write_model_card
from amrlib.models import build_model
from amrlib.pruning import channel_stage, remove_blocks

CLASSES = ["BPSK", "QPSK", "QAM16", "WBFM"]


def _evaluation(acc, per_snr, macs, params, vs=None):
    ev = {"accuracy": acc, "high_snr_accuracy": per_snr[10], "per_snr": {str(k): v for k, v in per_snr.items()},
          "confusion": [[8, 1, 1, 0], [1, 7, 2, 0], [0, 3, 6, 1], [0, 0, 1, 9]], "classes": CLASSES,
          "frames": 40, "macs": macs, "params": params, "machine": machine(),
          "latency": {"b1": {"batch_size": 1, "threads": 1, "repeats": 5, "median_s": 0.002, "frames_per_s": 500.0},
                      "b4": {"batch_size": 4, "threads": 1, "repeats": 5, "median_s": 0.004, "frames_per_s": 1000.0}}}
    if vs:
        ev["vs_reference"] = vs
    return ev


@pytest.fixture
def pruned_info():
    parent = build_model("resnet20", 4, 128)
    pruned, plan = channel_stage(parent, keep_ratio=0.45)
    pruned = remove_blocks(pruned, ["layer1.1", "layer3.2"])
    plan["stages"].append({"stage": "layer", "method": "lacd", "removed": ["layer1.1", "layer3.2"]})
    plan["arch"] = pruned.arch
    pm, pp, m, p = count_macs(parent), count_params(parent), count_macs(pruned), count_params(pruned)
    ref = _evaluation(0.62, {-10: 0.2, 0: 0.6, 10: 0.9}, pm, pp)
    ev = _evaluation(0.6, {-10: 0.18, 0: 0.58, 10: 0.88}, m, p,
                     {"accuracy_drop": 0.02, "macs_reduction": 1 - m / pm, "params_reduction": 1 - p / pp,
                      "speedup_b1": 1.5})
    diagnosis = {"blocks": [{"block": f"u{i}", "probe_accuracy": 0.1 * i, "removed": i in (2, 9)} for i in range(10)]}
    return {"name": "amr-resnet20-fcos", "version": "3", "role": "pruned", "method": "fcos", "classes": CLASSES,
            "frame_length": 128, "data": {"path": "data/x.h5", "md5": "abc123", "dvc_file": "data.dvc",
                                          "synthetic": {"name": "amrlib.data.synth", "seed": 0}},
            "model": {"arch": pruned.arch, "macs": m, "params": p},
            "parent": {"name": "amr-resnet20-base", "version": "2", "macs": pm, "params": pp},
            "plan": plan, "diagnosis": diagnosis, "evaluation": ev, "reference": ref,
            "lineage": {"git_commit": "deadbeef", "flow_run_id": "fr-1", "mlflow_run_id": "run-1",
                        "registry_uri": "sqlite:///m.db"}, "high_snr_db": 10}


def test_pruned_card_sections_and_figures(tmp_path, pruned_info):
    out = write_model_card(pruned_info, tmp_path)
    card = out["card"].read_text()
    headings = re.findall(r"^## (.+)$", card, flags=re.M)
    assert headings == list(SECTIONS)
    assert card.startswith("# Model card: amr-resnet20-fcos v3")
    assert "md5 `abc123`" in card and "`data.dvc`" in card and "synthetic" in card
    i = pruned_info
    red = 1 - i["model"]["macs"] / i["parent"]["macs"]
    assert f"| MACs per frame | {i['parent']['macs']:,} | {i['model']['macs']:,} | {100 * red:.1f}% |" in card
    assert "| -10 | 0.2000 | 0.1800 | -0.0200 |" in card and "| 10 | 0.9000 | 0.8800 | -0.0200 |" in card
    assert "Blocks removed (2): `layer1.1`, `layer3.2`" in card
    assert "| `layer1.1.conv1` | 16 | removed |" in card and "| `layer1.0.conv1` | 16 | 7 |" in card
    assert "| 1 | 2.000 | 500 |" in card and machine()["cpu"] in card
    assert "mlflow.pyfunc.load_model('models:/amr-resnet20-fcos/3')" in card
    assert "os.environ.get('MLFLOW_TRACKING_URI', 'sqlite:///m.db')" in card and "serve-model" in card
    assert "amr-prune export amr-resnet20-fcos/3 --onnx model.onnx" in card
    assert "2.00 points less accurate than its parent" in card and "-10 dB" in card   # limits: weak SNRs
    sizes = {"accuracy_vs_snr.png": (700, 400), "confusion_matrix.png": (700, 600),
             "channel_widths.png": (800, 408), "probe_curve.png": (900, 400)}     # widths: one 9-pt row per group
    for name, size in sizes.items():
        assert f"]({name})" in card
        with Image.open(tmp_path / name) as im:
            assert im.format == "PNG" and im.size == size
        assert (tmp_path / name).stat().st_size > 5000


def test_unpruned_card(pruned_info):
    info = {**pruned_info, "role": "base", "method": "pretrain", "parent": None, "reference": None, "plan": None,
            "diagnosis": None, "version": "2", "name": "amr-resnet20-base",
            "evaluation": {**pruned_info["evaluation"], "vs_reference": None}}
    card = render_model_card(info)
    assert re.findall(r"^## (.+)$", card, flags=re.M) == list(SECTIONS)
    assert "No compression: this is an unpruned network." in card
    assert "| SNR (dB) | accuracy |" in card and "| 0 | 0.5800 |" in card
    assert "Not pruned" in card and "less accurate than its parent" not in card
