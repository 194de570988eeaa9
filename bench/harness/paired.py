"""Paired ratios with confidence intervals: the one place a run with trials is turned into statistics.

A run made by ``python -m bench.run`` times implementations in interleaved *trials*: in each trial every
implementation (and, for ``make compare REF=``, the baseline's code too) times one round of a benchmark,
in a fresh random order (docs/method.md). A slow phase of the machine then lands on every side of a
comparison alike, and a ratio of two benchmarks is taken *within* each trial before anything is pooled:

- ``per_trial``: a benchmark's seconds in each trial, the median of that trial's clean rounds (with P
  processes, P rounds a trial); a round that lost its CPU (``clean`` false) is never used.
- ``ratio``: a / b on the trials both have. The estimate is the geometric mean of the per-trial ratios:
  ratios are multiplicative (a / b and b / a must be reciprocals, which arithmetic means are not), and
  the mean of log-ratios is what the trial-to-trial noise averages out of. The 95% interval is a
  bootstrap over *trials* (Kalibera & Jones 2013: resample at the level the variance lives at; rounds
  of one trial share its moment of the machine and are not independent), BCa (bias-corrected and
  accelerated: second-order accurate, and it follows a skewed distribution of log-ratios), seeded so a
  re-render prints the same digits. Below 3 pairs there is an estimate and no interval.
- ``time_interval``: one benchmark's median seconds over trials, with its bootstrap interval: the ⚠
  of a time cell in a run with trials.
- ``decide``: the paired verdict of ``make compare REF=``, head against base (its docstring argues the
  rule and its threshold).

Kept free of pytest so tests can feed it synthetic rounds.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from statistics import median

import numpy as np

from .compare import FASTER, NOISE, SLOWER, UNDECIDED, Verdict
from .timing import UNSTABLE

#: the confidence of every interval shown
CONFIDENCE = 0.95
#: the fewest paired trials an interval is computed from
MIN_PAIRS = 3
#: percent beyond 1 the whole interval of head/base must lie to call a change (``decide``)
THRESHOLD = 3.0
#: bootstrap resamples: the interval's ends move by well under a percent of the ratio between seeds
RESAMPLES = 4000
#: the bootstrap's seed: the same run renders the same digits
SEED = 20170422


@dataclass(frozen=True)
class Ratio:
    """A paired ratio: its estimate, its interval (None, None below MIN_PAIRS pairs), the pairs used."""
    estimate: float
    low: float | None
    high: float | None
    pairs: int

    @property
    def half_width(self) -> float | None:
        """The interval's larger distance from the estimate, as a fraction of it (None: no interval)."""
        if self.low is None or self.high is None:
            return None
        return max(self.high / self.estimate - 1, 1 - self.low / self.estimate)

    @property
    def wide(self) -> bool:
        """The interval reaches further than ``timing.UNSTABLE`` from the estimate (or there is none):
        the next run may well disagree with it, whatever the rounds' IQR says."""
        width = self.half_width
        return width is None or width > UNSTABLE

    def scaled(self, factor: float) -> Ratio:
        """The same ratio times a constant (rounds of different sizes compared per example)."""
        return Ratio(self.estimate * factor, None if self.low is None else self.low * factor,
                     None if self.high is None else self.high * factor, self.pairs)


def per_trial(rounds) -> dict[int, float]:
    """trial -> seconds: the median of that trial's clean rounds; a trial with none is absent."""
    seconds: dict[int, list[float]] = {}
    for r in rounds or ():
        if r.get("clean", True) and _finite(r.get("seconds")):
            seconds.setdefault(r["trial"], []).append(r["seconds"])
    return {trial: median(s) for trial, s in seconds.items()}


def by_process(rounds) -> dict[int, dict[int, float]]:
    """process -> (trial -> seconds of its clean round): each of an implementation's processes apart."""
    out: dict[int, list] = {}
    for r in rounds or ():
        out.setdefault(r.get("process", 1), []).append(r)
    return {p: per_trial(rs) for p, rs in out.items()}


