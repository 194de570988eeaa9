"""The per-phase tables: implementations x batch sizes of time, speedups, throughput, GFLOP/s and
memory, the legend of their marks, and the notes a page says once (skipped, unpinned, unavailable)."""
from __future__ import annotations

from tabulate import tabulate

from ..harness.phases import PHASES, REFERENCE
from ..harness.timing import FEW_ROUNDS, OTHERS_WARN, UNSTABLE, fmt_time
from .answer import para, speed_order
from .cells import fmt_spread, method, speedup
from .memory import memory_tables
from .reading import Run, Timing

FAILED = "**FAILED**"


def batch_label(b) -> str:
    return f"b={b}"


def missing_cell(run: Run, phase: str, impl: str, **params) -> str:
    """What a table shows where there is no passed timing."""
    outcome = run.outcome(phase, impl, **params)
    if outcome and outcome["status"] == "failed":
        return FAILED
    if outcome and outcome["status"] == "skipped":
        return "skipped"
    return ""


def batches(run: Run, phase: str) -> list[int]:
    """The batch sizes something was measured at (or failed at): a column of skips says nothing."""
    found = {t.batch for t in run.timings if t.phase == phase}
    found |= {o.get("batch") for o in run.meta.get("outcomes", []) if o.get("phase") == phase
              and o.get("status") == "failed"}
    return sorted(b for b in found if isinstance(b, int))


def measured(run: Run, phase: str) -> list[str]:
    """The implementations with a timing or a failure in this phase, fastest first: one that was only
    skipped gets no row (the Skipped note says why)."""
    ran = {t.impl for t in run.timings if t.phase == phase}
    ran |= {o.get("impl") for o in run.meta.get("outcomes", []) if o.get("phase") == phase
            and o.get("status") == "failed"}
    return speed_order(run, phase, [i for i in run.available if i in ran], batches(run, phase))


def epoch_seconds(t: Timing) -> float:
    """Seconds per epoch of the preset's training set (scaled up from a prefix if one was timed)."""
    return t.median * (t.extra.get("n_train") or t.examples) / t.examples


def impl_batch_table(run: Run, phase: str, cell) -> str:
    """Implementations x batch sizes of one phase, ``cell(timing, batch)`` for each passed timing."""
    cols = batches(run, phase)
    body = []
    for impl in measured(run, phase):
        cells = []
        for b in cols:
            t = run.timing(phase, impl, batch=b)
            if t is None or not t.passed:
                cells.append(FAILED if t is not None else missing_cell(run, phase, impl, batch=b))
            else:
                cells.append(cell(t, b))
        body.append([impl] + cells)
    return tabulate(body, headers=["implementation"] + [batch_label(b) for b in cols], tablefmt="github",
                    disable_numparse=True)


def legend(phase: str, order: str = "Rows are fastest first (mean rank over the batch sizes).",
           trials: bool | str = False) -> str:
    """What the marks in a time table mean: said once per page. ``trials``: the page shows a run timed in
    interleaved trials, whose ± and ⚠ are its intervals' (bench/report/cells.py); "some": runs of both kinds."""
    paired = (f"±: the half-width of the median's 95% bootstrap interval over trials, as % of the median. ⚠ "
              f"unstable, read with care: that interval (for a ratio: its interval) is wider than ±{UNSTABLE:.0%}, "
              "whatever the rounds' IQR says.")
    iqr = (f"±IQR: the interquartile range as % of the median. ⚠ unstable, read with care: IQR (with "
           f"under {FEW_ROUNDS} rounds, max − min) above {UNSTABLE:.0%} of the median.")
    spread = (f"Runs timed in trials: {paired} Runs without: {iqr}" if trials == "some"
              else paired if trials else iqr)
    return para(spread + f" ‡ other processes "
                f"took over {OTHERS_WARN:.0%} of the CPUs during the benchmark: not trustworthy."
                + (" † timed on a prefix of the training set and scaled to the full epoch (examples/s is what "
                   "was measured)." if phase in ("epoch", "all") else "")
                + " " + order) + "\n"


