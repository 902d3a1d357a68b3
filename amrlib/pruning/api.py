"""The interface every pruning method shares (FCOS and the peers).

A method takes a trained model, the data and a target and returns a :class:`PruneResult`: the
physically smaller model, a JSON-serialisable plan from which :func:`amrlib.pruning.rebuild`
reproduces it from the parent, and a report (accuracy before/after, MACs, params, reductions...).

A method is a function of the :class:`PruningMethod` shape, registered under its name and kind with
:func:`register_method` where it is defined; :func:`registered` is the one registry (amrlib.pruning.methods
builds its name -> function and name -> kind views from it; ``prune(name, ...)`` dispatches through it).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

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
    options: frozenset[str] = frozenset()     # the keyword options the method accepts


_REGISTRY: dict[str, MethodInfo] = {}


def register_method(name: str, kind: str, options: Iterable[str] = ()) -> Callable[[PruningMethod], PruningMethod]:
    """Decorator: register ``fn`` as the pruning method ``name`` of ``kind`` accepting the keyword ``options``
    (also set as ``fn.method_name`` and ``fn.kind``). :func:`check_options` refuses any other option, in the
    method itself and, before any training, in the pipeline's pre-check."""
    if kind not in KINDS:
        raise ValueError(f"method kind must be one of {KINDS}, got {kind!r}")

    def decorate(fn: PruningMethod) -> PruningMethod:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"pruning method {name!r} is registered twice")
        fn.method_name, fn.kind = name, kind
        _REGISTRY[name] = MethodInfo(name, kind, fn, frozenset(options))
        return fn
    return decorate


def registered(kind: str | None = None) -> dict[str, MethodInfo]:
    """The registered methods (of ``kind``, or all), in :data:`KINDS` order, each kind in registration order."""
    ordered = sorted(_REGISTRY.values(), key=lambda m: KINDS.index(m.kind))
    return {m.name: m for m in ordered if kind is None or m.kind == kind}


def check_options(method: str, options: dict) -> None:
    """Raise a :class:`PruningError` naming each option ``method`` does not accept, with the closest accepted
    name ("did you mean") and the full list."""
    allowed = registered()[method].options
    unknown = sorted(set(options) - allowed)
    if not unknown:
        return
    guesses = {u: difflib.get_close_matches(u, sorted(allowed), n=1, cutoff=0.6) for u in unknown}
    said = ", ".join(f"{u!r}" + (f" (did you mean {g[0]!r}?)" if g else "") for u, g in guesses.items())
    raise PruningError(f"{method}: unknown option{'s' if len(unknown) > 1 else ''} {said}",
                       hint=f"{method} accepts: {', '.join(sorted(allowed)) or 'no options'}")
