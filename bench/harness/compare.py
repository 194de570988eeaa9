"""Deciding whether a benchmark got slower, faster, or neither, from two runs' raw samples.

Each benchmark's rounds (pytest-benchmark's ``stats["data"]``, kept by ``--benchmark-save-data``)
are compared with the baseline's by a two-sided Mann-Whitney U test, as asv does: it assumes
nothing about the distribution of round times (skewed by the odd interrupted round), and with
few rounds scipy computes its exact p-value. The verdict:

- ``slower`` / ``faster``: p < alpha, the medians moved that way (and, where both runs were timed
  in several processes, every process of one run beyond every process of the other: below);
- ``noise``: p >= alpha, not distinguishable from the spread of the rounds;
- ``undecided``: too few rounds for the test ever to reach alpha (with n and m rounds, the
  smallest two-sided p-value the exact test can give is 2 / C(n + m, n): 3 against 3 rounds
  cannot go below 0.1), or a run without samples. It says so rather than guessing.

A run fails only on a ``slower`` benchmark whose median also grew by more than the threshold (with
several processes a side: whose ranges of process medians are that far apart, below): with
thousands of rounds of a microsecond call, a 1% shift is significant but no regression.

Rounds of one process are not independent: they share that process's and that minute's state
(where its threads run, what the machine's other tenants do). On the 2-core dev box, processes
timing one benchmark one after another gave medians nearly twice apart, each from a thousand
rounds or more, and the test on rounds alone called such a shift a change with a vanishing p
(docs/measurements.md, "Compare"). ``python -m bench.run`` therefore times every benchmark in P
processes minutes apart and keeps each one's median (``extra_info["processes"]``); where both runs
have two or more, a change counts only if every process of this run was slower (or faster) than
every process of the baseline -- the ranges of process medians must not overlap -- as well as
significant in the rounds, and a slowdown fails the run only if the gap between the two ranges
(this run's fastest process against the baseline's slowest) passes the threshold.

This is the weaker of nnbench's two compares: the baseline was measured earlier, and whatever the
machine did in between lands on one side. ``make compare REF=<rev>`` times the baseline's code and
this code in the same interleaved trials and judges each benchmark on its paired rounds
(``compare_paired``, ``render_paired`` below; the statistics in paired.py).

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


def decide(before, now, alpha: float = ALPHA, threshold: float = THRESHOLD,
           processes: tuple = (None, None), unit: float = 1.0) -> Verdict:
    """The verdict on one benchmark from its baseline's round times and this run's; ``processes``:
    each run's per-process medians, where it was timed in several processes (else None), shown
    times ``unit`` (compare_runs passes rounds per example and shows them per round)."""
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
    if change == 0:
        return Verdict(NOISE, change, p, rounds, "the same median (the rounds spread differently)", False)
    old_p, new_p = (sorted(x or ()) for x in processes)
    if len(old_p) > 1 and len(new_p) > 1:
        return _by_process(change, p, rounds, old_p, new_p, threshold, unit)
    beyond = 100 * abs(change) > threshold
    way = SLOWER if change > 0 else FASTER
    return Verdict(way, change, p, rounds,
                   f"{way}, {'beyond' if beyond else 'within'} the {threshold:g}% threshold (one process a side: "
                   "a shift between processes would look the same)", beyond and way == SLOWER)


def _by_process(change, p, rounds, old_p, new_p, threshold, unit) -> Verdict:
    """Significant in the rounds; now the processes. Their ranges overlapping: noise. Apart: the
    change is what separates the nearest two, this run's fastest process from the baseline's
    slowest (or the other way round), and a slowdown fails only when that gap passes the threshold.
    On the dev box one compare of unchanged code found both of a benchmark's processes above both of
    the baseline's, its medians past the threshold and its nearest processes well within it
    (docs/measurements.md, "Compare"; tests/test_bench_compare.py replays it)."""
    ranges = f"median of each process: {spread(old_p, unit)} before, {spread(new_p, unit)} now"
    if not (new_p[0] > old_p[-1] or new_p[-1] < old_p[0]):
        return Verdict(NOISE, change, p, rounds, f"the processes overlap ({ranges}): a shift between processes, "
                                                  "not a change", False)
    way = SLOWER if change > 0 else FASTER
    gap = new_p[0] / old_p[-1] - 1 if way == SLOWER else 1 - new_p[-1] / old_p[0]
    beyond = 100 * gap > threshold
    return Verdict(way, change, p, rounds,
                   f"{way} in every process, by {100 * gap:.0f}% from the nearest ({ranges}): "
                   f"{'beyond' if beyond else 'within'} the {threshold:g}% threshold", beyond and way == SLOWER)


def spread(values, unit: float = 1.0) -> str:
    """'a-b' of per-process medians, in the report's time format."""
    from .timing import fmt_time
    return f"{fmt_time(unit * min(values))}-{fmt_time(unit * max(values))}"


