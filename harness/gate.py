"""The comparison gate: baseline vs candidate per query, work first, then timing with catalog-wide error control.

Pure functions over in-memory sides (``Side``), used by ``harness compare BASE CAND`` and by the A/B mode.

1. **Work** (buffers, temp blocks: nearly deterministic for fixed data and draws). A per-call rise beyond
   ``max_work_regression`` (default 20%) fails with the evidence; a plan change without a work rise warns.
2. **Timing**. When both sides were measured in the same interleaved rounds (equal ``slices``, at least
   ``MIN_ROUNDS`` of them), the unit of independence is the round: the draws of one slice share that slice's
   moment on the machine, so counting them as independent pairs overstates the evidence (pseudo-replication).
   The test is then a one-sided t-test on the per-round log ratios of the slices' medians, and the ratio is
   their geometric mean with a t interval. Otherwise samples pair by draw index when both sides timed the same
   draws (equal ``draws_digest``): a one-sided Wilcoxon signed-rank test on the per-draw log ratios; else a
   one-sided Mann–Whitney U test. The catalog's p-values are Holm-corrected, so the chance that *any*
   unchanged query is called slower stays below ``alpha`` (default 1%) however many queries there are. A
   significant slowdown fails only when it also exceeds ``max_regression`` (the typical ratio) *and* the
   floor ``max(floor_ms, floor_budget_share × budget)`` in milliseconds; below the floor it is reported.
3. **Separate runs share no noise.** Two runs minutes apart (``interleaved`` False: `harness compare A B`)
   differ by whatever the machine did meanwhile: on a shared 2-core runner the same query with identical
   work and plan moved 0.5x–1.8x between back-to-back benchmark-tier runs. A *time-only* change there
   (work within tolerance, same plan shape on every draw) fails only beyond ``separate_runs_budget_share``
   of the budget (default half); the interleaved A/B mode, whose sides share the machine's noise, gates
   time-only changes on the floor above.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from scipy import special as scipy_special
from scipy import stats as scipy_stats

from harness.errors import InputError
from harness.plans import PlanChange, PlanFacts, plan_changes
from harness.work import Work

DEFAULT_MAX_REGRESSION = 0.10
DEFAULT_MAX_WORK_REGRESSION = 0.20
DEFAULT_ALPHA = 0.01  # family-wise, over every query of one comparison (Holm)
DEFAULT_FLOOR_MS = 0.5
DEFAULT_FLOOR_BUDGET_SHARE = 0.01
DEFAULT_SEPARATE_RUNS_BUDGET_SHARE = 0.5
# A rise of fewer blocks per call than this is never a work regression, whatever the ratio: 1 → 2 blocks
# is +100% and means nothing.
WORK_MIN_BLOCKS_PER_CALL = 2.0
# Work per call within this share counts as "the same work" (a time-only change): counts are deterministic
# for fixed data and draws; the slack covers hint bits and the odd catalog lookup.
WORK_SAME_TOLERANCE = 0.01
MIN_ROUNDS = 3  # a round-level test needs a few rounds: fewer fall back to the per-draw test

Status = Literal["pass", "warn", "fail"]
TimingVerdict = Literal["slower", "faster", "no significant difference", "not compared"]
WORK_METRICS = {"shared_blks": "shared buffers per call", "temp_blks": "temp blocks per call"}


@dataclass(frozen=True)
class GateOptions:
    """The thresholds of one comparison (every one is a `harness compare` option)."""

    max_regression: float = DEFAULT_MAX_REGRESSION
    max_work_regression: float = DEFAULT_MAX_WORK_REGRESSION
    alpha: float = DEFAULT_ALPHA
    floor_ms: float = DEFAULT_FLOOR_MS
    floor_budget_share: float = DEFAULT_FLOOR_BUDGET_SHARE
    interleaved: bool = False  # True: both sides measured in one job, interleaved (A/B); False: separate runs
    separate_runs_budget_share: float = DEFAULT_SEPARATE_RUNS_BUDGET_SHARE
    looks: tuple[int, ...] = ()  # rounds after which a sequential A/B may stop (``sequential_looks``); () fixed

    def __post_init__(self) -> None:
        """Thresholds from Python are checked as the CLI's are: InputError (exit 2) for nonsense."""
        if self.max_regression < 0 or self.max_work_regression < 0:
            raise InputError("max_regression and max_work_regression must be >= 0 (a fraction: 0.10 for 10%)")
        if not 0 < self.alpha < 1:
            raise InputError(f"alpha {self.alpha!r} must be between 0 and 1, e.g. 0.01")

    def floor_for(self, budget_ms: float | None, time_only: bool = False) -> float:
        """The smallest slowdown in ms that can fail a query with this budget.

        ``time_only``: the work and plan did not change, so between separate runs the machine may explain it.
        """
        floor = max(self.floor_ms, self.floor_budget_share * (budget_ms or 0.0))
        if time_only and not self.interleaved:
            floor = max(floor, self.separate_runs_budget_share * (budget_ms or 0.0))
        return floor

    def describe_floor(self, time_only: bool) -> str:
        text = f"max({self.floor_ms:g} ms, {self.floor_budget_share:.0%} of the budget)"
        if time_only and not self.interleaved:
            text = f"{self.separate_runs_budget_share:.0%} of the budget: a time-only change between separate runs"
        return text


