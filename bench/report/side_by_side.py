"""Several machines' runs side by side: per phase, implementation x machine tables (time, and
speedup relative to one chosen machine), each machine's description, and a plot.

    python -m bench.report A.json B.json ... --out DIR      (or a folder of machines: results/)

A machine is a run's label (``nnbench.machine``, bench/harness/host.py): one run per label.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

from tabulate import tabulate

from ..harness.phases import BATCH_PHASES, PHASES
from ..harness.timing import fmt_time
from .answer import TTA, compact, para, passed, timing_text
from .cells import fmt_spread, method, ratio, speedup
from .host_table import machine_section
from .memory import memory_of, peak_cell
from .reading import BASELINES, ReportError, Run
from .pages import HEADLINE_BATCHES, HEADLINE_MEMORY_BATCHES
from .tables import FAILED, batch_label, batches, epoch_seconds, legend, missing_cell
from .tta import fmt_s, tta_presets

PLOT = "machines-epoch.png"
#: every machine's times are also shown relative to this implementation on the base machine: the
#: one yardstick when machines ran different implementations (a GPU box only its CUDA ones)
YARDSTICK = "numpy"


def choose_base(runs: list[Run], wanted: str | None, here: str | None) -> Run:
    """The machine speedups are relative to: ``wanted`` (an error if no run has it), else the
    machine rendering the report when it is one of them, else the first."""
    labels = [r.label for r in runs]
    if wanted:
        if wanted not in labels:
            raise ReportError(f"--relative-to {wanted!r}: no run from that machine; the machines are "
                              + ", ".join(labels))
        return runs[labels.index(wanted)]
    return runs[labels.index(here)] if here in labels else runs[0]


def check_distinct(runs: list[Run], sources: list[str]) -> None:
    seen = {}
    for run, source in zip(runs, sources):
        if run.label in seen:
            raise ReportError(f"{seen[run.label]} and {source} are both from machine {run.label!r}: give one run "
                              "per machine (set each machine's label with --bench-machine)")
        seen[run.label] = source


def implementations(runs: list[Run]) -> list[str]:
    names = list(dict.fromkeys(i for r in runs for i in r.available))
    return sorted(names, key=lambda i: BASELINES.index(i) if i in BASELINES else len(BASELINES))


def keys(runs: list[Run]) -> dict[str, str]:
    """A letter per machine label: the tables' columns stay narrow, and the Machines table is the legend."""
    return {r.label: chr(ord("A") + i) if i < 26 else f"M{i}" for i, r in enumerate(runs)}


def fastest_first(runs: list[Run], base: Run, phase: str, batch: int, impls: list[str]) -> list[str]:
    """``impls`` by their speed on the base machine, then those it did not time by the next machine's."""
    order = [r for r in [base] + runs]
    ranks = {}
    for level, r in enumerate(order):
        for rank, t in enumerate(passed(r, phase, batch)):
            ranks.setdefault(t.impl, (level, rank))
    return sorted(impls, key=lambda i: ranks.get(i, (len(order), 0)))


def _cell(run: Run, phase: str, impl: str, batch: int) -> str:
    t = run.timing(phase, impl, batch=batch)
    if t is None or not t.passed:
        return FAILED if t is not None else missing_cell(run, phase, impl, batch=batch)
    return fmt_time(epoch_seconds(t) if phase == "epoch" else t.median) + fmt_spread(t)


def _speedup(run: Run, base: Run, phase: str, impl: str, batch: int, base_impl: str | None = None) -> str:
    t, b = run.timing(phase, impl, batch=batch), base.timing(phase, base_impl or impl, batch=batch)
    if t is None or not t.passed:
        return "—"
    return speedup(b, t, same_run=run is base)


