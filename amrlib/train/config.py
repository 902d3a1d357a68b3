"""What one training run is: the recipe (optimiser, schedule, loss), the stop rule and the device.

The defaults are the reference recipe's optimiser and schedule (Adam 1e-3, StepLR(step 10, gamma 0.8),
batch 128) without its L1 sparsity term; :func:`recipe` names complete recipes:

* ``"reference"``: the recipe of the layer-pruning reference code — Adam 1e-3, StepLR(10, 0.8), batch 128,
  loss = cross-entropy + 1e-4 * sum(|theta|) over every trainable parameter, 50 epochs;
* ``"plain"``: the same without the sparsity term (amr-prune's historical default).

The **stop rule** is ``epochs`` as a cap plus, when ``patience`` is set, a plateau stop: training ends
after ``patience`` epochs in a row whose validation accuracy does not beat the best so far by more than
``min_delta``. :class:`~amrlib.train.loop.FitResult` records which of the two ended the run.

``device``: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. ``amp``
enables bfloat16 autocast on CUDA; it is ignored on CPU, which always trains in float32.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from ..names import RECIPES  # noqa: F401  (defined there, torch-free, for the configuration checks)


@dataclass
class TrainConfig:
    """One training run; the defaults are the reference optimiser and schedule without the L1 term."""
    epochs: int = 30                     # the cap: at most this many epochs
    batch_size: int = 128
    lr: float = 1e-3
    step_size: int = 10
    gamma: float = 0.8
    weight_decay: float = 0.0
    seed: int = 0
    patience: int | None = None          # plateau stop: epochs without a better val accuracy (None: run the cap)
    min_delta: float = 0.0               # how much better than the best so far an epoch must be to count
    checkpoint_every: int | None = None  # also checkpoint every N optimiser steps inside an epoch
    kd_alpha: float = 0.0                # knowledge distillation weight (0 = plain cross-entropy)
    kd_temperature: float = 4.0
    l1: float = 0.0                      # sparsity: loss += l1 * sum(|theta|) (the reference recipe: 1e-4)
    device: str = "auto"                 # auto | cpu | cuda | cuda:N
    amp: bool = True                     # bfloat16 autocast on CUDA (no effect on CPU)

    def validate(self) -> "TrainConfig":
        problems = []
        for name in ("lr", "gamma", "weight_decay", "min_delta", "kd_alpha", "kd_temperature", "l1"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                problems.append(f"{name} must be a finite number (got {v!r})")
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))
        if self.epochs < 0:
            problems.append(f"epochs must be >= 0 (got {self.epochs})")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1 (got {self.batch_size})")
        if not 0 < self.lr <= 10:
            problems.append(f"lr must be in (0, 10] (got {self.lr})")
        if self.step_size < 1 or not 0 < self.gamma <= 1:
            problems.append(f"StepLR needs step_size >= 1 and 0 < gamma <= 1 (got {self.step_size}, {self.gamma})")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0 (got {self.weight_decay})")
        if self.patience is not None and self.patience < 1:
            problems.append(f"patience must be >= 1 or None (got {self.patience})")
        if not 0 <= self.min_delta < 1:
            problems.append(f"min_delta must be in [0, 1) (an accuracy difference; got {self.min_delta})")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            problems.append(f"checkpoint_every must be >= 1 or None (got {self.checkpoint_every})")
        if not 0 <= self.kd_alpha <= 1 or self.kd_temperature <= 0:
            problems.append(f"kd_alpha must be in [0, 1] and kd_temperature > 0 "
                            f"(got {self.kd_alpha}, {self.kd_temperature})")
        if not 0 <= self.l1 < 1:
            problems.append(f"l1 must be in [0, 1) (got {self.l1}; the reference recipe uses 1e-4)")
        if not (self.device in ("auto", "cpu", "cuda") or str(self.device).startswith("cuda:")):
            problems.append(f"device must be auto, cpu, cuda or cuda:N (got {self.device!r})")
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))
        return self

    def stop_rule(self) -> str:
        """The stop rule in words, for reports: 'cap 50 epochs' or 'patience 5 (min_delta 0), cap 50 epochs'."""
        cap = f"cap {self.epochs} epochs"
        if not self.patience:
            return cap
        return f"patience {self.patience} on val accuracy (min_delta {self.min_delta}), {cap}"




def recipe(name: str, **overrides) -> TrainConfig:
    """A named recipe (:data:`RECIPES`) as a :class:`TrainConfig`, with ``overrides`` on top."""
    if name not in RECIPES:
        raise ValueError(f"unknown training recipe {name!r}; choose one of {', '.join(RECIPES)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown training setting(s) {unknown} for recipe {name!r}")
    return TrainConfig(**{**RECIPES[name], **overrides}).validate()


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU; an explicit CUDA device that is not there is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available on this machine "
                         f"(use device: auto or cpu)")
    return dev
