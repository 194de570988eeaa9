"""The text report of one profile (``bench.profiling``): the hottest frames from py-spy's speedscope
file, what this sampler could not see in this run, and what the split mode cost.

A sampler's picture is only as good as what it can see, so every report says it in its own
words for its own case (compiled code, worker threads, a GPU, the split mode's own overhead)
instead of leaving it to a README section that a reader of the file never opens.
"""
from __future__ import annotations

import collections
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def hottest(speedscope, top: int = 12) -> list[tuple[str, float, float]]:
    """(frame, % of samples with it on the stack, % with it on top) from py-spy's speedscope file
    (a path or its bytes), hottest own time first."""
    data = json.loads(speedscope if isinstance(speedscope, bytes) else Path(speedscope).read_text())
    frames = data["shared"]["frames"]

    def label(i):
        f = frames[i]
        path = Path(f.get("file") or "?")
        try:
            path = path.resolve().relative_to(REPO)
        except ValueError:
            path = Path(*path.parts[-2:]) if len(path.parts) > 1 else path
        return f"{f['name']} ({path}:{f.get('line')})"     # per function: the def line; --lines: the line

    inclusive, self_time, total = collections.Counter(), collections.Counter(), 0.0
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"]):
            total += weight
            for i in set(stack):
                inclusive[label(i)] += weight
            if stack:
                self_time[label(stack[-1])] += weight
    if not total:
        return []
    ranked = sorted(inclusive, key=lambda k: (self_time[k], inclusive[k]), reverse=True)[:top]
    return [(k, 100 * inclusive[k] / total, 100 * self_time[k] / total) for k in ranked]


def blind_spots(args, info: dict) -> list[str]:
    """What py-spy could not see in this profile, and what the split mode changed."""
    notes = ["py-spy samples Python stacks: the time of a call into C (BLAS, a compiled kernel, a framework "
             "operator) is charged to the Python function or line that made it."]
    if not args.native:
        notes.append("C/C++ frames are not sampled (--native adds the main thread's); BLAS and OpenMP worker "
                     "threads are not Python threads and appear nowhere: their work shows as the caller's time.")
    else:
        notes.append("--native: C/C++ frames of the main thread with their symbols; code compiled at run time "
                     "(Numba's LLVM, Triton, XLA) has no symbol table py-spy reads, so it appears as bare "
                     "addresses or inside its caller.")
    if info.get("split_mode") and not args.split:
        notes.append(f"{info.get('class')} runs the phase as one compiled call: every sample lands on it. "
                     "Rerun with --split to see each equation (BP1-BP4, the forward layers, the update) by name.")
    if args.split:
        ratio = info.get("split_ratio")
        cost = (f"here the split epoch took {ratio:.2f}x the fused one (median of 3 interleaved epochs each, "
                "measured by this run before sampling)" if ratio else
                "its cost was not measured: only the epoch phase has a split mode to compare")
        notes.append("--split: each equation is a Python call of its own, so per-call dispatch and a parallel "
                     "region per equation are inside its entry, and the fused epoch's overlap of the update "
                     f"with the next mini-batch's first layer is gone; {cost}. Read its shares as those of the "
                     "split epoch.")
    if info.get("device") == "cuda":
        notes.append("CUDA kernels run asynchronously: their time lands where the CPU waits (a synchronize, a "
                     "copy to the host), not on the operator that launched them; use torch.profiler or Nsight "
                     "Systems for GPU time.")
    return notes


def provenance(args, info: dict) -> str:
    """Where and how the profile was taken: the command, the date, the commit and the worker's machine
    (its thread pools and library versions as the profiled process saw them)."""
    import datetime

    from tabulate import tabulate

    from .report.host_table import machine_rows
    from .studies.__main__ import _git
    rows = [("command", f"`{args.command}`"),
            ("date (UTC)", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")),
            ("commit", _git("rev-parse", "--short=12", "HEAD") or "?"), *machine_rows(info["machine"])]
    return tabulate(rows, headers=["", ""], tablefmt="github", disable_numparse=True) + "\n"


def summarize(args, info: dict, out: Path, stem: str, speedscope: bytes) -> str:
    from tabulate import tabulate
    rows = hottest(speedscope)
    table = (tabulate(rows, headers=[f"{'line' if args.lines else 'frame'} (hottest own time first)", "% on stack",
                                     "% own"], floatfmt=".1f", tablefmt="github")
             if rows else "(no samples: the worker spent the sampling time idle, e.g. asleep)")
    return (f"{args.impl}, phase {args.phase}, preset {args.preset}, batch {args.batch}, "
            f"{args.threads} threads, {args.seconds:g} s at {args.rate} Hz"
            + "".join(f", {flag}" for flag in ("split", "lines", "native") if getattr(args, flag)) + "\n"
            f"flamegraph: {out / (stem + '.svg')}\nspeedscope: {out / (stem + '.speedscope.json')}\n\n"
            "What this profile cannot show:\n" + "".join(f"- {note}\n" for note in blind_spots(args, info))
            + f"\n{table}\n\n" + provenance(args, info))
