"""INT8 export (ONNX Runtime static quantisation): runs on a tiny model, its accuracy is measured against
FP32 overall and per SNR, and the accuracy bound is enforced."""
import numpy as np
import pytest
import torch

from amrlib.deploy import fold_batchnorm
from amrlib.deploy.int8 import Int8AccuracyError, int8_accuracy_check, onnx_accuracy, quantize_int8
from amrlib.models import build_model
from amrlib.onnx_export import export_onnx


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("int8")
    torch.manual_seed(0)
    net = build_model("resnet20", 4, 64).eval()
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((64, 2, 64)).astype(np.float32)
    frames = rng.standard_normal((120, 2, 64)).astype(np.float32)
    with torch.no_grad():       # standardise each class's logit over the frames: the untrained net predicts all
        logits = net(torch.from_numpy(frames))
        mean, std = logits.mean(0), logits.std(0)
        net.fc.weight /= std[:, None]
        net.fc.bias.copy_((net.fc.bias - mean) / std)
    fp32 = export_onnx(fold_batchnorm(net), tmp / "m.onnx")
    int8 = quantize_int8(fp32, tmp / "m_int8.onnx", calib)
    labels = onnx_accuracy(fp32, frames, np.zeros(120, int))["predictions"]   # FP32 is right on every frame
    snrs = np.repeat([-10, 0, 10], 40)
    return fp32, int8, frames, labels, snrs


def test_int8_model_is_quantised_and_close_to_fp32(exported):
    import onnx
    fp32, int8, frames, labels, snrs = exported
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops                  # QDQ format
    assert int8.stat().st_size < fp32.stat().st_size                      # int8 weights
    report = int8_accuracy_check(fp32, int8, frames, labels, snrs, max_drop_pt=100)
    assert report["fp32_accuracy"] == 1.0 and report["frames"] == 120
    assert min(np.bincount(labels, minlength=4)) >= 10                   # labels of every class
    assert set(report["per_snr"]) == {-10, 0, 10} and report["per_snr"][0]["fp32"] == 1.0
    assert report["agreement"] == report["int8_accuracy"] > 0.5           # INT8 mostly agrees with FP32
    assert report["drop_pt"] == pytest.approx((1 - report["int8_accuracy"]) * 100)


def test_accuracy_drop_beyond_the_bound_is_refused(exported, tmp_path):
    fp32, _, frames, labels, snrs = exported
    # calibrated on frames 10^6 times weaker than the real ones: every activation range is far too narrow
    bad = quantize_int8(fp32, tmp_path / "bad.onnx", frames[:32] * 1e-6)
    report = int8_accuracy_check(fp32, bad, frames, labels, snrs, max_drop_pt=100)
    assert report["drop_pt"] > 10
    with pytest.raises(Int8AccuracyError, match=r"pt below FP32 100.00% on 120 frames \(allowed 0.5 pt\)"):
        int8_accuracy_check(fp32, bad, frames, labels, snrs, max_drop_pt=0.5)


def test_bad_calibration_frames_are_refused(tmp_path, exported):
    with pytest.raises(ValueError, match="calibration frames"):
        quantize_int8(exported[0], tmp_path / "x.onnx", np.zeros((0, 2, 64), np.float32))
    assert not (tmp_path / "x.onnx").exists()
