"""SSBN channel pruning: the documented score, redundancy-aware selection, target and rebuild."""
import pytest
import torch

from amrlib.measure import count_macs, count_params
from amrlib.models import build_from_arch, build_model
from amrlib.pruning.peers import prune_l1, prune_ssbn, ssbn_scores
from amrlib.pruning.peers.channels import build_graph, score_groups
from amrlib.pruning.peers.ssbn import SSBNImportance, producer_bns


def test_score_by_hand():
    w = torch.tensor([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [-1.0, 0.0]])
    m = torch.tensor([1.0, 0.9, 0.5, 0.4])
    s = ssbn_scores(w, m)
    cos01 = 1.0 / (1.0 + 0.01 ** 2) ** 0.5
    # ch0 top: undiscounted; ch1 near-duplicate of ch0; ch2 max positive cos with the two above it is
    # cos(ch1, ch2) = 0.01 / |ch1|; ch3 anti-parallel to ch0 (clipped to 0), orthogonal-ish to the rest
    expected = [1.0, 0.9 * (1 - cos01), 0.5 * (1 - 0.01 * cos01), 0.4 * (1 - 0.0)]
    assert torch.allclose(s, torch.tensor(expected, dtype=torch.float64), atol=1e-12)
    # ties in magnitude: the lower index outranks
    t = ssbn_scores(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([0.7, 0.7]))
    assert t.tolist() == pytest.approx([0.7, 0.0])


def _model(name):
    torch.manual_seed(0)
    m = build_model(name, 3, 128)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.0)
    return m.eval()


def test_one_score_per_channel_and_cnn1d_falls_back_to_filter_norm():
    m = _model("cnn1d")
    scores = score_groups(m, SSBNImportance(producer_bns(m)), DG=build_graph(m))
    unit = m.stacks[1].units[0].conv1
    w = unit.weight.detach()
    assert scores["stacks.1.units.0.conv1"].shape == (unit.out_channels,)
    assert torch.allclose(torch.as_tensor(scores["stacks.1.units.0.conv1"]), ssbn_scores(w, w.flatten(1).norm(dim=1)))


def test_a_duplicated_filter_is_pruned_where_l1_keeps_it():
    m = _model("resnet20")
    blk = m.layer1[0]
    with torch.no_grad():          # channel 5 = 3 x channel 2 (largest L1), slightly smaller gamma
        blk.conv1.weight[5] = 3 * blk.conv1.weight[2]
        blk.bn1.weight[2], blk.bn1.weight[5] = 1.0, 0.99
    kept = lambda res: next(g["kept"] for g in res.plan["stages"][0]["groups"] if g["name"] == "layer1.0.conv1")  # noqa: E731
    assert 5 not in kept(prune_ssbn(m, None, None, 0.3))
    assert 5 in kept(prune_l1(m, None, None, 0.3, group_reduction="first"))


@pytest.mark.parametrize("name", ["resnet20", "cnn1d"])
def test_prunes_to_target_and_rebuilds(name):
    parent = _model(name)
    res = prune_ssbn(parent, None, None, 0.6)
    pruned, rep = res.model, res.report
    assert count_macs(pruned) < count_macs(parent) and count_params(pruned) < count_params(parent)
    assert abs(rep["macs_reduction"] - 0.6) <= rep["tolerance"]
    assert rep["method"] == res.plan["method"] == "ssbn"
    twin = build_from_arch(pruned.arch)
    twin.load_state_dict(pruned.state_dict())
    x = torch.randn(2, 2, 128)
    assert torch.allclose(twin.eval()(x), pruned(x), atol=1e-6)
