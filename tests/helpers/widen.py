"""Widen a network by exact copies of channels without changing its function (for exactness tests).

Channel j of a group is duplicated: every producer's row j (filter, bias, BN parameters and running
statistics) is appended, and every consumer's input weight for j is split between j (a share ``a``)
and the copy (``1 - a``). The widened network computes the same function; FCOS must find the copies
and fuse them back.
"""
import copy

import torch
from torch import nn


def _cat_rows(t, idx):
    return torch.cat([t, t[idx]], 0)


def widen(model, group_name, channels, share=0.3, scale=1.0):
    """``scale``: the copies compute ``scale`` times the original channel (positive; BN's gamma and beta, or
    the filter and bias where there is no BN, are scaled) and their consumers read them divided by it."""
    m = copy.deepcopy(model)
    mods = dict(m.named_modules())
    g = m.structure().group(group_name)
    idx = torch.as_tensor(channels)
    n = g.size
    for p in g.producers:
        conv = mods[p.module]
        conv.weight = nn.Parameter(_cat_rows(conv.weight.data, idx), requires_grad=conv.weight.requires_grad)
        if conv.bias is not None:
            conv.bias = nn.Parameter(_cat_rows(conv.bias.data, idx))
        conv.out_channels += len(channels)
        if not p.bn and scale != 1.0:
            with torch.no_grad():
                conv.weight[n:] *= scale
                if conv.bias is not None:
                    conv.bias[n:] *= scale
        if p.bn:
            bn = mods[p.bn]
            bn.weight = nn.Parameter(_cat_rows(bn.weight.data, idx))
            bn.bias = nn.Parameter(_cat_rows(bn.bias.data, idx))
            with torch.no_grad():
                bn.weight[n:] *= scale
                bn.bias[n:] *= scale
            bn.running_mean = _cat_rows(bn.running_mean, idx)
            bn.running_var = _cat_rows(bn.running_var, idx)
            bn.num_features += len(channels)
    for c in g.consumers:
        mod = mods[c.module]
        w = mod.weight.data
        if isinstance(mod, nn.Linear):
            w = w.reshape(w.shape[0], g.size, c.features_per_channel)
        new = w[:, idx] * (1 - share) / scale
        w = w.clone()
        w[:, idx] *= share
        w = torch.cat([w, new], 1)
        if isinstance(mod, nn.Linear):
            w = w.reshape(w.shape[0], -1)
            mod.in_features = w.shape[1]
        else:
            mod.in_channels = w.shape[1]
        mod.weight = nn.Parameter(w, requires_grad=mod.weight.requires_grad)
    m.arch = m.current_arch()
    return m