@dataclass(frozen=True)
class Side:
    """One query on one side of a comparison: its timed samples (``samples_ms[i]`` is draw i) and its work."""

    samples_ms: tuple[float, ...]
    work: Work | None = None
    plan: PlanFacts | None = None
    draw_plans: tuple[str, ...] = ()  # plan-shape fingerprint per timed draw
    draws_digest: str = ""
    budget_ms: float | None = None
    error: str | None = None
    slices: tuple[int, ...] = ()  # samples per interleaved round, in order (empty: not measured in rounds)


def paired(base: Side, cand: Side) -> bool:
    """True when both sides timed the same draws in the same order, so sample i of each is draw i.

    The digest is of the draws every run times (its fixed prefix); a run that sampled on for a tighter p95
    went on in the same seeded stream, so the pairs are the first min(n_base, n_cand) samples."""
    return bool(base.draws_digest) and base.draws_digest == cand.draws_digest


def shared_rounds(base: Side, cand: Side) -> tuple[int, ...]:
    """The rounds both sides were measured in, slice for slice (empty when they were not, or too few)."""
    if (
        len(base.slices) >= MIN_ROUNDS
        and base.slices == cand.slices
        and sum(base.slices) == len(base.samples_ms) == len(cand.samples_ms)
        and all(base.slices)
    ):
        return base.slices
    return ()


# -- work -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkChange:
    """One work metric per call, baseline vs candidate."""

    metric: str  # a WORK_METRICS key, or "rows"
    base: float
    cand: float

    @property
    def ratio(self) -> float:
        return self.cand / self.base if self.base else (1.0 if self.cand == 0 else math.inf)

    def __str__(self) -> str:
        label = WORK_METRICS.get(self.metric, "rows per call")
        times = "new" if self.base == 0 else f"{self.ratio:.0f}x" if self.ratio >= 10 else f"{self.ratio:.2f}x"
        return f"{label} {_count(self.base)} → {_count(self.cand)} ({times})"


@dataclass(frozen=True)
class WorkVerdict:
    """The work gate of one query. ``status`` "unknown" when a side has no work metrics (an old run.json)."""

    status: Literal["pass", "warn", "fail", "unknown"]
    regressions: tuple[WorkChange, ...]  # metrics that rose beyond the threshold
    changes: tuple[WorkChange, ...]  # every metric that differs (rows included)
    plan_changes: tuple[PlanChange, ...]
    draws_with_other_plan: int  # timed draws whose plan shape differs (paired sides only)
    draws_compared: int
    sources: tuple[str, str] = ("", "")

    @property
    def same(self) -> bool:
        """No more work (within WORK_SAME_TOLERANCE) and the same plan: a timing change, if any, is time only.

        "The same plan" allows a minority of draws with another plan shape: the timing test's effect is the
        median per-draw ratio, which the majority of draws decides.
        """
        more = any(c.metric in WORK_METRICS and c.cand > c.base * (1.0 + WORK_SAME_TOLERANCE) for c in self.changes)
        return not more and not self.plan_changes and 2 * self.draws_with_other_plan < max(self.draws_compared, 1)

    @property
    def plan_switch(self) -> PlanChange | None:
        return next((c for c in self.plan_changes if c.kind == "switched"), None)

    def evidence(self) -> str:
        """ "shared buffers per call 12 → 4,210 (351x); plan switched from Index Scan … to Seq Scan on …"."""
        parts = [str(c) for c in self.regressions]
        switch = self.plan_switch
        if switch:
            parts.append(f"plan switched from {switch.before} to {switch.after}")
        elif self.plan_changes:
            parts.append(f"plan changed ({self.plan_changes[0]})")
        if self.draws_with_other_plan:
            parts.append(f"a different plan on {self.draws_with_other_plan} of {self.draws_compared} draws")
        return "; ".join(parts)


