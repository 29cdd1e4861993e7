"""Latency figures for the HTML report, returned as PNG bytes.

Uses matplotlib's object-oriented ``Figure`` API (Agg canvas, no pyplot): no global state, safe from
threads, and no display needed on a CI runner. Figures are small (100 dpi, a few inches) so a page with
thirty queries stays light.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

DPI = 100
LOG_SCALE_RATIO = 50.0  # max/min above this: a linear axis would squash the small values into a line
BUDGET_IN_VIEW_RATIO = 3.0  # a budget further than this beyond the data is noted at the edge, not drawn
STATUS_COLORS = {"pass": "#2e7d32", "warn": "#ef8f00", "fail": "#c62828"}
NO_STATUS_COLOR = "#9e9e9e"
BUDGET_COLOR = "#b71c1c"
P95_COLOR = "#1565c0"


def latency_distribution_png(samples_ms: Sequence[float], p95: float, budget_ms: float, title: str) -> bytes:
    """An ECDF of one query's timed executions, with its p95 and its budget as vertical lines.

    An ECDF rather than a histogram: with 30 samples it hides nothing and needs no bin choice. The
    x-axis turns logarithmic when the slowest sample is over 50x the fastest. A budget far beyond the
    data is named at the right edge instead of squashing the distribution against the left.
    """
    x = np.sort(np.asarray(samples_ms, dtype=np.float64))
    if x.size == 0:
        raise ValueError("need at least one sample to plot a distribution")
    fig = Figure(figsize=(6, 2.5), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    fraction = np.arange(1, x.size + 1) / x.size
    ax.step(x, fraction, where="post", color="#37474f", linewidth=1.4, label=f"executions (n={x.size})")
    ax.plot(x, fraction, linestyle="none", marker="|", markersize=5, color="#37474f", alpha=0.5)
    ax.axvline(p95, color=P95_COLOR, linestyle="--", linewidth=1.2, label=f"p95 {format_ms(p95)} ms")
    lo, hi = float(x[0]), float(x[-1])
    budget_drawn = budget_ms <= max(hi, p95) * BUDGET_IN_VIEW_RATIO
    if budget_drawn:
        ax.axvline(budget_ms, color=BUDGET_COLOR, linewidth=1.6, label=f"budget {format_ms(budget_ms)} ms")
        hi = max(hi, budget_ms)
    else:
        ax.annotate(
            f"budget {format_ms(budget_ms)} ms →",
            xy=(1.0, 0.04),
            xycoords="axes fraction",
            ha="right",
            va="bottom",
            fontsize=8,
            color=BUDGET_COLOR,
        )
    if lo > 0 and hi / lo > LOG_SCALE_RATIO:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(_tick_ms))
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction ≤ x")
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best", fontsize=8, frameon=False)
    style_axes(ax)
    return figure_png(fig)


def p95_overview_png(
    names: Sequence[str],
    p95s: Sequence[float | None],
    ci_lows: Sequence[float | None],
    ci_highs: Sequence[float | None],
    budgets: Sequence[float],
    statuses: Sequence[str],
) -> bytes:
    """One horizontal bar per query: p95 with its 95% CI as a whisker, the budget as a red tick.

    Bars are coloured by verdict (pass / warn / fail). A query without samples (``p95`` None) gets a
    "no samples" note instead of a bar. The axis is logarithmic when the values span more than 50x,
    which is the usual case: 1 ms queries next to a 500 ms budget.
    """
    count = len(names)
    if not count or not all(len(s) == count for s in (p95s, ci_lows, ci_highs, budgets, statuses)):
        raise ValueError("names, p95s, ci_lows, ci_highs, budgets and statuses need one entry per query")
    values = [v for v in (*p95s, *ci_lows, *ci_highs, *budgets) if v is not None and v > 0]
    lo, hi = (min(values), max(values)) if values else (1.0, 1.0)
    log = hi / lo > LOG_SCALE_RATIO
    x_min = 10 ** math.floor(math.log10(lo)) if log else 0.0
    x_max = hi * (3.0 if log else 1.15)

    fig = Figure(figsize=(6, 0.9 + 0.3 * count), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    rows = np.arange(count)
    for row, p95, low, high, budget, status in zip(rows, p95s, ci_lows, ci_highs, budgets, statuses, strict=True):
        color = STATUS_COLORS.get(status, NO_STATUS_COLOR)
        if p95 is None:
            ax.text(x_min if log else 0, row, "  no samples", va="center", fontsize=8, color=NO_STATUS_COLOR)
        else:
            ax.barh(row, p95 - x_min, left=x_min, height=0.6, color=color, alpha=0.85)
            if low is not None and high is not None:
                ax.errorbar(p95, row, xerr=[[max(p95 - low, 0)], [max(high - p95, 0)]], fmt="none",
                            ecolor="#212121", elinewidth=1, capsize=2.5)  # fmt: skip
            right = max(p95, high or p95)
            ax.annotate(format_ms(p95), xy=(right, row), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=7)  # fmt: skip
        ax.plot([budget, budget], [row - 0.4, row + 0.4], color=BUDGET_COLOR, linewidth=2, zorder=3)
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(_tick_ms))
    ax.set_xlim(x_min, x_max)
    ax.set_yticks(rows, labels=list(names), fontsize=8)
    ax.set_ylim(count - 0.5, -0.5)  # first query on top
    ax.set_xlabel("p95 latency (ms), whisker = 95% CI")
    ax.grid(True, axis="x", which="major", alpha=0.3)
    handles = [Patch(color=STATUS_COLORS[s], label=s) for s in ("pass", "warn", "fail")]
    handles.append(Line2D([], [], color=BUDGET_COLOR, linewidth=2, label="budget"))
    fig.legend(handles=handles, loc="outside upper right", ncol=4, fontsize=8, frameon=False)
    style_axes(ax)
    return figure_png(fig)


def format_ms(value: float) -> str:
    """Milliseconds with about three significant digits and no exponent: 0.123, 1.23, 12.3, 1,234."""
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _tick_ms(value: float, _position: int) -> str:
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def style_axes(ax) -> None:  # type: ignore[no-untyped-def]
    """The house style of every figure: no top/right spines, small tick labels."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


def figure_png(fig: Figure) -> bytes:
    """A figure as PNG bytes (for inlining as base64 or writing beside a report)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
