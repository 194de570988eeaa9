"""Epoch grid: whole-epoch seconds of every implementation over batch sizes x thread counts,
where each pair of implementations trades places (the crossovers), and what compiling costs.

For each preset's network, every implementation is built through the one setup path with
the preset's seeded weights, validated against the float64 reference at every batch size (a
short epoch with a short last mini-batch), then timed: per cell a warm-up round and
``--repeats`` rounds, each round one epoch per implementation from the same weights in the
same order, the implementations' order alternating between rounds, after an idle pause
(OpenBLAS's threads spin for a while after numpy's last call, and a parallel epoch started
inside that window ran much slower on 2 cores: docs/measurements.md, "Benchmark harness"). The per-example reference is timed on a prefix
and scaled (marked †). An implementation that records ``compile_seconds`` and names its
compile cache (``compile_cache_env``) is also started in fresh processes, cold and from the cache.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from tabulate import tabulate

from impls.core.argtypes import positive_int
from impls.core.presets import PRESETS
from impls.core.registry import create, registry
from impls.core.threads import usable_cpus
from impls.core.train import pin_threads, timed_epoch

from ..harness.phases import PHASES, REFERENCE, epoch_flops
from ..report.plots import figure, png
from . import Output, Study

SETTLE = 0.25          # seconds idle before each timed epoch (see the docstring)
NOISY = 1.5            # a cell whose slowest epoch is this many times its fastest is marked


def add_arguments(p):
    p.add_argument("--presets", nargs="+", default=["nielsen", "relu"], choices=list(PRESETS))
    p.add_argument("--batch-sizes", nargs="+", type=positive_int, default=[10, 32, 64, 128, 256, 512, 1024])
    p.add_argument("--repeats", type=positive_int, default=3, help="timed epochs per cell, after one warm-up (default 3)")
    p.add_argument("--reference-examples", type=positive_int, default=2000,
                   help="examples the per-example reference is timed on, scaled to the epoch (default 2000)")
    p.add_argument("--no-compile-time", action="store_true", help="skip the fresh-process compile timings")


@dataclass
class Grid:
    """Whole-epoch timings of one preset: every implementation x thread count x batch size."""
    preset: object
    ready: dict                  # impl -> impls.core.train.Ready
    examples: dict               # impl -> examples timed per epoch (the reference: a prefix)
    n: int                       # examples in a full epoch
    cells: dict                  # (impl, threads, batch) -> [seconds per full epoch]


def measure(ctx, preset, batches, thread_counts, repeats, reference_examples) -> Grid:
    """Build every implementation, validate each at every batch size, then time the grid."""
    ready = ctx.build_all(preset)
    n = len(next(iter(ready.values())).X)
    examples = {name: min(n, reference_examples) if name == REFERENCE else n for name in ready}
    for batch in batches:                       # validate every implementation before timing any
        for name, r in ready.items():
            ref = create(REFERENCE, r.net.spec.with_dtype("float64"))
            PHASES["epoch"].validate(r, ref, ctx.data, batch)
            r.restore()
    cells = {}
    for threads in thread_counts:
        for r in ready.values():
            pin_threads(r.net, threads)
        for batch in batches:
            ctx.log(f"{preset.name}, {threads} thread(s), batch {batch}")
            times = time_cell(ready, examples, batch, preset.lr, repeats)
            for name, seconds in times.items():
                cells[name, threads, batch] = [s * n / examples[name] for s in seconds]
    return Grid(preset, ready, examples, n, cells)


def run(ctx) -> Output:
    args = ctx.args
    thread_counts = args.threads or sorted({1, usable_cpus()})
    sections, plots = [], {}
    for preset_name in args.presets:
        ctx.check_batches(args.batch_sizes, PRESETS[preset_name])
    for preset_name in args.presets:
        preset = PRESETS[preset_name]
        g = measure(ctx, preset, args.batch_sizes, thread_counts, args.repeats, args.reference_examples)
        sections.append(preset_section(preset, g.ready, g.examples, g.n, g.cells, thread_counts, args.batch_sizes))
        plots[f"epoch-grid-{preset_name}.png"] = plot(preset, g.ready, g.cells, thread_counts, args.batch_sizes)
    text = "\n".join(sections)
    if not args.no_compile_time:
        text += compile_section(ctx)
    text += "".join(f"\n![{name}]({name})\n" for name in plots)
    return Output(text, plots)


def time_cell(ready, examples, batch, lr, repeats):
    """{impl: [seconds]} for one batch size: a warm-up round, then ``repeats`` timed ones."""
    first = next(iter(ready.values()))
    orders = [first.rng.permutation(len(first.X)) for _ in range(repeats + 1)]
    times = {name: [] for name in ready}
    for round_ in range(repeats + 1):
        names = list(ready) if round_ % 2 else list(ready)[::-1]
        for name in names:
            r = ready[name]
            r.net.set_params(r.params)
            time.sleep(SETTLE)
            seconds, _ = timed_epoch(r.net, orders[round_][:examples[name]], batch, lr)
            if round_:                           # round 0 is the warm-up
                times[name].append(seconds)
    return times


def preset_section(preset, ready, examples, n, cells, thread_counts, batches) -> str:
    spec = next(iter(ready.values())).net.spec
    rows, gflops, noisy = [], [], False
    for name in ready:
        for threads in thread_counts:
            row, grow = [f"{name}{' †' if examples[name] < n else ''}", threads], [name, threads]
            for batch in batches:
                s = cells[name, threads, batch]
                med = statistics.median(s)
                flag = max(s) > NOISY * min(s)
                noisy |= flag
                row.append(f"{med:.3g} [{min(s):.3g}–{max(s):.3g}]" + (" !" if flag else ""))
                grow.append(f"{epoch_flops(spec, n, batch) / med / 1e9:.3g}")
            rows.append(row)
            gflops.append(grow)
    headers = ["implementation", "threads"] + [f"b={b}" for b in batches]
    text = (f"## `{preset.name}`: {spec.describe().rsplit(' ', 1)[0]}, {n:,} examples, lr {preset.lr}\n\n"
            "Seconds per epoch, median [min–max] over the timed rounds"
            + (f"; † timed on its first {min(examples.values()):,} examples and scaled" if min(examples.values()) < n
               else "") + "\n\n" + tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True) + "\n")
    if noisy:
        text += (f"\n! slowest epoch > {NOISY}x the fastest: something else probably ran on these cores; "
                 "rerun before trusting that cell (and its crossovers).\n")
    text += ("\nGFLOP/s (the epoch's matrix-product FLOPs and SGD update / median seconds)\n\n"
             + tabulate(gflops, headers=headers, tablefmt="github", disable_numparse=True) + "\n")
    return text + "\n" + crossovers(ready, cells, thread_counts, batches) + "\n"


def measured_crossovers(cells, a, b, threads, batches) -> list[tuple[int, int, str, str]]:
    """(batch before, batch after, faster before, faster after) wherever the faster of a and b changes."""
    faster = [a if statistics.median(cells[a, threads, k]) < statistics.median(cells[b, threads, k]) else b
              for k in batches]
    return [(batches[j], batches[j + 1], faster[j], faster[j + 1])
            for j in range(len(batches) - 1) if faster[j] != faster[j + 1]]


def crossovers(ready, cells, thread_counts, batches) -> str:
    """For every pair of implementations and thread count: which is faster where, and between
    which measured batch sizes the faster one changes."""
    names = [n for n in ready if n != REFERENCE]
    lines = []
    for threads in thread_counts:
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                changes = measured_crossovers(cells, a, b, threads, batches)
                faster = a if statistics.median(cells[a, threads, batches[0]]) < statistics.median(
                    cells[b, threads, batches[0]]) else b
                what = ("; ".join(f"{after} overtakes {before} between batch {lo} and {hi}"
                                  for lo, hi, before, after in changes)
                        or f"{faster} is faster at every measured batch size")
                lines.append(f"- {threads} thread(s), `{a}` vs `{b}`: {what}")
    return "Crossovers (medians compared cell by cell):\n\n" + "\n".join(lines) + "\n"


def plot(preset, ready, cells, thread_counts, batches) -> bytes:
    plt, fig, ax = figure((7.5, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for color, name in zip(colors * 3, ready):
        for threads, style in zip(thread_counts, ("--", "-", ":", "-.")):
            ax.plot(batches, [statistics.median(cells[name, threads, b]) for b in batches], style, color=color,
                    marker="o", label=f"{name}, {threads} thr")
    ax.set(xscale="log", yscale="log", xlabel="mini-batch size", ylabel="seconds per epoch",
           title=f"Epoch time by batch size and threads: {preset.name}")
    ax.set_xticks(batches)
    return png(plt, fig, ax, legend_size=7)


# -- compile time ---------------------------------------------------------------------------------
# Construct (Numba compiles there), then warm up for an epoch at batch 10 (torch.compile and JAX compile
# there) on stand-in data of the nielsen network's shapes: what a first run pays before its first epoch.
PROBE = """
import sys, numpy as np
from impls.core.registry import register, create
from impls.core.presets import PRESETS
from impls.core.spec import init_params
net = create(register(sys.argv[1], 'epoch-grid'), PRESETS['nielsen'].spec(sys.argv[2]))
net.set_params(init_params(net.spec, np.random.default_rng(0), 'normal'))
net.set_training_data(np.zeros((105, net.spec.sizes[0]), np.float32), np.zeros(105, np.int64))
net.warm_up(10)
print(net.compile_seconds)
"""


def first_construction(spec_text: str, dtype: str, env: dict) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, spec_text, dtype], env=env, capture_output=True, text=True,
                         timeout=600, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def compile_section(ctx) -> str:
    rows = []
    for name in ctx.impls:
        cls, _, _ = registry().load(name)
        cache_env = getattr(cls, "compile_cache_env", None)
        if not cache_env:
            continue
        entry = registry().entries[name]
        for dtype in cls.dtypes:
            with tempfile.TemporaryDirectory() as cache:
                env = dict(os.environ, **{cache_env: cache})
                cold = first_construction(entry.spec or name, dtype, env)
                warm = first_construction(entry.spec or name, dtype, env)
            rows.append([name, dtype, f"{cold:.2f}", f"{warm:.2f}"])
            ctx.log(f"compile time {name} {dtype}: {cold:.2f} s cold, {warm:.2f} s cached")
    if not rows:
        return ""
    return ("\n## Compile time\n\nSeconds a fresh process spent compiling before its first nielsen epoch at batch "
            "10 (construction, then `warm_up` for a full and a short mini-batch), with an empty compile cache "
            "and then from it; never inside a timed epoch.\n\n" + tabulate(rows, headers=["implementation", "dtype", "cold s", "from cache s"],
                                          tablefmt="github", disable_numparse=True) + "\n")


STUDY = Study("epoch-grid", "Epoch time over batch sizes and threads, crossovers, compile time",
              "whole epochs of every implementation by batch size x threads; crossovers; compile time",
              add_arguments, run)
