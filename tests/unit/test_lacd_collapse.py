"""LaCD: a block whose residual branch is zeroed is diagnosed collapsed; removing it is exact."""
import pytest
import torch

from amrlib.models import build_model
from amrlib.pruning import PruningError, diagnose_collapse, lacd, remove_blocks
from conftest import toy_dataset


@pytest.fixture(scope="module")
def setup():
    from amrlib.train import fit
    ds = toy_dataset(n=500)
    torch.manual_seed(0)
    m = build_model("resnet20", 3, 128)
    fit(m, ds.subset(range(300)), ds.subset(range(300, 400)), epochs=1, batch_size=50, progress=False)
    return m.eval(), ds


def _zero_branch(model, name):
    blk = model.get_submodule(name)
    with torch.no_grad():
        bn = blk.bn2 if hasattr(blk, "bn2") else None
        if bn is not None:
            bn.weight.zero_()
            bn.bias.zero_()
        else:
            blk.conv2.weight.zero_()


@pytest.mark.parametrize("block", ["layer1.1", "layer2.0", "layer3.2"])   # layer2.0 downsamples
def test_zeroed_block_is_collapsed_and_removal_is_exact(setup, block):
    import copy
    model, ds = setup
    model = copy.deepcopy(model)
    _zero_branch(model, block)
    compact, diag = lacd(model, ds.subset(range(300)), ds.subset(range(300, 400)), margin=0.0)
    rec = {b["block"]: b for b in diag["blocks"]}[block]
    assert rec["collapsed"] and rec["removed"], rec["decision"]
    assert block in diag["removed"]
    only = remove_blocks(model, [block])
    x = torch.randn(16, 2, 128)
    with torch.no_grad():
        assert torch.allclose(only(x), model(x), atol=1e-5)
    assert sum(p.numel() for p in only.parameters()) < sum(p.numel() for p in model.parameters())


def test_cnn1d_unit_removal_is_exact_when_branch_is_zero():
    torch.manual_seed(0)
    m = build_model("cnn1d", 4, 128).eval()
    _zero_branch(m, "stacks.2.units.1")
    x = torch.randn(8, 2, 128)
    with torch.no_grad():
        assert torch.allclose(remove_blocks(m, ["stacks.2.units.1"])(x), m(x), atol=1e-6)


def test_diagnosis_rule_and_cap():
    probes = [{"block": n, "probe_accuracy": a, "removable": r, "reason": ""}
              for n, a, r in [("s", .3, False), ("a", .5, True), ("b", .49, True), ("c", .505, True),
                              ("d", .7, True), ("e", .7, False)]]
    d = diagnose_collapse(probes, margin=0.01)
    assert [x["removed"] for x in d] == [False, False, True, True, False, False]
    assert d[5]["collapsed"] and "not removable" in d[5]["decision"]
    capped = diagnose_collapse(probes, margin=0.01, max_removed=1)
    assert [x["block"] for x in capped if x["removed"]] == ["b"]      # the smallest gain goes first


def test_removing_unknown_or_unremovable_block_fails(setup):
    model, _ = setup
    with pytest.raises(PruningError, match="no such unit"):
        remove_blocks(model, ["layer4.0"])
    with pytest.raises(PruningError, match="stem"):
        remove_blocks(model, ["conv1"])
