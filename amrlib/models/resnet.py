"""ResNet-CIFAR in the signal layout (ResNet20/56/110), described by an explicit width spec.

Input [N, 2, L] is viewed as [N, 1, 2, L]; stem conv 3x3 (1 -> w1) + BN + ReLU; three stages of
BasicBlocks (3x3 conv-BN-ReLU-conv-BN + shortcut, then ReLU), stride 2 at stages 2 and 3; global
average pooling; Linear(w3 -> C). The downsampling shortcut is a fixed :class:`ChannelMap`
(option A: stride + zero-pad), parameter-free like the reference's.

The architecture is a JSON-able dict (``model.arch``) so that a pruned network — narrower streams,
narrower blocks, removed blocks — is rebuilt from its spec::

    {"family": "resnet", "name": "resnet56", "num_classes": 11, "frame_length": 128,
     "stages": [{"width": 16, "stride": 1, "blocks": [{"mid": 16, "removed": false}, ...]}, ...]}
"""
from __future__ import annotations

import copy

import torch.nn.functional as F
from torch import nn

from .layers import ChannelMap, Remnant, SignalInput
from .structure import Block, ChannelGroup, Consumer, Producer, Structure


class BasicBlock(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int, stride: int):
        super().__init__()
        s = (stride, stride)
        self.conv1 = nn.Conv2d(cin, mid, 3, stride=s, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = ChannelMap(cin, cout, stride=s) if (stride != 1 or cin != cout) else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + sc)


def resnet_arch(depth: int, num_classes: int, frame_length: int, widths=(16, 32, 64)) -> dict:
    if (depth - 2) % 6:
        raise ValueError(f"ResNet-CIFAR depth must be 6n+2, got {depth}")
    n = (depth - 2) // 6
    stages = [{"width": w, "stride": 1 if i == 0 else 2,
               "blocks": [{"mid": w, "removed": False} for _ in range(n)]} for i, w in enumerate(widths)]
    return {"family": "resnet", "name": f"resnet{depth}", "num_classes": int(num_classes),
            "frame_length": int(frame_length), "stages": stages}


class ResNetSignal(nn.Module):
    def __init__(self, arch: dict):
        super().__init__()
        self.arch = copy.deepcopy(arch)
        self.input = SignalInput()
        stages = arch["stages"]
        w0 = stages[0]["width"]
        self.conv1 = nn.Conv2d(1, w0, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w0)
        cin = w0
        for si, st in enumerate(stages):
            blocks = []
            for bi, b in enumerate(st["blocks"]):
                stride = st["stride"] if bi == 0 else 1
                if b.get("removed"):
                    sc = ChannelMap(cin, st["width"], stride=(stride, stride)) \
                        if (stride != 1 or cin != st["width"]) else None
                    blocks.append(Remnant(sc))
                else:
                    blocks.append(BasicBlock(cin, b["mid"], st["width"], stride))
                cin = st["width"]
            setattr(self, f"layer{si + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, arch["num_classes"])

    @property
    def stage_names(self) -> list[str]:
        return [f"layer{i + 1}" for i in range(len(self.arch["stages"]))]

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(self.input(x))))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)

    def current_arch(self) -> dict:
        """The spec of the network as it is now (after in-place surgery such as Torch-Pruning's)."""
        arch = copy.deepcopy(self.arch)
        width = self.bn1.num_features
        for st, name in zip(arch["stages"], self.stage_names):
            for b, blk in zip(st["blocks"], getattr(self, name)):
                if isinstance(blk, BasicBlock):
                    b.update(mid=blk.conv1.out_channels, removed=False)
                    width = blk.conv2.out_channels
                else:
                    b.update(removed=True)
                    if isinstance(blk.shortcut, ChannelMap):
                        width = blk.shortcut.out_channels
            st["width"] = width
        return arch

    def structure(self) -> Structure:
        groups: list[ChannelGroup] = []
        blocks = [Block("conv1", "stem", removable=False, reason="stem")]
        producers, consumers = [Producer("conv1", "bn1")], []
        width, stream = self.bn1.num_features, self.stage_names[0]
        for name in self.stage_names:
            for bi, blk in enumerate(getattr(self, name)):
                q = f"{name}.{bi}"
                sc = blk.shortcut
                basic = isinstance(blk, BasicBlock)
                kind = "downsample" if isinstance(sc, ChannelMap) else "residual"
                blocks.append(Block(q, kind, removable=basic, reason="" if basic else "already removed"))
                entry = [Consumer(f"{q}.conv1")] if basic else []
                if isinstance(sc, ChannelMap):       # stream boundary: close the incoming stream
                    groups.append(ChannelGroup(f"stream:{stream}", "stream", width, producers,
                                               consumers + entry + [Consumer(f"{q}.shortcut")]))
                    producers, consumers = [Producer(f"{q}.shortcut")], []
                    width, stream = sc.out_channels, name
                else:
                    consumers += entry
                if basic:
                    groups.append(ChannelGroup(f"{q}.conv1", "internal", blk.conv1.out_channels,
                                               [Producer(f"{q}.conv1", f"{q}.bn1")], [Consumer(f"{q}.conv2")]))
                    producers.append(Producer(f"{q}.conv2", f"{q}.bn2"))
        groups.append(ChannelGroup(f"stream:{stream}", "stream", width, producers, consumers + [Consumer("fc")]))
        return Structure(groups=groups, blocks=blocks)

def build_resnet(depth: int, num_classes: int, frame_length: int) -> ResNetSignal:
    return ResNetSignal(resnet_arch(depth, num_classes, frame_length))
