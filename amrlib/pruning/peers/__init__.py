"""Peer pruning methods (described in docs/METHOD.md, "Peer methods"), all behind FCOS's interface.

``prune_<method>(model, train, val, target_macs_reduction, *, seed=0, finetune=None, **options)``
returns a :class:`~amrlib.pruning.api.PruneResult`: a physically smaller copy of ``model`` (``.arch``
updated, so ``build_from_arch(arch)`` + its state dict rebuild it), a JSON plan that
:func:`amrlib.pruning.rebuild` replays on the parent (plus ``method``/``options`` and method details),
and a report (method, target, macs/params before/after, reductions, prune_seconds, target_met,
tolerance and, with ``finetune``, accuracies before/after on ``val``). The input is never modified.

Channel methods (target met within ``tolerance``, default 2 points, else PruningError):
``l1``, ``bn_scale``, ``fpgm``, ``random`` (:mod:`.classic`), ``ssbn`` (:mod:`.ssbn`).
Layer methods (whole units; unreachable targets are reported, not raised):
``layer_cka`` (:mod:`.layer_cka`), ``lcp`` (:mod:`.lcp`).

Each registers itself (``@register_method(name, kind=...)``, :mod:`amrlib.pruning.api`); the tables below are
views of that registry.
"""
from ..api import registered
from .classic import prune_bn_scale, prune_fpgm, prune_l1, prune_random
from .depth import removable_blocks
from .layer_cka import prune_layer_cka
from .lcp import prune_lcp
from .ssbn import SSBNImportance, prune_ssbn, ssbn_scores

CHANNEL_METHODS = tuple(registered("channel"))
LAYER_METHODS = tuple(registered("layer"))
PEER_METHODS = {name: registered()[name].fn for name in CHANNEL_METHODS + LAYER_METHODS}

__all__ = ["PEER_METHODS", "CHANNEL_METHODS", "LAYER_METHODS", "prune_l1", "prune_bn_scale", "prune_fpgm",
           "prune_random", "prune_ssbn", "prune_layer_cka", "prune_lcp", "removable_blocks",
           "SSBNImportance", "ssbn_scores"]
