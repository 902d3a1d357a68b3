"""Where an exported model's time goes: ONNX Runtime's profile, per operator and per layer."""
import torch

from amrlib.deploy import fold_batchnorm
from amrlib.deploy.profile import profile_onnx, profile_table
from amrlib.models import build_model
from amrlib.onnx_export import export_onnx


def test_profile_lists_every_kernel_and_the_time_outside_them(tmp_path):
    torch.manual_seed(0)
    net = build_model("resnet20", 4, 64).eval()
    path = export_onnx(fold_batchnorm(net), tmp_path / "m.onnx")
    prof = profile_onnx(path, batch_size=2, frame_length=64, repeats=4, warmup=1)
    assert prof["repeats"] == 4 and prof["nodes"] == len(prof["layers"]) > 10
    assert any("Conv" in op for op in prof["by_op"])                        # the convolutions are there
    assert prof["run_median_us"] > 0 and 0 <= prof["overhead_share"] < 1
    assert abs(sum(prof["by_op"].values()) - prof["kernel_us"]) < 1e-6
    assert prof["layers"] == sorted(prof["layers"], key=lambda r: -r["median_us"])
    text = profile_table(prof, top=3)
    assert "| operator | µs per run | share |" in text and "outside kernels" in text
    assert text.count("\n| /") == 3                                          # the three slowest layers
