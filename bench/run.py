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

An implementation is the user's code, so nothing it does may hang the run, lose its results or
leave a traceback: every child process (the one that lists the implementations, each benchmark
process) runs in a process group of its own under a time limit (``--timeout``), and is ended with
its group when it passes it; an implementation whose import fails, that exits, crashes or hangs is
a failure of the run naming it. SIGINT, SIGTERM and SIGHUP to this driver are passed on to the
running child's group, which is waited for; the temporary folder is removed and nothing is saved.
Every output (``--json``, the history) is checked for writability before the first benchmark,
and written whole or not at all (``bench.report.writing``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .harness import compare
from .harness.children import STOP_SIGNALS, Stopped, stop, supervise
from .harness.host import check_label, label_of, this_label
from .harness.phases import MODES
from .harness.processes import died, merge, plan
from .harness.trials import Alternative, Budget, Driver
from .harness.turns import ALT_ENV
from .harness.turns import ENV as TURNS_ENV
from .report.answer import YARDSTICK
from .report.writing import WriteError, check_writable, write_file

#: --timeout's default, seconds one child process may run: an hour, far beyond what one
#: implementation's full-mode suites take on the slowest machine measured (results/), so only a hang
#: reaches it
TIMEOUT = 3600.0


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
    p.add_argument("--ref", metavar="REV",
                   help="also time the implementations (impls/) of git revision REV, with today's harness, in the "
                        "same trials, and decide per benchmark from the paired rounds; 'auto': your uncommitted "
                        "changes against HEAD, else the last commit that changed impls/ against its parent")
    p.add_argument("--compare-fail", type=float, metavar="PCT",
                   help="with --compare: exit 1 on a significant slowdown beyond PCT percent")
    p.add_argument("--compare-other-machine", action="store_true", help="allow a baseline of another label")
    p.add_argument("--timeout", type=_seconds, default=TIMEOUT, metavar="SECONDS",
                   help="end a benchmark process that holds the machine longer at one turn (or takes longer to "
                        f"start): a failure naming it. Default: {TIMEOUT:g}")
    p.add_argument("--seed", type=int, metavar="N", help="seed of the trials' random orders. Default: a fresh one, "
                                                           "recorded in the run")
    p.add_argument("--show-output", action="store_true",
                   help="print every benchmark process's output after the run (pytest-benchmark's tables)")
    args, rest = p.parse_known_args(argv)
    if rest and rest[0] == "--":
        rest = rest[1:]
    for i, arg in enumerate(rest):    # pytest's own spelling of --storage (README: a shared history)
        if arg.startswith("--benchmark-storage"):
            value = arg.partition("=")[2] or (rest[i + 1] if i + 1 < len(rest) else "")
            args.storage = Path(value.removeprefix("file://"))
    if args.compare_fail is not None and args.compare is None and args.ref is None:
        p.error("--compare-fail needs --compare or --ref")
    if args.ref is not None and args.compare is not None:
        p.error("--ref and --compare: one baseline at a time (--ref measures it now; --compare reads a saved run)")
    if args.compare_fail is not None and not args.compare_fail >= 0:
        p.error(f"--compare-fail: {args.compare_fail:g} is not a percentage (e.g. 15)")
    try:
        args.machine = check_label(args.machine) if args.machine else this_label()
    except ValueError as exc:
        p.error(f"--machine: {exc}")
    return args, rest


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (more than 0)")
    return value


def _positive(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of processes (1 or more)")
    return int(text)


def implementations(specs, only, tmp: Path, timeout: float) -> tuple[dict[str, str | None], dict[str, str]]:
    """(name -> why it cannot run here, None if it can; name -> why the user's code is broken),
    asked of a child process so that this one never imports a framework: it stays small while the
    benchmarks run. With --only only those are imported (the others: "not asked for"). The answer
    comes back in a file, not on stdout, which an implementation's module may print to on import;
    the file of the name being imported says which one ended the child, if one does. A failure
    raises SystemExit with one line."""
    answer, trying, errors = tmp / "implementations.json", tmp / "importing.txt", tmp / "implementations.stderr"
    code = ("import json, sys\nfrom pathlib import Path\nfrom impls.core.errors import NnbenchError\n"
            "from bench.harness.processes import survey\n"
            "try:\n    found = survey(sys.argv[4:], set(filter(None, sys.argv[3].split(','))), "
            "Path(sys.argv[2]).write_text)\n"
            "except NnbenchError as exc:\n    sys.exit(f'nnbench: {exc}')\n"
            "Path(sys.argv[1]).write_text(json.dumps(found))\n")
    with open(errors, "w") as err:
        try:
            status = supervise([sys.executable, "-c", code, str(answer), str(trying), only or "", *specs], timeout,
                               stdout=subprocess.DEVNULL, stderr=err)
        except subprocess.TimeoutExpired:
            status = None
    if answer.exists():
        found, broken, registered = json.loads(answer.read_text())
        return {name: found.get(name, "not asked for (--only)") for name in registered}, broken
    name = trying.read_text() if trying.exists() else None
    how = (f"did not finish within --timeout {timeout:g} s" if status is None
           else died(status).replace("the benchmark process", "it").replace(" and wrote no results", ""))
    lines = errors.read_text(errors="replace").strip().splitlines()
    if status is not None and lines and lines[-1].startswith("nnbench: "):
        raise SystemExit(lines[-1])
    raise SystemExit(f"nnbench: cannot list the implementations: the process importing them {how}"
                     + (f" while importing {name!r}" if name else "") + (f" ({lines[-1]})" if lines else ""))


def part_command(names, k, args, rest, out: Path) -> list:
    """The pytest command of one benchmark process: implementations ``names``, process k of P."""
    cmd = [sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", f"--bench-mode={args.mode}",
           f"--bench-only={','.join(names)}", f"--bench-process={k}/{args.processes}", f"--benchmark-json={out}",
           f"--bench-machine={args.machine}", *(f"--bench-impl={s}" for s in args.impl)]
    return [*cmd, *rest]


def alternative_name(names, k, processes) -> str:
    """What a benchmark process is called in the trials: its implementation (``#k`` for its k-th of P)."""
    return ",".join(names) + (f"#{k}" if processes > 1 else "")


def pairs(members) -> list[tuple[str, str]]:
    """The ratios a benchmark's trials must know before they may end: each implementation's against
    numpy's (the tables' yardstick) when numpy is among them."""
    yardstick = next((m for m in members if m.split("#")[0] == YARDSTICK), None)
    return [(m, yardstick) for m in members if yardstick and m != yardstick]


def check_outputs(args) -> None:
    """Every file the run will write, checked before the first benchmark (WriteError says why)."""
    if args.json is not None:
        if args.json.is_dir():
            raise WriteError(f"--json {args.json}: is a folder; name the file to write")
        check_writable(args.json.parent, f"--json {args.json}: its folder")
    if args.storage.exists() and not args.storage.is_dir():
        raise WriteError(f"--storage {args.storage}: is a file, not a folder")
    if args.save:
        check_writable(args.storage, "--storage")


def main(argv=None) -> int:
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        check_outputs(args)
    except WriteError as exc:
        print(f"nnbench: {exc}", file=sys.stderr)
        return 2
    baseline = _baseline(args) if args.compare is not None else None     # before minutes of benchmarks
    if baseline is not None and not isinstance(baseline, tuple):
        return baseline
    handlers = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        with tempfile.TemporaryDirectory(prefix="nnbench-run-") as tmp, contextlib.ExitStack() as stack:
            base_tree = None
            if args.ref is not None:
                base_tree = _base_tree(args, stack)
                if isinstance(base_tree, int):
                    return base_tree
            return _run(args, rest, argv, baseline, Path(tmp), base_tree)
    except Stopped as exc:
        print(f"nnbench: stopped by {exc}: its benchmark process ended with it; nothing written or saved",
              file=sys.stderr)
        return 128 + exc.signum
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)


def _base_tree(args, stack):
    """The folder the baseline's processes run in (REV's impls/, today's harness), or an exit status."""
    from .harness.baseline_tree import BaselineError, checkout, default_rev, resolve
    repo = Path.cwd()
    try:
        if args.ref == "auto":
            sha, why = default_rev(repo)
        else:
            sha, why = resolve(args.ref, repo), f"--ref {args.ref}"
        tree = stack.enter_context(checkout(sha, repo))
    except BaselineError as exc:
        print(f"nnbench: --ref {args.ref}: {exc}", file=sys.stderr)
        return 2
    args.ref_sha = sha
    print(f"nnbench: the baseline is the implementations of {sha[:12]} ({why}), timed now beside today's", flush=True)
    return tree


def _run(args, rest, argv, baseline, tmp: Path, base_tree=None) -> int:
    from .harness.plugin import _cpu_clock, other_processes_share
    start, began = _cpu_clock(), time.monotonic()
    status, broken = implementations(args.impl, args.only, tmp, args.timeout)
    crashed = [_failure(name, f"{name}: loading the implementation", why) for name, why in broken.items()
               if not args.only or name in args.only.split(",")]
    try:
        steps = plan(status, args.only, args.processes, broken)
    except ValueError as exc:
        print(f"nnbench: {exc}", file=sys.stderr)
        return 2
    alternatives = []
    for side, cwd in (("", None), *((("base:", base_tree),) if base_tree else ())):
        for i, (names, k) in enumerate(steps, 1):
            alt = side + alternative_name(names, k, args.processes)
            out, log = tmp / f"{side[:-1] or 'head'}{i}.json", tmp / f"{side[:-1] or 'head'}{i}.log"
            alternatives.append(Alternative(alt, names[0], part_command(names, k, args, rest, out), out, log, cwd=cwd,
                                            env={**os.environ, ALT_ENV: alt, TURNS_ENV: str(tmp / "turns.sock")}))
    mode = MODES[args.mode]
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"nnbench: {len(alternatives)} benchmark processes take turns, one at a time, in interleaved trials "
          f"(order seed {seed}); each process's output: --show-output", flush=True)
    driver = Driver(alternatives, tmp / "turns.sock", Budget(*mode.trials, mode.trial_seconds), args.timeout, seed,
                    pairs)
    trials = driver.run()
    parts, base_parts = [], []
    for a in alternatives:
        which = f"{a.alt}: its benchmark process"
        code = a.proc.returncode
        if args.show_output or (code not in (0, 1, 5) and not a.timed_out):
            _show(a)
        if a.timed_out:
            crashed.append(_failure(a.impl, which, f"held the machine past --timeout {args.timeout:g} s and was "
                                                   "stopped (a hang?)"))
            continue
        if code in (2, 3, 4) or code in (-2, -15):
            print(f"nnbench: {a.alt}: stopped (pytest exit status {code}; its output is above): nothing written "
                  "or saved", file=sys.stderr)
            return 2
        if not a.out.exists() and code != 5:    # 5: nothing collected (-k), which is no failure
            crashed.append(_failure(a.impl, which, died(code)))
        if a.out.exists():
            (base_parts if a.alt.startswith("base:") else parts).append(json.loads(a.out.read_text()))
    if not parts:
        if crashed:
            _summary(None, crashed)
            print("nnbench: no benchmark results: every benchmark process failed (above); nothing written or saved",
                  file=sys.stderr)
            return 1
        print("nnbench: no benchmark ran (every implementation filtered out or skipped)", file=sys.stderr)
        return 5
    run = merge(parts, args.processes, status)
    run["nnbench"]["command"] = os.environ.get("NNBENCH_COMMAND") or shlex.join(["python", "-m", "bench.run",
                                                                               *(argv or sys.argv[1:])])
    run["nnbench"]["other_processes_cpu_share"] = other_processes_share(start)
    run["nnbench"]["trials"] = {"seed": seed, "least": mode.trials[0], "most": mode.trials[1],
                                "seconds": mode.trial_seconds, "benchmarks": trials}
    run["nnbench"]["wall_seconds"] = time.monotonic() - began
    if crashed:          # what the process had timed before it died is gone with it
        run["nnbench"]["session"] = "failed"
        run["nnbench"]["outcomes"] += crashed
    failed = run["nnbench"]["session"] != "passed"
    _summary(run, crashed)
    try:
        if args.json:
            write_file(args.json, json.dumps(run, indent=2).encode())
        if args.save:
            _save(run, args, failed)
    except WriteError as exc:
        print(f"nnbench: {exc}", file=sys.stderr)
        return 1
    code = 1 if failed else 0
    if baseline is not None:
        code = max(code, _compare(run, args, *baseline))
    if base_tree is not None:
        code = max(code, _compare_paired(run, merge(base_parts, args.processes, status) if base_parts else None, args))
    return code


