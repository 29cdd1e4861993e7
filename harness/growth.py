"""Growth fits: how a cost grows with a table's rows within one plan regime, and the rows where it reaches a budget.

The model is a power law, cost = c · rows^b, fitted as a straight line in log-log space by weighted least
squares. Each point (one tier) carries the standard error of its log cost (a bootstrap of its p95, or a
floor for the nearly deterministic work counters), so two tiers already give an interval, from measurement
noise alone. With three or more points the interval widens when the points scatter more than their errors
say (the residual variance ratio, never below 1) and then uses Student's t with n - 2 degrees of freedom.
Points are split into regimes at every plan flip, and no line is fitted across one.

The forecast inverts the line: the rows at which the fitted cost reaches the budget, with the interval where
the line's pointwise confidence band reaches it. It is the extrapolation of a model, never a measurement.
This module is pure arithmetic: no database, no report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from scipy import optimize
from scipy import stats as scipy_stats

from harness.stats import CONFIDENCE

MIN_LOG_SE = 0.01  # a point is never trusted to better than 1%: work counters still vary with the draws
MAX_ROWS = 1e18  # forecasts search up to this many rows; beyond it a crossing is "not within any size"
Array = float | npt.NDArray[np.float64]
_GRID = 4001  # points of the log-rows grid a crossing is first bracketed on (then solved exactly)


@dataclass(frozen=True)
class Point:
    """One measured size: the driving table's rows, the cost there, and the standard error of ln(cost)."""

    rows: float
    value: float
    log_se: float
    label: str = ""  # the tier it was measured at


@dataclass(frozen=True)
class Regime:
    """Consecutive points measured with the same plan (its shape fingerprint)."""

    plan: str
    points: tuple[Point, ...]


def split_regimes(points: Sequence[Point], plans: Sequence[str]) -> list[Regime]:
    """``points`` (in size order) cut at every change of ``plans``: one regime per run of equal plans."""
    if len(points) != len(plans):
        raise ValueError("need one plan per point")
    regimes: list[Regime] = []
    for point, plan in zip(points, plans, strict=True):
        if regimes and regimes[-1].plan == plan:
            regimes[-1] = Regime(plan, (*regimes[-1].points, point))
        else:
            regimes.append(Regime(plan, (point,)))
    return regimes


class Growth(StrEnum):
    """How the exponent's interval stands against 1 (linear growth)."""

    FASTER_THAN_LINEAR = "faster than linear"
    LINEAR = "consistent with linear"
    SLOWER_THAN_LINEAR = "slower than linear"


class Crossing(StrEnum):
    """What the forecast found."""

    CROSSES = "crosses"  # the fitted line reaches the budget at ``rows``
    ALREADY_OVER = "already over"  # the fitted cost is over the budget at the smallest measured size
    NOT_GROWING = "not growing"  # the exponent is not positive: the line never reaches the budget


@dataclass(frozen=True)
class Forecast:
    """Rows at which the fitted cost reaches ``budget``: always an extrapolation, with its interval.

    ``rows_low`` is where the upper confidence band reaches the budget (the earliest plausible crossing);
    ``rows_high`` where the lower band does, None when it never does (the data cannot rule out no crossing).
    """

    budget: float
    state: Crossing
    rows: float | None
    rows_low: float | None
    rows_high: float | None
    confidence: float

    def below(self, target_rows: float) -> bool:
        """Whether the central forecast crosses at or below ``target_rows``."""
        return self.state is Crossing.ALREADY_OVER or (self.rows is not None and self.rows <= target_rows)