# -- which run to compare with ------------------------------------------------------------------------
def newest_of_mode(saved, mode: str):
    """The newest (path, run) of ``mode`` among saved runs given oldest first (as pytest-benchmark's
    ``FileStorage.load`` yields them), or None."""
    return next(((p, d) for p, d in reversed(list(saved)) if d.get("nnbench", {}).get("mode") == mode), None)


def other_machine(theirs: str, ours: str | None) -> str | None:
    """Why a baseline recorded under another machine label says nothing about a change here, or None."""
    return f"the baseline was measured on machine {theirs!r}, this is {ours!r}" if ours and theirs != ours else None


def check_baseline(run) -> None:
    """ValueError, saying what, unless ``run`` (a saved run's JSON) can be compared with: a list of
    benchmarks each with a finite median and, where kept, finite round times. A history file edited by
    hand or written by another tool otherwise gives a traceback, or worse "no regression" against a
    median of NaN (every comparison with NaN is false)."""
    benchmarks = run.get("benchmarks") if isinstance(run, dict) else None
    if not isinstance(benchmarks, list):
        raise ValueError("not a saved pytest-benchmark run (no 'benchmarks' list)")
    for i, bench in enumerate(benchmarks):
        stats = bench.get("stats") if isinstance(bench, dict) else None
        name = bench.get("name", f"number {i}") if isinstance(bench, dict) else f"number {i}"
        if not isinstance(stats, dict) or not isinstance(bench.get("fullname"), str):
            raise ValueError(f"benchmark {name} has no fullname or stats")
        if not _seconds(stats.get("median")):
            raise ValueError(f"benchmark {name}: its median {stats.get('median')!r} is not a measured time")
        data = stats.get("data")
        if data is not None and not (isinstance(data, list) and all(map(_seconds, data))):
            bad = next((d for d in data if not _seconds(d)), data) if isinstance(data, list) else data
            raise ValueError(f"benchmark {name}: its round times hold {bad!r}, not a time in seconds")
        procs = (bench.get("extra_info") or {}).get("processes") or []
        if not (isinstance(procs, list) and all(isinstance(p, dict) and _seconds(p.get("median")) for p in procs)):
            raise ValueError(f"benchmark {name}: its processes' medians are not times in seconds")


