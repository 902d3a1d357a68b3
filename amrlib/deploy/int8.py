"""INT8 post-training static quantisation of an exported ONNX model, and the accuracy check that gates it.

Quantiser: ONNX Runtime's (``onnxruntime.quantization.quantize_static``), not torch.ao. The artefact a
receiver runs is the ONNX file, so quantising that file keeps one runtime for FP32 and INT8, one graph
and one numerical check; torch.ao's eager flow would need per-family fusion code and a second export of
an already-quantised graph. Format: QDQ (QuantizeLinear/DequantizeLinear pairs that ONNX Runtime fuses
into integer kernels), activations uint8 and weights int8 per output channel (the U8S8 pairing ORT's
x86 kernels are built for), MinMax calibration on a few hundred training frames. The graph is first
pre-processed (shape inference and ORT's graph optimisations), as ORT's documentation recommends.

:func:`int8_accuracy_check` measures the FP32 and INT8 files on the same labelled frames (overall and per
SNR) and raises :class:`Int8AccuracyError` when INT8 loses more than the allowed points.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..onnx_export import OnnxExportError, onnx_session


class Int8AccuracyError(OnnxExportError):
    """The INT8 model loses more accuracy against FP32 than allowed."""


class _Frames:
    """ONNX Runtime calibration reader: the calibration frames in batches."""

    def __init__(self, name: str, frames: np.ndarray, batch: int):
        self._batches = iter([{name: frames[i:i + batch]} for i in range(0, len(frames), batch)])

    def get_next(self):
        return next(self._batches, None)


def quantize_int8(fp32_path: str | os.PathLike, out_path: str | os.PathLike, calibration: np.ndarray, *,
                  batch: int = 32, per_channel: bool = True) -> Path:
    """Write the INT8 (QDQ) version of ``fp32_path`` to ``out_path`` (atomically), calibrated on
    ``calibration`` frames ``[n, 2, L]`` float32."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static
    frames = np.ascontiguousarray(calibration, dtype=np.float32)
    if frames.ndim != 3 or frames.shape[1] != 2 or len(frames) == 0:
        raise ValueError(f"calibration frames must be [n > 0, 2, L], got {frames.shape}")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        name = onnx_session(pre).get_inputs()[0].name
        q = Path(tmp) / "int8.onnx"
        quantize_static(str(pre), str(q), _Frames(name, frames, batch), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=per_channel,
                        calibrate_method=CalibrationMethod.MinMax)
        os.replace(q, out)
    return out


def onnx_accuracy(path: str | os.PathLike, frames: np.ndarray, labels: np.ndarray, snrs: np.ndarray | None = None,
                  *, batch: int = 256) -> dict:
    """Top-1 accuracy of an ONNX model on labelled frames, overall and per SNR (batched: memory flat)."""
    session = onnx_session(path)
    name = session.get_inputs()[0].name
    pred = np.concatenate([session.run(None, {name: np.ascontiguousarray(frames[i:i + batch], np.float32)})[0]
                           .argmax(1) for i in range(0, len(frames), batch)])
    hit = pred == np.asarray(labels)
    out = {"accuracy": float(hit.mean()), "frames": int(len(hit)), "predictions": pred}
    if snrs is not None:
        snrs = np.asarray(snrs)
        out["per_snr"] = {int(s): float(hit[snrs == s].mean()) for s in np.unique(snrs)}
    return out


def int8_accuracy_check(fp32_path, int8_path, frames, labels, snrs=None, *, max_drop_pt: float = 0.5) -> dict:
    """FP32 vs INT8 accuracy on the same frames; raises :class:`Int8AccuracyError` when INT8 is more than
    ``max_drop_pt`` points below FP32. Returns both accuracies, per SNR, the drop and the prediction agreement."""
    if not max_drop_pt >= 0:
        raise ValueError(f"max_drop_pt must be >= 0, got {max_drop_pt}")
    fp32 = onnx_accuracy(fp32_path, frames, labels, snrs)
    int8 = onnx_accuracy(int8_path, frames, labels, snrs)
    drop = (fp32["accuracy"] - int8["accuracy"]) * 100
    report = {"fp32_accuracy": fp32["accuracy"], "int8_accuracy": int8["accuracy"], "drop_pt": drop,
              "max_drop_pt": max_drop_pt, "frames": fp32["frames"],
              "agreement": float((fp32["predictions"] == int8["predictions"]).mean()),
              "per_snr": {s: {"fp32": fp32["per_snr"][s], "int8": int8["per_snr"][s]} for s in fp32.get("per_snr", {})},
              "ok": drop <= max_drop_pt}
    if not report["ok"]:
        raise Int8AccuracyError(f"{int8_path}: INT8 accuracy {int8['accuracy']:.2%} is {drop:.2f} pt below FP32 "
                                f"{fp32['accuracy']:.2%} on {fp32['frames']} frames (allowed {max_drop_pt:g} pt)")
    return report
