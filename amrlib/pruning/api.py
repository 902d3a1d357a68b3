"""The interface every pruning method shares (FCOS and the peers).

A method takes a trained model, the data and a target and returns a :class:`PruneResult`: the
physically smaller model, a JSON-serialisable plan from which :func:`amrlib.pruning.rebuild`
reproduces it from the parent, and a report (accuracy before/after, MACs, params, reductions...).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn
from ..errors import AmrPruneError


class PruningError(AmrPruneError, ValueError):
    """An impossible or malformed pruning request; raised before anything is modified."""
    show_type = False
    hint = "docs/CONFIGURATION.md lists the methods and their options (peer.options)"


@dataclass
class PruneResult:
    model: nn.Module
    plan: dict
    report: dict[str, Any] = field(default_factory=dict)
