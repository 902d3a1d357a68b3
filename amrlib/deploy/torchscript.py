"""TorchScript export for PyTorch users: BatchNorm folded, traced with a dynamic batch, frozen (weights
inlined as constants, so the JIT can fold and fuse), and checked against the unfolded model.

Frozen, not ``optimize_for_inference``: on torch 2.13 the latter bakes MKL-DNN layouts into the graph and
the saved archive no longer loads (``required keyword attribute 'value' is undefined``). A TorchScript
archive holds code: load only files you produced or trust (this module loads only the one it just wrote).
"""
from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..onnx_export import OnnxExportError
from .fold import fold_batchnorm


class TorchScriptExportError(OnnxExportError):
    """The TorchScript export failed, or its logits differ from the PyTorch model's."""


def export_torchscript(model: nn.Module, path: str | os.PathLike, *, atol: float = 1e-4,
                       batch_sizes: Sequence[int] = (1, 7, 64), seed: int = 0) -> dict:
    """Write the folded, traced and frozen ``model`` to ``path`` (atomically, only when its logits match the
    unfolded model's within ``atol`` at every batch size); returns the check."""
    path = Path(path)
    length = int(model.arch["frame_length"])
    was_training = model.training
    model.eval()
    folded = fold_batchnorm(copy.deepcopy(model))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")                     # the tracer's and TorchScript's deprecation notes
            traced = torch.jit.freeze(torch.jit.trace(folded, torch.zeros(2, 2, length)))
            torch.jit.save(traced, tmp)
            loaded = torch.jit.load(tmp)                        # the archive just written by this process
            frames = torch.from_numpy(np.random.default_rng(seed).standard_normal(
                (max(batch_sizes), 2, length)).astype(np.float32))
            worst = max(float((loaded(frames[:b]) - model(frames[:b])).abs().max()) for b in batch_sizes)
        if not worst <= atol:
            raise TorchScriptExportError(f"{path}: TorchScript logits differ from PyTorch's by up to {worst:.3g} "
                                         f"(allowed {atol:g})")
        os.replace(tmp, path)
    except TorchScriptExportError:
        raise
    except Exception as exc:
        raise TorchScriptExportError(f"TorchScript export of {model.arch.get('name')} to {path} failed: "
                                     f"{type(exc).__name__}: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        model.train(was_training)
    return {"max_abs_diff": worst, "batch_sizes": list(batch_sizes), "atol": atol, "ok": True}


def load_torchscript(path: str | os.PathLike) -> torch.jit.ScriptModule:
    """Load a TorchScript file produced by :func:`export_torchscript` (code runs: trusted files only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)       # torch 2.13 marks TorchScript deprecated
        return torch.jit.load(str(path)).eval()