def work_verdict(base: Side, cand: Side, max_work_regression: float = DEFAULT_MAX_WORK_REGRESSION) -> WorkVerdict:
    """Fail when shared buffers or temp blocks per call rise by more than ``max_work_regression``."""
    changes_in_plan = tuple(plan_changes(base.plan, cand.plan)) if base.plan and cand.plan else ()
    other, compared = 0, 0
    if paired(base, cand) and len(base.draw_plans) == len(cand.draw_plans) and base.draw_plans:
        compared = len(base.draw_plans)
        other = sum(b != c for b, c in zip(base.draw_plans, cand.draw_plans, strict=True))
    if base.work is None or cand.work is None or not base.work.calls or not cand.work.calls:
        status = "warn" if changes_in_plan or other else "unknown"
        return WorkVerdict(status, (), (), changes_in_plan, other, compared)
    changes = [
        WorkChange(metric, base.work.per_call(metric), cand.work.per_call(metric)) for metric in (*WORK_METRICS, "rows")
    ]
    changes = [c for c in changes if not math.isclose(c.base, c.cand, rel_tol=1e-9, abs_tol=1e-9)]
    regressions = tuple(
        c
        for c in changes
        if c.metric in WORK_METRICS
        and c.cand > c.base * (1.0 + max_work_regression)
        and c.cand - c.base >= WORK_MIN_BLOCKS_PER_CALL
    )
    status: Literal["pass", "warn", "fail"] = (
        "fail" if regressions else "warn" if changes_in_plan or other or any(c.metric == "rows" for c in changes)
        else "pass"
    )  # fmt: skip
    return WorkVerdict(status, regressions, tuple(changes), changes_in_plan, other, compared,
                       (base.work.source, cand.work.source))  # fmt: skip


# -- timing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimingTest:
    """One query's timing test. ``ratio`` and ``shift_ms`` estimate the typical change of one execution.

    Paired: ``ratio`` is the median per-draw ratio cand/base and ``shift_ms`` the median per-draw
    difference; unpaired: the ratio and difference of the medians. ``p_slower`` / ``p_faster`` are the
    one-sided p-values; the ``*_holm`` ones are after the catalog-wide correction.
    """

    test: str
    paired: bool
    n_base: int
    n_cand: int
    base_median_ms: float
    cand_median_ms: float
    ratio: float
    shift_ms: float
    p_slower: float
    p_faster: float
    p_slower_holm: float = math.nan
    p_faster_holm: float = math.nan
    ratio_low: float = math.nan  # the ratio's 95% interval (round-level test only)
    ratio_high: float = math.nan
    rounds: int = 0  # the independent units the round-level test used (0: the per-draw tests)


ROUNDS_T = "t-test on per-round log ratios of slice medians (paired by round), one-sided"
WILCOXON = "Wilcoxon signed-rank on per-draw log ratios (paired by draw), one-sided"
MANN_WHITNEY = "Mann-Whitney U (unpaired), one-sided"