@dataclass(frozen=True)
class PowerFit:
    """cost = exp(log_coefficient) · rows^exponent, with the covariance of (log_coefficient, exponent)."""

    exponent: float
    exponent_low: float
    exponent_high: float
    log_coefficient: float
    covariance: tuple[tuple[float, float], tuple[float, float]]
    quantile: float  # of the normal (dispersion 1) or Student's t (n - 2 df) the intervals use
    dispersion: float  # residual variance ratio applied to the covariance (>= 1)
    points: int
    min_rows: float
    max_rows: float
    confidence: float = CONFIDENCE

    @property
    def growth(self) -> Growth:
        if self.exponent_low > 1.0:
            return Growth.FASTER_THAN_LINEAR
        if self.exponent_high < 1.0:
            return Growth.SLOWER_THAN_LINEAR
        return Growth.LINEAR

    def predict(self, rows: float) -> float:
        """The fitted cost at ``rows``."""
        return math.exp(self.log_coefficient + self.exponent * math.log(rows))

    def band(self, rows: float) -> tuple[float, float]:
        """The pointwise confidence interval of the fitted cost at ``rows``."""
        u = math.log(rows)
        centre = self.log_coefficient + self.exponent * u
        half = self.quantile * math.sqrt(float(self._variance(u)))
        return math.exp(centre - half), math.exp(centre + half)

    def forecast(self, budget: float) -> Forecast:
        """Where the line and its band reach ``budget`` (searched up to ``MAX_ROWS`` rows)."""
        level = math.log(budget)
        start = math.log(self.min_rows)

        def central(u: Array) -> Array:
            return self.log_coefficient + self.exponent * u - level

        def upper(u: Array) -> Array:
            return central(u) + self.quantile * np.sqrt(self._variance(u))

        def lower(u: Array) -> Array:
            return central(u) - self.quantile * np.sqrt(self._variance(u))

        def reach(f: Callable[[Array], Array]) -> float | None:
            u = _first_root(f, start, math.log(MAX_ROWS))
            return None if u is None else math.exp(u)

        if float(central(start)) >= 0:
            return Forecast(budget, Crossing.ALREADY_OVER, self.min_rows, self.min_rows, reach(lower), self.confidence)
        state = Crossing.CROSSES if self.exponent > 0 else Crossing.NOT_GROWING
        rows = reach(central) if state is Crossing.CROSSES else None
        return Forecast(budget, state if rows else Crossing.NOT_GROWING, rows, reach(upper), reach(lower),
                        self.confidence)  # fmt: skip

    def _variance(self, u: Array) -> Array:
        (v00, v01), (_, v11) = self.covariance
        return np.maximum(v00 + 2.0 * u * v01 + u * u * v11, 0.0)

    def as_dict(self) -> dict[str, object]:
        return {
            "model": "cost = c * rows^exponent (weighted least squares on ln cost vs ln rows)",
            "exponent": self.exponent,
            "exponent_interval": [self.exponent_low, self.exponent_high],
            "growth": str(self.growth),
            "coefficient": math.exp(self.log_coefficient),
            "points": self.points,
            "rows_range": [self.min_rows, self.max_rows],
            "dispersion": self.dispersion,
            "interval": "normal (measurement noise)" if self.dispersion == 1.0 else f"t, {self.points - 2} df",
            "confidence": self.confidence,
        }


def fit_power(points: Sequence[Point], confidence: float = CONFIDENCE) -> PowerFit | None:
    """The power law through ``points`` (one regime), or None when fewer than two distinct sizes."""
    usable = [p for p in points if p.rows > 0 and p.value > 0]
    u = np.log([p.rows for p in usable])
    if len(usable) < 2 or np.ptp(u) == 0:
        return None
    v = np.log([p.value for p in usable])
    w = 1.0 / np.square(np.maximum([p.log_se for p in usable], MIN_LOG_SE))
    design = np.column_stack([np.ones_like(u), u])
    information = design.T @ (design * w[:, None])
    covariance = np.linalg.inv(information)
    beta = covariance @ (design.T @ (w * v))
    n = len(usable)
    dispersion = 1.0
    quantile = float(scipy_stats.norm.ppf((1.0 + confidence) / 2.0))
    if n >= 3:
        chi2 = float(np.sum(w * np.square(v - design @ beta)))
        if chi2 / (n - 2) > 1.0:  # more scatter than the points' own errors: estimate it, pay with t
            dispersion = chi2 / (n - 2)
            quantile = float(scipy_stats.t.ppf((1.0 + confidence) / 2.0, n - 2))
    cov = covariance * dispersion
    half = quantile * math.sqrt(cov[1, 1])
    return PowerFit(
        exponent=float(beta[1]),
        exponent_low=float(beta[1] - half),
        exponent_high=float(beta[1] + half),
        log_coefficient=float(beta[0]),
        covariance=((float(cov[0, 0]), float(cov[0, 1])), (float(cov[1, 0]), float(cov[1, 1]))),
        quantile=quantile,
        dispersion=dispersion,
        points=n,
        min_rows=float(math.exp(u.min())),
        max_rows=float(math.exp(u.max())),
        confidence=confidence,
    )


def _first_root(f: Callable[[Array], Array], start: float, stop: float) -> float | None:
    """The smallest u in [start, stop] where ``f`` turns non-negative, bracketed on a grid and then solved."""
    grid = np.linspace(start, stop, _GRID)
    values = f(grid)
    hits = np.flatnonzero(values >= 0)
    if hits.size == 0:
        return None
    i = int(hits[0])
    if i == 0:
        return float(grid[0])
    return float(optimize.brentq(lambda x: float(f(x)), grid[i - 1], grid[i]))
