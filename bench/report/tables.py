"""The report's Markdown: per-phase tables, time to accuracy, the headline, the machine."""
from __future__ import annotations

from tabulate import tabulate

from ..harness.phases import BATCH_PHASES, PHASES, REFERENCE
from ..harness.timing import FEW_ROUNDS, OTHERS_WARN, UNSTABLE, fmt_time
from .answer import TTA, answer_rows, answer_table, compact, duration, para, speed_order, tta_answer_rows
from .host_table import machine_section
from .memory import fmt_bytes, memory_notes, memory_of, memory_tables, peak_cell
from .reading import Run, Timing

HEADLINE_BATCHES = (10, 128)
#: the epochs whose peak memory the headline shows: the smallest and the largest batch
HEADLINE_MEMORY_BATCHES = (10, 1024)
FAILED = "**FAILED**"


def fmt_spread(t: Timing) -> str:
    """" ±IQR%", then ⚠ when the spread is large and ‡ when other processes shared the CPUs."""
    s = t.spread
    if s["iqr_frac"] is None:
        return ""
    text = f" ±{100 * s['iqr_frac']:.0f}%" + (" ⚠" if s["unstable"] else "")
    return text + " ‡" if (t.extra.get("other_processes_cpu_share") or 0) > OTHERS_WARN else text


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


