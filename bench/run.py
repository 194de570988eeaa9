"""``python -m bench.run``: the benchmark suites with every implementation in its own processes.

``pytest bench`` times every implementation in one process. Two things that process cannot give:

- **Memory.** It holds every framework at once (numba, torch with Inductor, JAX, scikit-learn:
  hundreds of MB before any work) plus MNIST, and a full-batch time-to-accuracy run adds its
  working set on top (docs/measurements.md, "Benchmark harness"). Here a process holds one implementation's
  libraries, so the run's peak is the largest of them.
- **Noise between processes.** One process's rounds share its state, and the same benchmark's
  median moves between processes by far more than its rounds spread (``bench/harness/compare.py``).
  Here every benchmark is timed in ``--processes`` P processes, interleaved (each implementation
  once, then each again), so they are minutes apart; each times a Pth of the rounds
  (``--bench-process``), the rounds are pooled, and each process's median is kept in
  ``extra_info["processes"]`` for ``make compare``.

The parts are pytest-benchmark JSONs; they are merged into one run of the same format
(``--json``), which is saved to the machine's history (``--save``, passed runs only) or compared
with its newest saved run of the same mode (``--compare``). Interrupted (Ctrl-C, a usage error):
nothing is written. A process that dies is recorded as a failure of its implementation.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .harness import compare
from .harness.machine import check_label, label_of, this_label
from .harness.phases import MODES
from .harness.processes import died, merge, plan

#: pytest-benchmark's --benchmark-max-time default: the forward/backward calibration's budget
MAX_TIME = 1.0


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.run",
                                description="The benchmark suites with every implementation in processes of its own "
                                            "(the module's docstring says why), merged into one pytest-benchmark run.",
                                epilog="Arguments after -- go to every pytest process (e.g. -- --bench-preset relu).")
    p.add_argument("--mode", choices=list(MODES), default="full", help="as pytest's --bench-mode. Default: full")
    p.add_argument("--processes", type=_positive, default=2, metavar="P",
                   help="processes per implementation, each timing a Pth of the rounds. Default: 2")
    p.add_argument("--machine", metavar="NAME", help=f"this machine's label (default: {this_label()})")
    p.add_argument("--impl", action="append", default=[], metavar="SPEC",
                   help="also benchmark your own implementation, [NAME=]module:Class (repeatable)")
    p.add_argument("--only", metavar="NAME[,NAME...]", help="only these implementations")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the merged run here")
    p.add_argument("--storage", type=Path, default=Path(".benchmarks"), help="history folder. Default: .benchmarks")
    p.add_argument("--save", action="store_true", help="save the run to <storage>/<label>/ (a failed one to failed/)")
    p.add_argument("--compare", nargs="?", const=True, default=None, metavar="RUN",
                   help="compare with this machine's newest saved run of the same mode (or RUN: a saved file)")
    p.add_argument("--compare-fail", type=float, metavar="PCT",
                   help="with --compare: exit 1 on a significant slowdown beyond PCT percent")
    p.add_argument("--compare-other-machine", action="store_true", help="allow a baseline of another label")
    args, rest = p.parse_known_args(argv)
    if rest and rest[0] == "--":
        rest = rest[1:]
    for i, arg in enumerate(rest):    # pytest's own spelling of --storage (README: a shared history)
        if arg.startswith("--benchmark-storage"):
            value = arg.partition("=")[2] or (rest[i + 1] if i + 1 < len(rest) else "")
            args.storage = Path(value.removeprefix("file://"))
    if args.compare_fail is not None and args.compare is None:
        p.error("--compare-fail needs --compare")
    if args.compare_fail is not None and not args.compare_fail >= 0:
        p.error(f"--compare-fail: {args.compare_fail:g} is not a percentage (e.g. 15)")
    try:
        args.machine = check_label(args.machine) if args.machine else this_label()
    except ValueError as exc:
        p.error(f"--machine: {exc}")
    return args, rest


def _positive(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of processes (1 or more)")
    return int(text)


def implementations(specs) -> dict[str, str | None]:
    """name -> why it cannot run here (None: it can), asked of a child process so that this one
    never imports a framework: it stays small while the benchmarks run."""
    code = ("import json, sys\nfrom impls.core.registry import available, register\n"
            "for spec in sys.argv[1:]: register(spec, '--impl')\nprint(json.dumps(available()))")
    out = subprocess.run([sys.executable, "-c", code, *specs], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"nnbench: cannot list the implementations: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_part(names, k, args, rest, out: Path) -> int:
    cmd = [sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", f"--bench-mode={args.mode}",
           f"--bench-only={','.join(names)}", f"--bench-process={k}/{args.processes}", f"--benchmark-json={out}",
           f"--bench-machine={args.machine}", *(f"--bench-impl={s}" for s in args.impl)]
    if not any(a.startswith("--benchmark-max-time") for a in rest):
        cmd.append(f"--benchmark-max-time={MAX_TIME / args.processes:g}")
    return subprocess.run([*cmd, *rest]).returncode


def main(argv=None) -> int:
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    from .harness.plugin import _cpu_clock, other_processes_share
    baseline = _baseline(args) if args.compare is not None else None     # before minutes of benchmarks
    if baseline is not None and not isinstance(baseline, tuple):
        return baseline
    start, began = _cpu_clock(), time.monotonic()
    status = implementations(args.impl)
    try:
        steps = plan(status, args.only, args.processes)
    except ValueError as exc:
        print(f"nnbench: {exc}", file=sys.stderr)
        return 2
    parts, crashed = [], []
    with tempfile.TemporaryDirectory(prefix="nnbench-run-") as tmp:
        for i, (names, k) in enumerate(steps, 1):
            print(f"\nnnbench: [{i}/{len(steps)}] {', '.join(names)}: process {k} of {args.processes}", flush=True)
            out = Path(tmp) / f"part{i}.json"
            try:
                code = run_part(names, k, args, rest, out)
            except KeyboardInterrupt:
                code = 2
            if code in (2, 3, 4) or code < 0 and code in (-2, -15):
                print(f"nnbench: stopped (pytest exit status {code}): nothing written or saved", file=sys.stderr)
                return 2
            if code < 0 or (code == 1 and not out.exists()):
                crashed.append({"test": f"{', '.join(names)}: process {k} of {args.processes}", "status": "failed",
                                "impl": names[0], "phase": None, "message": died(code)})
            if out.exists():
                parts.append(json.loads(out.read_text()))
    if not parts:
        print("nnbench: no benchmark ran (every implementation filtered out or skipped)", file=sys.stderr)
        return 5
    run = merge(parts, args.processes, status)
    run["nnbench"]["command"] = os.environ.get("NNBENCH_COMMAND") or shlex.join(["python", "-m", "bench.run",
                                                                               *(argv or sys.argv[1:])])
    run["nnbench"]["other_processes_cpu_share"] = other_processes_share(start)
    run["nnbench"]["wall_seconds"] = time.monotonic() - began
    if crashed:          # what the process had timed before it died is gone with it
        run["nnbench"]["session"] = "failed"
        run["nnbench"]["outcomes"] += crashed
    failed = run["nnbench"]["session"] != "passed"
    _summary(run, crashed)
    if args.json:
        _write(args.json, run)
    if args.save:
        _save(run, args, failed)
    code = 1 if failed else 0
    if baseline is not None:
        code = max(code, _compare(run, args, *baseline))
    return code


def _summary(run, crashed):
    rss = run["nnbench"]["peak_rss_processes"]
    big = max(rss, key=lambda k: rss[k] or 0)
    print(f"\nnnbench: {len(run['benchmarks'])} benchmarks from {len(rss)} kinds of process; the largest peak "
          f"resident memory, {(rss[big] or 0) / 1e9:.2f} GB, was {big}'s")
    share = run["nnbench"]["other_processes_cpu_share"]
    if share is not None:
        print(f"nnbench: other processes used {100 * share:.1f}% of the machine's CPU time during this run")
    for outcome in crashed:
        print(f"nnbench: {outcome['test']}: {outcome['message']}", file=sys.stderr)


def _write(path: Path, run: dict):
    """Whole or not at all: a half-written JSON must never reach the report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(run, indent=2))
    tmp.replace(path)


