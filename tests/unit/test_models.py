import pytest
import torch
from torch import nn

from amrlib.measure import count_macs, count_params
from amrlib.models import MODEL_NAMES, ModelError, build_from_arch, build_model, load_model, model_arch, save_model


@pytest.mark.parametrize("name,params", [("resnet56", 852_795), ("vgg16", 8_851_787), ("cnn1d", 100_907)])
def test_reference_parameter_counts(name, params):
    assert count_params(build_model(name, 11, 128)) == params


def test_resnet56_macs_match_reference():
    macs = count_macs(build_model("resnet56", 11, 128))
    # reference 41.6 M for conv + linear; + 98,304 for the two frozen shortcut maps we count too
    assert macs == 41_620_160 + 98_304


def test_resnet110_and_vgg_costs_near_reference():
    m = build_model("resnet110", 11, 128)
    assert abs(count_params(m) - 1.73e6) / 1.73e6 < 0.01
    assert abs(count_macs(m) - 84.1e6) / 84.1e6 < 0.01
    assert abs(count_macs(build_model("vgg16", 11, 128)) - 918e6) / 918e6 < 0.005


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("classes,length", [(11, 128), (24, 1024)])
def test_forward_any_class_count_and_length(name, classes, length):
    if name in ("vgg16", "resnet110") and length == 1024:
        pytest.skip("slow on CPU; covered at 128")
    m = build_model(name, classes, length).eval()
    assert m(torch.randn(2, 2, length)).shape == (2, classes)


def _width(module: nn.Module, out: bool) -> int:
    if isinstance(module, nn.Linear):
        return module.out_features if out else module.in_features
    return module.out_channels if out else module.in_channels


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_structure_matches_tensors(name):
    m = build_model(name, 11, 128)
    mods = dict(m.named_modules())
    s = m.structure()
    assert s.groups and s.blocks
    seen = set()
    for g in s.groups:
        assert g.producers and g.consumers, g.name
        for p in g.producers:
            assert _width(mods[p.module], True) == g.size, (g.name, p.module)
            if p.bn:
                assert mods[p.bn].num_features == g.size
            assert p.module not in seen, "a conv produces exactly one group"
            seen.add(p.module)
        for c in g.consumers:
            assert _width(mods[c.module], False) == g.size * c.features_per_channel, (g.name, c.module)
    names = [b.name for b in s.blocks]
    assert all(n in mods for n in names) and len(set(names)) == len(names)


def test_resnet56_has_28_units_and_three_streams():
    s = build_model("resnet56", 11, 128).structure()
    assert len(s.blocks) == 28 and sum(b.removable for b in s.blocks) == 27
    streams = [g for g in s.groups if g.kind == "stream"]
    assert [g.size for g in streams] == [16, 32, 64]
    assert len(streams[0].producers) == 1 + 9       # stem + nine conv2
    assert len(streams[1].producers) == 1 + 9       # shortcut map + nine conv2


def test_save_load_roundtrip(tmp_path):
    m = build_model("resnet20", 5, 256).eval()
    p = save_model(m, tmp_path / "m.pt")
    m2 = load_model(p)
    x = torch.randn(3, 2, 256)
    assert torch.equal(m(x), m2(x))


def test_load_wrong_architecture_is_clear(tmp_path):
    p = save_model(build_model("resnet20", 11, 128), tmp_path / "m.pt")
    with pytest.raises(ModelError, match="does not match"):
        load_model(p, expect_arch=model_arch("resnet20", 24, 128))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="bad.pt"):
        load_model(tmp_path / "bad.pt")


def test_unknown_model_name():
    with pytest.raises(ModelError, match="unknown model"):
        build_model("resnet57x", 11, 128)
    with pytest.raises(ModelError):
        build_from_arch({"family": "transformer"})


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_current_arch_of_fresh_model_is_its_spec(name):
    m = build_model(name, 11, 128)
    assert m.current_arch() == m.arch
