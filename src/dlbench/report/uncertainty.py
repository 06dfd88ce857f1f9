"""Repeats and their spread: the mean of a setting's runs over seeds and its 95 % interval.

A spec's ``seeds: [0, 1, 2]`` trains every configuration once per seed; the report groups runs that differ
only in their seed (:func:`repeat_key`) and shows their mean and a 95 % confidence interval of the mean
(Student's t, ``n - 1`` degrees of freedom) where there are two or more. One run has no interval: it reads
as the value alone, and a verdict built on it says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

CONFIDENCE = 0.95


def repeat_key(config: dict[str, Any]) -> str:
    """What runs that repeat one setting share: the config without its seed (and without its run id)."""
    return json.dumps(
        {k: v for k, v in config.items() if k not in ("seed", "run_id")}, sort_keys=True, default=str
    )


@dataclass(frozen=True)
class Estimate:
    """The mean of ``n`` values and the half-width of its 95 % interval (None for one value)."""

    mean: float
    n: int
    half: float | None = None
    sd: float | None = None

    @property
    def low(self) -> float:
        return self.mean - (self.half or 0.0)

    @property
    def high(self) -> float:
        return self.mean + (self.half or 0.0)

    def text(self, digits: int = 2, unit: str = "") -> str:
        """``91.20`` for one value, ``91.20 ± 0.31 (n=3)`` for repeats."""
        v = f"{self.mean:.{digits}f}{unit}"
        return v if self.half is None else f"{v} ± {self.half:.{digits}f}{unit} (n={self.n})"


def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, df))


def estimate(values: list[float | None]) -> Estimate | None:
    """The mean and 95 % interval of the finite ``values``; None when there are none."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return None
    n = len(xs)
    mean = sum(xs) / n
    if n < 2:
        return Estimate(mean, 1)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    return Estimate(mean, n, t_quantile(n - 1) * sd / math.sqrt(n), sd)


def difference(a: Estimate | None, b: Estimate | None) -> Estimate | None:
    """``a - b`` of two independent means; its interval by Welch's approximation when both have repeats,
    the one side's when only one has (None when neither has: one run each)."""
    if a is None or b is None:
        return None
    mean = a.mean - b.mean
    if a.half is None and b.half is None:
        return Estimate(mean, min(a.n, b.n))
    va = (a.sd**2 / a.n) if a.sd is not None else 0.0
    vb = (b.sd**2 / b.n) if b.sd is not None else 0.0
    se = math.sqrt(va + vb)
    terms = [(v**2 / (x.n - 1)) for v, x in ((va, a), (vb, b)) if x.sd is not None and x.n > 1]
    df = (va + vb) ** 2 / sum(terms) if terms and sum(terms) > 0 else max(a.n, b.n) - 1
    return Estimate(mean, min(a.n, b.n), t_quantile(max(1, int(df))) * se if se > 0 else 0.0)


def ratio(a: Estimate | None, b: Estimate | None) -> Estimate | None:
    """``a / b`` of two positive means; its interval from the intervals of the logs (delta method)."""
    if a is None or b is None or a.mean <= 0 or b.mean <= 0:
        return None
    mean = a.mean / b.mean
    if a.half is None and b.half is None:
        return Estimate(mean, min(a.n, b.n))
    rel = math.sqrt(sum(((x.half or 0.0) / x.mean) ** 2 for x in (a, b)))
    return Estimate(mean, min(a.n, b.n), mean * rel)
