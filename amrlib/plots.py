"""Pictures a radio/ML engineer looks at (PNG, matplotlib Agg; no display needed).

Each function writes one PNG and returns its path: accuracy vs SNR for several models on one chart,
a row-normalised confusion matrix, per-layer channel widths before/after the channel stage, probe
accuracy per block with removed blocks marked, and the methods' accuracy-vs-MACs Pareto chart.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)
    return path


def accuracy_vs_snr(curves: Mapping[str, Mapping], path, title: str = "Accuracy vs SNR") -> Path:
    """``curves``: {label: {snr: accuracy}} (keys may be int or str), e.g. parent and pruned model."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, per_snr in curves.items():
        snrs = sorted(int(s) for s in per_snr)
        acc = [per_snr.get(s, per_snr.get(str(s))) for s in snrs]
        ax.plot(snrs, acc, marker="o", markersize=3, label=label)
    ax.set(xlabel="SNR (dB)", ylabel="accuracy", ylim=(0, 1), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def confusion_matrix(confusion: Sequence[Sequence[int]], classes: Sequence[str], path,
                     title: str = "Confusion (row-normalised)") -> Path:
    plt = _plt()
    conf = np.asarray(confusion, dtype=float)
    norm = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if norm[i, j] >= 0.05:
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.6 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax)
    return _save(fig, path)


def channel_widths(before: Mapping[str, int], after: Mapping[str, int], path,
                   title: str = "Channels per group before / after the channel stage") -> Path:
    """``before``/``after``: {group name: channels} (e.g. from ``model.structure().groups``). Horizontal bars,
    one row per group, so that every group's name is a readable 9-point label (about 12 px at the saved 100 dpi)
    however many groups there are (the figure grows in height instead of shrinking the labels)."""
    plt = _plt()
    names = list(before)
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, max(3.0, 0.24 * len(names) + 1.2)))
    ax.barh(y, [before[n] for n in names], color="#c8d7ea", label="before")
    ax.barh(y, [after.get(n, before[n]) for n in names], height=0.5, color="#1f77b4", label="after")
    ax.set_yticks(y, names, fontsize=9)
    ax.invert_yaxis()                                   # the network's first group on top
    ax.set(xlabel="channels", title=title)
    ax.legend(fontsize=9, loc="lower right")
    return _save(fig, path)


def group_widths(model) -> dict[str, int]:
    return {g.name: g.size for g in model.structure().groups}