def timing_test(
    base: Sequence[float], cand: Sequence[float], pair: bool, rounds: Sequence[int] = (), looks: Sequence[int] = ()
) -> TimingTest:
    """The one-sided tests of "candidate slower" and "candidate faster": by round when ``rounds`` (samples per
    interleaved round, both sides alike; sequential p-values over ``looks`` when given), else paired by index
    when ``pair``, else unpaired."""
    b, c = np.asarray(base, dtype=np.float64), np.asarray(cand, dtype=np.float64)
    if b.size == 0 or c.size == 0:
        raise ValueError("both sides need samples")
    if (pair or rounds) and b.size != c.size:
        raise ValueError("paired samples need the same length")
    if rounds:
        return _round_test(b, c, rounds, looks)
    if pair:
        d = np.log(np.maximum(c, 1e-9)) - np.log(np.maximum(b, 1e-9))
        if b.size < 2 or not np.any(d):
            p_slower = p_faster = 1.0
        else:
            p_slower = float(scipy_stats.wilcoxon(d, alternative="greater").pvalue)
            p_faster = float(scipy_stats.wilcoxon(d, alternative="less").pvalue)
        ratio, shift, test = float(np.exp(np.median(d))), float(np.median(c - b)), WILCOXON
    else:
        p_slower = float(scipy_stats.mannwhitneyu(c, b, alternative="greater").pvalue)
        p_faster = float(scipy_stats.mannwhitneyu(c, b, alternative="less").pvalue)
        mb, mc = float(np.median(b)), float(np.median(c))
        ratio, shift, test = (mc / mb if mb > 0 else math.inf), mc - mb, MANN_WHITNEY
    return TimingTest(test, pair, int(b.size), int(c.size), float(np.median(b)), float(np.median(c)), ratio,
                      shift, p_slower, p_faster)  # fmt: skip


LOOKS_RULE = "alpha spent as f(t) = t³ (Kim & DeMets, rho = 3), each look held to its increment (Bonferroni)"


def sequential_looks(rounds: int) -> tuple[int, ...]:
    """The rounds after which a sequential A/B looks: once at 60% of the rounds (when that leaves a round to
    save and enough rounds to test), and at the end. One interim look keeps most of alpha for the last one
    (see ``spending_shares``): a clear change stops 40% early, a subtle one loses little power."""
    interim = math.ceil(0.6 * rounds)
    return (interim, rounds) if MIN_ROUNDS + 1 <= interim < rounds else (rounds,)


def spending_shares(looks: Sequence[int]) -> list[float]:
    """The share of alpha each look spends: increments of f(t) = t³ at t = look / last look.

    f is Kim & DeMets' power family with ρ = 3 (close to O'Brien–Fleming's boundaries: little alpha early,
    most at the end). Each look's test is held to its increment alone (a Bonferroni bound over the looks),
    which keeps the overall rate at alpha whatever the correlation between looks: conservative, and simple.
    """
    last = looks[-1]
    cumulative = [(k / last) ** 3 for k in looks]
    return [b - a for a, b in zip([0.0, *cumulative], cumulative, strict=False)]


def sequential_p(d: np.ndarray, looks: Sequence[int]) -> tuple[float, float]:
    """(p slower, p faster) of per-round log ratios ``d`` tested at each planned look reached so far, each look's
    p-value divided by its share of alpha (``spending_shares``), the smallest kept: a valid p-value for the
    whole sequential design, so Holm over the catalog applies to it as to a fixed design's."""
    shares = spending_shares(looks)
    p_slower = p_faster = 1.0
    for look, share in zip(looks, shares, strict=True):
        if look > d.size or look < MIN_ROUNDS:
            continue
        slower, faster, _, _ = one_sided_t(d[:look])
        p_slower, p_faster = min(p_slower, slower / share), min(p_faster, faster / share)
    return min(p_slower, 1.0), min(p_faster, 1.0)


def round_log_ratios(base: np.ndarray, cand: np.ndarray, rounds: Sequence[int]) -> np.ndarray:
    """log(median of the candidate's slice) − log(median of the base's slice), one value per round."""
    edges = np.cumsum([0, *rounds])
    return np.array([
        math.log(max(float(np.median(cand[lo:hi])), 1e-9)) - math.log(max(float(np.median(base[lo:hi])), 1e-9))
        for lo, hi in itertools.pairwise(edges)
    ])  # fmt: skip


def one_sided_t(d: np.ndarray) -> tuple[float, float, float, float]:
    """(p greater, p less, 95% interval low, high) of the mean of ``d``: Student's one-sample t, through scipy's
    t distribution functions (``stdtr``/``stdtrit``: the same numbers as ``ttest_1samp``, without its overhead,
    which the sequential looks pay many times). A constant ``d`` is decided exactly."""
    mean, spread = float(np.mean(d)), float(np.std(d, ddof=1))
    if spread == 0.0:
        return (0.0 if mean > 0 else 1.0), (0.0 if mean < 0 else 1.0), mean, mean
    df = d.size - 1
    se = spread / math.sqrt(d.size)
    t = mean / se
    half = float(scipy_special.stdtrit(df, 0.975)) * se
    return float(scipy_special.stdtr(df, -t)), float(scipy_special.stdtr(df, t)), mean - half, mean + half


