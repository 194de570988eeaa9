"""Deciding whether a benchmark got slower, faster, or neither, from two runs' raw samples.

Each benchmark's rounds (pytest-benchmark's ``stats["data"]``, kept by ``--benchmark-save-data``)
are compared with the baseline's by a two-sided Mann-Whitney U test, as asv does: it assumes
nothing about the distribution of round times (skewed by the odd interrupted round), and with
few rounds scipy computes its exact p-value. The verdict:

- ``slower`` / ``faster``: p < alpha, the medians moved that way;
- ``noise``: p >= alpha, not distinguishable from the spread of the rounds;
- ``undecided``: too few rounds for the test ever to reach alpha (with n and m rounds, the
  smallest two-sided p-value the exact test can give is 2 / C(n + m, n): 3 against 3 rounds
  cannot go below 0.1), or a run without samples. It says so rather than guessing.

A run fails only on a ``slower`` benchmark whose median also grew by more than the threshold:
with thousands of rounds of a microsecond call, a 1% shift is significant but no regression.

Kept free of pytest so tests can feed it synthetic samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median

#: the test's significance level (two-sided)
ALPHA = 0.05
#: percent a significant slowdown's median must grow by to fail a run
THRESHOLD = 15.0

SLOWER, FASTER, NOISE, UNDECIDED = "slower", "faster", "noise", "undecided"


def smallest_p(n: int, m: int) -> float:
    """The smallest two-sided p-value the exact Mann-Whitney U test can give n against m samples."""
    return min(1.0, 2 / math.comb(n + m, n)) if n and m else 1.0


def rounds_needed(alpha: float = ALPHA) -> int:
    """The fewest rounds per run (the same in both) with which the test can reach ``alpha``."""
    n = 1
    while smallest_p(n, n) >= alpha:
        n += 1
    return n


@dataclass(frozen=True)
class Verdict:
    verdict: str                 # SLOWER, FASTER, NOISE or UNDECIDED
    change: float | None         # median now / median before - 1
    p: float | None              # the test's p-value (None when undecided)
    rounds: tuple[int, int]      # (before, now)
    why: str                     # one phrase, for the table
    regression: bool             # slower, significant, and beyond the threshold: fails the run


def decide(before, now, alpha: float = ALPHA, threshold: float = THRESHOLD) -> Verdict:
    """The verdict on one benchmark from its baseline's round times and this run's."""
    from scipy.stats import mannwhitneyu
    before, now = list(before or ()), list(now or ())
    rounds = (len(before), len(now))
    change = (median(now) / median(before) - 1) if before and now and median(before) > 0 else None
    if not before or not now:
        which = "the baseline" if not before else "this run"
        return Verdict(UNDECIDED, change, None, rounds,
                       f"{which} kept no round times (save it with --benchmark-save-data)", False)
    floor = smallest_p(*rounds)
    if floor >= alpha:
        return Verdict(UNDECIDED, change, None, rounds,
                       f"too few rounds to decide ({rounds[0]} and {rounds[1]}: the test cannot go below "
                       f"p = {floor:.2g}; {rounds_needed(alpha)} each are needed at alpha {alpha:g})", False)
    p = float(mannwhitneyu(before, now, alternative="two-sided").pvalue)
    if not p < alpha:
        return Verdict(NOISE, change, p, rounds, "not distinguishable from noise", False)
    if change > 0:
        beyond = 100 * change > threshold
        return Verdict(SLOWER, change, p, rounds,
                       f"slower, beyond the {threshold:g}% threshold" if beyond
                       else f"slower, within the {threshold:g}% threshold", beyond)
    if change < 0:
        return Verdict(FASTER, change, p, rounds, "faster", False)
    return Verdict(NOISE, change, p, rounds, "the same median (the rounds spread differently)", False)