def legend(phase: str, order: str = "Rows are fastest first (mean rank over the batch sizes).") -> str:
    """What the marks in a time table mean: said once per page."""
    return para(f"±IQR: the interquartile range as % of the median. ⚠ unstable, read with care: IQR (with "
                f"under {FEW_ROUNDS} rounds, max − min) above {UNSTABLE:.0%} of the median. ‡ other processes "
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
        def cell(t, b):
            base = run.timing(phase, base_name, batch=b)
            if base is None or not base.passed:
                return "—"
            return f"{base.per_example / t.per_example:.2f}×"
        return cell

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
    parts = [legend(phase), f"**Time** ({what})\n", table(time_cell), *numpy,
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


def tta_presets(run: Run) -> list[str]:
    names = [t.params.get("preset_name") for t in run.timings if t.phase == TTA]
    names += [o.get("preset_name") for o in run.meta.get("outcomes", []) if o.get("phase") == TTA]
    return list(dict.fromkeys(n for n in names if n))


def tta_measured(run: Run) -> list[str]:
    """The presets something was trained (or failed) on: a preset only skipped gets no table."""
    return [p for p in tta_presets(run) if any(
        t.phase == TTA and t.params.get("preset_name") == p for t in run.timings) or any(
        o.get("phase") == TTA and o.get("preset_name") == p and o.get("status") == "failed"
        for o in run.meta.get("outcomes", []))]


TTA_TERMS = ("Time to target = training seconds (evaluation excluded) summed to the first epoch at/above "
             "target; a seed that never reaches it is stalled. × FLOP floor = median time to target / median "
             "floor, a seed's floor being its FLOPs to target (epochs × an epoch's FLOPs) at this session's GEMM "
             "peak for its dtype. Whole run = pytest-benchmark's round: training plus per-epoch evaluation. Peak "
             "memory of a run = the largest over seeds of what a seed's whole run added to the resident memory "
             "(the high-water mark reset before each seed; the dataset and network not included). Rows are "
             "fastest to target first.")


def tta_table(run: Run, preset: str) -> str:
    """Two tables, so that each fits a screen: reaching the target, then accuracy, whole runs and memory."""
    reach = ["implementation", "status", "seeds", "to target, median", "× FLOP floor", "per seed",
             "reached", "compiling"]
    rest = ["implementation", "final accuracy, median", "per seed", "whole run per seed", "peak memory"]
    rows, about = [], None
    for impl in run.available:
        t = run.timing(TTA, impl, preset_name=preset)
        outcome = run.outcome(TTA, impl, preset_name=preset) or {}
        if t is None:
            if outcome.get("status") == "failed":
                rows.append((float("inf"), [impl, f"{FAILED}: {outcome.get('message', '')}"] + [""] * 6, None))
            continue
        e = t.extra
        about = about or e
        seeds = e.get("seeds", [])
        status = "passed" if t.passed else f"{FAILED}: {outcome.get('message') or 'see failures'}"
        ttt = [fmt_s(s["time_to_target"]) if s["time_to_target"] is not None else "never" for s in seeds]
        acc = [fmt_acc(s["final_accuracy"]) + ("" if s["status"] in ("reached", "missed") else f" ({s['status'][:8]})")
               for s in seeds]
        median_ttt = e.get("median_time_to_target")
        key = median_ttt if t.passed and median_ttt is not None else float("inf")
        rows.append((key, [impl, status, ", ".join(str(s["seed"]) for s in seeds),
                           fmt_s(median_ttt) if median_ttt is not None else "never", floor_ratio(e), " / ".join(ttt),
                           f"{e.get('reached', 0)}/{len(seeds)}" + (f" ({e['stalled']} stalled)" if e.get("stalled") else ""),
                           fmt_s(e["compile_seconds"]) if e.get("compile_seconds") else "—"],
                     [impl, fmt_acc(e.get("median_final_accuracy")), " / ".join(acc), fmt_s(t.median) + fmt_spread(t),
                      peak_cell(t) if memory_of(t) else "—"]))
    if not rows:
        return "No runs.\n"
    rows.sort(key=lambda r: r[0])
    text = tabulate([r[1] for r in rows], headers=reach, tablefmt="github", disable_numparse=True)
    more = [r[2] for r in rows if r[2]]
    if more:
        text += "\n\n" + tabulate(more, headers=rest, tablefmt="github", disable_numparse=True)
    if about:
        stop = ("each seed stops at its first epoch at/above target, so final accuracy is the accuracy there"
                if about.get("to_target") else f"every seed trains all {about.get('epochs')} epochs")
        text = para(f"`{about.get('preset')}`: target {fmt_acc(about.get('target'))} on the median final test "
                    f"accuracy; batch {about.get('batch')}, {about.get('n_train'):,} training examples, at most "
                    f"{about.get('epochs')} epochs; {stop}.") + "\n\n" + text
    return text + "\n"


def floor_ratio(extra) -> str:
    """Median time to target over the median FLOP floor (runs recorded before the floor show —)."""
    ttt, floor = extra.get("median_time_to_target"), extra.get("median_floor_seconds")
    return f"{ttt / floor:.2f}×" if ttt is not None and floor else "—"


def fmt_s(seconds) -> str:
    return "—" if seconds is None else f"{seconds:.3g} s" if seconds < 100 else f"{seconds:.0f} s"


def fmt_acc(fraction) -> str:
    return "—" if fraction is None else f"{100 * fraction:.2f}%"


def headline(run: Run) -> str:
    """Epoch time at the headline batch sizes, time to each target and an epoch's peak memory, a row per
    implementation, fastest epoch first; columns where nothing was measured are left out."""
    epoch_batches = [b for b in HEADLINE_BATCHES if any(t.phase == "epoch" and t.batch == b for t in run.timings)]
    presets = tta_measured(run)
    memory_batches = [b for b in HEADLINE_MEMORY_BATCHES if any(
        t.phase == "epoch" and t.batch == b and memory_of(t) for t in run.timings)]
    headers = (["implementation"] + [f"epoch {batch_label(b)}" for b in epoch_batches]
               + [f"to target: {p}" for p in presets] + [f"peak mem. {batch_label(b)}" for b in memory_batches])
    body = []
    for impl in speed_order(run, "epoch", run.available, epoch_batches):
        row = [impl]
        for b in epoch_batches:
            t = run.timing("epoch", impl, batch=b)
            row.append(fmt_time(epoch_seconds(t)) + fmt_spread(t) if t and t.passed
                       else FAILED if t else missing_cell(run, "epoch", impl, batch=b))
        for p in presets:
            t = run.timing(TTA, impl, preset_name=p)
            if t and t.passed:
                m = t.extra.get("median_time_to_target")
                row.append(f"{fmt_s(m)} ({t.extra.get('reached')}/{len(t.extra.get('seeds', []))})")
            else:
                outcome = run.outcome(TTA, impl, preset_name=p) or {}
                row.append(FAILED if t or outcome.get("status") == "failed"
                           else "not run" if outcome.get("status") == "skipped" else "")
        for b in memory_batches:
            t = run.timing("epoch", impl, batch=b)
            row.append(peak_cell(t) if t and memory_of(t) else missing_cell(run, "epoch", impl, batch=b))
        if any(c not in ("", "skipped", "not run") for c in row[1:]):
            body.append(row)
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True) + "\n"


def failures(run: Run) -> str:
    failed = [o for o in run.meta.get("outcomes", []) if o.get("status") == "failed"]
    if not failed:
        return ""
    lines = "\n".join(f"- `{o['test']}`: {o.get('message') or '(no message)'}" for o in failed)
    return (f"## Failures\n\nThis session failed, so it was not saved as a `--benchmark-compare` "
            f"baseline.\n\n{lines}\n")


def stopped_note(run: Run) -> str:
    """On top of every file of a session that stopped part-way: most of what it would show never ran."""
    stop = run.meta.get("stopped") or {}
    if not stop and run.meta.get("session") != "interrupted":
        return ""
    counts = (f" after {stop['tests_run']} of its {stop['tests_collected']} benchmarks"
              if "tests_run" in stop else "")
    return (f"> **Interrupted**: this session stopped part-way ({stop.get('reason', 'interrupted')}){counts}. "
            "The rest never ran, so every table below is incomplete, and the session was not saved as a "
            "`--benchmark-compare` baseline.\n\n")


def tta_section(run: Run, level: str, page: bool = True) -> str:
    """Every preset trained here under its own heading at ``level`` (e.g. "##"), the terms once, then the
    notes (``page``: this file's own; otherwise the page says them once elsewhere)."""
    presets = tta_measured(run)
    body = para(TTA_TERMS) + "\n\n" + "\n".join(f"{level} {p}\n\n{tta_table(run, p)}" for p in presets) \
        if presets else "No runs.\n"
    left = [p for p in tta_presets(run) if p not in presets]
    if left:
        body += "\n" + para("Not run in this mode: " + ", ".join(f"`{p}`" for p in left) + ".") + "\n"
    tta_notes = [o.get("message", "") for o in run.meta.get("outcomes", [])
                 if o.get("phase") == TTA and o.get("status") == "skipped" and o.get("impl") not in run.unavailable]
    if not page:
        return body
    return body + "".join("\n" + para(f"Note: {n}") + "\n" for n in dict.fromkeys(tta_notes)) \
        + unpinned(run, [TTA]) + not_available(run)


def dataset_line(run: Run) -> str:
    size = run.meta.get("dataset_bytes")
    return ("" if size is None else f"MNIST as the suites hold it (float32 images, int64 labels), loaded once per "
            f"process and resident before every figure here: {fmt_bytes(size)}.\n")


def memory_page(run: Run) -> str:
    """Every phase's memory tables on one page, how each is measured said once, and the
    time-to-accuracy runs' peaks."""
    parts = [dataset_line(run), memory_notes()]
    for p in BATCH_PHASES:
        if batches(run, p.name):
            parts.append(f"## {p.title}\n\n"
                         + memory_tables(run, p.name, lambda cell: impl_batch_table(run, p.name, cell), notes=False))
    rows = []
    for preset in tta_presets(run):
        for impl in run.available:
            t = run.timing(TTA, impl, preset_name=preset)
            if t is not None and memory_of(t):
                rows.append([preset, impl, peak_cell(t), fmt_bytes(memory_of(t).get("held"))])
    if rows:
        parts.append(f"## {PHASES[TTA].title}\n\n" + para(
            "The largest over seeds of what one seed's whole run (training and per-epoch evaluation) added to "
            "the resident memory; the high-water mark is reset before each seed. Held = what the network held "
            "once set up, as above.") + "\n\n" + tabulate(
            rows, headers=["preset", "implementation", "peak memory of a run", "held"], tablefmt="github",
            disable_numparse=True) + "\n")
    return "\n".join(parts)


def summary(run: Run) -> str:
    """One paragraph: what ran, where, when, at which commit, and how long it took."""
    commit, took = run.commit, duration(run.meta.get("wall_seconds"))
    return para(f"`{run.meta.get('command')}` ({run.meta.get('mode')} mode, network `{run.meta.get('preset')}`) on "
                f"`{run.label}`, {run.meta.get('pinned_threads')} threads, {run.datetime[:16].replace('T', ' ')} UTC, "
                f"commit {(commit.get('id') or '?')[:12]}" + (" with uncommitted changes" if commit.get("dirty") else "")
                + (f"; the run took {took}" if took else "") + ". Written by `python -m bench.report` from "
                "[benchmark.json](benchmark.json); `python -m bench.report benchmark.json --out .` in this folder "
                "regenerates every file.") + "\n"


def render(run: Run, plot_names=()) -> dict[str, str]:
    """Every Markdown file, as text; ``plot_names`` are the figures to embed in README.md. README opens
    with the answer, then the tables fastest first, then the notes (each once) and the machine."""
    note = para(stopped_note(run).strip()) + "\n\n" if stopped_note(run) else ""
    files = {f"{p.name}.md": f"# {p.title}\n\n{note}{phase_tables(run, p.name)}" for p in BATCH_PHASES}
    files[f"{TTA}.md"] = f"# {PHASES[TTA].title}\n\n{note}{tta_section(run, '##')}"
    files["memory.md"] = f"# Memory\n\n{note}{memory_page(run)}"
    plots = "".join(f"![{name}]({name})\n\n" for name in plot_names)
    sources = run.meta.get("sources", {})
    own = {i: s for i, s in sources.items() if i not in run.meta.get("built_in", sources)}
    rows = answer_rows(run, batches=batches) + tta_answer_rows(run, tta_measured(run))
    files["README.md"] = "\n".join([
        "# Results", "", *([note] if note else []), summary(run),
        "## Answer", "",
        para("Per phase and batch size, the fastest implementation, its median time (an epoch: seconds per epoch "
             "of the training set) and how many times faster it is per example than the next fastest and than "
             "`numpy`. The ratios are of medians; ⚠: one of the two timings was unstable (below), so the ratio "
             "may not reproduce; ‡: other processes shared the CPUs during one of them."), "",
        answer_table(rows) if rows else "Nothing was timed in this run.\n",
        legend("all"),
        "## Headline", "",
        para("Epoch time (seconds per epoch of the preset's training set, ±IQR), median training seconds to the "
             "preset's target (in brackets: seeds that reached it / seeds), and the peak resident memory an epoch "
             "added (how it is measured: [memory.md](memory.md)); fastest epoch first."),
        "", headline(run),
        failures(run),
        *(f"## {p.title}\n\n{phase_tables(run, p.name, page=False)}" for p in BATCH_PHASES),
        f"## {PHASES[TTA].title}\n\n{tta_section(run, '###', page=False)}",
        "## Notes", "", notes(run, [p.name for p in BATCH_PHASES] + [TTA]).strip() or "None.", "",
        "## Machine", "", compact(machine_section(run)),
        *([para("Implementations not built into nnbench: " + "; ".join(f"`{i}` ({s})" for i, s in own.items())
                + ".") + "\n"] if own else []),
        "## Plots", "", plots or "No plots (install the `plots` extra: matplotlib).\n",
    ])
    return files
