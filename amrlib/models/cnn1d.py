"""CNN1D (docs/METHOD.md, "Models"): six residual stacks of 32 channels, bias-free convs, no BN.

Stack = 1x1 conv, two residual units (conv-ReLU-conv + skip, then ReLU), max-pool 2. Stack 1 works
on the [N, 1, 2, L] IQ image with Conv2d kernels (2, 3) ('same' padding) and its 2x2 pool folds I/Q;
stacks 2-6 are Conv1d (kernel 3). Head: Linear(-> 128), ReLU, dropout 0.3, Linear(128 -> C).
100,907 parameters at C=11, L=128.
"""
from __future__ import annotations

import copy

import torch.nn.functional as F
from torch import nn

from .layers import Remnant, SignalInput
from .structure import Block, ChannelGroup, Consumer, Producer, Structure


def cnn1d_arch(num_classes: int, frame_length: int, stacks: int = 6, width: int = 32) -> dict:
    return {"family": "cnn1d", "name": "cnn1d", "num_classes": int(num_classes), "frame_length": int(frame_length),
            "stacks": [{"width": width, "units": [{"mid": width, "removed": False} for _ in range(2)]}
                       for _ in range(stacks)],
            "head": 128, "dropout": 0.3}


class ResidualUnit(nn.Module):
    def __init__(self, width: int, mid: int, two_d: bool):
        super().__init__()
        conv = (lambda a, b: nn.Conv2d(a, b, (2, 3), bias=False)) if two_d else \
               (lambda a, b: nn.Conv1d(a, b, 3, padding=1, bias=False))
        self.two_d = two_d
        self.conv1, self.conv2 = conv(width, mid), conv(mid, width)

    def pad(self, x):
        # 'same' padding for the (2, 3) kernel: one column each side, one row below
        return F.pad(x, (1, 1, 0, 1)) if self.two_d else x

    def forward(self, x):
        return F.relu(self.conv2(self.pad(F.relu(self.conv1(self.pad(x))))) + x)


class Stack(nn.Module):
    def __init__(self, cin: int, spec: dict, first: bool):
        super().__init__()
        self.first = first
        w = spec["width"]
        self.conv = nn.Conv2d(cin, w, 1, bias=False) if first else nn.Conv1d(cin, w, 1, bias=False)
        self.units = nn.Sequential(*[Remnant() if u.get("removed") else ResidualUnit(w, u["mid"], first)
                                     for u in spec["units"]])
        self.pool = nn.MaxPool2d(2) if first else nn.MaxPool1d(2)

    def forward(self, x):
        x = self.pool(self.units(self.conv(x)))
        return x.squeeze(2) if self.first else x


class CNN1DSignal(nn.Module):
    def __init__(self, arch: dict):
        super().__init__()
        self.arch = copy.deepcopy(arch)
        self.input = SignalInput()
        stacks, cin, length = [], 1, arch["frame_length"]
        for i, spec in enumerate(arch["stacks"]):
            stacks.append(Stack(cin, spec, first=i == 0))
            cin, length = spec["width"], length // 2
        if length < 1:
            raise ValueError(f"frame length {arch['frame_length']} is too short for {len(stacks)} pooling stacks")
        self.stacks = nn.Sequential(*stacks)
        self.flat_per_channel = length
        self.fc1 = nn.Linear(cin * length, arch["head"])
        self.drop = nn.Dropout(arch.get("dropout", 0.3))
        self.fc2 = nn.Linear(arch["head"], arch["num_classes"])

    def forward(self, x):
        x = self.stacks(self.input(x)).flatten(1)
        return self.fc2(self.drop(F.relu(self.fc1(x))))

    def current_arch(self) -> dict:
        arch = copy.deepcopy(self.arch)
        for spec, stack in zip(arch["stacks"], self.stacks):
            spec["width"] = stack.conv.out_channels
            for u, unit in zip(spec["units"], stack.units):
                if isinstance(unit, ResidualUnit):
                    u.update(mid=unit.conv1.out_channels, removed=False)
                else:
                    u.update(removed=True)
        arch["head"] = self.fc1.out_features
        return arch

    def structure(self) -> Structure:
        groups, blocks, prev = [], [], None
        for si, stack in enumerate(self.stacks):
            q = f"stacks.{si}"
            if prev is not None:
                prev.consumers.append(Consumer(f"{q}.conv"))
            blocks.append(Block(f"{q}.conv", "stem" if si == 0 else "plain", removable=False,
                                reason="stack entry conv ends a stream"))
            producers, consumers = [Producer(f"{q}.conv")], []
            for ui, unit in enumerate(stack.units):
                u = f"{q}.units.{ui}"
                if isinstance(unit, ResidualUnit):
                    blocks.append(Block(u, "residual", removable=True))
                    groups.append(ChannelGroup(f"{u}.conv1", "internal", unit.conv1.out_channels,
                                               [Producer(f"{u}.conv1")], [Consumer(f"{u}.conv2")]))
                    producers.append(Producer(f"{u}.conv2"))
                    consumers.append(Consumer(f"{u}.conv1"))
                else:
                    blocks.append(Block(u, "residual", removable=False, reason="already removed"))
            prev = ChannelGroup(f"stream:{q}", "stream", stack.conv.out_channels, producers, consumers)
            groups.append(prev)
        prev.consumers.append(Consumer("fc1", features_per_channel=self.flat_per_channel))
        return Structure(groups=groups, blocks=blocks)
