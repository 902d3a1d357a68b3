"""Small building blocks shared by the model families."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelMap(nn.Conv2d):
    """A fixed linear map between the channels of two residual streams (the downsampling shortcut).

    It starts as the CIFAR option-A shortcut — stride, then zero-pad channels (``C_in`` lands in the
    middle of ``C_out``) — written as a frozen 1x1 convolution so that channel pruning can fuse its rows
    (the outgoing stream) and sum its columns (the incoming stream) like any other layer. Its weight is
    not trained (``requires_grad=False``) and is not counted as a model parameter
    (:func:`amrlib.measure.count_params`); its MACs are counted (about 0.2% of ResNet56).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int | tuple = 2, embed: bool = True):
        super().__init__(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)
        self.weight.requires_grad_(False)
        with torch.no_grad():
            self.weight.zero_()
            if embed:
                pad = (out_channels - in_channels) // 2
                for c in range(min(in_channels, out_channels)):
                    self.weight[pad + c, c, 0, 0] = 1.0


class ChannelMap1d(nn.Conv1d):
    """1-D twin of :class:`ChannelMap` (kept for families built on Conv1d)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2):
        super().__init__(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)
        self.weight.requires_grad_(False)


class Remnant(nn.Module):
    """What a removed residual block leaves: its shortcut path (or identity) and its output activation."""

    def __init__(self, shortcut: nn.Module | None = None, act: bool = True):
        super().__init__()
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.act = nn.ReLU(inplace=False) if act else nn.Identity()

    def forward(self, x):
        return self.act(self.shortcut(x))


class SignalInput(nn.Module):
    """View IQ frames [N, 2, L] as one-channel images [N, 1, 2, L] (the signal layout of the reference)."""

    def forward(self, x):
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return x


def conv_bn(cin: int, cout: int, kernel=3, stride=1, padding=1) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False), nn.BatchNorm2d(cout)


def relu(x):
    return F.relu(x)
