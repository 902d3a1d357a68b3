"""The interface every pruning method shares (FCOS and the peers).

A method takes a trained model, the data and a target and returns a :class:`PruneResult`: the
physically smaller model, a JSON-serialisable plan from which :func:`amrlib.pruning.rebuild`
reproduces it from the parent, and a report (accuracy before/after, MACs, params, reductions...).

A method is a function of the :class:`PruningMethod` shape, registered under its name and kind with
:func:`register_method` where it is defined; :func:`registered` is the one registry (amrlib.pruning.methods
builds its name -> function and name -> kind views from it; ``prune(name, ...)`` dispatches through it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

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


#: the kinds of method, in the order the registry lists them: FCOS, then channel peers, then layer peers
KINDS = ("channel+layer", "channel", "layer")


class PruningMethod(Protocol):
    """What a pruning method takes and returns. ``train``/``val`` may be None for data-free methods;
    ``finetune`` (a TrainConfig or dict) asks for recovery fine-tuning and the accuracy keys in the report;
    ``options`` are the method's own keyword arguments (unknown ones raise PruningError). The input model
    is never modified."""

    def __call__(self, model: nn.Module, train: Any, val: Any, target_macs_reduction: float, *, seed: int = 0,
                 finetune: Any = None, **options: Any) -> PruneResult: ...


@dataclass(frozen=True)
class MethodInfo:
    name: str
    kind: str                  # one of KINDS
    fn: PruningMethod


_REGISTRY: dict[str, MethodInfo] = {}


def register_method(name: str, kind: str) -> Callable[[PruningMethod], PruningMethod]:
    """Decorator: register ``fn`` as the pruning method ``name`` of ``kind`` (also set as ``fn.method_name``
    and ``fn.kind``)."""
    if kind not in KINDS:
        raise ValueError(f"method kind must be one of {KINDS}, got {kind!r}")

    def decorate(fn: PruningMethod) -> PruningMethod:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"pruning method {name!r} is registered twice")
        fn.method_name, fn.kind = name, kind
        _REGISTRY[name] = MethodInfo(name, kind, fn)
        return fn
    return decorate


def registered(kind: str | None = None) -> dict[str, MethodInfo]:
    """The registered methods (of ``kind``, or all), in :data:`KINDS` order, each kind in registration order."""
    ordered = sorted(_REGISTRY.values(), key=lambda m: KINDS.index(m.kind))
    return {m.name: m for m in ordered if kind is None or m.kind == kind}
