"""ONNX export of an amr-prune model (pruned ones included), checked with ONNX Runtime.

:func:`export_onnx` writes the model with a dynamic batch dimension (input ``iq`` float32
``[batch, 2, L]``, output ``logits`` ``[batch, num_classes]``); :func:`check_onnx` runs the file in
ONNX Runtime and compares its logits with PyTorch's on the same frames.

Exporter: PyTorch's TorchScript-based exporter (``dynamo=False``). torch 2.13's default
torch.export-based exporter needs the extra packages ``onnxscript`` and ``onnx-ir``; measured on a
pruned ResNet20 it gave the same logits (max |diff| 7e-9) but took 7.2 s against 0.4 s. The models
here are plain convolution/BN/ReLU/linear graphs without control flow, which the TorchScript
exporter handles exactly. Should a later torch drop it, pass ``dynamo=True`` with onnxscript installed.
"""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .errors import AmrPruneError

DEFAULT_OPSET = 17
INPUT, OUTPUT = "iq", "logits"


class OnnxExportError(AmrPruneError, RuntimeError):
    """The model could not be exported, or ONNX Runtime disagrees with PyTorch."""
    hint = "run with --debug for the exporter's traceback"
    show_type = False


def export_onnx(model: nn.Module, path: str | os.PathLike, *, opset: int = DEFAULT_OPSET,
                frame_length: int | None = None, dynamo: bool = False) -> Path:
    """Write ``model`` as ONNX to ``path`` (atomically: an existing file is replaced only when the
    export succeeded). The batch dimension is dynamic; the frame length is the model's."""
    path = Path(path)
    length = int(frame_length or model.arch["frame_length"])
    was_training = model.training
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        example = torch.zeros(2, 2, length)
        with warnings.catch_warnings():          # the TorchScript exporter announces its deprecation
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Constant folding")   # strided slices: harmless
            if dynamo:
                batch = torch.export.Dim("batch")
                torch.onnx.export(model, (example,), tmp, input_names=[INPUT], output_names=[OUTPUT],
                                  dynamic_shapes=({0: batch},), dynamo=True)
            else:
                torch.onnx.export(model, (example,), tmp, input_names=[INPUT], output_names=[OUTPUT],
                                  dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                                  opset_version=opset, dynamo=False)
        import onnx
        onnx.checker.check_model(tmp, full_check=True)
        os.replace(tmp, path)
    except Exception as exc:
        raise OnnxExportError(f"ONNX export of {model.arch.get('name', type(model).__name__)} to {path} "
                              f"failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        model.train(was_training)
    return path


def onnx_session(path: str | os.PathLike, threads: int = 1, *, profile_prefix: str | None = None):
    """An ONNX Runtime CPU session at the highest graph-optimisation level (constant folding, Conv+BN and
    Conv+activation fusion, layout transforms), ``threads`` intra-op threads; with ``profile_prefix``, ORT's
    profiler writes a per-operator trace (see amrlib.deploy.profile)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def check_onnx(model: nn.Module, path: str | os.PathLike, frames: np.ndarray | None = None, *,
               batch_sizes: Sequence[int] = (1, 7), atol: float = 1e-4, seed: int = 0) -> dict:
    """Run the ONNX file in ONNX Runtime and compare its logits with ``model``'s (PyTorch).

    ``frames`` ``[n, 2, L]`` (default: seeded Gaussian IQ frames) are fed in batches of each size in
    ``batch_sizes`` (so the dynamic batch dimension is exercised). Returns ``{"max_abs_diff",
    "max_rel_diff", "frames", "batch_sizes", "argmax_agreement", "ok"}``; raises
    :class:`OnnxExportError` when the largest absolute difference exceeds ``atol``.
    """
    length = int(model.arch["frame_length"])
    if frames is None:
        rng = np.random.default_rng(seed)
        frames = rng.standard_normal((max(batch_sizes) * 2, 2, length)).astype(np.float32)
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    if frames.ndim != 3 or frames.shape[1:] != (2, length):
        raise ValueError(f"frames must be [n, 2, {length}], got {frames.shape}")
    session = onnx_session(path)
    name = session.get_inputs()[0].name
    was_training = model.training
    model.eval()
    worst, worst_rel, agree, seen = 0.0, 0.0, 0, 0
    try:
        for b in batch_sizes:
            for start in range(0, len(frames), b):
                x = frames[start:start + b]
                got = session.run(None, {name: x})[0]
                with torch.no_grad():
                    ref = model(torch.from_numpy(x)).numpy()
                if got.shape != ref.shape:
                    raise OnnxExportError(f"{path}: ONNX Runtime output shape {got.shape} != PyTorch {ref.shape}")
                diff = np.abs(got - ref)
                worst = max(worst, float(diff.max()))
                worst_rel = max(worst_rel, float((diff / np.maximum(np.abs(ref), 1e-6)).max()))
                agree += int((got.argmax(1) == ref.argmax(1)).sum())
                seen += len(x)
    finally:
        model.train(was_training)
    report = {"max_abs_diff": worst, "max_rel_diff": worst_rel, "frames": seen,
              "batch_sizes": list(batch_sizes), "argmax_agreement": agree / max(seen, 1), "atol": atol,
              "ok": worst <= atol}
    if not report["ok"]:
        raise OnnxExportError(f"{path}: ONNX Runtime logits differ from PyTorch's by up to {worst:.3g} "
                              f"(allowed {atol:g})")
    return report


def measure_onnx_latency(path: str | os.PathLike, batch_size: int = 1, frame_length: int = 128,
                         repeats: int = 20, warmup: int = 3, threads: int = 1) -> dict:
    """Median wall time of one ONNX Runtime inference on the CPU (the same protocol as
    :func:`amrlib.measure.measure_latency`: random frames, ``warmup`` untimed runs, ``threads`` threads)."""
    import statistics
    import time
    session = onnx_session(path, threads=threads)
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((batch_size, 2, frame_length)).astype(np.float32)
    times = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        session.run(None, {name: x})
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"batch_size": batch_size, "threads": threads, "repeats": repeats, "median_s": med,
            "frames_per_s": batch_size / med}
