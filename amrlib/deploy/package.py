"""One edge package for a trained network: BatchNorm folded, ONNX FP32 (checked against PyTorch), optionally
INT8 (accuracy-checked against FP32 per SNR and refused above a bound), latency on this machine, and a card.

:func:`edge_package` writes everything into a fresh folder and returns its report; it raises before
returning (leaving nothing the caller would ship) when the ONNX check or the INT8 bound fails.
:func:`edge_card` renders the report as the Markdown a receiver's integrator reads.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from torch import nn

from ..measure import count_macs, count_params, machine, measure_latency
from ..onnx_export import DEFAULT_OPSET, check_onnx, export_onnx, measure_onnx_latency
from .fold import fold_batchnorm
from .int8 import int8_accuracy_check, quantize_int8
from .torchscript import export_torchscript, load_torchscript

FP32_FILE, INT8_FILE, TORCHSCRIPT_FILE = "model.onnx", "model.int8.onnx", "model.torchscript.pt"


def runtime_versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch
    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def edge_package(net: nn.Module, out_dir: str | os.PathLike, *, int8: bool = False, torchscript: bool = False,
                 calibration: np.ndarray | None = None, test: tuple | None = None, max_int8_drop_pt: float = 0.5,
                 batch_sizes: Sequence[int] = (1, 256), repeats: int = 20, threads: int = 1,
                 opset: int = DEFAULT_OPSET, atol: float = 1e-4, check_frames: int = 64) -> dict:
    """Fold, export, check, (quantise, accuracy-check) and time ``net``; files go to ``out_dir``.

    ``test`` is ``(frames [n, 2, L], labels [n], snrs [n] or None)``: labelled frames for the INT8 accuracy
    check (required with ``int8``), ``calibration`` the frames ``[m, 2, L]`` INT8 is calibrated on (a few
    hundred training frames). Latency is the median of ``repeats`` runs per batch size, ``threads`` threads,
    for eager PyTorch (unfolded), ONNX Runtime FP32 and INT8, and with ``torchscript`` the folded, frozen
    TorchScript file (:mod:`amrlib.deploy.torchscript`).
    """
    if int8 and (calibration is None or test is None):
        raise ValueError("INT8 needs calibration frames and labelled test frames")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    length = int(net.arch["frame_length"])
    net = net.eval()
    folded = fold_batchnorm(copy.deepcopy(net))
    fp32 = export_onnx(folded, out / FP32_FILE, opset=opset)
    x = np.random.default_rng(0).standard_normal((check_frames, 2, length)).astype(np.float32)
    # the whole chain is checked: the folded ONNX file against the unfolded PyTorch network
    report = {"files": {"fp32": FP32_FILE}, "opset": opset, "folded_batchnorm": True,
              "input": f"iq [batch, 2, {length}] float32", "output": f"logits [batch, {net.arch['num_classes']}]",
              "macs": count_macs(net), "params": count_params(net),
              "check": check_onnx(net, fp32, x, batch_sizes=(1, 7, check_frames), atol=atol)}
    paths = {"ort-fp32": fp32}
    if int8:
        int8_path = quantize_int8(fp32, out / INT8_FILE, np.asarray(calibration, np.float32))
        frames, labels, snrs = test
        try:
            report["int8"] = int8_accuracy_check(fp32, int8_path, np.asarray(frames, np.float32), labels, snrs,
                                                 max_drop_pt=max_int8_drop_pt)
        except Exception:
            int8_path.unlink(missing_ok=True)        # a refused INT8 file is never left beside the FP32 one
            raise
        report["int8"]["calibration_frames"] = int(len(calibration))
        report["files"]["int8"] = INT8_FILE
        paths["ort-int8"] = int8_path
    scripted = None
    if torchscript:
        report["torchscript_check"] = export_torchscript(net, out / TORCHSCRIPT_FILE, atol=atol)
        report["files"]["torchscript"] = TORCHSCRIPT_FILE
        scripted = load_torchscript(out / TORCHSCRIPT_FILE)
    latency: dict[str, dict[str, float]] = {"eager": {}}
    for b in batch_sizes:
        r = max(3, repeats // (8 if b > 16 else 1))
        latency["eager"][str(b)] = measure_latency(net, batch_size=b, threads=threads, repeats=r)["median_s"]
        if scripted is not None:
            latency.setdefault("torchscript", {})[str(b)] = measure_latency(
                scripted, batch_size=b, frame_length=length, threads=threads, repeats=r)["median_s"]
        for runtime, p in paths.items():
            latency.setdefault(runtime, {})[str(b)] = measure_onnx_latency(p, b, length, r, threads=threads)["median_s"]
    report["latency_s"] = latency
    report["machine"] = {**machine(), "threads": threads, **runtime_versions()}
    report["bytes"] = {k: (out / f).stat().st_size for k, f in report["files"].items()}
    return report


def edge_card(report: dict, title: str) -> str:
    """The deployment card (Markdown): artefacts, numerical check, latency, machine, INT8 accuracy per SNR."""
    m, lat = report["machine"], report["latency_s"]
    lines = [f"# Edge package: {title}", "",
             f"{report['macs']:,} MACs, {report['params']:,} parameters; BatchNorm folded into the convolutions; "
             f"ONNX opset {report['opset']}, input `{report['input']}`, output `{report['output']}`.", "",
             "| file | bytes |", "|---|---|"]
    lines += [f"| {report['files'][k]} | {report['bytes'][k]:,} |" for k in report["files"]]
    c = report["check"]
    lines += ["", f"ONNX Runtime vs PyTorch (unfolded) on {c['frames']} frame evaluations, batch sizes "
                  f"{', '.join(map(str, c['batch_sizes']))}: max |logit difference| {c['max_abs_diff']:.2e} "
                  f"(allowed {c['atol']:g}), same top class on {c['argmax_agreement']:.1%}.", "",
              *([f"TorchScript (folded, frozen) vs PyTorch: max |logit difference| "
                 f"{report['torchscript_check']['max_abs_diff']:.2e}.", ""] if "torchscript_check" in report else []),
              f"## Latency (median, {m['threads']} thread{'s' if m['threads'] > 1 else ''})", "",
              "| runtime | " + " | ".join(f"batch {b} (ms)" for b in lat["eager"]) + " |",
              "|---|" + "---|" * len(lat["eager"])]
    for runtime, by_batch in lat.items():
        lines.append(f"| {runtime} | " + " | ".join(f"{1e3 * v:.3f}" for v in by_batch.values()) + " |")
    lines += ["", f"Machine: {m['cpu']} ({m['cores']} logical cores), {m['os']}; torch {m['torch']}, "
                  f"onnx {m['onnx']}, onnxruntime {m['onnxruntime']}."]
    q = report.get("int8")
    if q:
        lines += ["", "## INT8 (ONNX Runtime static quantisation, QDQ, U8S8 per channel)", "",
                  f"Calibrated on {q['calibration_frames']} training frames; on {q['frames']} test frames FP32 "
                  f"{q['fp32_accuracy']:.2%}, INT8 {q['int8_accuracy']:.2%} ({q['drop_pt']:+.2f} pt drop, bound "
                  f"{q['max_drop_pt']:g} pt), same prediction on {q['agreement']:.1%}.", ""]
        if q["per_snr"]:
            lines += ["| SNR (dB) | FP32 | INT8 |", "|---|---|---|"]
            lines += [f"| {s} | {v['fp32']:.2%} | {v['int8']:.2%} |" for s, v in sorted(q["per_snr"].items())]
    return "\n".join(lines) + "\n"
