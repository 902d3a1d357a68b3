"""Model cost: parameters, MACs and CPU latency — one counter used everywhere in amr-prune.

Conventions:
* **Parameters**: trainable parameters (``requires_grad``). The fixed shortcut maps
  (:class:`~amrlib.models.layers.ChannelMap`) are frozen and not counted, like the reference's
  parameter-free option-A shortcut; with that, ResNet56 (11 classes, L=128) has 852,795.
* **MACs**: multiply-accumulates of convolutions and linear layers (the shortcut maps included) for
  one frame; BN, ReLU, adds and pooling are not counted. Counted with forward hooks (fast enough to
  sit inside a bisection); ``tests/unit/test_measure.py`` checks it equals PyTorch's
  ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2) on every model family, pruned ones too.
  ResNet56: 41,718,464 = the reference's 41.62 M plus 98,304 for the two shortcut maps (0.24%).
"""
from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def _layer_macs(module: nn.Module, out: torch.Tensor) -> int:
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    # Conv1d/Conv2d: every output element needs (C_in / groups) * kernel taps
    return out.numel() * (module.in_channels // module.groups) * int(torch.tensor(module.kernel_size).prod())


def macs_by_module(model: nn.Module, frame_length: int | None = None) -> dict[str, int]:
    """{conv/linear module name: MACs} of one forward pass on one frame (default length: the model's)."""
    length = frame_length or model.arch["frame_length"]
    per: dict[str, int] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=name: per.__setitem__(
                 name, per.get(name, 0) + _layer_macs(mod, out)))
             for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 2, length))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return per


def count_macs(model: nn.Module, frame_length: int | None = None) -> int:
    """MACs of one forward pass on one frame of ``frame_length`` samples (default: the model's)."""
    return int(sum(macs_by_module(model, frame_length).values()))


def count_macs_reference(model: nn.Module, frame_length: int | None = None) -> int:
    """The same count through PyTorch's FlopCounterMode (slow; used to check :func:`count_macs`)."""
    length = frame_length or model.arch["frame_length"]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 2, length))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops() // 2)


def measure_latency(model: nn.Module, batch_size: int = 1, frame_length: int | None = None,
                    repeats: int = 20, warmup: int = 3, threads: int = 1) -> dict:
    """Median wall time of a forward pass on the CPU at a fixed thread count (seconds, and frames/s)."""
    length = frame_length or model.arch["frame_length"]
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    was_training = model.training
    model.eval()
    try:
        x = torch.randn(batch_size, 2, length)
        times = []
        with torch.inference_mode():
            for i in range(warmup + repeats):
                t0 = time.perf_counter()
                model(x)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old_threads)
        model.train(was_training)
    med = statistics.median(times)
    return {"batch_size": batch_size, "threads": threads, "repeats": repeats,
            "median_s": med, "frames_per_s": batch_size / med}


def cost(model: nn.Module) -> dict:
    return {"params": count_params(model), "macs": count_macs(model)}


def machine() -> dict:
    """The measuring machine, for latency figures: CPU model, logical cores, OS, PyTorch version."""
    import os
    import platform
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu or platform.machine(), "cores": os.cpu_count(), "os": platform.platform(terse=True),
            "python": platform.python_version(), "torch": torch.__version__}