def _compare_paired(run, base, args) -> int:
    """Today's implementations against REV's, timed in the same trials: a verdict per benchmark from
    its paired rounds (bench.harness.paired); exit 1 on a slowdown beyond --compare-fail."""
    from .harness.compare import render_paired
    if base is None:
        print(f"nnbench: --ref {args.ref}: the baseline's benchmark processes left no results (above)", file=sys.stderr)
        return 1
    text, regressions = render_paired(base["benchmarks"], run["benchmarks"], args.compare_fail,
                                      f"{args.ref_sha[:12]} ({args.ref})")
    print("\n" + text)
    return 1 if regressions and args.compare_fail is not None else 0


def _show(a) -> None:
    """A benchmark process's output (pytest's and pytest-benchmark's), framed, on stderr."""
    text = a.log.read_text(errors="replace") if a.log.exists() else ""
    print(f"\n---- output of {a.alt}'s benchmark process (exit status {a.proc.returncode}) ----\n{text.rstrip()}\n"
          f"---- end of {a.alt}'s output ----", file=sys.stderr)


def _failure(impl: str, test: str, message: str) -> dict:
    """An outcome for what no pytest process could record: a process that died, hung or never started."""
    return {"test": test, "status": "failed", "impl": impl, "phase": None, "message": message}


