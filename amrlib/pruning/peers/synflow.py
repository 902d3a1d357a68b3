"""SynFlow saliency per unit (Tanaka et al. 2020; the zero-cost proxy the layer peer uses).

On a double-precision copy of the model in eval mode, every floating tensor of the state (parameters
and BatchNorm buffers, as the reference's ``linearize``) is replaced by its absolute value; an
all-ones input is propagated and ``R = sum(output)`` back-propagated. The score of a unit is
``sum |theta * dR/dtheta|`` over the trainable parameters inside it (frozen shortcut maps have no
gradient and count for nothing). Data-free; the input model is not modified.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def synflow_scores(model: nn.Module, unit_names: list[str],
                   input_shape: tuple[int, ...] | None = None) -> dict[str, float]:
    """{unit: SynFlow score}; ``input_shape`` defaults to one frame ``(1, 2, frame_length)``."""
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    shape = input_shape or (1, 2, model.arch["frame_length"])
    net.zero_grad(set_to_none=True)
    net(torch.ones(shape, dtype=torch.float64)).sum().backward()
    modules = dict(net.named_modules())
    scores = {}
    for name in unit_names:
        total = 0.0
        for p in modules[name].parameters():
            if p.grad is not None:
                total += float((p.detach() * p.grad).abs().sum())
        scores[name] = total
    return scores
