"""Fisher optimal segmentation of an ordered sequence (dynamic programming), with automatic k.

A segment ``[j, n]`` (0-based, inclusive) costs ``D(j, n)`` = the sum of squared deviations of its
values from the segment mean. ``L(n, k)`` — the least total cost of splitting the first ``n + 1``
values into ``k`` contiguous segments — obeys ``L(n, 1) = D(0, n)`` and
``L(n, k) = min_{k-1 <= j <= n} L(j - 1, k - 1) + D(j, n)``; back-pointers give the cuts.

**Choosing k** (:func:`choose_k`): ``k`` grows from 1 while one more segment still lowers the loss
by more than ``threshold`` (default 5%) *of the one-segment loss* ``L_1`` (the sequence's total
scatter): it stops at the first ``k`` with ``(L_k - L_{k+1}) / L_1 <= threshold``, or with ``L_k = 0``.
``relative_to="previous"`` divides by ``L_k`` instead (the reference code's ratio); on a smooth
sequence that ratio stays large (a linear ramp: ``1 - k^2/(k+1)^2``), so k runs to the end — the
reference avoids it by taking the last k with a drop above 5% below a hand-picked maximum (4-7).
"""
from __future__ import annotations

import numpy as np


class _Cost:
    """D(j, n) in O(1) from prefix sums."""

    def __init__(self, values):
        v = np.asarray(values, dtype=float)
        self.s1 = np.concatenate([[0.0], np.cumsum(v)])
        self.s2 = np.concatenate([[0.0], np.cumsum(v * v)])

    def __call__(self, j: int, n: int) -> float:
        m = n - j + 1
        s = self.s1[n + 1] - self.s1[j]
        return max(0.0, (self.s2[n + 1] - self.s2[j]) - s * s / m)


def fisher_tables(values, k_max: int) -> tuple[np.ndarray, np.ndarray]:
    """``L[k, n]`` (k = 1..k_max, n = 0..N-1) and back-pointers ``J[k, n]`` (start of the last segment)."""
    n_vals = len(values)
    if n_vals == 0:
        raise ValueError("cannot segment an empty sequence")
    k_max = max(1, min(int(k_max), n_vals))
    cost = _Cost(values)
    L = np.full((k_max + 1, n_vals), np.inf)
    J = np.zeros((k_max + 1, n_vals), dtype=int)
    for n in range(n_vals):
        L[1, n] = cost(0, n)
    for k in range(2, k_max + 1):
        for n in range(k - 1, n_vals):
            best, arg = np.inf, k - 1
            for j in range(k - 1, n + 1):
                c = L[k - 1, j - 1] + cost(j, n)
                if c < best - 1e-12:
                    best, arg = c, j
            L[k, n], J[k, n] = best, arg
    return L, J


def fisher_segments(values, k: int) -> tuple[list[list[int]], float]:
    """The optimal partition of ``range(len(values))`` into ``k`` contiguous segments, and its loss."""
    L, J = fisher_tables(values, k)
    k = min(k, len(values))
    n = len(values) - 1
    cuts = []
    for kk in range(k, 1, -1):
        j = J[kk, n]
        cuts.append(j)
        n = j - 1
    starts = [0] + cuts[::-1]
    ends = starts[1:] + [len(values)]
    return [list(range(a, b)) for a, b in zip(starts, ends)], float(L[k, len(values) - 1])


def loss_curve(values, k_max: int | None = None) -> np.ndarray:
    """Optimal loss for k = 1..k_max segments (index 0 is k = 1)."""
    L, _ = fisher_tables(values, k_max or len(values))
    return L[1:, len(values) - 1]


def choose_k(losses, threshold: float = 0.05, relative_to: str = "total") -> int:
    """First k whose next segment lowers the loss by no more than ``threshold`` x ``L_1`` (``"total"``)
    or x ``L_k`` (``"previous"``), or whose loss is 0."""
    if relative_to not in ("total", "previous"):
        raise ValueError(f"relative_to must be 'total' or 'previous', got {relative_to!r}")
    losses = np.asarray(losses, dtype=float)
    for i in range(len(losses) - 1):
        if losses[i] <= 1e-12 * max(1.0, losses[0]):
            return i + 1
        base = losses[0] if relative_to == "total" else losses[i]
        if (losses[i] - losses[i + 1]) / base <= threshold:
            return i + 1
    return len(losses)


def auto_segments(values, threshold: float = 0.05, k_max: int | None = None,
                  relative_to: str = "total") -> tuple[list[list[int]], dict]:
    """Segments with k chosen by :func:`choose_k`; the info dict has k and the loss curve."""
    curve = loss_curve(values, k_max)
    k = choose_k(curve, threshold, relative_to)
    segs, loss = fisher_segments(values, k)
    return segs, {"k": k, "loss": loss, "loss_curve": [float(v) for v in curve], "threshold": threshold,
                  "relative_to": relative_to}