def _summary(run, crashed):
    for outcome in crashed:
        print(f"nnbench: {outcome['test']}: {outcome['message']}", file=sys.stderr)
    if run is None:
        return
    rss = run["nnbench"]["peak_rss_processes"]
    big = max(rss, key=lambda k: rss[k] or 0)
    print(f"\nnnbench: {len(run['benchmarks'])} benchmarks from {len(rss)} kinds of process; the largest peak "
          f"resident memory, {(rss[big] or 0) / 1e9:.2f} GB, was {big}'s")
    share = run["nnbench"]["other_processes_cpu_share"]
    if share is not None:
        print(f"nnbench: other processes used {100 * share:.1f}% of the machine's CPU time during this run")


def _storage(args, failed=False):
    import logging
    from pytest_benchmark.storage.file import FileStorage
    return FileStorage(args.storage / "failed" if failed else args.storage, logger=logging.getLogger("nnbench"),
                       default_machine_id=args.machine)


def _save(run, args, failed):
    """pytest-benchmark's FileStorage.save, but whole or not at all: its own writes in place, and a
    full disk left a truncated JSON in the history that every later compare read."""
    from pytest_benchmark.utils import get_tag, safe_dumps
    storage = _storage(args, failed)
    target = storage.get(f"{storage._next_num}_{get_tag()}.json")
    write_file(target, safe_dumps(run, ensure_ascii=True, indent=4).encode())
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