def ratio(a_rounds, b_rounds, confidence: float = CONFIDENCE) -> Ratio | None:
    """a / b paired on the trials both have (None when they share no trial with a positive time).
    Where either side was timed in several processes, the interval resamples processes too
    (``_across_processes``)."""
    a_procs, b_procs = by_process(a_rounds), by_process(b_rounds)
    if len(a_procs) > 1 or len(b_procs) > 1:
        return _across_processes(a_procs, b_procs, confidence)
    a, b = per_trial(a_rounds), per_trial(b_rounds)
    logs = np.array([math.log(a[t] / b[t]) for t in sorted(a.keys() & b.keys()) if a[t] > 0 and b[t] > 0])
    if not len(logs):
        return None
    estimate = math.exp(logs.mean())
    if len(logs) < MIN_PAIRS:
        return Ratio(estimate, None, None, len(logs))
    low, high = _interval(logs, np.mean, confidence)
    return Ratio(estimate, math.exp(low), math.exp(high), len(logs))


def _across_processes(a_procs, b_procs, confidence: float) -> Ratio | None:
    """a / b where a side ran in several processes. A process is a sample too: its memory layout, where
    its pages and threads landed, make all its rounds a few percent faster or slower than another
    process's of the same code, and trials within one process cannot show that (Kalibera & Jones,
    ISMM 2013: resample at every level that varies). Per trial, each side's time is the geometric mean
    over its processes; the estimate is the geometric mean over trials of a / b; the interval is a
    two-level bootstrap: each side's processes resampled with replacement, then the trials."""
    trials = sorted(set().union(*(p.keys() for p in a_procs.values())) & set().union(*(p.keys() for p in b_procs.values())))
    if not trials:
        return None

    def logs(procs):
        return np.array([[math.log(p[t]) if p.get(t, 0) > 0 else np.nan for t in trials] for p in procs.values()])
    la, lb = logs(a_procs), logs(b_procs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)        # a trial with no clean round on one side
        diff = np.nanmean(la, axis=0) - np.nanmean(lb, axis=0)
        kept = np.isfinite(diff)
        if not kept.any():
            return None
        estimate = math.exp(float(diff[kept].mean()))
        if kept.sum() < MIN_PAIRS:
            return Ratio(estimate, None, None, int(kept.sum()))
        rng = np.random.default_rng(SEED)
        pick = rng.integers(0, len(trials), (RESAMPLES, 1, len(trials)))         # the trials, as drawn

        def side(l):                                                              # (resample, trial) log time
            drawn = l[rng.integers(0, len(l), (RESAMPLES, len(l)))]              # its processes, as drawn
            return np.nanmean(np.take_along_axis(drawn, np.repeat(pick, len(l), axis=1), axis=2), axis=1)
        stats = np.nanmean(side(la) - side(lb), axis=1)
    tail = (1 - confidence) / 2
    low, high = np.nanquantile(stats, [tail, 1 - tail])
    return Ratio(estimate, min(math.exp(low), estimate), max(math.exp(high), estimate), int(kept.sum()))


def time_interval(rounds, confidence: float = CONFIDENCE) -> Ratio | None:
    """A benchmark's median seconds over its trials with its bootstrap interval, as a ``Ratio`` (of
    seconds to one second: ``wide`` and ``half_width`` read the same); None without a clean round."""
    seconds = np.array(sorted(per_trial(rounds).values()))
    if not len(seconds):
        return None
    estimate = float(np.median(seconds))
    if len(seconds) < MIN_PAIRS:
        return Ratio(estimate, None, None, len(seconds))
    low, high = _interval(seconds, np.median, confidence)
    return Ratio(estimate, low, high, len(seconds))