def phase_table(runs: list[Run], base: Run, phase: str, batch: int) -> str:
    others, key = [r for r in runs if r is not base], keys(runs)
    headers = (["implementation"] + [key[r.label] for r in runs] + [f"{key[r.label]} vs {key[base.label]}" for r in others]
               + [f"{key[r.label]} vs `{YARDSTICK}` on {key[base.label]}" for r in runs])
    body = []
    for impl in fastest_first(runs, base, phase, batch, implementations(runs)):
        cells = [_cell(r, phase, impl, batch) for r in runs]
        if any(c not in ("", "skipped") for c in cells):
            body.append([impl] + cells + [_speedup(r, base, phase, impl, batch) for r in others]
                        + [_speedup(r, base, phase, impl, batch, YARDSTICK) for r in runs])
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True) if body else "No runs."


def phase_section(runs: list[Run], base: Run, phase: str) -> str:
    cols = sorted({b for r in runs for b in batches(r, phase)})
    if not cols:
        return "No benchmarks of this phase in these runs.\n"
    return (f"Time: {PHASES[phase].timed}.\n\n"
            + "\n\n".join(f"### {batch_label(b)}\n\n{phase_table(runs, base, phase, b)}" for b in cols) + "\n")


def answer(runs: list[Run]) -> str:
    """Per phase and batch size, each machine's fastest implementation, its time, and how many times
    faster it is than that machine's next fastest and its ``numpy``."""
    key, body = keys(runs), []
    for p in BATCH_PHASES:
        for b in sorted({b for r in runs for b in batches(r, p.name)}):
            cells = []
            for r in runs:
                ranked = passed(r, p.name, b)
                if not ranked:
                    cells.append("")
                    continue
                best, numpy = ranked[0], next((t for t in ranked if t.impl == YARDSTICK), None)
                said = ([f"{ratio(ranked[1], best)} next"] if len(ranked) > 1 else []) + (
                    [f"{ratio(numpy, best)} numpy"] if numpy is not None and best.impl != YARDSTICK else [])
                cells.append(f"`{best.impl}` {timing_text(best)}" + (f"; {', '.join(said)}" if said else ""))
            if any(cells):
                body.append([p.name, batch_label(b)] + cells)
    return tabulate(body, headers=["phase", "batch"] + [key[r.label] for r in runs], tablefmt="github",
                    disable_numparse=True) + "\n"


def _tta_cell(run: Run, impl: str, preset: str) -> str:
    t = run.timing(TTA, impl, preset_name=preset)
    if t and t.passed:
        return (f"{fmt_s(t.extra.get('median_time_to_target'))} "
                f"({t.extra.get('reached')}/{len(t.extra.get('seeds', []))})")
    outcome = run.outcome(TTA, impl, preset_name=preset) or {}
    return (FAILED if t or outcome.get("status") == "failed"
            else "not run" if outcome.get("status") == "skipped" else "")


def _memory_cell(run: Run, impl: str, batch: int) -> str:
    t = run.timing("epoch", impl, batch=batch)
    if t is None or not t.passed:
        return ""
    return peak_cell(t) if memory_of(t) else "not recorded"


def headline(runs: list[Run], base: Run) -> str:
    """Epoch time at the headline batch sizes and time to target: a row per implementation and
    machine that ran it."""
    presets = list(dict.fromkeys(p for r in runs for p in tta_presets(r)))
    key = keys(runs)
    headers = (["implementation", "machine"] + [f"epoch {batch_label(b)}" for b in HEADLINE_BATCHES]
               + [f"{batch_label(HEADLINE_BATCHES[0])} vs `{YARDSTICK}`@{key[base.label]}"]
               + [f"to target: {p}" for p in presets])
    memory_batches = [b for b in HEADLINE_MEMORY_BATCHES
                      if any(t.phase == "epoch" and t.batch == b and memory_of(t) for r in runs for t in r.timings)]
    body, memory = [], []
    for impl in fastest_first(runs, base, "epoch", HEADLINE_BATCHES[0], implementations(runs)):
        for r in runs:
            cells = [_cell(r, "epoch", impl, b) for b in HEADLINE_BATCHES]
            cells += [_speedup(r, base, "epoch", impl, HEADLINE_BATCHES[0], YARDSTICK)]
            cells += [_tta_cell(r, impl, p) for p in presets]
            peaks = [_memory_cell(r, impl, b) for b in memory_batches]
            if any(c not in ("", "skipped", "not run", "—") for c in cells + peaks):
                body.append([impl, key[r.label]] + cells)
                memory.append([impl, key[r.label]] + peaks)
    text = tabulate(body, headers=headers, tablefmt="github", disable_numparse=True) + "\n"
    if memory_batches:
        text += "\nPeak resident memory an epoch added:\n\n" + tabulate(
            memory, headers=["implementation", "machine"] + [f"epoch {batch_label(b)}" for b in memory_batches],
            tablefmt="github", disable_numparse=True) + "\n"
    return text


