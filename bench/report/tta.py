"""Time to accuracy: per preset, how long each implementation took to reach the target, its
accuracy, its whole runs and their memory."""
from __future__ import annotations

from tabulate import tabulate

from .answer import TTA, para
from .cells import fmt_spread
from .memory import memory_of, peak_cell
from .reading import Run
from .tables import FAILED, not_available, unpinned


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
