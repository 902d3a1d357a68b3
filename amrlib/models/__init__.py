"""Models in the signal layout, each built from a JSON-able architecture spec (``model.arch``).

``build_model(name, num_classes, frame_length)`` builds a fresh network; ``build_from_arch(arch)``
rebuilds any network — pruned ones included — from its spec; ``save_model``/``load_model`` persist
spec + state dict (loaded with ``torch.load(weights_only=True)``: no pickle of code).
Every model has ``structure()`` (see :mod:`amrlib.models.structure`).
"""
from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_torch_save
from ..errors import AmrPruneError
from ..names import MODEL_NAMES  # noqa: F401  (re-exported)
from .cnn1d import CNN1DSignal, cnn1d_arch
from .layers import ChannelMap, Remnant
from .resnet import ResNetSignal, resnet_arch
from .structure import Block, ChannelGroup, Consumer, Producer, Structure
from .vgg import VGGSignal, vgg_arch

_FAMILIES = {"resnet": ResNetSignal, "vgg": VGGSignal, "cnn1d": CNN1DSignal}


class ModelError(AmrPruneError, ValueError):
    """A model name, spec or checkpoint is unusable."""
    show_type = False
    hint = "the checkpoint must be one written by amr-prune (amrlib.models.save_model)"


def model_arch(name: str, num_classes: int, frame_length: int = 128) -> dict:
    name = name.lower()
    if num_classes < 2:
        raise ModelError(f"num_classes must be >= 2, got {num_classes}")
    if name.startswith("resnet") and name[6:].isdigit():
        return resnet_arch(int(name[6:]), num_classes, frame_length)
    if name == "vgg16":
        return vgg_arch(num_classes, frame_length)
    if name == "cnn1d":
        return cnn1d_arch(num_classes, frame_length)
    raise ModelError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")


def build_from_arch(arch: dict) -> nn.Module:
    family = arch.get("family")
    if family not in _FAMILIES:
        raise ModelError(f"unknown model family {family!r} in architecture spec")
    try:
        return _FAMILIES[family](arch)
    except (KeyError, TypeError) as e:
        raise ModelError(f"malformed {family} architecture spec: {e!r}") from e
    except ValueError as e:          # e.g. a frame length too short for the network's pooling
        raise ModelError(f"{arch.get('name', family)} cannot be built for {arch.get('num_classes')} classes "
                         f"and frame length {arch.get('frame_length')}: {e}") from e


def build_model(name: str, num_classes: int, frame_length: int = 128) -> nn.Module:
    return build_from_arch(model_arch(name, num_classes, frame_length))


def check_fits(model: nn.Module, ds, what: str = "dataset") -> None:
    """Raise a :class:`ModelError` when ``ds`` (a SignalDataset) has another frame length or class count
    than ``model`` was built for; the message names the model and the dataset's source file.

    A ResNet would silently run on any frame length (global pooling) and a model with fewer outputs than
    the dataset has classes fails deep inside the loss, so the mismatch is caught here, up front.
    """
    arch = getattr(model, "arch", None)
    if not isinstance(arch, dict):
        return                                   # a plain nn.Module: nothing recorded to compare with
    length, classes = int(arch.get("frame_length", -1)), int(arch.get("num_classes", -1))
    got_length, got_classes = int(ds.frame_length), int(ds.num_classes)
    if (length, classes) != (got_length, got_classes):
        source = getattr(ds, "meta", {}).get("source", "<in memory>")
        raise ModelError(f"{arch.get('name')} was built for {classes} classes and frame length {length}, but "
                         f"the {what} {source} has {got_classes} classes and frame length {got_length}")


def save_model(model: nn.Module, path: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write arch + weights atomically (a temp file renamed into place: an existing file is never half-written)."""
    blob = {"arch": json.dumps(model.arch), "state_dict": model.state_dict(),
            "extra": json.dumps(extra or {})}
    return atomic_torch_save(blob, path)


def load_model(path: str | os.PathLike, expect_arch: dict | None = None) -> nn.Module:
    """Load a model saved by :func:`save_model`; errors name the file and the mismatch."""
    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        arch = json.loads(blob["arch"])
        state = blob["state_dict"]
    except FileNotFoundError:
        raise ModelError(f"{path}: no such checkpoint") from None
    except pickle.UnpicklingError as e:  # torch's weights-only unpickler met a non-tensor object
        found = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", str(e))
        what = f" ({found.group(1)})" if found else ""
        raise ModelError(f"{path}: refusing to load: the file holds a Python object other than tensors and plain "
                         f"containers{what}, so amr-prune did not write it as it is; nothing in it was executed") \
            from None
    except Exception as e:  # truncated zip, not a checkpoint...
        raise ModelError(f"{path}: not an amr-prune model checkpoint ({type(e).__name__}: {e})") from None
    if expect_arch is not None and arch != expect_arch:
        raise ModelError(f"{path}: architecture {arch.get('name')} ({arch.get('num_classes')} classes) does not "
                         f"match the expected {expect_arch.get('name')} ({expect_arch.get('num_classes')} classes)")
    model = build_from_arch(arch)
    load_state(model, state, str(path))
    return model.eval()


def load_state(model: nn.Module, state: dict, where: str) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise ModelError(f"{where}: weights do not fit the architecture (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}, shape mismatches {shapes[:3]})")
    model.load_state_dict(state)
