"""One run's pages: README.md (the answer, the headline, every phase's section, the notes and the
machine), a page per phase, time to accuracy and memory, as Markdown text."""
from __future__ import annotations

from tabulate import tabulate

from ..harness.phases import BATCH_PHASES, PHASES
from ..harness.timing import fmt_time
from .answer import TTA, answer_rows, answer_table, compact, duration, para, speed_order, tta_answer_rows
from .cells import fmt_spread, method
from .host_table import machine_section
from .memory import fmt_bytes, memory_notes, memory_of, memory_tables, peak_cell
from .reading import Run
from .tables import (FAILED, batch_label, batches, epoch_seconds, impl_batch_table, legend, missing_cell, notes,
                     phase_tables)
from .tta import fmt_s, tta_measured, tta_presets, tta_section

HEADLINE_BATCHES = (10, 128)
#: the epochs whose peak memory the headline shows: the smallest and the largest batch
HEADLINE_MEMORY_BATCHES = (10, 1024)


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


def measured_phases(run: Run) -> list:
    """The batch phases this run timed (or tried to: a failure is shown), in table order."""
    return [p for p in BATCH_PHASES if batches(run, p.name)]


#: every page a run may have beside README.md, so a re-render into a folder removes the ones it no longer has
PHASE_PAGES = [f"{p.name}.md" for p in BATCH_PHASES] + [f"{TTA}.md"]


def render(run: Run, plot_names=()) -> dict[str, str]:
    """Every Markdown file, as text; ``plot_names`` are the figures to embed in README.md. README opens
    with the answer, then the tables fastest first, then the notes (each once) and the machine."""
    note = para(stopped_note(run).strip()) + "\n\n" if stopped_note(run) else ""
    phases = measured_phases(run)            # nothing rendered that the run did not measure
    files = {f"{p.name}.md": f"# {p.title}\n\n{note}{phase_tables(run, p.name)}" for p in phases}
    if tta_measured(run):
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
             "`numpy`. " + (method(run) + " *A tie*: the interval holds 1, so the two are not told apart. ‡: other "
                            "processes shared the CPUs during one of the two timings."
                            + (" Time to target's ratios are of medians over seeds (not a round's time)."
                               if tta_measured(run) else "")
                            if run.trials else
                            "The ratios are of medians; ⚠: one of the two timings was unstable (below), so the "
                            "ratio may not reproduce; ‡: other processes shared the CPUs during one of them.")), "",
        answer_table(rows) if rows else "Nothing was timed in this run.\n",
        legend("all", trials=run.trials),
        "## Headline", "",
        para(f"Epoch time (seconds per epoch of the preset's training set, {'±' if run.trials else '±IQR'}), median training seconds to the "
             "preset's target (in brackets: seeds that reached it / seeds), and the peak resident memory an epoch "
             "added (how it is measured: [memory.md](memory.md)); fastest epoch first."),
        "", headline(run),
        failures(run),
        *(f"## {p.title}\n\n{phase_tables(run, p.name, page=False)}" for p in phases),
        *([f"## {PHASES[TTA].title}\n\n{tta_section(run, '###', page=False)}"] if tta_measured(run) else []),
        "## Notes", "", notes(run, [p.name for p in BATCH_PHASES] + [TTA]).strip() or "None.", "",
        "## Machine", "", compact(machine_section(run)),
        *([para("Implementations not built into nnbench: " + "; ".join(f"`{i}` ({s})" for i, s in own.items())
                + ".") + "\n"] if own else []),
        "## Plots", "", plots or "No plots (install the `plots` extra: matplotlib).\n",
    ])
    return files
