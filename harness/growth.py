"""Growth fits: how a cost grows with a table's rows within one plan regime, and the rows where it reaches a budget.

Two kinds of model, each with two parameters, fitted by weighted least squares; each point (one tier) carries
the standard error of its ln cost (a bootstrap of its p95, or a floor for the nearly deterministic work
counters):

- the power law cost = c · rows^b, a straight line in log-log space: its exponent b, with an interval, is how
  fast the cost grows;
- the complexity classes cost = fixed + k · rows^b with b one of ``CLASSES``: a per-execution cost that does
  not grow plus one that does, which is what small tiers look like (needs three sizes).

Two tiers already give an interval, from measurement noise alone. With three or more points the interval
widens when they scatter more than their errors say (the residual variance ratio, never below 1), and then
uses Student's t with n - 2 degrees of freedom. Points are split into regimes at every plan flip, and no
model is fitted across one.

The forecast extrapolates one model the data does not reject (``fit_forecast_model``, ``CRITERION``): the rows
at which it reaches the budget, with the interval where the pointwise confidence band of any model not
rejected does. It is an extrapolation of a model, never a measurement. Pure arithmetic: no database.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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


Covariance = tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class PowerFit:
    """cost = exp(log_coefficient) · rows^exponent, with the covariance of (log_coefficient, exponent)."""

    exponent: float
    exponent_low: float
    exponent_high: float
    log_coefficient: float
    covariance: Covariance
    quantile: float  # of the normal (dispersion 1) or Student's t (n - 2 df) the intervals use
    dispersion: float  # residual variance ratio applied to the covariance (>= 1)
    log_chi2: float  # weighted sum of squared ln residuals: how well it fits (``fit_forecast_model``)
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

    def describe(self) -> str:
        return f"c·rows^{self.exponent:.2f}"

    def log_bounds(self, u: Array) -> tuple[Array, Array, Array]:
        """ln of the band's low end, the fitted cost and the band's high end at ln(rows) ``u``."""
        centre = self.log_coefficient + self.exponent * u
        half = self.quantile * np.sqrt(_quadratic(self.covariance, 1.0, u))
        return centre - half, centre, centre + half

    def predict(self, rows: float) -> float:
        return predict(self, rows)

    def band(self, rows: float) -> tuple[float, float]:
        return band(self, rows)

    def forecast(self, budget: float) -> Forecast:
        return forecast(self, budget, growing=self.exponent > 0)

    def as_dict(self) -> dict[str, object]:
        return {
            "model": "cost = c * rows^exponent (weighted least squares on ln cost vs ln rows)",
            "exponent": self.exponent,
            "exponent_interval": [self.exponent_low, self.exponent_high],
            "growth": str(self.growth),
            "coefficient": math.exp(self.log_coefficient),
            **_fit_facts(self),
        }


@dataclass(frozen=True)
class ClassFit:
    """cost = fixed + slope · rows^exponent, the exponent one of ``CLASSES``: a per-execution cost that does not
    grow (planning, round trip) plus one that does, which is what small tiers show; covariance of (fixed, slope)."""

    exponent: float
    fixed: float
    slope: float
    covariance: Covariance
    quantile: float
    dispersion: float
    log_chi2: float
    points: int
    min_rows: float
    max_rows: float
    confidence: float = CONFIDENCE

    def describe(self) -> str:
        return f"{self.fixed:.3g} ms + k·rows^{self.exponent:g}"

    def log_bounds(self, u: Array) -> tuple[Array, Array, Array]:
        grows = np.exp(self.exponent * np.asarray(u, dtype=np.float64))
        centre = self.fixed + self.slope * grows
        half = self.quantile * np.sqrt(_quadratic(self.covariance, 1.0, grows))
        return _log(centre - half), _log(centre), _log(centre + half)

    def predict(self, rows: float) -> float:
        return predict(self, rows)

    def band(self, rows: float) -> tuple[float, float]:
        return band(self, rows)

    def forecast(self, budget: float) -> Forecast:
        return forecast(self, budget, growing=True)

    def as_dict(self) -> dict[str, object]:
        return {
            "model": f"cost = fixed + k * rows^{self.exponent:g} (class chosen from {list(CLASSES)})",
            "exponent": self.exponent,
            "fixed_ms": self.fixed,
            "k": self.slope,
            **_fit_facts(self),
        }


Fit = PowerFit | ClassFit
CLASSES = (0.5, 1.0, 1.5, 2.0)  # the growth exponents of ``ClassFit`` (sqrt, linear, n^1.5, quadratic)


def predict(fit: Fit, rows: float) -> float:
    """The fitted cost at ``rows``."""
    return float(np.exp(fit.log_bounds(math.log(rows))[1]))


def band(fit: Fit, rows: float) -> tuple[float, float]:
    """The pointwise confidence interval of the fitted cost at ``rows``."""
    low, _, high = fit.log_bounds(math.log(rows))
    return float(np.exp(low)), float(np.exp(high))


def forecast(fit: Fit, budget: float, growing: bool) -> Forecast:
    """Where the fitted cost and its band reach ``budget`` (searched from the smallest size up to ``MAX_ROWS``)."""
    level = math.log(budget)
    start = math.log(fit.min_rows)

    def reach(which: int) -> float | None:
        u = _first_root(lambda x: fit.log_bounds(x)[which] - level, start, math.log(MAX_ROWS))
        return None if u is None else math.exp(u)

    rows_high = reach(0)  # the low end of the band reaches the budget last
    if float(fit.log_bounds(start)[1]) >= level:
        return Forecast(budget, Crossing.ALREADY_OVER, fit.min_rows, fit.min_rows, rows_high, fit.confidence)
    rows = reach(1) if growing else None
    state = Crossing.CROSSES if rows is not None else Crossing.NOT_GROWING
    return Forecast(budget, state, rows, reach(2), rows_high, fit.confidence)


def fit_power(points: Sequence[Point], confidence: float = CONFIDENCE) -> PowerFit | None:
    """The power law through ``points`` (one regime), or None when fewer than two distinct sizes."""
    usable = _usable(points)
    if usable is None:
        return None
    rows, values, log_se = usable
    u, v = np.log(rows), np.log(values)
    beta, cov, quantile, dispersion, chi2 = _weighted_line(u, v, 1.0 / np.square(log_se), confidence)
    half = quantile * math.sqrt(cov[1][1])
    return PowerFit(
        exponent=beta[1],
        exponent_low=beta[1] - half,
        exponent_high=beta[1] + half,
        log_coefficient=beta[0],
        covariance=cov,
        quantile=quantile,
        dispersion=dispersion,
        log_chi2=chi2,
        points=len(rows),
        min_rows=float(rows.min()),
        max_rows=float(rows.max()),
        confidence=confidence,
    )


def fit_class(points: Sequence[Point], exponent: float, confidence: float = CONFIDENCE) -> ClassFit | None:
    """fixed + k · rows^``exponent`` through ``points``; None with fewer than three sizes (two fit any class
    exactly), or when the fit needs a negative fixed cost or a non-positive k."""
    usable = _usable(points)
    if usable is None or len(usable[0]) < 3:
        return None
    rows, values, log_se = usable
    weights = 1.0 / np.square(values * log_se)  # the standard error of a cost: cost x the se of its ln
    beta, cov, quantile, dispersion, _ = _weighted_line(rows**exponent, values, weights, confidence)
    if beta[0] < 0 or beta[1] <= 0:
        return None
    fitted = beta[0] + beta[1] * rows**exponent
    return ClassFit(
        exponent=exponent,
        fixed=beta[0],
        slope=beta[1],
        covariance=cov,
        quantile=quantile,
        dispersion=dispersion,
        log_chi2=float(np.sum(np.square((np.log(values) - np.log(fitted)) / log_se))),
        points=len(rows),
        min_rows=float(rows.min()),
        max_rows=float(rows.max()),
        confidence=confidence,
    )


@dataclass(frozen=True)
class ForecastFit:
    """The model a forecast extrapolates (``chosen``), and every model the data does not reject
    (``plausible``, the chosen one included): the band and the crossing interval span all of them, so
    not knowing which model holds widens the interval instead of hiding in the choice."""

    chosen: Fit
    plausible: tuple[Fit, ...]

    @property
    def min_rows(self) -> float:
        return self.chosen.min_rows

    @property
    def max_rows(self) -> float:
        return self.chosen.max_rows

    def describe(self) -> str:
        others = len(self.plausible) - 1
        return self.chosen.describe() + (f" ({others} other model{'s' if others > 1 else ''} not rejected)"
                                         if others else "")  # fmt: skip

    def predict(self, rows: float) -> float:
        return self.chosen.predict(rows)

    def band(self, rows: float) -> tuple[float, float]:
        bands = [fit.band(rows) for fit in self.plausible]
        return min(b[0] for b in bands), max(b[1] for b in bands)

    def forecast(self, budget: float) -> Forecast:
        chosen = self.chosen.forecast(budget)
        each = [fit.forecast(budget) for fit in self.plausible]
        lows = [f.rows_low for f in each if f.rows_low is not None]
        highs = [f.rows_high for f in each]
        high = None if any(h is None for h in highs) else max(h for h in highs if h is not None)
        return replace(chosen, rows_low=min(lows) if lows else None, rows_high=high)

    def as_dict(self) -> dict[str, object]:
        return {
            "chosen": self.chosen.as_dict(),
            "not_rejected": [fit.describe() for fit in self.plausible],
            "criterion": CRITERION,
        }


PLAUSIBLE_DELTA_CHI2 = 4.0  # a model whose weighted ln residuals exceed the best one's by more is rejected
# The order in which a model is preferred among those not rejected: a fixed cost plus a linear one first (a
# scan grows with what it reads), then the free power law, then the other classes.
_PREFERENCE = (1.0, "power", 0.5, 1.5, 2.0)
CRITERION = (
    f"every model (the power law; fixed + k*rows^b for b in {list(CLASSES)}; two parameters each) is fitted; one "
    f"is rejected when its weighted sum of squared ln residuals exceeds the best one's by more than "
    f"{PLAUSIBLE_DELTA_CHI2:g}; of the rest the first of fixed+linear, power law, b=0.5, 1.5, 2 is extrapolated, "
    "and the interval spans them all"
)


def fit_forecast_model(points: Sequence[Point], confidence: float = CONFIDENCE) -> ForecastFit | None:
    """The model a forecast extrapolates, and the ones the data does not reject (``CRITERION``)."""
    fits: dict[object, Fit] = {}
    power = fit_power(points, confidence)
    if power is not None:
        fits["power"] = power
    fits.update({b: f for b in CLASSES if (f := fit_class(points, b, confidence)) is not None})
    if not fits:
        return None
    best = min(f.log_chi2 for f in fits.values())
    plausible = {key: f for key, f in fits.items() if f.log_chi2 <= best + PLAUSIBLE_DELTA_CHI2}
    chosen = next(plausible[key] for key in _PREFERENCE if key in plausible)
    return ForecastFit(chosen, tuple(plausible.values()))


def _usable(points: Sequence[Point]) -> tuple[npt.NDArray[np.float64], ...] | None:
    """(rows, values, ln standard errors floored at ``MIN_LOG_SE``) of the positive points; None without two
    distinct sizes."""
    usable = [p for p in points if p.rows > 0 and p.value > 0]
    rows = np.array([p.rows for p in usable], dtype=np.float64)
    if len(usable) < 2 or np.ptp(rows) == 0:
        return None
    values = np.array([p.value for p in usable], dtype=np.float64)
    return rows, values, np.maximum([p.log_se for p in usable], MIN_LOG_SE)


def _weighted_line(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], w: npt.NDArray[np.float64], confidence: float
) -> tuple[tuple[float, float], Covariance, float, float, float]:
    """y = b0 + b1·x by weighted least squares: (b0, b1), their covariance, the interval quantile, the
    dispersion and the weighted residual sum of squares. The covariance is widened by the residual variance
    ratio (then with Student's t, n - 2 df) when the points scatter more than their weights say."""
    design = np.column_stack([np.ones_like(x), x])
    covariance = np.linalg.inv(design.T @ (design * w[:, None]))
    beta = covariance @ (design.T @ (w * y))
    n = len(x)
    chi2 = float(np.sum(w * np.square(y - design @ beta)))
    dispersion = 1.0
    quantile = float(scipy_stats.norm.ppf((1.0 + confidence) / 2.0))
    if n >= 3 and chi2 / (n - 2) > 1.0:  # more scatter than the points' own errors: estimate it, pay with t
        dispersion = chi2 / (n - 2)
        quantile = float(scipy_stats.t.ppf((1.0 + confidence) / 2.0, n - 2))
    c = covariance * dispersion
    covariance_pair = ((float(c[0, 0]), float(c[0, 1])), (float(c[1, 0]), float(c[1, 1])))
    return (float(beta[0]), float(beta[1])), covariance_pair, quantile, dispersion, chi2


def _quadratic(c: Covariance, a: float, b: Array) -> Array:
    """The variance of a·p0 + b·p1 for parameters of covariance ``c`` (never negative)."""
    (v00, v01), (_, v11) = c
    return np.maximum(a * a * v00 + 2.0 * a * b * v01 + b * b * v11, 0.0)


def _log(x: Array) -> Array:
    return np.log(np.maximum(x, 1e-12))


def _fit_facts(fit: Fit) -> dict[str, object]:
    return {
        "points": fit.points,
        "rows_range": [fit.min_rows, fit.max_rows],
        "dispersion": fit.dispersion,
        "interval": "normal (measurement noise)" if fit.dispersion == 1.0 else f"t, {fit.points - 2} df",
        "confidence": fit.confidence,
        "log_chi2": fit.log_chi2,
    }


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
