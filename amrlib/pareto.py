"""Accuracy vs MAC reduction trade-offs: the Pareto front of a set of pruned models and its plot."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from .plots import _plt, _robust_ylim, _save, robust_limits  # noqa: F401  (robust_limits re-exported)


def pareto_front(points: Sequence[Mapping], x: str = "macs_reduction", y: str = "accuracy") -> list[int]:
    """Indices of the points no other point beats on both ``x`` and ``y`` (higher is better for both),
    ordered by ``x``."""
    idx = sorted(range(len(points)), key=lambda i: (-points[i][x], -points[i][y]))
    front, best_y = [], float("-inf")
    for i in idx:                          # from the most compressed down: keep whoever improves accuracy
        if points[i][y] > best_y:
            front.append(i)
            best_y = points[i][y]
    return sorted(front, key=lambda i: points[i][x])


def accuracy_vs_reduction(points: Sequence[Mapping], path, baselines: Mapping[str, float] | None = None,
                          title: str = "Accuracy vs MAC reduction") -> Path:
    """``points``: [{"label", "macs_reduction", "accuracy", "group"?}], one line per label (e.g. "resnet20
    fcos"); the Pareto-optimal points of each group (e.g. a model) are ringed; ``baselines``: {name: unpruned
    accuracy}, drawn as dashed lines."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label in dict.fromkeys(p["label"] for p in points):
        pts = sorted((p["macs_reduction"], p["accuracy"]) for p in points if p["label"] == label)
        ax.plot([100 * r for r, _ in pts], [a for _, a in pts], marker="o", label=label)
    front = []
    for group in dict.fromkeys(p.get("group") for p in points):      # one front per group (e.g. per model)
        mine = [p for p in points if p.get("group") == group]
        front += [mine[i] for i in pareto_front(mine)]
    if front:
        ax.plot([100 * p["macs_reduction"] for p in front], [p["accuracy"] for p in front], "o", markersize=12,
                markerfacecolor="none", markeredgecolor="k", label="Pareto front")
    for label, acc in (baselines or {}).items():
        ax.axhline(acc, ls="--", lw=1, color="gray")
        ax.annotate(f"unpruned {label}", (0, acc), textcoords="offset points", xytext=(2, 2), fontsize=7,
                    color="gray", xycoords=("axes fraction", "data"))
    ax.set(xlabel="MACs removed (%)", ylabel="test accuracy", title=title)
    _robust_ylim(ax, [p["accuracy"] for p in points] + list((baselines or {}).values()),
                 [(100 * p["macs_reduction"], p["accuracy"]) for p in points])
    ax.grid(alpha=0.3)
    if points:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no finished combination", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)