def _round_test(b: np.ndarray, c: np.ndarray, rounds: Sequence[int], looks: Sequence[int]) -> TimingTest:
    d = round_log_ratios(b, c, rounds)
    p_slower, p_faster, low, high = one_sided_t(d)
    if looks:
        p_slower, p_faster = sequential_p(d, looks)
    return TimingTest(ROUNDS_T, True, int(b.size), int(c.size), float(np.median(b)), float(np.median(c)),
                      math.exp(float(np.mean(d))), float(np.median(c - b)), p_slower, p_faster,
                      ratio_low=math.exp(low), ratio_high=math.exp(high), rounds=len(rounds))  # fmt: skip


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (controls the family-wise error rate under any dependence).

    scipy has Benjamini–Hochberg (``false_discovery_control``) but not Holm, which is what a gate needs:
    the chance of one false alarm anywhere in the catalog, not the share of false alarms among alarms.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


# -- one decision per query -------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryDecision:
    """The gate's decision on one query: work verdict, timing test, and why it fails or warns."""

    name: str
    status: Status
    work: WorkVerdict
    timing: TimingTest | None
    timing_verdict: TimingVerdict
    floor_ms: float
    reasons: tuple[str, ...] = ()  # why it fails
    warnings: tuple[str, ...] = ()  # worth a look: a plan change without more work, different rows, ...
    notes: tuple[str, ...] = field(default_factory=tuple)  # reported, not failed: changes under a threshold
    improved: bool = False  # significantly faster, beyond --max-regression and the floor

    @property
    def regressed(self) -> bool:
        return self.status == "fail"

    def headline(self) -> str:
        """The sentence a reviewer reads first."""
        if self.reasons:
            return f"{self.name}: {self.reasons[0]}"
        if self.warnings:
            return f"{self.name}: {self.warnings[0]}"
        if self.notes:
            return f"{self.name}: {self.notes[0]}"
        if self.timing is None:
            return f"{self.name}: not compared"
        return f"{self.name}: {describe_timing(self.timing, self.timing_verdict)}"


def describe_timing(t: TimingTest, verdict: TimingVerdict) -> str:
    """ "got 1.8x slower (median 2.10 → 3.80 ms; Wilcoxon …, Holm p=0.0004)" and the like."""
    medians = f"median {t.base_median_ms:.2f} → {t.cand_median_ms:.2f} ms"
    if verdict == "slower":
        interval = f" (95% CI {_times(t.ratio_low)}–{_times(t.ratio_high)})" if t.rounds else ""
        return (f"got {_times(t.ratio)}x slower{interval} ({medians}; {_test_name(t)} "
                f"Holm p={format_p(t.p_slower_holm)})")  # fmt: skip
    if verdict == "faster":
        speedup = 1 / t.ratio if t.ratio > 0 else math.inf
        interval = f" (95% CI {_times(1 / t.ratio_high)}–{_times(1 / t.ratio_low)})" if t.rounds else ""
        return (f"got {_times(speedup)}x faster{interval} ({medians}; {_test_name(t)} "
                f"Holm p={format_p(t.p_faster_holm)})")  # fmt: skip
    test = f"{_test_name(t)} Holm p={format_p(t.p_slower_holm)}"
    return f"no significant difference (ratio {t.ratio:.2f}, {medians}; {test})"


def decide(pairs: Mapping[str, tuple[Side, Side]], options: GateOptions | None = None) -> list[QueryDecision]:
    """Judge every query of a comparison: work gate, then timing tests Holm-corrected across the catalog."""
    options = options or GateOptions()
    tests: dict[str, TimingTest] = {}
    for name, (base, cand) in pairs.items():
        if base.samples_ms and cand.samples_ms:
            rounds, pair = shared_rounds(base, cand), paired(base, cand)
            n = min(len(base.samples_ms), len(cand.samples_ms)) if pair else None
            tests[name] = timing_test(base.samples_ms[:n], cand.samples_ms[:n], pair, rounds, options.looks)
    names = list(tests)
    slower = holm([tests[n].p_slower for n in names])
    faster = holm([tests[n].p_faster for n in names])
    for name, ps, pf in zip(names, slower, faster, strict=True):
        tests[name] = replace(tests[name], p_slower_holm=ps, p_faster_holm=pf)
    return [_decide_one(name, base, cand, tests.get(name), options) for name, (base, cand) in pairs.items()]


