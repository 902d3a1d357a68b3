"""Block (unit) removal through the architecture spec: a physically shallower model.

``remove_blocks(model, names)`` marks each named unit of ``model.structure().blocks`` removed in the
spec and rebuilds: a ResNet block becomes a :class:`~amrlib.models.layers.Remnant` (its shortcut —
the downsampling :class:`~amrlib.models.layers.ChannelMap` keeps its weights — then ReLU), a cnn1d
residual unit becomes ``Remnant()`` (ReLU of its input), a shape-preserving VGG conv layer becomes
``nn.Identity``. Every other tensor is copied by name (names of kept modules do not change), so a
unit-free network computes exactly what the parent computes with those units bypassed.
"""
from __future__ import annotations

import re

from torch import nn

from ...models import build_from_arch
from ..api import PruningError

_PATHS = {
    "resnet": (re.compile(r"^layer(\d+)\.(\d+)$"), lambda a, i, j: a["stages"][i - 1]["blocks"][j]),
    "cnn1d": (re.compile(r"^stacks\.(\d+)\.units\.(\d+)$"), lambda a, i, j: a["stacks"][i]["units"][j]),
    "vgg": (re.compile(r"^features\.(\d+)\.(\d+)$"), lambda a, i, j: a["blocks"][i]["layers"][j]),
}


def removable_blocks(model: nn.Module) -> list[str]:
    return [b.name for b in model.structure().blocks if b.removable]


def remove_blocks(model: nn.Module, block_names: list[str]) -> nn.Module:
    """A new model without the named units (the input model is not modified)."""
    blocks = {b.name: b for b in model.structure().blocks}
    family = model.arch.get("family")
    if family not in _PATHS:
        raise PruningError(f"block removal does not know model family {family!r}")
    pattern, locate = _PATHS[family]
    arch = model.current_arch()
    for name in block_names:
        if name not in blocks:
            raise PruningError(f"{model.arch.get('name')} has no unit {name!r}; units: {list(blocks)}")
        if not blocks[name].removable:
            raise PruningError(f"unit {name!r} cannot be removed ({blocks[name].reason})")
        hit = pattern.match(name)
        if hit is None:
            raise PruningError(f"unit {name!r} has no place in the {family} architecture spec")
        locate(arch, int(hit.group(1)), int(hit.group(2)))["removed"] = True
    new = build_from_arch(arch)
    old_state = model.state_dict()
    state = {}
    for key, value in new.state_dict().items():
        if key not in old_state or old_state[key].shape != value.shape:
            raise PruningError(f"rebuilt model's tensor {key!r} has no counterpart of shape {tuple(value.shape)} "
                               f"in the parent")
        state[key] = old_state[key]
    new.load_state_dict(state)
    new.train(model.training)
    return new
