"""Profile one implementation and phase with py-spy: ``make profile IMPL=numpy PRESET=nielsen``.

    python -m bench.profiling --impl numpy --preset nielsen [--phase epoch] [--seconds 15] [--split] [--lines]

A worker process loads MNIST, builds the network, warms the phase up (JIT compilation,
CUDA context and graphs happen here, not in the profile) and then repeats it; only then
does ``py-spy record`` attach to it, for ``--seconds``. Three files go into ``--out``
(default ``out/profiles``, which git ignores; ``--out results/profiles`` to publish one),
named by everything that changes what was measured, so no profile replaces another:

    <impl>-<preset>-<phase>-b<batch>-t<threads>[-split][-lines][-native].svg   flamegraph
    ....speedscope.json      for https://www.speedscope.app
    ....txt                  the hottest frames, what the sampler cannot see, what --split cost

``--split`` runs an implementation's split mode (Numba: ``NNBENCH_NUMBA_PROFILE=1``, one named
Python call per equation) and measures its epoch against the fused one first. The worker is
bounded: a load, build or warm-up longer than ``--timeout`` is stopped with one line, and
whatever the implementation prints goes to a file, never into the launcher's pipe.
docs/profiling.md explains the choices.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from impls.core.argtypes import implementation, positive_float, positive_int, thread_count
from impls.core.errors import NnbenchError
from impls.core.presets import PRESETS
from impls.core.threads import usable_cpus

from .harness.phases import PHASES
from .profile_report import hottest, summarize  # noqa: F401  (hottest: for callers of bench.profiling)

#: the phases with a workload to repeat (time to accuracy is whole runs)
PROFILED = [name for name, phase in PHASES.items() if phase.workload]
REPO = Path(__file__).resolve().parent.parent
#: impls.numba_impl.PROFILE_ENV (not imported here: that would load Numba into the launcher)
SPLIT_ENV = "NNBENCH_NUMBA_PROFILE"
SPLIT_REPEATS = 3          # epochs of each mode timed, interleaved, for the split-cost ratio


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
    p.add_argument("--split", action="store_true",
                   help=f"the implementation's split mode (Numba: {SPLIT_ENV}=1): every equation a named call")
    p.add_argument("--lines", action="store_true", help="one entry per source line, not per function")
    p.add_argument("--timeout", type=positive_float, default=600.0,
                   help="seconds the worker may take to load, build and warm up (default 600)")
    p.add_argument("--out", default="out/profiles", help="directory (default: out/profiles, ignored by git)")
    p.add_argument("--data", metavar="DIR", help="MNIST directory (default: NNBENCH_DATA, then the cache)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    return p


def check(args) -> None:
    """Refuse, with the reason, what cannot be profiled, before starting any process. Whether the
    implementation imports is the worker's to find out: a user's import may hang."""
    preset = PRESETS[args.preset]
    batch = args.batch or preset.batch(preset.n_train)
    if args.phase == "forward" and batch > 10_000:
        raise ProfileError(f"--batch {batch}: a forward batch comes from the 10,000 test images")
    if args.phase != "forward" and batch > preset.n_train:
        raise ProfileError(f"--batch {batch}: preset {preset.name} trains on {preset.n_train:,} examples")
    args.batch = batch
    args.split = args.split or os.environ.get(SPLIT_ENV, "0") not in ("", "0")
    if py_spy() is None:
        raise ProfileError("py-spy not found: install the dev extra (make setup, or pip install py-spy)")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"      # the venv's, even when it is not on PATH
    return str(beside) if beside.exists() else shutil.which("py-spy")


def file_stem(args) -> str:
    """Every option that changes what was measured; an implementation name that is not a plain
    file name (``my.net``, a spec with options) is made one, with a hash of the original so two
    names never meet."""
    impl = re.sub(r"[^A-Za-z0-9_-]+", "_", args.impl)
    if impl != args.impl:
        impl += "-" + hashlib.sha1(args.impl.encode()).hexdigest()[:6]
    flags = "".join(f"-{flag}" for flag in ("split", "lines", "native") if getattr(args, flag))
    return f"{impl}-{args.preset}-{args.phase}-b{args.batch}-t{args.threads}{flags}"


# -- the process being profiled -------------------------------------------------------------------
def split_cost(net, run) -> float | None:
    """Median split epoch / median fused epoch, timed interleaved here, or None without a split mode."""
    if not hasattr(net, "profile"):
        return None
    seconds = {False: [], True: []}
    for _ in range(SPLIT_REPEATS):
        for mode in seconds:
            net.profile = mode
            start = time.perf_counter()
            run()
            net.sync()
            seconds[mode].append(time.perf_counter() - start)
    net.profile = True
    return statistics.median(seconds[True]) / statistics.median(seconds[False])


def workload(args):
    """The phase as a no-argument callable, after a warm-up; loads data and builds the network
    through the one setup path, with the phase's own workload, as the suites time it."""
    from impls.core.mnist import load_dataset
    from impls.core.registry import available
    from impls.core.train import build

    reason = available([args.impl])[args.impl]          # its import first: before minutes of data loading
    if reason:
        raise NnbenchError(f"implementation {args.impl!r} is unavailable: {reason}")
    data = load_dataset(args.data)
    ready = build(args.impl, PRESETS[args.preset], data, threads=args.threads)
    if args.split and not hasattr(ready.net, "profile"):
        raise NnbenchError(f"implementation {args.impl!r} has no split mode (--split, {SPLIT_ENV}): "
                           "only Numba's compiled epoch needs one")
    run = PHASES[args.phase].workload(ready, data, args.batch)   # epochs reset to the same weights each time
    for _ in range(2):
        run()
        ready.net.sync()
    return run, ready.net


