"""BatchNorm recalibration re-estimates running statistics from training frames, nothing else."""
import torch

from amrlib.models import build_model
from amrlib.pruning import recalibrate_bn
from conftest import toy_dataset


def test_recalibration_matches_batch_statistics():
    torch.manual_seed(0)
    ds = toy_dataset(n=300)
    m = build_model("resnet20", 3, 128).eval()
    with torch.no_grad():
        m.bn1.running_mean.fill_(5.0)
        m.bn1.running_var.fill_(9.0)
    r = recalibrate_bn(m, ds, frames=300, batch_size=100)   # equal batches: mean of batch means = mean
    with torch.no_grad():
        feats = m.conv1(torch.from_numpy(ds.iq[:]).unsqueeze(1))          # [N, 16, 2, 128]
    assert torch.allclose(r.bn1.running_mean, feats.mean((0, 2, 3)), atol=1e-4)
    assert torch.allclose(r.bn1.running_var, feats.var((0, 2, 3)), rtol=3e-2)
    assert m.bn1.running_mean[0] == 5.0                                      # input untouched
    assert all(torch.equal(a, b) for (n, a), (_, b) in zip(m.named_parameters(), r.named_parameters()))
    assert not r.training