def probe_curve(diagnoses: Mapping[str, Sequence[Mapping]], path,
                title: str = "Linear-probe accuracy per block (x = removed)") -> Path:
    """``diagnoses``: {label: [{"block", "probe_accuracy", "removed"?}, ...]} in forward order."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4))
    for label, blocks in diagnoses.items():
        acc = [b["probe_accuracy"] for b in blocks]
        line, = ax.plot(range(len(acc)), acc, marker=".", label=label)
        rem = [i for i, b in enumerate(blocks) if b.get("removed")]
        ax.plot(rem, [acc[i] for i in rem], "x", color=line.get_color(), markersize=9)
    ax.set(xlabel="unit (stem, then blocks in forward order)", ylabel="probe accuracy (val)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _plain_log_ticks(axis) -> None:
    """Label a log axis at 1-2-5 steps in plain numbers; matplotlib's default also labels the minor
    ticks in powers of ten when the range is short, and those labels overlap."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def robust_limits(values: Sequence[float], k: float = 3.0, pad: float = 0.05) -> tuple[float, float] | None:
    """y limits that a single far outlier does not set: from the lower fence ``Q1 - k * IQR`` (IQR at least
    0.02) to the largest value, padded; None with fewer than 4 finite values or no outlier below the fence."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) < 4:
        return None
    q1, q3 = np.percentile(v, [25, 75])
    fence = q1 - k * max(q3 - q1, 0.02)
    if v.min() >= fence:
        return None
    lo = v[v >= fence].min()
    span = max(v.max() - lo, 1e-3)
    return lo - pad * span, v.max() + pad * span


def _robust_ylim(ax, values: Sequence[float], xy: Sequence[tuple[float, float]]) -> None:
    """Clip the y axis to :func:`robust_limits`; the points below it are drawn on the bottom edge as open
    triangles and counted in a note, so they stay visible without flattening the others."""
    lim = robust_limits(values)
    if lim is None:
        return
    ax.set_ylim(*lim)
    below = [(x, y) for x, y in xy if y < lim[0]]
    if below:
        ax.plot([x for x, _ in below], [lim[0]] * len(below), "v", color="crimson", markerfacecolor="none",
                clip_on=False, label=None)
        ax.annotate(f"{len(below)} point(s) below the axis (accuracy {', '.join(f'{y:.3f}' for _, y in below)})",
                    (0.01, 0.01), xycoords="axes fraction", fontsize=7, color="crimson")


def pareto(points: Sequence[Mapping], path, baseline: Mapping | None = None,
           title: str = "Accuracy vs MACs") -> Path:
    """``points``: [{"method", "macs", "accuracy"}] (optionally ``accuracy_err``: a half-width, drawn as an
    error bar); one marker series per method, log-scale MACs."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in dict.fromkeys(p["method"] for p in points):
        pts = sorted((p["macs"], p["accuracy"], p.get("accuracy_err")) for p in points if p["method"] == method)
        xs, ys = [m / 1e6 for m, _, _ in pts], [a for _, a, _ in pts]
        errs = [e for _, _, e in pts]
        if any(e is not None for e in errs):
            ax.errorbar(xs, ys, yerr=[e or 0.0 for e in errs], marker="o", capsize=3, label=method)
        else:
            ax.plot(xs, ys, marker="o", label=method)
    if baseline:
        ax.plot([baseline["macs"] / 1e6], [baseline["accuracy"]], "k*", markersize=12, label="unpruned")
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis)
    ax.set(xlabel="MACs (millions, log scale)", ylabel="test accuracy", title=title)
    _robust_ylim(ax, [p["accuracy"] for p in points] + ([baseline["accuracy"]] if baseline else []),
                 [(p["macs"] / 1e6, p["accuracy"]) for p in points])
    ax.grid(alpha=0.3, which="both")
    if len(ax.get_legend_handles_labels()[1]) > 6:     # many methods: the legend goes beside the chart
        fig.set_size_inches(9.5, 4.5)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=8)
    return _save(fig, path)


def latency_vs_macs(points: Sequence[Mapping], parents: Mapping[tuple, Mapping], path,
                    title: str = "Latency vs MACs") -> Path:
    """One panel per batch size: measured latency of every model (``points``: [{"runtime", "batch", "macs",
    "latency_s"}]) against its MACs, log-log, one series per runtime; the dashed line through each runtime's
    unpruned model (``parents[(runtime, batch)]``: {"macs", "latency_s"}) is the physical limit, where the
    speed-up equals the MAC ratio."""
    plt = _plt()
    batches = sorted({p["batch"] for p in points})
    fig, axes = plt.subplots(1, len(batches), figsize=(6.5 * len(batches), 4.5), squeeze=False)
    for ax, b in zip(axes[0], batches):
        for i, rt in enumerate(dict.fromkeys(p["runtime"] for p in points)):
            pts = sorted((p["macs"], p["latency_s"]) for p in points if p["runtime"] == rt and p["batch"] == b)
            colour = f"C{i}"
            ax.plot([m / 1e6 for m, _ in pts], [t * 1e3 for _, t in pts], "o", color=colour, label=rt, alpha=0.8)
            par = parents.get((rt, b))
            if par:
                xs = [min(m for m, _ in pts + [(par["macs"], 0)]) / 1e6, par["macs"] / 1e6]
                ax.plot(xs, [par["latency_s"] * 1e3 * x / xs[-1] for x in xs], "--", color=colour, linewidth=1)
                ax.plot([par["macs"] / 1e6], [par["latency_s"] * 1e3], "*", color=colour, markersize=12)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_ticks(ax.xaxis)
        ax.set(xlabel="MACs (millions, log scale)", ylabel="median latency (ms, log scale)",
               title=f"batch {b}: dashed = speed-up equal to the MAC ratio, * = unpruned")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)
