"""The explicit prunable structure every amr-prune model exposes.

Channel pruning (FCOS stage 1, the channel peers) and layer pruning (LaCD, the layer peers) never
guess a network's wiring from a traced graph: each model says it, through ``model.structure()``.

* A :class:`ChannelGroup` is a set of channels that must share one keep/merge mapping. Its
  **producers** write the channels (a conv's output rows, the BatchNorm that follows it, or a fixed
  :class:`~amrlib.models.layers.ChannelMap` shortcut); its **consumers** read them (a conv's input
  columns, a shortcut map's columns, the classifier's input features). A block-internal group has one
  producer; a residual stream has several producers tied by the residual adds of a stage.
* A :class:`Block` is one unit of depth in forward order (the stem, each residual block or plain
  layer), with whether it can be removed and what it turns into when removed.

Names are qualified module names as ``model.named_modules()`` gives them, so a JSON plan can refer
to them and a rebuilt model can resolve them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Producer:
    module: str                  # conv / ChannelMap whose output channels are the group's channels
    bn: str | None = None        # BatchNorm normalising those channels, if any


@dataclass(frozen=True)
class Consumer:
    module: str                  # conv, ChannelMap or Linear reading the group's channels as input
    features_per_channel: int = 1   # a Linear after a channel-major flatten reads this many features per channel


@dataclass
class ChannelGroup:
    name: str                    # e.g. "layer1.0.conv1" (internal) or "stream:layer1" (residual stream)
    kind: str                    # "internal" | "stream" | "plain"
    size: int                    # current number of channels
    producers: list[Producer]
    consumers: list[Consumer]

    @property
    def convs(self) -> list[str]:
        return [p.module for p in self.producers]


@dataclass
class Block:
    name: str                    # qualified module name of the unit
    kind: str                    # "stem" | "residual" | "downsample" | "plain"
    removable: bool
    reason: str = ""             # why a unit is not removable


@dataclass
class Structure:
    groups: list[ChannelGroup] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    def group(self, name: str) -> ChannelGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"no channel group {name!r}; groups: {[g.name for g in self.groups]}")

    def group_of_conv(self, conv: str) -> ChannelGroup:
        for g in self.groups:
            if conv in g.convs:
                return g
        raise KeyError(f"{conv!r} produces no prunable channel group")

    def to_dict(self) -> dict:
        return asdict(self)
