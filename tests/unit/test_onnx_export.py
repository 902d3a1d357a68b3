"""ONNX export of pruned models (odd channel counts, removed blocks): ONNX Runtime agrees with PyTorch's
logits at any batch size, a disagreement is caught, and a failed export leaves an existing file alone."""
import numpy as np
import onnx
import pytest
import torch

from amrlib.models import build_model
from amrlib.onnx_export import OnnxExportError, check_onnx, export_onnx, measure_onnx_latency
from amrlib.pruning import channel_stage, remove_blocks


def _pruned(name, keep=0.45, drop=2):
    torch.manual_seed(0)
    model = build_model(name, 5, 128)
    pruned, _ = channel_stage(model, keep_ratio=keep)
    removable = [b.name for b in pruned.structure().blocks if b.removable][1:1 + drop]
    pruned = remove_blocks(pruned, removable)
    with torch.no_grad():                     # non-trivial BN statistics, as after training
        for m in pruned.modules():
            if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return pruned.eval(), removable


@pytest.mark.parametrize("name,keep", [("resnet20", 0.45), ("cnn1d", 0.3)])
def test_pruned_model_round_trip(tmp_path, name, keep):
    model, removed = _pruned(name, keep)
    assert len(removed) == 2                                   # blocks gone
    assert any(g.size % 2 for g in model.structure().groups) or name == "cnn1d"   # resnet20: 7, 29 channels
    path = export_onnx(model, tmp_path / "m.onnx")
    graph = onnx.load(str(path)).graph
    batch_dim = graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param == "batch" and not batch_dim.HasField("dim_value")   # dynamic batch
    x = np.random.default_rng(1).standard_normal((13, 2, 128)).astype(np.float32)
    report = check_onnx(model, path, x, batch_sizes=(1, 4, 13))
    assert report["max_abs_diff"] < 1e-4 and report["argmax_agreement"] == 1.0
    assert report["frames"] == 3 * 13
    lat = measure_onnx_latency(path, batch_size=3, repeats=2, warmup=1)
    assert lat["median_s"] > 0 and lat["batch_size"] == 3


def test_disagreement_is_caught(tmp_path):
    model, _ = _pruned("cnn1d")
    path = export_onnx(model, tmp_path / "m.onnx")
    with torch.no_grad():
        model.classifier.weight.add_(0.1) if hasattr(model, "classifier") else \
            next(m for m in model.modules() if isinstance(m, torch.nn.Linear)).weight.add_(0.1)
    with pytest.raises(OnnxExportError, match="differ"):
        check_onnx(model, path)


def test_failed_export_keeps_the_existing_file(tmp_path):
    model, _ = _pruned("cnn1d")
    out = tmp_path / "m.onnx"
    out.write_bytes(b"previous")

    class Broken(torch.nn.Module):
        arch = {"name": "broken", "frame_length": 128}

        def forward(self, x):
            raise RuntimeError("cannot trace")
    with pytest.raises(OnnxExportError, match="broken"):
        export_onnx(Broken(), out)
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]          # no temporary file left behind