def phase_tables(run: Run, phase: str, page: bool = True) -> str:
    """Time, speedups, throughput, GFLOP/s and memory for one phase: implementations x batch sizes.
    ``page``: the phase's own file, with every table and note; otherwise README's section: time,
    speedup vs numpy and peak memory, the notes said once elsewhere on the page."""
    cols = batches(run, phase)
    if not cols:
        return f"No {phase} benchmarks in this run.\n"

    def table(cell):
        return impl_batch_table(run, phase, cell)

    def time_cell(t, b):
        if phase == "epoch":
            mark = " †" if t.extra.get("subset") or t.examples < (t.extra.get("n_train") or 0) else ""
            return fmt_time(epoch_seconds(t)) + fmt_spread(t) + mark
        return fmt_time(t.median) + fmt_spread(t)

    def speedup_cell(base_name):
        return lambda t, b: speedup(run.timing(phase, base_name, batch=b), t)

    def gflops_cell(t, b):
        if "gflops" not in t.extra:
            return "—"
        return f"{t.extra['gflops']:.3g} ({t.extra['pct_peak']:.2g}%)"

    what = PHASES[phase].timed
    numpy = ["\n**Speedup vs `numpy`** (its time per example / this one's; — where it failed or did not run)\n",
             table(speedup_cell("numpy"))]
    if not page:
        return "\n".join([f"**Time** ({what})\n", table(time_cell), *numpy, "\n" + memory_tables(
            run, phase, table, notes=False, only_peak=True),
            f"Throughput, speedup vs `{REFERENCE}`, GFLOP/s and every memory table: [{phase}.md]({phase}.md).\n"])
    parts = [legend(phase, trials=run.trials) + (f"\n{para(method(run))}\n" if run.trials else ""),
             f"**Time** ({what})\n", table(time_cell), *numpy,
             f"\n**Speedup vs `{REFERENCE}`**\n", table(speedup_cell(REFERENCE)),
             "\n**Throughput** (examples per second)\n",
             table(lambda t, b: f"{t.extra['examples_per_s']:,.0f}" if "examples_per_s" in t.extra else "—"),
             "\n" + para("**GFLOP/s** (matrix-product FLOPs of the phase / median time; in brackets the share of "
                         "this machine's GEMM peak for the implementation's dtype, on its device: the GPU's for "
                         "CUDA)") + "\n",
             table(gflops_cell)]
    if any(t.extra.get("compile_seconds") for t in run.timings if t.phase == phase):
        parts += ["\n" + para("**Compile time** (seconds this network had spent compiling when it was timed: at "
                              "construction and in `warm_up` for this batch size; never inside a timing)") + "\n",
                  table(lambda t, b: f"{t.extra['compile_seconds']:.2f} s" if t.extra.get("compile_seconds") else "—")]
    parts.append("\n" + memory_tables(run, phase, table))
    return "\n".join(parts) + "\n" + notes(run, [phase])


def notes(run: Run, phases) -> str:
    """The page's notes, each said once: skipped implementations, unpinned threads, unavailable ones."""
    return skipped(run, phases) + unpinned(run, phases) + not_available(run)


def unpinned(run: Run, phases) -> str:
    """Implementations whose threads nnbench could not pin: their timings are not comparable."""
    found = {}
    for t in run.timings:
        if t.phase in phases:
            found.update({t.impl: f"{pool}: {v}" for pool, v in (t.extra.get("threads") or {}).items()
                          if str(v).startswith("not pinned")})
    return "".join("\n" + para(f"Threads not pinned: `{impl}` ({why}); its timings ran on however many threads "
                                "that library chose, so compare them with care.") + "\n" for impl, why in found.items())


def not_available(run: Run) -> str:
    if not run.unavailable:
        return ""
    return "\n" + "\n".join(["Not available here:"] + [f"- `{i}`: {r}" for i, r in run.unavailable.items()]) + "\n"


def skipped(run: Run, phases) -> str:
    """Why an implementation that runs here was skipped in these phases (it declined the network, say)."""
    reasons = {}
    for o in run.meta.get("outcomes", []):
        if o.get("phase") in phases and o.get("status") == "skipped" and o.get("impl") not in run.unavailable:
            reasons.setdefault(o.get("message", ""), []).append(o.get("impl"))
    return "".join("\n" + para(f"Skipped: {', '.join(f'`{i}`' for i in dict.fromkeys(impls))}: {why}") + "\n"
                   for why, impls in reasons.items())