def _interval(values: np.ndarray, statistic, confidence: float) -> tuple[float, float]:
    """The bootstrap interval of ``statistic`` over ``values``: BCa, or the percentile interval where
    BCa degenerates (every value equal, or too few distinct ones for its jackknife); a point when even
    that has no width."""
    from scipy.stats import bootstrap
    point = float(statistic(values))
    if np.ptp(values) == 0:
        return point, point
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = bootstrap((values,), lambda x, axis: statistic(x, axis=axis), confidence_level=confidence,
                            n_resamples=RESAMPLES, method=method, vectorized=True, rng=np.random.default_rng(SEED))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return min(low, point), max(high, point)
    return point, point


def decide(head_rounds, base_rounds, threshold_pct: float = THRESHOLD) -> Verdict:
    """The paired verdict on one benchmark: head / base over the trials both timed.

    - ``slower``: the whole 95% interval of head / base lies above 1 + threshold / 100;
    - ``faster``: the whole interval lies below 1 / (1 + threshold / 100) (the same distance in log);
    - ``noise``: neither; ``undecided``: fewer than MIN_PAIRS pairs, so no interval.

    Why the interval's *far* end and a threshold, not "the interval excludes 1": a compare judges ~40
    benchmarks at once. Paired trials take the machine's drift out of head / base, so on unchanged code
    its true value is 1 and each 95% interval lies wholly above 1 for about 2.5% of benchmarks: about one
    false "slower" per run of 40 benchmarks, and the issue's target is none in 5 runs (200 judgements).
    Requiring the lower end to clear 1 + t makes a false alarm an error of t plus the interval's
    own half-width h: with the estimate's standard error s ~ h / 1.96 that is z = t / s + 1.96 standard
    errors. At t = 3% and intervals of about ±4%, z ~ 3.4 (p ~ 3e-4 per benchmark, ~1% per run of 40:
    a Bonferroni-sized rate), while a true 10% slowdown clears 1.03 when its estimate comes out above
    ~7%, about 1.5 standard errors below its mean. A larger t buys little against false alarms and
    loses the 10% slowdown as soon as intervals widen; a smaller one lets a false alarm in every few
    runs. The bootstrap over 10-20 trials covers a little less than its nominal 95%, so the test
    checks the rates by simulation, not by this arithmetic: tests/test_paired.py judges 200 unchanged
    and 40 slowed benchmarks on synthetic trials (targets: no false regression in 5 runs of ~40; a 10%
    slowdown found in 4 of 5). Intervals wider than ±10% are flagged ``wide`` wherever they are shown:
    there the per-benchmark false-alarm rate approaches 2.5%, and more trials are what narrow them.
    """
    r = ratio(head_rounds, base_rounds)
    counts = (len(per_trial(base_rounds)), len(per_trial(head_rounds)))
    if r is None or r.low is None:
        pairs = 0 if r is None else r.pairs
        return Verdict(UNDECIDED, None if r is None else r.estimate - 1, None, counts,
                       f"{pairs} paired trial(s): {MIN_PAIRS} are needed for an interval", False)
    bound = 1 + threshold_pct / 100
    interval = fmt_ratio(r, mark=False)
    if r.low > bound:
        return Verdict(SLOWER, r.estimate - 1, None, counts,
                       f"head / base {interval}: the whole interval above {bound:g}", True)
    if r.high < 1 / bound:
        return Verdict(FASTER, r.estimate - 1, None, counts,
                       f"head / base {interval}: the whole interval below 1/{bound:g}", False)
    return Verdict(NOISE, r.estimate - 1, None, counts,
                   f"head / base {interval}: within {threshold_pct:g}% of 1" + (" (wide)" if r.wide else ""), False)


def fmt_ratio(r: Ratio | None, mark: bool = True) -> str:
    """``2.31× [2.20, 2.45]``; without an interval ``2.31×``; `` ⚠`` after it when it is wide."""
    if r is None:
        return "—"
    text = f"{r.estimate:.2f}×" + ("" if r.low is None else f" [{r.low:.2f}, {r.high:.2f}]")
    return text + (" ⚠" if mark and r.wide else "")


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
