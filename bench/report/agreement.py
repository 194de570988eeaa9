"""Do two runs agree? ``python -m bench.report.agreement FIRST.json SECOND.json --out PAGE.md``

The question a user of a shared machine asks of nnbench's numbers: run the same suites again later,
and do the ratios come out the same? For every implementation, phase and batch size that both runs
timed, the "vs numpy" ratio (numpy's time per example / this one's, paired within each run's trials:
``bench.report.cells.paired``) of each run, and whether they agree:

- *within ±10%*: the second run's ratio is within 10% of the first's;
- *within their intervals*: the two 95% intervals overlap (each run's own uncertainty covers the
  difference); a ratio without an interval (fewer than 3 clean trials) cannot be judged so and is
  counted apart.

And per run, how many cells carry ⚠ (a time or ratio whose interval is wider than ±10%). The page is
generated from the two runs' JSONs, with their dates, commits, machine and commands, so its figures
are never hand-copied.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..harness.phases import BATCH_PHASES
from ..harness.timing import UNSTABLE
from .answer import YARDSTICK, compact, para
from .cells import paired
from .reading import ReportError, Run, load
from .writing import WriteError, write_file

AGREE = 0.10


def ratios(run: Run) -> dict[tuple, object]:
    """(phase, batch, impl) -> numpy's per-example time / impl's, paired (a ``Ratio``), for every passed
    benchmark of a batch phase whose numpy counterpart passed too."""
    out = {}
    for t in run.timings:
        if t.phase not in {p.name for p in BATCH_PHASES} or not t.passed or t.impl == YARDSTICK:
            continue
        base = run.timing(t.phase, YARDSTICK, batch=t.batch)
        if base is not None and base.passed:
            r = paired(base, t)
            if r is not None:
                out[(t.phase, t.batch, t.impl)] = r
    return out


def overlap(a, b) -> bool | None:
    if a.low is None or b.low is None:
        return None
    return a.low <= b.high and b.low <= a.high


def wide_cells(run: Run) -> tuple[int, int]:
    """(cells with ⚠, cells): every passed batch-phase time and vs-numpy ratio, as the tables show them."""
    from ..harness.paired import time_interval
    wide = total = 0
    for t in run.timings:
        if t.phase in {p.name for p in BATCH_PHASES} and t.passed and t.rounds:
            interval = time_interval(t.rounds)
            total, wide = total + 1, wide + (interval is None or interval.wide)
    for r in ratios(run).values():
        total, wide = total + 1, wide + (r.low is None or r.wide)
    return wide, total


def _fmt(r) -> str:
    return f"{r.estimate:.2f}×" + (f" [{r.low:.2f}, {r.high:.2f}]" if r.low is not None else "")


def render(first: Run, second: Run, names=("first", "second")) -> str:
    from tabulate import tabulate
    a, b = ratios(first), ratios(second)
    common = sorted(set(a) & set(b))
    rows, within, judged, inside = [], 0, 0, 0
    for key in common:
        change = b[key].estimate / a[key].estimate - 1
        ok, both = abs(change) <= AGREE, overlap(a[key], b[key])
        within += ok
        judged += both is not None
        inside += bool(both)
        rows.append([key[0], f"b={key[1]}", f"`{key[2]}`", _fmt(a[key]), _fmt(b[key]), f"{100 * change:+.1f}%",
                     "yes" if ok else "**no**", {None: "no interval", True: "yes", False: "**no**"}[both]])
    lines = ["# Do two runs agree?", "", para(
        f"Two runs of the same suites on `{first.label}`: for every implementation, phase and batch size both "
        f"timed, its ratio to `{YARDSTICK}` (time per example, paired within each run's trials, 95% bootstrap "
        "interval) in each run, and whether they agree. Generated from the runs' JSONs by "
        f"`python -m bench.report.agreement {names[0]} {names[1]}`."), ""]
    for name, run in zip(names, (first, second)):
        wide, total = wide_cells(run)
        took = run.meta.get("wall_seconds")
        lines.append(f"- **{name}**: {run.datetime[:16].replace('T', ' ')} UTC, commit "
                     f"`{(run.commit.get('id') or '')[:12]}`, `{run.meta.get('command', '')}`"
                     + (f", {took / 60:.1f} min" if took else "")
                     + f"; ⚠ on {wide} of {total} cells ({100 * wide / max(total, 1):.0f}%)")
    n = len(common)
    if all((run.meta.get("processes") or 1) == 1 for run in (first, second)):
        lines += ["", para("Each run timed every implementation in one process, so an interval covers how its "
                           "trials varied, not how much another process of the same code differs (its memory "
                           "layout, where its pages landed): runs made with `PROCESSES=2` resample processes too.")]
    lines += ["", para(
        f"**{within} of {n} ratios ({100 * within / max(n, 1):.0f}%) agree within ±{AGREE:.0%}; "
        f"{inside} of the {judged} with intervals in both runs ({100 * inside / max(judged, 1):.0f}%) agree "
        f"within their intervals** (they overlap). ⚠ counts a time or ratio whose interval is wider than "
        f"±{UNSTABLE:.0%}."), "",
        compact(tabulate(rows, headers=["phase", "batch", "implementation", names[0], names[1], "change",
                                        f"within ±{AGREE:.0%}", "intervals overlap"], tablefmt="github"))]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.report.agreement", description=__doc__.splitlines()[0])
    p.add_argument("first", type=Path)
    p.add_argument("second", type=Path)
    p.add_argument("--out", type=Path, help="write the page here (default: print it)")
    args = p.parse_args(argv)
    try:
        first, second = load(args.first), load(args.second)
        if not (first.trials and second.trials):
            raise ReportError("both runs must be timed in trials (python -m bench.run): their ratios are paired")
        text = render(first, second, (str(args.first), str(args.second)))
        if args.out:
            write_file(args.out, text.encode())
        else:
            print(text, end="")
    except (ReportError, WriteError, OSError) as exc:
        print(f"bench.report.agreement: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
