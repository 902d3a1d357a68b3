"""VGG16, signal variant (docs/METHOD.md, "Models"), described by an explicit width spec.

Five conv blocks [64,64] [128,128] [256x3] [512x3]... as in the reference: blocks 1-2 use 3x3 convs
with padding 3 (the signal variant grows the 2-row IQ image), blocks 3-4 padding 1; each conv is
followed by BN + ReLU and each block by MaxPool2d(2). Head: Linear(-> 256)+BN+ReLU,
Linear(256 -> 128)+BN+ReLU, Linear(128 -> C). 8,851,787 parameters and ~918 M MACs at C=11, L=128.
"""
from __future__ import annotations

import copy

import torch.nn.functional as F
from torch import nn

from .layers import SignalInput
from .structure import Block, ChannelGroup, Consumer, Producer, Structure

VGG16_BLOCKS = [(3, [64, 64]), (3, [128, 128]), (1, [256, 256, 256]), (1, [512, 512, 512])]


def vgg_arch(num_classes: int, frame_length: int) -> dict:
    return {"family": "vgg", "name": "vgg16", "num_classes": int(num_classes), "frame_length": int(frame_length),
            "blocks": [{"padding": p, "layers": [{"width": w, "removed": False} for w in ws]}
                       for p, ws in VGG16_BLOCKS],
            "head": [256, 128]}


class ConvBNReLU(nn.Module):
    def __init__(self, cin, cout, padding):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class VGGSignal(nn.Module):
    HEAD_BN = (("fc1", "bnf1"), ("fc2", "bnf2"))      # Linear + BatchNorm1d pairs of the head (for folding)

    def __init__(self, arch: dict):
        super().__init__()
        self.arch = copy.deepcopy(arch)
        self.input = SignalInput()
        h, w, cin = 2, arch["frame_length"], 1
        blocks = []
        for b in arch["blocks"]:
            layers = []
            for layer in b["layers"]:
                if layer.get("removed"):
                    layers.append(nn.Identity())
                    continue
                layers.append(ConvBNReLU(cin, layer["width"], b["padding"]))
                cin, h, w = layer["width"], h + 2 * b["padding"] - 2, w + 2 * b["padding"] - 2
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
            blocks.append(nn.Sequential(*layers))
        if h < 1 or w < 1:
            raise ValueError(f"frame length {arch['frame_length']} is too short for VGG16")
        self.features = nn.Sequential(*blocks)
        self.flat_per_channel = h * w
        h1, h2 = arch["head"]
        self.fc1, self.bnf1 = nn.Linear(cin * h * w, h1), nn.BatchNorm1d(h1)
        self.fc2, self.bnf2 = nn.Linear(h1, h2), nn.BatchNorm1d(h2)
        self.fc3 = nn.Linear(h2, arch["num_classes"])

    def forward(self, x):
        x = self.features(self.input(x)).flatten(1)
        x = F.relu(self.bnf1(self.fc1(x)))
        x = F.relu(self.bnf2(self.fc2(x)))
        return self.fc3(x)

    def current_arch(self) -> dict:
        arch = copy.deepcopy(self.arch)
        for b, blk in zip(arch["blocks"], self.features):
            for layer, m in zip(b["layers"], blk):
                if isinstance(m, ConvBNReLU):
                    layer.update(width=m.conv.out_channels, removed=False)
                else:
                    layer.update(removed=True)
        arch["head"] = [self.fc1.out_features, self.fc2.out_features]
        return arch

    def structure(self) -> Structure:
        groups, blocks, prev = [], [], None
        convs = [(f"features.{bi}.{li}", m) for bi, blk in enumerate(self.features)
                 for li, m in enumerate(blk) if isinstance(m, (ConvBNReLU, nn.Identity))]
        for name, m in convs:
            if isinstance(m, nn.Identity):
                blocks.append(Block(name, "plain", removable=False, reason="already removed"))
                continue
            if prev is not None:
                prev.consumers.append(Consumer(f"{name}.conv"))
            shape_ok = m.conv.in_channels == m.conv.out_channels and m.conv.padding == (1, 1)
            blocks.append(Block(name, "plain" if blocks else "stem", removable=shape_ok and bool(blocks),
                                reason="" if shape_ok else "changes the tensor shape"))
            prev = ChannelGroup(f"{name}.conv", "plain", m.conv.out_channels,
                                [Producer(f"{name}.conv", f"{name}.bn")], [])
            groups.append(prev)
        prev.consumers.append(Consumer("fc1", features_per_channel=self.flat_per_channel))
        return Structure(groups=groups, blocks=blocks)
