"""Per-module MACs from the project's one counter, and exact MAC predictors used by the target searches.

:func:`module_macs` is :func:`amrlib.measure.macs_by_module`: the one counter's per-module split. Because a
conv or linear layer costs ``in_channels x out_channels x (kernel, positions)``, MACs are bilinear in the channel
counts of the groups a layer reads and writes, so :class:`ChannelMacModel` predicts the MACs of any
choice of per-group channel counts exactly, without surgery. Removing a shape-preserving unit
removes exactly its own layers' MACs except a surviving shortcut map (:func:`block_savings`).
The searches use these predictions; the final network is always measured with ``count_macs``.
"""
from __future__ import annotations

import numpy as np
from torch import nn

from ...measure import macs_by_module
from ...models.layers import ChannelMap

_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


def module_macs(model: nn.Module, frame_length: int | None = None) -> tuple[int, dict[str, int]]:
    """(total MACs, {conv/linear module name: MACs}) for one frame, as count_macs counts them."""
    per = macs_by_module(model, frame_length)
    for name, m in model.named_modules():
        if isinstance(m, _LAYERS):
            per.setdefault(name, 0)
    return int(sum(per.values())), per


class ChannelMacModel:
    """MACs as a function of the channel count of each structure group (exact for convs/linears)."""

    def __init__(self, model: nn.Module, groups):
        self.total, per = module_macs(model)
        self.sizes = np.array([g.size for g in groups], dtype=float)
        index = {}
        for gi, g in enumerate(groups):
            for p in g.producers:
                index[(p.module, "out")] = gi
            for c in g.consumers:
                index[(c.module, "in")] = gi
        self.terms = [(macs, index.get((name, "in")), index.get((name, "out"))) for name, macs in per.items()]

    def predict(self, counts) -> float:
        ratio = np.asarray(counts, dtype=float) / self.sizes
        out = 0.0
        for macs, gin, gout in self.terms:
            out += macs * (ratio[gin] if gin is not None else 1.0) * (ratio[gout] if gout is not None else 1.0)
        return out


def block_savings(model: nn.Module, block_names: list[str]) -> tuple[int, dict[str, int]]:
    """(total MACs, {block: MACs removed with it}); a block's shortcut map survives its removal."""
    total, per = module_macs(model)
    modules = dict(model.named_modules())
    out = {}
    for b in block_names:
        out[b] = sum(macs for name, macs in per.items()
                     if name.startswith(b + ".") and not isinstance(modules[name], ChannelMap))
        if b in per:                      # a unit that is itself a conv (stem)
            out[b] += per[b]
    return total, out
