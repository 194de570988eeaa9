"""Duet: is a ratio of two 1-thread implementations more reproducible timed at the same time?

Bulej et al., "Duet Benchmarking" (2020), ran two alternatives *concurrently* on a shared cloud host
and compared each with the other in the same moment: whatever slowed the machine slowed both. On a
2-core machine that means one implementation per core. This study measures it against the design
``python -m bench.run`` uses, randomized interleaved trials (Abedi & Brecht 2017), on the same
workers, workloads and trials:

- **interleaved**: in each trial, one implementation at a time, in a fresh random order, each free to
  run on any CPU while the other waits;
- **duet**: in each trial, both at once, each pinned to its own core (which one is drawn per trial,
  so neither keeps the worse core), started together at a barrier.

Each implementation is one worker process, built through ``impls.core.train.build`` at 1 thread and
validated as the suites validate (``bench.harness.phases``' workloads and validators) before
anything is timed. A round is a block of calls sized once, before any trial, so that both sides of a pair
last about as long (the slower side's one call, at least ``--round-seconds``); the same blocks
serve both designs. Each design runs ``--repetitions`` times, in
random order, idle and beside a busy process on one core, so the page can say which design's
ratio moves less between repetitions and under load, and what each costs in wall time.
docs/studies.md, "Duet", says how to read it.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import os
import threading
import time

import numpy as np
from tabulate import tabulate

from impls.core.argtypes import positive_float, positive_int
from impls.core.errors import ConfigError, NnbenchError, UnsupportedError
from impls.core.presets import PRESETS
from impls.core.registry import registry
from impls.core.threads import usable_cpus

from ..harness.paired import ratio
from ..harness.phases import PHASES, REFERENCE
from . import Output, Study, user_failure

DESIGNS = ("interleaved", "duet")
LOADS = ("idle", "loaded")
WAIT = 300          # seconds a worker may take to start or to time one round before the study gives up


def add_arguments(p):
    p.add_argument("--pairs", nargs="+", default=["numpy:numba", "numpy:torch-fast-cpu", "numpy:numpy"], metavar="A:B",
                   help="implementation pairs; the ratio is A's seconds / B's (default: numpy:numba "
                        "numpy:torch-fast-cpu numpy:numpy, the last a control whose ratio should be 1)")
    p.add_argument("--preset", default="nielsen", choices=list(PRESETS))
    p.add_argument("--epoch-batch", type=positive_int, default=10)
    p.add_argument("--epoch-examples", type=positive_int, help="examples per timed epoch (default: the preset's training set)")
    p.add_argument("--forward-batch", type=positive_int, default=128)
    p.add_argument("--round-seconds", type=positive_float, default=0.2, help="length a round's block of calls is sized to")
    p.add_argument("--trials", type=positive_int, default=15, help="trials per repetition (default 15)")
    p.add_argument("--repetitions", type=positive_int, default=4, help="repetitions of each design and load (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seeds the order of the trials and the cores drawn")


# -- the worker: one implementation, its workloads, one round at a time ----------------------------
def _worker(conn, barrier, spec, preset, data_dir, workloads):
    from impls.core.mnist import load_dataset
    from impls.core.registry import create, register
    from impls.core.train import build
    try:
        impl = register(spec)      # a name, or an ad hoc --impl NAME=module:Class registered again here
        data = load_dataset(data_dir)
        ready = build(impl, PRESETS[preset], data, threads=1)
        ref = create(REFERENCE, ready.net.spec.with_dtype("float64"))
        blocks = {}
        for key, (phase, batch, examples) in workloads.items():
            PHASES[phase].validate(ready, ref, data, batch)       # before anything is timed
            ready.restore()
            work = PHASES[phase].workload(ready, data, batch, examples)
            blocks[key] = (work, _once(work, ready.net.sync))
    except UnsupportedError as exc:
        return conn.send(("unsupported", str(exc)))
    except Exception as exc:        # noqa: BLE001 -- the implementation's own code: one line to the parent
        return conn.send(("error", user_failure(exc)))
    conn.send(("ready", {key: once for key, (_, once) in blocks.items()}))
    calls = conn.recv()             # per workload: the block the parent sized for the pair
    if not isinstance(calls, dict):     # ("stop",): the other side of the pair could not start
        return
    blocks = {key: (work, calls[key]) for key, (work, _) in blocks.items()}
    while (message := conn.recv())[0] == "round":
        _, key, cpus, together = message
        for task in os.listdir("/proc/self/task"):       # every thread of the process, not just this one
            os.sched_setaffinity(int(task), cpus)
        if together:
            barrier.wait(WAIT)
        conn.send(_round(*blocks[key], ready.net.sync))


def _once(work, sync) -> float:
    """Seconds of one call (the best of 3, after a warm-up call: JIT, caches)."""
    work()
    sync()
    return min(_timed(work, sync) for _ in range(3))


def _timed(work, sync) -> float:
    if work.reset:
        work.reset()                     # outside the timer, as in the suites
    start = time.perf_counter()
    work.fn(*work.args)
    sync()
    return time.perf_counter() - start


def _round(work, calls, sync) -> dict:
    """Seconds per call over the block, the process's CPU seconds per wall second, and the block's
    start and end on the machine-wide monotonic clock (how much two rounds overlapped)."""
    cpu, start = time.process_time(), time.perf_counter()
    seconds = sum(_timed(work, sync) for _ in range(calls)) / calls
    end = time.perf_counter()
    return {"seconds": seconds, "cpu": (time.process_time() - cpu) / (end - start), "start": start, "end": end}


def _spin(cpu, spinning):
    """The background load: one busy process on one core."""
    os.sched_setaffinity(0, {cpu})
    spinning.set()
    while True:
        pass


# -- the parent: trials, repetitions, designs and loads --------------------------------------------
class Pair:
    """Two workers (A and B) and the barrier their duet rounds start at (both workers and the parent)."""

    def __init__(self, mp, a, b, args, workloads):
        self.names, self.barrier, self.procs, self.conns = (a, b), mp.Barrier(3), [], []
        try:
            self._start(mp, args, workloads)
        except BaseException:
            self.close()
            raise

    def _start(self, mp, args, workloads):
        once = []
        for impl in self.names:          # one at a time: each sizes its blocks on a quiet machine
            mine, theirs = mp.Pipe()
            proc = mp.Process(target=_worker, daemon=True,
                              args=(theirs, self.barrier, registry().entries[impl].spec or impl, args.preset,
                                    args.data, workloads))
            proc.start()
            self.procs.append(proc)
            self.conns.append(mine)
            kind, value = self.receive(len(self.conns) - 1)
            if kind != "ready":
                raise (UnsupportedError if kind == "unsupported" else NnbenchError)(value)
            once.append(value)
        # Both sides' blocks last about as long (the slower one's call, at least --round-seconds), so
        # in a duet round each runs beside the other from start to end.
        self.calls = []
        for side, conn in enumerate(self.conns):
            self.calls.append({key: max(1, round(max(args.round_seconds, *(o[key] for o in once)) / once[side][key]))
                               for key in workloads})
            conn.send(self.calls[side])

    def receive(self, side):
        conn, proc = self.conns[side], self.procs[side]
        if not conn.poll(WAIT):
            raise NnbenchError(f"duet: worker for {self.names[side]} gave no answer within {WAIT} s")
        try:
            return conn.recv()
        except EOFError:
            raise NnbenchError(f"duet: worker for {self.names[side]} died (exit code {proc.exitcode})") from None

    def trial(self, key, design, rng, cpus) -> list[dict]:
        if design == "interleaved":
            out = [None, None]
            for side in rng.permutation(2):
                self.conns[side].send(("round", key, cpus, False))
                out[side] = self.receive(side)
            return out
        cores = [int(c) for c in rng.permutation(cpus[:2])]
        for side in (0, 1):
            self.conns[side].send(("round", key, {cores[side]}, True))
        try:
            self.barrier.wait(WAIT)
        except threading.BrokenBarrierError:
            raise NnbenchError(f"duet: {' or '.join(self.names)} did not reach the round's start within {WAIT} s") from None
        return [{**self.receive(side), "core": cores[side]} for side in (0, 1)]

    def close(self):
        for conn, proc in zip(self.conns, self.procs):
            try:
                conn.send(("stop",))
            except OSError:
                pass
            proc.join(5)
            if proc.is_alive():
                proc.terminate()


def run(ctx) -> Output:
    args = ctx.args
    if args.threads and args.threads != [1]:
        raise ConfigError("duet times 1-thread implementations (one per core): --threads must be 1 or left out")
    cpus = sorted(os.sched_getaffinity(0))
    if usable_cpus() < 2:
        raise ConfigError(f"duet needs 2 usable CPUs, one per implementation; this process may use {usable_cpus()}")
    pairs = []
    for text in args.pairs:
        a, sep, b = text.partition(":")
        if not sep or not a or not b:
            raise ConfigError(f"--pairs {text}: write a pair as A:B (names from `nnbench list`)")
        missing = [n for n in (a, b) if n not in ctx.impls]
        if missing:
            ctx.skipped[text] = f"{', '.join(missing)} not available or not asked for (--impl)"
        else:
            pairs.append((a, b))
    preset = PRESETS[args.preset]
    ctx.check_batches([args.epoch_batch], preset)
    ctx.check_batches([args.forward_batch], preset, "forward")
    workloads = {f"epoch batch={args.epoch_batch}": ("epoch", args.epoch_batch, args.epoch_examples),
                 f"forward batch={args.forward_batch}": ("forward", args.forward_batch, None)}
    mp, rng = multiprocessing.get_context("spawn"), np.random.default_rng(args.seed)
    ready, load, started = [], None, time.perf_counter()
    reps = {(d, l): [] for d in DESIGNS for l in LOADS}
    try:
        for a, b in pairs:
            try:
                ready.append(Pair(mp, a, b, args, workloads))
                ctx.log(f"{a} vs {b}: ready, calls per round {ready[-1].calls}")
            except UnsupportedError as exc:
                ctx.skipped[f"{a}:{b}"] = str(exc)
        if not ready:
            raise ConfigError("duet: no pair of implementations could run: " + "; ".join(ctx.skipped.values()))
        for k in range(args.repetitions):
            for l in rng.permutation(LOADS):
                if l == "loaded":
                    spinning = mp.Event()
                    load = mp.Process(target=_spin, args=(cpus[-1], spinning), daemon=True)
                    load.start()
                    if not spinning.wait(WAIT):
                        raise NnbenchError(f"duet: the background load did not start within {WAIT} s")
                for d in rng.permutation(DESIGNS):
                    reps[d, l].append(_repetition(ready, workloads, d, rng, cpus, args.trials))
                    ctx.log(f"repetition {k + 1}/{args.repetitions}, {l}, {d}: {reps[d, l][-1]['wall']:.1f} s")
                if load is not None:
                    load.terminate()
                    load.join()
                    load = None
    finally:
        if load is not None:
            load.terminate()
        for pair in ready:
            pair.close()
    return _render(args, ready, workloads, reps, time.perf_counter() - started, cpus)


def _repetition(pairs, workloads, design, rng, cpus, trials) -> dict:
    """``trials`` trials; in each, every (pair, workload) cell once, in a fresh random order."""
    cells = [(p, key) for p in pairs for key in workloads]
    rounds = {_cell(p, key): ([], []) for p, key in cells}
    start = time.perf_counter()
    for trial in range(trials):
        for i in rng.permutation(len(cells)):
            pair, key = cells[i]
            for side, r in enumerate(pair.trial(key, design, rng, cpus)):
                rounds[_cell(pair, key)][side].append({"trial": trial, "process": 1, "clean": True, **r})
    return {"wall": time.perf_counter() - start, "rounds": rounds}


def _cell(pair, key) -> str:
    return f"{pair.names[0]}:{pair.names[1]} {key}"


def _geomean(values) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _render(args, pairs, workloads, reps, wall, cpus) -> Output:
    rows, summary, cells = [], {}, [_cell(p, key) for p in pairs for key in workloads]
    for cell in cells:
        for d in DESIGNS:
            est = {l: [ratio(*rep["rounds"][cell]) for rep in reps[d, l]] for l in LOADS}
            values = {l: [r.estimate for r in est[l]] for l in LOADS}
            spread = {l: max(values[l]) / min(values[l]) - 1 for l in LOADS}
            shift = _geomean(values["loaded"]) / _geomean(values["idle"]) - 1
            halves = [r.half_width for l in LOADS for r in est[l] if r.half_width is not None]
            overlap = [_overlap(a, b) for l in LOADS for rep in reps[d, l] for a, b in zip(*rep["rounds"][cell])]
            summary[cell, d] = {"idle": values["idle"], "loaded": values["loaded"], "spread": spread, "shift": shift}
            rows.append([cell, d] + [f"{_geomean(values[l]):.3g}× [{min(values[l]):.3g}, {max(values[l]):.3g}]"
                                     for l in LOADS]
                        + [f"{100 * spread['idle']:.1f}%", f"{100 * spread['loaded']:.1f}%", f"{100 * shift:+.1f}%",
                           f"±{100 * float(np.median(halves)):.1f}%" if halves else "—",
                           f"{100 * float(np.mean(overlap)):.0f}%"])
    text = (f"Pairs {', '.join(f'`{a}` vs `{b}`' for a, b in (p.names for p in pairs))}; preset {args.preset}, "
            f"1 thread each; CPUs {cpus}. Each cell: {args.repetitions} repetitions of {args.trials} trials per "
            f"design and load, a round ≥ {args.round_seconds:g} s, the same length for both sides (calls per round: "
            f"{'; '.join(f'{n}: {c}' for p in pairs for n, c in zip(p.names, p.calls))}). The ratio is A's seconds "
            "per call / B's (B's speed-up over A), the geometric mean of the per-trial ratios of one repetition; "
            "*idle* and *loaded* show the geometric mean over repetitions and [the lowest, the highest]. "
            f"*Loaded*: a busy process pinned to CPU {cpus[-1]}. *Spread*: highest / lowest repetition − 1 "
            "(how far a rerun may move). *Load shift*: loaded / idle − 1. *Interval*: the median half-width of "
            "one repetition's 95% interval. *Overlap*: the share of a trial's wall time both rounds were running "
            "(interleaved: 0 by design).\n\n")
    text += tabulate(rows, headers=["pair and workload", "design", "idle", "loaded", "spread idle", "spread loaded",
                                    "load shift", "interval", "overlap"], tablefmt="github", disable_numparse=True)
    text += "\n\n" + _verdict(summary, cells, reps, args.trials) + f"\n\nWall time of the whole study: {wall:.0f} s.\n"
    data = {"settings": {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, list, type(None)))},
            "cpus": cpus, "workloads": workloads, "calls": {" vs ".join(p.names): p.calls for p in pairs},
            "repetitions": {f"{d} {l}": [{"wall": rep["wall"], "rounds": rep["rounds"]} for rep in r]
                            for (d, l), r in reps.items()}}
    return Output(text, {"duet.json": json.dumps(data, indent=1).encode()})


def _overlap(a, b) -> float:
    span = max(a["end"], b["end"]) - min(a["start"], b["start"])
    return max(0.0, min(a["end"], b["end"]) - max(a["start"], b["start"])) / span if span > 0 else 0.0


def _verdict(summary, cells, reps, trials) -> str:
    """What the table says, counted from it: which design's ratio moved less, and at what cost."""
    lines = []
    for what, measure in (("between idle repetitions", lambda s: s["spread"]["idle"]),
                          ("between loaded repetitions", lambda s: s["spread"]["loaded"]),
                          ("from idle to loaded", lambda s: abs(s["shift"]))):
        duet = sum(measure(summary[c, "duet"]) < measure(summary[c, "interleaved"]) for c in cells)
        lines.append(f"- Moved less {what}: duet in {duet} of {len(cells)} cells, interleaved in {len(cells) - duet}.")
    for d in DESIGNS:
        walls = [rep["wall"] for l in LOADS for rep in reps[d, l]]
        lines.append(f"- {d}: {float(np.median(walls)) / trials:.2f} s of wall time per trial of every cell "
                     f"(median over {len(walls)} repetitions).")
    return "\n".join(lines)


STUDY = Study("duet", "Duet: two implementations at once, one per core, against interleaved trials",
              "whether timing two 1-thread implementations concurrently gives a more reproducible ratio",
              add_arguments, run)