def _seconds(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


# -- two runs, as pytest-benchmark's JSON has them (a saved run's "benchmarks", or Metadata.as_dict()) --
def _per_example(values, extra: dict):
    examples = extra.get("examples") or 1
    return None if values is None else [v / examples for v in values]


def _processes(bench: dict):
    """Each process's median per example, where the benchmark was timed in two or more."""
    extra = bench.get("extra_info", {})
    procs = extra.get("processes") or ()
    return ([p["median"] / (p.get("examples") or extra.get("examples") or 1) for p in procs]
            if len(procs) > 1 else None)


def compare_runs(baseline: list[dict], current: list[dict], alpha: float = ALPHA, threshold: float = THRESHOLD):
    """Every benchmark of ``current`` that ``baseline`` has too, judged on its rounds per example (a
    test id may cover another prefix of the epoch in each run: the reference's epoch, ~4 s, is timed
    on a tenth of it when the estimate passes 4 s). Returns (table rows, {verdict: count}, names of
    the regressions)."""
    from .timing import fmt_time
    by_name = {b["fullname"]: b for b in baseline}
    rows, counts, regressions = [], {}, []
    for bench in current:
        before = by_name.get(bench["fullname"])
        if before is None or not bench.get("stats", {}).get("rounds"):
            continue
        extra, old_extra = bench.get("extra_info", {}), before.get("extra_info", {})
        if extra.get("status", "passed") != "passed":
            rows.append([bench["name"], "", "", "", "", "", "", "this run's test failed: not compared"])
            continue
        v = decide(_per_example(before["stats"].get("data"), old_extra), _per_example(bench["stats"].get("data"), extra),
                   alpha, threshold, (_processes(before), _processes(bench)), unit=extra.get("examples") or 1)
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
        if v.regression:
            regressions.append(bench["name"])
        a, b = old_extra.get("examples"), extra.get("examples")
        rows.append([bench["name"], f"{v.rounds[0]} / {v.rounds[1]}", fmt_time(before["stats"]["median"]),
                     fmt_time(bench["stats"]["median"]), "" if v.change is None else f"{100 * v.change:+.1f}%",
                     "" if v.p is None else f"{v.p:.2g}", v.verdict.upper() if v.regression else v.verdict,
                     v.why + (f" (rounds of {a:,} and {b:,} examples: compared per example)" if a and b and a != b
                              else "")])
    return rows, counts, regressions


HEADERS = ["benchmark", "rounds (before / now)", "median before", "median now", "change", "p", "verdict", ""]


def render(rows, counts, alpha: float, fail: float | None) -> str:
    """The method, the table and the count of each verdict, as the terminal shows them."""
    from tabulate import tabulate
    method = ("The weaker test, against a run saved earlier: the machine may have changed since; "
              "`make compare REF=<rev>` measures both now.\n"
              f"Mann-Whitney U on each benchmark's rounds, two-sided, alpha {alpha:g}; "
              + (f"a run fails on a significant slowdown beyond {fail:g}%" if fail is not None
                 else "no --bench-compare-fail: the run does not fail on a slowdown"))
    return "\n".join([method, tabulate(rows, headers=HEADERS, disable_numparse=True),
                      "nnbench compare: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))]
                     + ([drift] if (drift := one_way(counts)) else []))


def one_way(counts) -> str | None:
    """A warning when most benchmarks moved the same way. A change to one implementation moves its
    own rows; the machine (or code every implementation shares) moves them all: `make compare
    MODE=full` on unchanged code found 41 of 121 benchmarks slower in every process and 3 faster,
    and its one regression (numba's backward at b=10, 16% between the nearest processes) was
    that, not a change."""
    slower, faster, total = counts.get(SLOWER, 0), counts.get(FASTER, 0), sum(counts.values())
    for many, few, way in ((slower, faster, "slower"), (faster, slower, "faster")):
        if total and many >= total / 4 and many >= 5 * max(few, 1):
            return (f"nnbench: {many} of {total} benchmarks {way}, {few} the other way: when most move one way, "
                    "suspect the machine (another load, another clock) or code every implementation shares before "
                    "any one implementation; re-run the compare")
    return None


def conclusion(regressions, fail: float) -> str:
    """The last line of a compare that can fail."""
    if regressions:
        return (f"nnbench: {len(regressions)} benchmark(s) significantly slower than the baseline by more than "
                f"{fail:g}%: " + ", ".join(regressions))
    return f"nnbench: no regression (no benchmark significantly slower by more than {fail:g}%)"


# -- head and base timed in the same trials (make compare REF=<rev>) ------------------------------------
PAIRED_HEADERS = ["benchmark", "trials (base / head)", "head / base [95% interval]", "verdict", ""]


def _key(bench: dict):
    """A benchmark's identity in both runs: its group and implementation (the test id otherwise)."""
    extra = bench.get("extra_info") or {}
    return (bench.get("group"), extra.get("impl")) if bench.get("group") and extra.get("impl") else bench["fullname"]


def _rounds_per_example(bench: dict) -> list[dict]:
    """The benchmark's rounds in seconds per example: head and base may time different prefixes of an epoch."""
    examples = (bench.get("extra_info") or {}).get("examples") or 1
    return [dict(r, seconds=r["seconds"] / examples) for r in (bench.get("extra_info") or {}).get("rounds") or ()]


def compare_paired(head: list[dict], base: list[dict], threshold: float | None = None):
    """Every benchmark of ``head`` that ``base`` timed in the same trials, decided by ``paired.decide`` on
    head / base per example. Returns (table rows, {verdict: count}, names of the regressions)."""
    from .paired import THRESHOLD, decide, fmt_ratio, ratio
    threshold = THRESHOLD if threshold is None else threshold
    by_key = {_key(b): b for b in base}
    rows, counts, regressions = [], {}, []
    for bench in head:
        before = by_key.get(_key(bench))
        if before is None:
            continue
        if (bench.get("extra_info") or {}).get("status", "passed") != "passed":
            rows.append([bench["name"], "", "", "", "head's test failed: not compared"])
            continue
        now, then = _rounds_per_example(bench), _rounds_per_example(before)
        v = decide(now, then, threshold)
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
        if v.regression:
            regressions.append(bench["name"])
        rows.append([bench["name"], f"{v.rounds[0]} / {v.rounds[1]}", fmt_ratio(ratio(now, then)),
                     v.verdict.upper() if v.regression else v.verdict,
                     v.why.split(": ", 1)[1] if v.why.startswith("head / base ") else v.why])
    return rows, counts, regressions


def render_paired(rows, counts, regressions, threshold: float | None = None) -> str:
    """The method, the table, the count of each verdict and the conclusion, as the terminal shows them."""
    from tabulate import tabulate
    from .paired import THRESHOLD
    threshold = THRESHOLD if threshold is None else threshold
    method = ("Base and head timed in the same interleaved trials; per benchmark, head / base per example is the "
              "geometric mean of its per-trial ratios with a 95% bootstrap interval over trials (⚠: wider than "
              f"±10%); slower (a regression) or faster when the whole interval lies beyond {threshold:g}% of 1.")
    lines = [method, tabulate(rows, headers=PAIRED_HEADERS, disable_numparse=True),
             "nnbench compare: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))]
    lines += [drift] if (drift := one_way(counts)) else []
    if regressions:
        lines.append(f"nnbench: {len(regressions)} benchmark(s) slower than the base, the whole interval beyond "
                     f"{threshold:g}%: " + ", ".join(regressions))
    else:
        lines.append(f"nnbench: no regression (no benchmark's interval wholly beyond {threshold:g}% slower)")
    return "\n".join(lines)
