"""Profile one implementation and phase with py-spy: ``make profile IMPL=numpy PRESET=nielsen``.

    python -m bench.profiling --impl numpy --preset nielsen [--phase epoch] [--seconds 15]

A worker process loads MNIST, builds the network, warms the phase up (JIT compilation,
CUDA context and graphs happen here, not in the profile) and then repeats it; only then
does ``py-spy record`` attach to it, for ``--seconds``, writing under ``--out``:

    <impl>-<preset>-<phase>-b<batch>.svg               flamegraph (open in a browser)
    <impl>-<preset>-<phase>-b<batch>.speedscope.json   for https://www.speedscope.app
    <impl>-<preset>-<phase>-b<batch>.txt               the hottest frames, also printed

Two recorders sample the same seconds, one per format. What py-spy cannot see is in
README.md ("Profiling"): Numba-compiled code, BLAS/OpenMP worker threads, GPU time.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from impls.core.argtypes import implementation, positive_float, positive_int, thread_count
from impls.core.presets import PRESETS
from impls.core.threads import usable_cpus

from .harness.phases import PHASES

#: the phases with a workload to repeat (time to accuracy is whole runs)
PROFILED = [name for name, phase in PHASES.items() if phase.workload]
REPO = Path(__file__).resolve().parent.parent
READY = "nnbench-profile-worker-ready"


class ProfileError(Exception):
    """Something the user can fix; printed as one line."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.profiling", description=__doc__.splitlines()[0])
    p.add_argument("--impl", required=True, type=implementation,
                   help="a name from `nnbench list`, or your own as [NAME=]module:Class[(option=value, ...)]")
    p.add_argument("--preset", required=True, choices=list(PRESETS),
                   help="the network, learning rate and training set")
    p.add_argument("--phase", choices=PROFILED, default="epoch", help="default: epoch")
    p.add_argument("--seconds", type=positive_float, default=15.0, help="sampling time (default 15)")
    p.add_argument("--batch", type=positive_int, help="mini-batch size (default: the preset's)")
    p.add_argument("--threads", type=thread_count, default=usable_cpus(),
                   help=f"pin BLAS/OpenMP and the implementation's threads (default: all {usable_cpus()} usable CPUs)")
    p.add_argument("--rate", type=positive_int, default=100, help="samples per second (default 100)")
    p.add_argument("--native", action="store_true",
                   help="also sample C/C++ frames of the main thread (py-spy --native)")
    p.add_argument("--out", default="results/profiles", help="directory (default: results/profiles)")
    p.add_argument("--data", metavar="DIR", help="MNIST directory (default: NNBENCH_DATA, then the cache)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p


def check(args) -> None:
    """Refuse, with the reason, what cannot be profiled: before starting any process."""
    from impls.core.registry import available
    reason = available()[args.impl]
    if reason:
        raise ProfileError(f"implementation {args.impl!r} is unavailable: {reason}")
    preset = PRESETS[args.preset]
    batch = args.batch or preset.batch(preset.n_train)
    if args.phase == "forward" and batch > 10_000:
        raise ProfileError(f"--batch {batch}: a forward batch comes from the 10,000 test images")
    if args.phase != "forward" and batch > preset.n_train:
        raise ProfileError(f"--batch {batch}: preset {preset.name} trains on {preset.n_train:,} examples")
    args.batch = batch
    if py_spy() is None:
        raise ProfileError("py-spy not found: install the dev extra (make setup, or pip install py-spy)")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"      # the venv's, even when it is not on PATH
    return str(beside) if beside.exists() else shutil.which("py-spy")


# -- the process being profiled -------------------------------------------------------------------
def workload(args):
    """The phase as a no-argument callable, after a warm-up; loads data and builds the network
    through the one setup path, with the phase's own workload, as the suites time it."""
    from impls.core.mnist import load_dataset
    from impls.core.train import build

    data = load_dataset(args.data)
    ready = build(args.impl, PRESETS[args.preset], data, threads=args.threads)
    run = PHASES[args.phase].workload(ready, data, args.batch)   # epochs reset to the same weights each time
    for _ in range(2):
        run()
        ready.net.sync()
    return run, ready.net


def worker(args) -> int:
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    run, net = workload(args)
    print(READY, flush=True)
    deadline = time.monotonic() + 4 * args.seconds + 120   # never outlive a launcher that died
    while not stop and time.monotonic() < deadline:
        run()
        net.sync()
    return 0


# -- the launcher ------------------------------------------------------------------------------------
def record(args) -> dict[str, Path]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = out / (re.sub(r"[^\w.-]+", "_", args.impl) + f"-{args.preset}-{args.phase}-b{args.batch}")
    from impls.core.registry import registry
    # the worker registers an ad hoc implementation again from its spec (it is not in its registry)
    impl = registry().entries[args.impl].spec or args.impl
    command = [sys.executable, "-m", "bench.profiling", "--worker", "--impl", impl, "--preset", args.preset,
               "--phase", args.phase, "--batch", str(args.batch), "--threads", str(args.threads),
               "--seconds", str(args.seconds)] + (["--data", args.data] if args.data else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    errors = tempfile.TemporaryFile(mode="w+")           # a file, not a pipe: chatty warnings cannot block it
    worker_proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
    try:
        line = worker_proc.stdout.readline()             # blocks through data loading and warm-up
        if line.strip() != READY:
            worker_proc.wait(timeout=60)
            errors.seek(0)
            raise ProfileError("the worker stopped before the phase started: "
                               + (errors.read().strip().splitlines() or ["no message"])[-1])
        print(f"profiling {args.impl} {args.phase} (preset {args.preset}, batch {args.batch}, "
              f"{args.threads} threads) for {args.seconds:g} s, pid {worker_proc.pid}", flush=True)
        files = {"flamegraph": base.with_suffix(".svg"), "speedscope": base.with_suffix(".speedscope.json")}
        recorders = [subprocess.Popen([py_spy(), "record", "--pid", str(worker_proc.pid),
                                       "--duration", f"{max(1, round(args.seconds))}", "--rate", str(args.rate),
                                       "--format", fmt, "--output", str(path), "--function"]   # one box per function, not per line
                                      + (["--native"] if args.native else []),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                     for fmt, path in files.items()]
        for rec in recorders:
            output = rec.communicate()[0]
            if rec.returncode != 0:
                hint = (" (py-spy needs ptrace: run as root, or with CAP_SYS_PTRACE, or set "
                        "kernel.yama.ptrace_scope=0)" if "ermission" in output else "")
                raise ProfileError(f"py-spy failed{hint}: {output.strip().splitlines()[-1] if output.strip() else ''}")
        return files
    finally:
        errors.close()
        if worker_proc.poll() is None:
            worker_proc.terminate()
            try:
                worker_proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                worker_proc.kill()


def hottest(speedscope: Path, top: int = 12) -> list[tuple[str, float, float]]:
    """(frame, % of samples with it on the stack, % with it on top) from py-spy's speedscope file."""
    data = json.loads(speedscope.read_text())
    frames = data["shared"]["frames"]

    def label(i):
        f = frames[i]
        path = Path(f.get("file") or "?")
        try:
            path = path.resolve().relative_to(REPO)
        except ValueError:
            path = Path(*path.parts[-2:]) if len(path.parts) > 1 else path
        return f"{f['name']} ({path}:{f.get('line')})"     # with --function: the def line

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


def summarize(args, files) -> str:
    from tabulate import tabulate
    rows = hottest(files["speedscope"])
    table = tabulate(rows, headers=["frame (hottest own time first)", "% on stack", "% own"],
                     floatfmt=".1f", tablefmt="github")
    return (f"{args.impl}, phase {args.phase}, preset {args.preset}, batch {args.batch}, "
            f"{args.threads} threads, {args.seconds:g} s at {args.rate} Hz\n"
            f"flamegraph: {files['flamegraph']}\nspeedscope: {files['speedscope']}\n\n{table}\n")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        return worker(args)
    try:
        check(args)
        files = record(args)
        text = summarize(args, files)
    except ProfileError as exc:
        print(f"bench.profiling: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench.profiling: interrupted", file=sys.stderr)
        return 130
    from .report.writing import write_all
    summary = files["flamegraph"].with_suffix(".txt")
    write_all(summary.parent, {summary.name: text.encode()})
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
