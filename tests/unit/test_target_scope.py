"""One default for where FCOS's MAC target lands (amrlib.names.resolve_target_scope), shared by fcos(), the
method interface and the pipeline configuration."""
import pytest

from amrlib.names import resolve_target_scope
from settings.pipeline import parse_config


def test_default_is_final_with_a_mac_target_and_lacd():
    assert resolve_target_scope(None, 0.9) == "final"
    assert resolve_target_scope(None, None) == "channel"            # keep ratio / threshold: nothing to re-fit
    assert resolve_target_scope(None, 0.9, lacd=False) == "channel"  # no removals: the channel target is final
    assert resolve_target_scope("channel", 0.9) == "channel"


@pytest.mark.parametrize("scope, target, lacd, match", [
    ("final", None, True, "needs target_macs_reduction"), ("final", 0.9, False, "needs LaCD"),
    ("everything", 0.9, True, "must be one of")])
def test_explicit_impossible_scope_is_refused(scope, target, lacd, match):
    with pytest.raises(ValueError, match=match):
        resolve_target_scope(scope, target, lacd=lacd)


def test_pipeline_resolves_the_same_rule():
    sized = {"keep_ratio": None, "target_macs_reduction": 0.9}
    assert parse_config({}).target_scope == "channel"                # the default config: keep_ratio 0.5
    assert parse_config({"channel_stage": sized}).target_scope == "final"
    assert parse_config({"channel_stage": {**sized, "target_scope": "channel"}}).target_scope == "channel"
    assert parse_config({"channel_stage": sized, "lacd": {"enabled": False}}).target_scope == "channel"


def test_fcos_resolves_the_same_rule():
    import inspect

    from amrlib.pruning import fcos
    assert inspect.signature(fcos).parameters["target_scope"].default is None
