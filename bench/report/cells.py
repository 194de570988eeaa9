"""The cells that carry a measurement's uncertainty: a time with its spread, a ratio of two times.

A run timed in interleaved trials (``python -m bench.run``: every round recorded with its trial) gets
paired statistics from bench/harness/paired.py: a ratio of two implementations is the geometric mean
of their per-trial ratios with a 95% bootstrap interval over trials, ``2.31× [2.20, 2.45]``, and ⚠
means that interval (for a time: the interval of its median over trials) reaches further than ±10%,
whatever the rounds' IQR says. A run of plain ``pytest bench`` records no trials: its ratios are of
medians measured minutes apart and ⚠ is the IQR's, as before; no interval is invented for it.
"""
from __future__ import annotations

from ..harness.paired import Ratio, fmt_ratio, ratio as paired_ratio, time_interval
from ..harness.timing import OTHERS_WARN, UNSTABLE
from .reading import Run, Timing


def shared(*timings: Timing) -> bool:
    """Other processes took more than OTHERS_WARN of the CPUs during one of these timings. One timed in
    trials is judged by its rounds, as its figures are: only clean rounds are summarized and paired
    (bench.harness.cpu.clean, which allows the clock's resolution: two ticks per CPU are more than
    OTHERS_WARN of a 50 ms block), so it is shared only when not one of its rounds was clean."""
    def one(t: Timing) -> bool:
        if t.rounds:
            return not any(r.get("clean", True) for r in t.rounds)
        return (t.extra.get("other_processes_cpu_share") or 0) > OTHERS_WARN
    return any(map(one, timings))


def fmt_spread(t: Timing) -> str:
    """" ±x%", then ⚠ when the spread is large and ‡ when other processes shared the CPUs. With trials x
    is the half-width of the median's 95% interval over trials (⚠: beyond ±10%); without, the IQR."""
    if t.rounds:
        interval = time_interval(t.rounds)         # None: not one clean round; no interval: under 3 trials
        width = interval.half_width if interval else None
        text = ("" if width is None else f" ±{100 * width:.0f}%") + (" ⚠" if interval is None or interval.wide else "")
    else:
        s = t.spread
        if s["iqr_frac"] is None:
            return ""
        text = f" ±{100 * s['iqr_frac']:.0f}%" + (" ⚠" if s["unstable"] else "")
    return text + " ‡" if shared(t) else text


def paired(slow: Timing, fast: Timing) -> Ratio | None:
    """slow's time per example / fast's, paired on the trials both were timed in (None: either has no
    trials). Where they share no trial, the medians' ratio with no interval (shown ⚠)."""
    if not (slow.rounds and fast.rounds):
        return None
    r = paired_ratio(slow.rounds, fast.rounds)
    scale = fast.examples / slow.examples          # rounds of different sizes: compared per example
    return r.scaled(scale) if r else Ratio(slow.per_example / fast.per_example, None, None, 0)


def ratio(slow: Timing | None, fast: Timing) -> str:
    """How many times faster ``fast`` is than ``slow`` per example. With trials: the paired ratio and
    its interval (⚠ when wider than ±10%); without: the medians' ratio, ⚠ if either timing was
    unstable. ‡ if other processes took a share of the CPUs during either."""
    return "—" if slow is None else ratio_text(slow, fast, paired(slow, fast))


def ratio_text(slow: Timing, fast: Timing, r: Ratio | None) -> str:
    """``ratio``'s text, given ``paired(slow, fast)`` (a caller that needs the Ratio too computes it once)."""
    if r is not None:
        text = fmt_ratio(r)
    else:
        text = f"{slow.per_example / fast.per_example:.2f}×"
        text += " ⚠" if slow.spread["unstable"] or fast.spread["unstable"] else ""
    return text + (" ‡" if shared(slow, fast) else "")


def speedup(base: Timing | None, t: Timing, same_run: bool = True) -> str:
    """A speedup table's cell: base's time per example / t's ("—" where base did not pass). In one run
    with trials, the paired ratio with its interval; across runs (machines), the medians' ratio."""
    if base is None or not base.passed:
        return "—"
    r = paired(base, t) if same_run else None
    return fmt_ratio(r) if r is not None else f"{base.per_example / t.per_example:.2f}×"


def method(run: Run) -> str:
    """One sentence: how this run's ratios were measured."""
    if run.trials:
        return ("Ratios are paired: the implementations took turns in interleaved trials (one round each per "
                "trial, in a random order), a ratio is the geometric mean of its per-trial ratios and [brackets] "
                f"its 95% bootstrap interval over trials; ⚠: an interval wider than ±{UNSTABLE:.0%}, so the next "
                "run may disagree.")
    return ("Ratios are of medians measured minutes apart (a run without trials): no interval; ⚠: one of the "
            "two timings was unstable.")
