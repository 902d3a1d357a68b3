"""The training objective: cross-entropy, optional distillation from a teacher, optional L1 sparsity.

    loss = (1 - a) * CE(out, y) + a * T^2 * KL(softmax(t / T) || softmax(out / T)) + l1 * sum(|theta|)

``a`` = ``kd_alpha`` (0 without a teacher), ``T`` = ``kd_temperature``, ``l1`` the sparsity coefficient
over every trainable parameter (the reference recipe's 1e-4: sparse weights make channels cheaper to fuse
and blocks cheaper to drop).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import AmrPruneError


def l1_penalty(params) -> torch.Tensor:
    """sum(|theta|) over ``params`` (float32 accumulation)."""
    return torch.stack([p.abs().sum(dtype=torch.float32) for p in params]).sum()


def training_loss(out: torch.Tensor, y: torch.Tensor, *, params=(), l1: float = 0.0,
                  teacher_out: torch.Tensor | None = None, kd_alpha: float = 0.0,
                  kd_temperature: float = 4.0) -> torch.Tensor:
    out = out.float()
    loss = F.cross_entropy(out, y)
    if teacher_out is not None and kd_alpha > 0:
        temp = kd_temperature
        kd = F.kl_div(F.log_softmax(out / temp, 1), F.softmax(teacher_out.float() / temp, 1),
                      reduction="batchmean") * temp * temp
        loss = (1 - kd_alpha) * loss + kd_alpha * kd
    if l1 > 0:
        loss = loss + l1 * l1_penalty(params)
    return loss


class DivergedError(AmrPruneError, ValueError):
    """Training produced a non-finite loss or non-finite weights: the run is stopped, nothing is kept."""
    hint = (
        'lower the learning rate (--set pretrain.lr=... / finetune.lr=...); nothing of this stage was recorded, '
        'so the next run trains it again'
    )
