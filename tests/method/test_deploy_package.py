"""The edge package of one network: folded ONNX checked against the unfolded PyTorch model, INT8 with its
accuracy check (a genuinely bad INT8 model is refused and its file removed), latency per runtime, the card."""
import numpy as np
import pytest
import torch

from amrlib.deploy.int8 import Int8AccuracyError, onnx_accuracy
from amrlib.deploy.package import FP32_FILE, INT8_FILE, edge_card, edge_package
from amrlib.models import build_model


@pytest.fixture(scope="module")
def labelled():
    torch.manual_seed(0)
    net = build_model("resnet20", 4, 64).eval()
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((120, 2, 64)).astype(np.float32)
    with torch.no_grad():       # standardise the logits so that the untrained net predicts every class
        logits = net(torch.from_numpy(frames))
        net.fc.weight /= logits.std(0)[:, None]
        net.fc.bias.copy_((net.fc.bias - logits.mean(0)) / logits.std(0))
    with torch.no_grad():
        labels = net(torch.from_numpy(frames)).argmax(1).numpy()        # FP32 is right on every frame
    return net, frames, labels, np.repeat([-10, 0, 10], 40)


def test_package_with_int8(labelled, tmp_path):
    net, frames, labels, snrs = labelled
    rep = edge_package(net, tmp_path, int8=True, calibration=frames[:48], test=(frames, labels, snrs),
                       max_int8_drop_pt=100, batch_sizes=(1, 4), repeats=2)
    assert rep["files"] == {"fp32": FP32_FILE, "int8": INT8_FILE} and (tmp_path / INT8_FILE).exists()
    assert rep["check"]["ok"] and rep["check"]["max_abs_diff"] < 1e-4    # folded ONNX vs the unfolded net
    assert onnx_accuracy(tmp_path / FP32_FILE, frames, labels)["accuracy"] == 1.0
    assert rep["int8"]["fp32_accuracy"] == 1.0 and rep["int8"]["calibration_frames"] == 48
    assert set(rep["latency_s"]) == {"eager", "ort-fp32", "ort-int8"}
    assert all(set(v) == {"1", "4"} and min(v.values()) > 0 for v in rep["latency_s"].values())
    assert {"cpu", "cores", "threads", "onnxruntime", "onnx", "torch"} <= set(rep["machine"])
    assert rep["bytes"]["int8"] < rep["bytes"]["fp32"]
    card = edge_card(rep, "toy v1")
    assert card.startswith("# Edge package: toy v1") and "| 0 | 100.00% |" in card and "| ort-int8 |" in card


def test_bad_int8_is_refused_and_removed(labelled, tmp_path):
    net, frames, labels, snrs = labelled
    # calibrated on frames 10^6 times weaker than the real ones: every activation range is far too narrow
    with pytest.raises(Int8AccuracyError, match=r"pt below FP32 100.00% on 120 frames \(allowed 0.5 pt\)"):
        edge_package(net, tmp_path, int8=True, calibration=frames[:32] * 1e-6, test=(frames, labels, snrs),
                     repeats=1)
    assert not (tmp_path / INT8_FILE).exists()


def test_int8_needs_frames(labelled, tmp_path):
    with pytest.raises(ValueError, match="calibration frames and labelled test frames"):
        edge_package(labelled[0], tmp_path, int8=True)


def test_torchscript_file_matches_and_takes_any_batch(labelled, tmp_path):
    from amrlib.deploy.torchscript import TorchScriptExportError, export_torchscript, load_torchscript
    net, frames, labels, snrs = labelled
    rep = edge_package(net, tmp_path, torchscript=True, batch_sizes=(1, 3), repeats=2)
    assert rep["torchscript_check"]["max_abs_diff"] < 1e-4 and set(rep["latency_s"]) == {"eager", "ort-fp32",
                                                                                          "torchscript"}
    scripted = load_torchscript(tmp_path / rep["files"]["torchscript"])
    x = torch.from_numpy(frames[:5])
    with torch.no_grad():
        assert torch.allclose(scripted(x), net(x), atol=1e-4)
    assert "TorchScript (folded, frozen) vs PyTorch" in edge_card(rep, "toy")
    with pytest.raises(TorchScriptExportError, match="differ from PyTorch's"):      # an unmeetable bound
        export_torchscript(net, tmp_path / "strict.pt", atol=-1.0)
    assert not (tmp_path / "strict.pt").exists() and not list(tmp_path.glob(".strict.pt.*"))
