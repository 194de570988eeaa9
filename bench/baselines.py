"""The baselines ``python -m bench.run`` compares with, and its history: a run saved to (and read from)
``<storage>/<machine label>/`` as pytest-benchmark's file storage names it, the saved-run compare
(``--compare``: Mann-Whitney on the rounds, ``bench.harness.compare``) and the paired one
(``--ref``: the baseline's implementations timed in the same trials, ``bench.harness.paired``)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .harness import compare
from .harness.host import label_of
from .report.writing import write_file


def storage(args, failed=False):
    """pytest-benchmark's file storage of this machine's runs (of its failed ones: never a baseline)."""
    import logging
    from pytest_benchmark.storage.file import FileStorage
    return FileStorage(args.storage / "failed" if failed else args.storage, logger=logging.getLogger("nnbench"),
                       default_machine_id=args.machine)


def save(run, args, failed):
    """pytest-benchmark's FileStorage.save, but whole or not at all: its own writes in place, and a
    full disk left a truncated JSON in the history that every later compare read."""
    from pytest_benchmark.utils import get_tag, safe_dumps
    history = storage(args, failed)
    target = history.get(f"{history._next_num}_{get_tag()}.json")
    write_file(target, safe_dumps(run, ensure_ascii=True, indent=4).encode())
    where = f"{history.path}/{args.machine}"
    print(f"nnbench: saved to {where}" + (": the run failed, so it is no --compare baseline" if failed else ""))


def saved(args):
    """(path, run) to compare with, or the exit status of a usage error (said on stderr)."""
    mode = args.mode
    if args.compare is True:
        found = compare.newest_of_mode(storage(args).load(), mode)
        if not found:
            print(f"nnbench: no saved {mode} run of machine {args.machine!r} in {args.storage} to compare with; run "
                  f"`make bench{'-quick' if mode == 'quick' else ''}` first", file=sys.stderr)
            return 4
        path, baseline = found
    else:
        path = Path(args.compare)
        try:
            baseline = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            print(f"nnbench: --compare {path}: not a saved run ({exc})", file=sys.stderr)
            return 4
    try:
        compare.check_baseline(baseline)
    except ValueError as exc:
        print(f"nnbench: --compare {path}: cannot compare with it: {exc}", file=sys.stderr)
        return 4
    why = compare.other_machine(label_of(baseline), args.machine)
    if why and not args.compare_other_machine:
        print(f"nnbench: {path}: {why}; pass --compare-other-machine to compare them on purpose", file=sys.stderr)
        return 4
    return path, baseline


def compare_saved(run, args, path, baseline) -> int:
    threshold = compare.THRESHOLD if args.compare_fail is None else args.compare_fail
    rows, counts, regressions = compare.compare_runs(baseline["benchmarks"], run["benchmarks"], compare.ALPHA, threshold)
    print(f"\n---- nnbench compare against {path} ({baseline.get('nnbench', {}).get('processes', 1)} process(es) a "
          f"benchmark there, {args.processes} here)")
    print(compare.render(rows, counts, compare.ALPHA, args.compare_fail))
    if args.compare_fail is None:
        return 0
    print(compare.conclusion(regressions, args.compare_fail))
    return 1 if regressions else 0



def compare_now(run, base, args) -> int:
    """Today's implementations against REV's, timed in the same trials: a verdict per benchmark from
    its paired rounds (bench.harness.paired); exit 1 on a slowdown beyond --compare-fail."""
    from .harness.compare import compare_paired, render_paired
    if base is None:
        print(f"nnbench: --ref {args.ref}: the baseline's benchmark processes left no results (above)", file=sys.stderr)
        return 1
    rows, counts, regressions = compare_paired(run["benchmarks"], base["benchmarks"], args.compare_fail)
    print(f"\n---- nnbench compare: today's implementations against {args.ref_sha[:12]}'s ({args.ref})")
    print(render_paired(rows, counts, regressions, args.compare_fail))
    return 1 if regressions and args.compare_fail is not None else 0