def worker(args) -> int:
    from .harness.host import describe
    from .harness.timing import device_of
    from .studies import user_failure
    try:
        run, net = workload(args)
        ratio = split_cost(net, run) if args.split and args.phase == "epoch" else None
    except NnbenchError as exc:
        print(exc, file=sys.stderr)
        return 2
    except Exception as exc:            # noqa: BLE001 -- the user's code: one line, not a traceback
        print(user_failure(exc), file=sys.stderr)
        return 2
    with os.fdopen(args.ready_fd, "w") as ready:
        ready.write(json.dumps({"split_ratio": ratio, "device": device_of(net), "split_mode": hasattr(net, "profile"),
                                "class": type(net).__name__, "machine": describe()}) + "\n")
    deadline = time.monotonic() + 4 * args.seconds + 120   # never outlive a launcher that died
    while time.monotonic() < deadline:
        run()
        net.sync()
    return 0


# -- the launcher ------------------------------------------------------------------------------------
def wait_ready(fd: int, proc, timeout: float, log) -> dict:
    """The worker's line once its phase runs; a bounded wait, an error with its last line if it died."""
    deadline, line = time.monotonic() + timeout, b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise ProfileError(f"the worker did not start the phase within {timeout:g} s (loading data, importing, "
                               "building and warming up the implementation): stopped it; --timeout sets the limit")
        chunk = os.read(fd, 4096)
        if not chunk:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            log.seek(0)
            last = (log.read().strip().splitlines() or ["no message"])[-1]
            raise ProfileError(f"the worker stopped before the phase started: {last}")
        line += chunk
    return json.loads(line)


def _die_with_parent() -> None:
    """In the worker, before it starts: a launcher killed outright takes its worker with it (Linux)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)      # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def record(args, tmp: Path) -> dict:
    """Start the worker, wait for it, sample it with py-spy into tmp; returns what the worker said."""
    from impls.core.registry import registry
    # the worker registers an ad hoc implementation again from its spec (it is not in its registry)
    impl = registry().entries[args.impl].spec or args.impl
    read_fd, write_fd = os.pipe()
    command = [sys.executable, "-m", "bench.profiling", "--worker", "--impl", impl, "--preset", args.preset,
               "--phase", args.phase, "--batch", str(args.batch), "--threads", str(args.threads),
               "--seconds", str(args.seconds), "--ready-fd", str(write_fd)] + (["--split"] if args.split else []) \
        + (["--data", args.data] if args.data else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    if args.split:
        env[SPLIT_ENV] = "1"
    log = tempfile.TemporaryFile(mode="w+")        # a file, not a pipe: a chatty implementation cannot block
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, text=True,
                            env=env, pass_fds=(write_fd,), preexec_fn=_die_with_parent)
    os.close(write_fd)
    recorders = []
    try:
        info = wait_ready(read_fd, proc, args.timeout, log)
        print(f"profiling {args.impl} {args.phase} (preset {args.preset}, batch {args.batch}, "
              f"{args.threads} threads) for {args.seconds:g} s, pid {proc.pid}", flush=True)
        recorders = [subprocess.Popen([py_spy(), "record", "--pid", str(proc.pid),
                                       "--duration", f"{max(1, round(args.seconds))}", "--rate", str(args.rate),
                                       "--format", fmt, "--output", str(tmp / f"profile.{fmt}")]
                                      + ([] if args.lines else ["--function"])   # one box per function
                                      + (["--native"] if args.native else []),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                     for fmt in ("flamegraph", "speedscope")]
        for rec in recorders:
            try:
                output = rec.communicate(timeout=args.seconds + 120)[0]
            except subprocess.TimeoutExpired:
                rec.kill()
                rec.communicate()
                raise ProfileError("py-spy did not finish within 2 minutes of its sampling time") from None
            if rec.returncode != 0:
                hint = (" (py-spy needs ptrace: run as root, or with CAP_SYS_PTRACE, or set "
                        "kernel.yama.ptrace_scope=0)" if "ermission" in output else "")
                raise ProfileError(f"py-spy failed{hint}: {output.strip().splitlines()[-1] if output.strip() else ''}")
        return info
    finally:
        os.close(read_fd)
        for rec in recorders:
            if rec.poll() is None:
                rec.kill()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.worker:
        return worker(args)
    args.command = f"python -m bench.profiling {shlex.join(argv)}"
    # SIGTERM unwinds like Ctrl-C, so the worker and py-spy are stopped on the way out
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        check(args)
        with tempfile.TemporaryDirectory(prefix="nnbench-profile-") as tmp:
            info = record(args, Path(tmp))
            stem, out = file_stem(args), Path(args.out)
            files = {f"{stem}.svg": (Path(tmp) / "profile.flamegraph").read_bytes(),
                     f"{stem}.speedscope.json": (Path(tmp) / "profile.speedscope").read_bytes()}
        text = summarize(args, info, out, stem, files[f"{stem}.speedscope.json"])
        from .report.writing import write_all
        try:
            write_all(out, {**files, f"{stem}.txt": text.encode()})
        except OSError as exc:
            raise ProfileError(f"writing {args.out}: {exc.strerror or exc}; nothing written") from None
    except (ProfileError, NnbenchError) as exc:
        print(f"bench.profiling: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench.profiling: interrupted; nothing written", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