def describe(run: Run) -> str:
    nn = run.machine.get("nnbench", {})
    gpu = (nn.get("gpu") or "none").split(" (")[0]
    return f"{nn.get('cpu', '?')}, {nn.get('logical_cpus', '?')} logical CPUs; GPU: {gpu}"


def machines_table(runs: list[Run], links: dict[str, str]) -> str:
    key = keys(runs)
    body = [[key[r.label], f"[`{r.label}`]({links[r.label]})" if r.label in links else f"`{r.label}`", describe(r),
             str(r.meta.get("mode")), f"`{r.meta.get('command')}`", r.datetime[:16].replace("T", " "),
             (r.commit.get("id") or "?")[:12] + (" (dirty)" if r.commit.get("dirty") else "")]
            for r in runs]
    return compact(tabulate(body, headers=["key", "machine", "CPU and GPU", "mode", "command", "date (UTC)", "commit"],
                            tablefmt="github", disable_numparse=True)) + "\n"


def plot(runs: list[Run]) -> bytes | None:
    """Epoch time per implementation at the headline batch sizes, one bar per machine (log scale)."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    impls = [i for i in implementations(runs)
             if any(r.timing("epoch", i, batch=b) for r in runs for b in HEADLINE_BATCHES)]
    if not impls:
        return None
    fig, axes = plt.subplots(1, len(HEADLINE_BATCHES), figsize=(11, 0.45 * len(impls) * len(runs) + 1.5),
                             sharey=True)
    height = 0.8 / len(runs)
    for ax, b in zip(axes, HEADLINE_BATCHES):
        for k, r in enumerate(runs):
            ys, xs = [], []
            for y, impl in enumerate(impls):
                t = r.timing("epoch", impl, batch=b)
                if t is not None and t.passed:
                    ys.append(y + k * height)
                    xs.append(epoch_seconds(t))
            ax.barh(ys, xs, height=height, label=r.label)
        ax.set(xscale="log", xlabel="seconds per epoch (log)", title=f"epoch, {batch_label(b)}")
        ax.grid(True, axis="x", which="both", alpha=0.3)
    axes[0].set_yticks([y + height * (len(runs) - 1) / 2 for y in range(len(impls))], impls)
    axes[0].invert_yaxis()
    handles = {}
    for ax in axes:
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(3, len(handles)),
               fontsize="small", bbox_to_anchor=(0.5, -0.04))
    fig.suptitle("Epoch time per machine (preset of each run's phase tables)")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def kinds(runs: list[Run]) -> bool | str:
    """Whether the runs were timed in trials: all (True), none (False) or "some" (for the legend)."""
    timed = [r.trials for r in runs]
    return all(timed) or ("some" if any(timed) else False)


def trial_note(runs: list[Run]) -> str:
    """How the machines timed in trials measured their ratios (a sentence to add), or nothing."""
    timed = [r for r in runs if r.trials]
    if not timed:
        return ""
    key = keys(runs)
    rest = [r for r in runs if not r.trials]
    return (f" On {', '.join(key[r.label] for r in timed)}: {method(timed[0])}"
            + (f" On {', '.join(key[r.label] for r in rest)}: {method(rest[0])}" if rest else "")
            + " Ratios between machines are of medians measured apart.")


def render(runs: list[Run], base: Run, links: dict[str, str], command: str, extra_dirs=()) -> dict[str, bytes]:
    """README.md (and the plot) comparing ``runs``; ``links``: label -> that machine's own report."""
    figure = plot(runs)
    interrupted = [r.label for r in runs if r.meta.get("session") != "passed"]
    key = keys(runs)
    text = "\n".join([
        "# Results", "",
        para(f"{len(runs)} machine{'s' if len(runs) != 1 else ''} side by side, written by `python -m bench.report` from each machine's "
             "`benchmark.json`. Each machine's own report, with every table and plot of its run, is in its "
             "folder. The tables name each machine by its key (below). This file is regenerated by"), "",
        f"    {command}", "",
        *([para(f"> Not a passed session: {', '.join(f'`{m}`' for m in interrupted)}; their tables are incomplete "
                "or include failures (see their folders).") + "\n"] if interrupted else []),
        "## Machines", "", machines_table(runs, links),
        para("Runs of different modes time different batch sizes and presets: a cell is empty where a machine's "
             "run did not include it."), "",
        "## Answer", "",
        para("Per phase and batch size, each machine's fastest implementation, its median time, and how many "
             "times faster it is per example than that machine's next fastest and than its `numpy` ("
             + ("" if kinds(runs) else "⚠: one of the two timings was unstable; ")
             + "‡: other processes shared the CPUs during one of them)." + trial_note(runs)), "",
        answer(runs),
        legend("all", trials=kinds(runs), order=f"Rows are fastest first on {key[base.label]}. \"X vs Y\": machine X's speedup over machine Y on "
                      f"the same implementation; \"X vs `{YARDSTICK}` on {key[base.label]}\": over that machine's "
                      "numpy (that time per example / this one's; — where either did not run)."),
        "## Headline", "",
        para(f"Seconds per epoch of the preset's training set ({'±' if kinds(runs) else '±IQR'}), median training seconds to the preset's "
             "target (in brackets: seeds that reached it / seeds) and the peak resident memory an epoch added "
             "(each machine's `memory.md` says how it is measured; \"not recorded\": a run from before memory "
             "was measured), per machine."), "", headline(runs, base),
        *([f"![Epoch time per machine]({PLOT})", ""] if figure else []),
        *(f"## {p.title}\n\n{phase_section(runs, base, p.name)}" for p in BATCH_PHASES),
        "## Each machine", "",
        *(f"### {key[r.label]}: `{r.label}`\n\n{compact(machine_section(r))}" for r in runs),
        *(["## Other results here", "", "".join(f"- [{d}/]({d}/)\n" for d in extra_dirs)] if extra_dirs else []),
    ])
    files = {"README.md": text.encode()}
    if figure:
        files[PLOT] = figure
    return files


def machine_folders(directory: Path) -> tuple[list[Path], list[str]]:
    """A folder of machines: each sub-folder's run (its ``benchmark.json``, as results/ holds, else the
    newest ``NNNN_*.json``, as a pytest-benchmark storage folder holds), and the other sub-folders
    (studies, profiles)."""
    found, others = [], []
    for sub in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if sub.name in ("failed", "quick"):       # diverted sessions; make bench-quick's own comparison
            continue
        saved = sorted(sub.glob("[0-9][0-9][0-9][0-9]_*.json"))
        run = sub / "benchmark.json" if (sub / "benchmark.json").is_file() else saved[-1] if saved else None
        if run:
            found.append(run)
        elif any(sub.iterdir()):
            others.append(sub.name)
    return found, others


def link(path: Path, out_dir: Path) -> str | None:
    """The relative link from out_dir to the folder of ``path``, when it lies inside out_dir."""
    folder, out = path.resolve().parent, out_dir.resolve()
    if folder == out or out not in folder.parents:
        return None
    return os.path.relpath(folder, out).replace(os.sep, "/") + "/"
