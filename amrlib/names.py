"""Names and small constants that configuration checks and the command line need without importing PyTorch:
model names, the RML2016.10a class list, training recipes, the built-in pruning methods and their kinds.

Standard library only. The modules that own them re-export them (``amrlib.models.MODEL_NAMES``,
``amrlib.data.synth.RML2016A_CLASSES``, ``amrlib.train.config.RECIPES``); the method registry
(``amrlib.pruning.methods.METHODS``) stays the authority on methods, and ``tests/unit/test_names.py`` checks that
:data:`BUILTIN_METHOD_KINDS` lists exactly the methods it registers.
"""
from __future__ import annotations

MODEL_NAMES = ("resnet20", "resnet56", "resnet110", "vgg16", "cnn1d")

RML2016A_CLASSES = ["8PSK", "AM-DSB", "AM-SSB", "BPSK", "CPFSK", "GFSK", "PAM4", "QAM16", "QAM64",
                    "QPSK", "WBFM"]

RECIPES: dict[str, dict] = {
    "reference": {"epochs": 50, "batch_size": 128, "lr": 1e-3, "step_size": 10, "gamma": 0.8, "l1": 1e-4},
    "plain": {"epochs": 30, "batch_size": 128, "lr": 1e-3, "step_size": 10, "gamma": 0.8, "l1": 0.0},
}

#: the methods amrlib registers itself, in registry order, with their kinds (channel+layer | channel | layer)
BUILTIN_METHOD_KINDS: dict[str, str] = {
    "fcos": "channel+layer", "l1": "channel", "bn_scale": "channel", "fpgm": "channel", "random": "channel",
    "ssbn": "channel", "layer_cka": "layer", "lcp": "layer"}
BUILTIN_METHODS = tuple(BUILTIN_METHOD_KINDS)

#: where FCOS's MAC target applies: "channel" (the channel stage; LaCD removes blocks on top, so the finished
#: network overshoots) or "final" (the finished network: the channel stage is re-fitted around LaCD's removals)
TARGET_SCOPES = ("channel", "final")


def resolve_target_scope(scope: str | None, target_macs_reduction: float | None, lacd: bool = True) -> str:
    """The one default of ``target_scope`` (*ours*), for the library, the method interface and the pipeline:
    unset, a MAC target is the finished network's ("final") whenever LaCD runs; with no MAC target (keep ratio,
    distance threshold, parameter target) or LaCD off there is nothing to re-fit and the scope is "channel".
    An explicit "final" without a MAC target or without LaCD is an error (ValueError)."""
    if scope is None:
        return "final" if target_macs_reduction is not None and lacd else "channel"
    if scope not in TARGET_SCOPES:
        raise ValueError(f"target_scope must be one of {TARGET_SCOPES}, got {scope!r}")
    if scope == "final" and target_macs_reduction is None:
        raise ValueError("target_scope 'final' is a MAC target for the finished network: it needs "
                         "target_macs_reduction (and no keep ratio)")
    if scope == "final" and not lacd:
        raise ValueError("target_scope 'final' re-fits the channel stage around LaCD's removals: it needs LaCD "
                         "(with LaCD off the channel stage's target is final)")
    return scope