def _storage(args, failed=False):
    import logging
    from pytest_benchmark.storage.file import FileStorage
    return FileStorage(args.storage / "failed" if failed else args.storage, logger=logging.getLogger("nnbench"),
                       default_machine_id=args.machine)


def _save(run, args, failed):
    from pytest_benchmark.utils import get_tag
    storage = _storage(args, failed)
    storage.save(run, get_tag())
    where = f"{storage.path}/{args.machine}"
    print(f"nnbench: saved to {where}" + (": the run failed, so it is no --compare baseline" if failed else ""))


def _baseline(args):
    """(path, run) to compare with, or the exit status of a usage error (said on stderr)."""
    mode = args.mode
    if args.compare is True:
        found = compare.newest_of_mode(_storage(args).load(), mode)
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
    why = compare.other_machine(label_of(baseline), args.machine)
    if why and not args.compare_other_machine:
        print(f"nnbench: {path}: {why}; pass --compare-other-machine to compare them on purpose", file=sys.stderr)
        return 4
    return path, baseline


def _compare(run, args, path, baseline) -> int:
    threshold = compare.THRESHOLD if args.compare_fail is None else args.compare_fail
    rows, counts, regressions = compare.compare_runs(baseline["benchmarks"], run["benchmarks"], compare.ALPHA, threshold)
    print(f"\n---- nnbench compare against {path} ({baseline.get('nnbench', {}).get('processes', 1)} process(es) a "
          f"benchmark there, {args.processes} here)")
    print(compare.render(rows, counts, compare.ALPHA, args.compare_fail))
    if args.compare_fail is None:
        return 0
    print(compare.conclusion(regressions, args.compare_fail))
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
