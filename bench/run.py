"""``python -m bench.run``: the benchmark suites, every implementation in processes of its own,
timed in interleaved trials.

``pytest bench`` times the implementations one after another in one process: minutes apart, so a
slow phase of a shared machine lands on whichever ran then, and their ratios do not reproduce. Here:

- **Processes.** Every implementation's suites run in a pytest process of its own (``--processes``
  P of them), all started at once: a process holds one framework (memory stays that of the largest
  plus the others' idle footprint), and an implementation that crashes takes only itself down.
- **Trials.** The processes take turns (``bench.harness.turns``, ``bench.harness.trials``): one at
  a time uses the machine, and each benchmark is timed in trials, every implementation one round
  per trial in a fresh random order, until its ratios to numpy are known to within a few percent
  or the mode's time for it is spent. A round that lost its CPU to another process is seen,
  recorded, not paired, and made up by another trial. Every ratio in the report is then paired
  within trials, with a bootstrap interval (``bench.harness.paired``).
- **Compare.** ``--ref REV`` also runs the implementations of git revision REV (its ``impls/``,
  today's harness: ``bench.harness.baseline_tree``) as members of the same trials, and decides per
  benchmark from the paired rounds; ``--compare`` reads a saved run instead, the weaker test.

The parts are pytest-benchmark JSONs; they are merged into one run of the same format
(``--json``), which is saved to the machine's history (``--save``, passed runs only). Interrupted
(Ctrl-C, a usage error): nothing is written. A process that dies is recorded as a failure of its
implementation; one that holds the machine past ``--timeout`` at one turn (a hang) is ended with its
process group. SIGINT, SIGTERM and SIGHUP end every benchmark process; the temporary folder is
removed and nothing is saved. Every output is checked for writability before the first benchmark,
and written whole or not at all (``bench.report.writing``). Each process's own output (pytest's,
pytest-benchmark's tables) is shown with ``--show-output``, or when it failed.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path

from . import baselines
from .harness.children import STOP_SIGNALS, Stopped, stop
from .harness.host import check_label, this_label
from .harness.phases import MODES
from .harness.processes import died, implementations, merge, plan
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
    p.add_argument("--processes", type=_positive, default=1, metavar="P",
                   help="processes per implementation, each a member of every trial. Default: 1")
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
    """The ratios a benchmark's trials must know before they may end (``members``: its implementations,
    each standing for all its processes): with --ref, each implementation's against its baseline's;
    otherwise each one's against numpy's (the tables' yardstick)."""
    against_base = [(m, "base:" + m) for m in members if "base:" + m in members]
    if against_base:
        return against_base
    yardstick = next((m for m in members if m == YARDSTICK), None)
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
    baseline = baselines.saved(args) if args.compare is not None else None     # before minutes of benchmarks
    if baseline is not None and not isinstance(baseline, tuple):
        return baseline
    handlers = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        with tempfile.TemporaryDirectory(prefix="nnbench-run-") as tmp, contextlib.ExitStack() as stack:
            folders = (None, None)
            if args.ref is not None:
                folders = _sides(args, stack)
                if isinstance(folders, int):
                    return folders
            return _run(args, rest, argv, baseline, Path(tmp), *folders)
    except Stopped as exc:
        print(f"nnbench: stopped by {exc}: its benchmark process ended with it; nothing written or saved",
              file=sys.stderr)
        return 128 + exc.signum
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)


def _sides(args, stack):
    """(the baseline's folder, today's folder): REV's impls/ and today's, prepared alike with today's
    harness (bench.harness.baseline_tree); or an exit status after saying why not."""
    from .harness.baseline_tree import BaselineError, default_rev, resolve, sides
    repo = Path.cwd()
    try:
        sha, why = default_rev(repo) if args.ref == "auto" else (resolve(args.ref, repo), f"--ref {args.ref}")
        folders = stack.enter_context(sides(sha, repo))
    except BaselineError as exc:
        print(f"nnbench: --ref {args.ref}: {exc}", file=sys.stderr)
        return 2
    args.ref_sha = sha
    print(f"nnbench: the baseline is the implementations of {args.ref_sha[:12]} ({why}), timed now beside "
          "today's, both from folders prepared alike", flush=True)
    return folders


def tree_env(folder: Path) -> dict:
    """The environment of a process of the baseline's, run in ``folder`` (bench.harness.baseline_tree)."""
    from .harness.baseline_tree import env
    return env(folder)


def _run(args, rest, argv, baseline, tmp: Path, base_tree=None, head_tree=None) -> int:
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
    for side, cwd in (("", head_tree), *((("base:", base_tree),) if base_tree else ())):
        for i, (names, k) in enumerate(steps, 1):
            alt = side + alternative_name(names, k, args.processes)
            out, log = tmp / f"{side[:-1] or 'head'}{i}.json", tmp / f"{side[:-1] or 'head'}{i}.log"
            alternatives.append(Alternative(alt, names[0], part_command(names, k, args, rest, out), out, log, cwd=cwd,
                                            env={**(tree_env(cwd) if cwd else os.environ), ALT_ENV: alt,
                                                 TURNS_ENV: str(tmp / "turns.sock")},
                                            which=f"{side}{', '.join(names)}: process {k} of {args.processes}"))
    mode = MODES[args.mode]
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"nnbench: {len(alternatives)} benchmark processes take turns, one at a time, in interleaved trials "
          f"(order seed {seed}); each process's output: --show-output", flush=True)
    driver = Driver(alternatives, tmp / "turns.sock", Budget(*mode.trials, mode.trial_seconds), args.timeout, seed,
                    pairs)
    trials = driver.run()
    parts, base_parts = [], []
    for a in alternatives:
        which = a.which
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
    run["nnbench"]["peak_rss_total"] = driver.peak_total or None
    run["nnbench"]["trials"] = {"seed": seed, "least": mode.trials[0], "most": mode.trials[1],
                                "seconds": mode.trial_seconds, "settle_seconds": driver.settled, "benchmarks": trials}
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
            baselines.save(run, args, failed)
    except WriteError as exc:
        print(f"nnbench: {exc}", file=sys.stderr)
        return 1
    code = 1 if failed else 0
    if baseline is not None:
        code = max(code, baselines.compare_saved(run, args, *baseline))
    if base_tree is not None:
        code = max(code, baselines.compare_now(run, merge(base_parts, args.processes, status) if base_parts else None, args))
    return code


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
    total = run["nnbench"].get("peak_rss_total")
    print(f"\nnnbench: {len(run['benchmarks'])} benchmarks from {len(rss)} kinds of process; the largest peak "
          f"resident memory, {(rss[big] or 0) / 1e9:.2f} GB, was {big}'s"
          + (f"; all of them together held at most {total / 1e9:.2f} GB between turns" if total else ""))
    share = run["nnbench"]["other_processes_cpu_share"]
    if share is not None:
        print(f"nnbench: other processes used {100 * share:.1f}% of the machine's CPU time during this run")


if __name__ == "__main__":
    sys.exit(main())
