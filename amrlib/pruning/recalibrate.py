"""BatchNorm recalibration: re-estimate running statistics of a pruned network on training frames.

Channel fusion and block removal shift the activation statistics every later BatchNorm was fitted
to; a trained ResNet56 falls to chance after a 20% channel cut until they are re-estimated. This
forward-only pass (no gradients, no weight change other than BN buffers) is cheap and gives LaCD's
probes and the reported "before fine-tuning" accuracy a network whose normalisation is consistent.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..train.batches import iter_batches


def recalibrate_bn(model: nn.Module, ds, frames: int = 2048, batch_size: int = 256, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose BN running statistics are the plain average over ``frames`` training frames."""
    out = copy.deepcopy(model)
    bns = [m for m in out.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or frames <= 0 or len(ds) == 0:
        return out.eval()
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), min(frames, len(ds)), replace=False))
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None                      # cumulative average over all batches
    out.train()
    with torch.no_grad():
        for x, _, _ in iter_batches(ds.subset(idx), batch_size):
            if len(x) > 1:
                out(x)
    for bn in bns:
        bn.momentum = 0.1
    return out.eval()
