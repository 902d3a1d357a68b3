"""Paired comparisons over seeds: the mean difference and its 95% confidence interval.

In the comparison protocol every seed fixes one split and one parent network shared by every method, so
two methods' accuracies on the same seed are a *pair*: their difference cancels what the seed drew (the
data, the parent) and keeps what the methods did. Over ``n`` seeds the mean paired difference ``d`` has
the Student-t interval ``d +- t(0.975, n-1) * s / sqrt(n)`` (``s`` the sample standard deviation of the
differences). With 3 seeds ``t = 4.30``: an interval excludes zero only when the methods differ clearly
and consistently — which is what a ranking needs.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

from scipy import stats as _st


@dataclass(frozen=True)
class PairedDifference:
    mean: float            # mean of a - b over the pairs
    low: float             # the confidence interval (nan with a single pair)
    high: float
    sd: float              # sample standard deviation of the differences (nan with a single pair)
    n: int
    level: float = 0.95

    @property
    def excludes_zero(self) -> bool:
        return self.n > 1 and (self.low > 0 or self.high < 0)

    def as_dict(self) -> dict:
        return {**asdict(self), "excludes_zero": self.excludes_zero}

    def format(self, scale: float = 100.0, unit: str = " pt") -> str:
        """'+1.2 [-0.3, +2.7] pt' (or '+1.2 pt (1 seed)')."""
        if self.n < 2:
            return f"{self.mean * scale:+.1f}{unit} (1 seed)"
        return f"{self.mean * scale:+.1f} [{self.low * scale:+.1f}, {self.high * scale:+.1f}]{unit}"


def t_interval(values: Sequence[float], level: float = 0.95) -> PairedDifference:
    """Mean and two-sided Student-t confidence interval of ``values`` (e.g. paired differences)."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("t_interval needs at least one value")
    if any(not math.isfinite(v) for v in xs):
        raise ValueError(f"t_interval needs finite values, got {xs}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n = len(xs)
    mean = sum(xs) / n
    if n == 1:
        return PairedDifference(mean, math.nan, math.nan, math.nan, 1, level)
    sd = math.sqrt(sum((v - mean) ** 2 for v in xs) / (n - 1))
    half = float(_st.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return PairedDifference(mean, mean - half, mean + half, sd, n, level)


def paired_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> PairedDifference:
    """Mean of ``a[i] - b[i]`` with its t-interval; ``a`` and ``b`` are paired (same seeds, same order)."""
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    return t_interval([x - y for x, y in zip(a, b)], level)
