"""Physical layer removal, shared by LaCD and the layer-pruning peers.

A removed unit is replaced by what its removal leaves (keyed by the unit's type):

* a ResNet BasicBlock -> :class:`~amrlib.models.layers.Remnant` holding its shortcut (identity, or the
  downsampling :class:`~amrlib.models.layers.ChannelMap`, which keeps its weights) and its output ReLU;
* a CNN1D residual unit -> ``Remnant()`` (ReLU of the skip path);
* a VGG conv-BN-ReLU layer -> ``nn.Identity`` (only where input and output shapes agree).

If the residual branch of a block outputs zeros, its remnant computes exactly the same function.
Module names of everything kept are unchanged, so state-dict keys and plans stay valid.
"""
from __future__ import annotations

import copy

from torch import nn

from ..models.cnn1d import ResidualUnit
from ..models.layers import Remnant
from ..models.resnet import BasicBlock
from ..models.vgg import ConvBNReLU
from .api import PruningError

REMNANTS = {
    BasicBlock: lambda blk: Remnant(blk.shortcut),
    ResidualUnit: lambda blk: Remnant(),
    ConvBNReLU: lambda blk: nn.Identity(),
}


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def remove_blocks(model: nn.Module, names: list[str]) -> nn.Module:
    """A copy of ``model`` without the named units (qualified names of ``structure().blocks``)."""
    blocks = {b.name: b for b in model.structure().blocks}
    for n in names:                                      # validate before copying anything
        if n not in blocks:
            raise PruningError(f"cannot remove block {n!r}: the model has no such unit")
        if not blocks[n].removable:
            raise PruningError(f"cannot remove block {n!r}: {blocks[n].reason or 'not removable'}")
    out = copy.deepcopy(model)
    for n in names:
        blk = out.get_submodule(n)
        make = REMNANTS.get(type(blk))
        if make is None:
            raise PruningError(f"no removal rule for {type(blk).__name__} ({n})")
        _set_module(out, n, make(blk))
    out.arch = out.current_arch()
    return out