def _decide_one(name: str, base: Side, cand: Side, t: TimingTest | None, options: GateOptions) -> QueryDecision:
    work = work_verdict(base, cand, options.max_work_regression)
    time_only = work.same
    floor = options.floor_for(cand.budget_ms if cand.budget_ms is not None else base.budget_ms, time_only)
    reasons: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    if work.status == "fail":
        reasons.append(f"work regressed: {work.evidence()}")
    elif work.plan_changes or work.draws_with_other_plan:
        warnings.append(
            f"plan changed with no work increase beyond {options.max_work_regression:.0%}: {work.evidence()}"
        )
    if any(c.metric == "rows" for c in work.changes):
        rows = next(c for c in work.changes if c.metric == "rows")
        warnings.append(f"{rows}: the query returns different results")
    if work.sources[0] != work.sources[1] and all(work.sources):
        warnings.append(f"work metrics come from {work.sources[0]} (base) and {work.sources[1]} (candidate)")
    if t is None:
        if base.samples_ms and not cand.samples_ms:
            reasons.append(f"the candidate has no samples ({cand.error or 'not measured'})")
        elif cand.samples_ms:
            warnings.append(f"the baseline has no samples ({base.error or 'not measured'}): not compared")
        else:
            warnings.append("neither side has samples: not compared")
        status: Status = "fail" if reasons else "warn"
        return QueryDecision(name, status, work, None, "not compared", floor, tuple(reasons), tuple(warnings),
                             tuple(notes))  # fmt: skip
    verdict: TimingVerdict = "no significant difference"
    if t.p_slower_holm < options.alpha and t.ratio > 1.0:
        verdict = "slower"
        described = describe_timing(t, verdict)
        if t.ratio <= 1.0 + options.max_regression:
            notes.append(f"{described}; not failed: within --max-regression {options.max_regression:.0%}")
        elif t.shift_ms <= floor:
            notes.append(f"{described}; not failed: +{t.shift_ms:.2f} ms per execution is below the floor of "
                         f"{floor:.2f} ms ({options.describe_floor(time_only)})")  # fmt: skip
        else:
            reasons.append(described)
    elif t.p_faster_holm < options.alpha and t.ratio < 1.0:
        verdict = "faster"
    # an improvement is claimed only when it clears the thresholds a regression must
    improved = verdict == "faster" and t.ratio * (1.0 + options.max_regression) < 1.0 and -t.shift_ms > floor
    status = "fail" if reasons else "warn" if warnings else "pass"
    return QueryDecision(name, status, work, t, verdict, floor, tuple(reasons), tuple(warnings), tuple(notes),
                         improved)  # fmt: skip


def settled(decision: QueryDecision, options: GateOptions, queries: int) -> bool:
    """Whether more rounds can no longer change this query's verdict, so a sequential A/B stops measuring it.

    Work regressions are nearly deterministic: decided after the first round. A timing regression is settled
    once its sequential p-value clears alpha even Bonferroni-corrected over the ``queries`` compared (Holm's
    strictest step: the final Holm correction will agree) and it clears the ratio and floor thresholds (an
    improvement likewise); a query is settled as unchanged once the 95% interval of its ratio lies within
    ``max_regression`` on both sides.
    """
    if decision.work.status == "fail":
        return True
    t = decision.timing
    if t is None or not t.rounds:
        return False
    limit = 1.0 + options.max_regression
    beyond = abs(t.shift_ms) > decision.floor_ms
    if t.p_slower * queries < options.alpha and t.ratio > limit and beyond:
        return True
    if t.p_faster * queries < options.alpha and t.ratio * limit < 1.0 and beyond:
        return True
    return 1.0 / limit < t.ratio_low and t.ratio_high < limit


def _test_name(t: TimingTest) -> str:
    if t.rounds:
        return f"t-test over {t.rounds} rounds"
    return "Wilcoxon paired" if t.paired else "Mann-Whitney"


def format_p(value: float) -> str:
    """A p-value as reports print it: two significant digits, scientific below 0.001."""
    return f"{value:.2g}" if value >= 0.001 else f"{value:.1e}"


def _times(value: float) -> str:
    return f"{value:.1f}" if value >= 1.5 else f"{value:.2f}"


def _count(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or float(value).is_integer() else f"{value:,.1f}"
