"""Scaling: when do W data-parallel ranks beat one? Strong scaling of torch-ddp, and a model of why.

Strong scaling: the global mini-batch stays the preset's, so W ranks each compute m/W examples
and then all-reduce the whole gradient. For each preset and W = 1 .. the usable CPUs, inside the
ranks (the slowest rank's time, median of repeats): a full step, the step's compute alone
(``local_gradients`` + update, no communication) and the all-reduce of one gradient alone.

The model is Hockney's alpha-beta: an all-reduce of B bytes costs alpha + beta * B, both fitted
(least squares) to all-reduces of float32 messages from 4 B to 16 MiB on these ranks; the
residuals are shown. A step on W ranks is then predicted as the compute of one m/W share,
measured on one rank, plus alpha + beta * B, and the speedup as the measured one-rank step over
that. Compute grows about linearly in m (t = c0 + c1 m, fitted over a batch-size sweep), so W
ranks pay from m* = (alpha + beta B) / (c1 (1 - 1/W)): the crossover, predicted, then located in
the sweep's measured speedups.
"""
from __future__ import annotations

import math
import statistics
import time

import numpy as np
from tabulate import tabulate

from impls.core.check import check_sgd_step
from impls.core.presets import PRESETS
from impls.core.registry import create, registry
from impls.core.threads import usable_cpus
from impls.core.train import build

from ..harness.phases import REFERENCE
from ..harness.plugin import _cpu_clock, other_processes_share
from ..harness.timing import OTHERS_WARN
from ..report.plots import figure, png
from . import Output, Study

LR = 1e-6                       # repeated steps on one mini-batch leave the weights where they were


def add_arguments(p):
    p.add_argument("--presets", nargs="+", default=["nielsen", "relu", "fullbatch"], choices=list(PRESETS))
    p.add_argument("--worlds", nargs="+", type=int, help=f"rank counts (default 1 .. {usable_cpus()})")
    p.add_argument("--syncs", nargs="+", default=["flat", "ddp"], choices=["flat", "ddp"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[8, 32, 128, 512, 2048, 8192],
                   help="the crossover sweep, on the relu network")
    p.add_argument("--largest-message", type=int, default=2 ** 24,
                   help="bytes of the largest all-reduce the alpha-beta fit times (default 16 MiB)")
    p.add_argument("--seconds", type=float, default=0.2, help="timed seconds per repeat (default 0.2)")
    p.add_argument("--repeats", type=int, default=5, help="repeats per cell; the median is shown (default 5)")


# -- inside the ranks --------------------------------------------------------------------------------
def _median_seconds(fn, seconds, repeats):
    """Median over repeats of the slowest rank's seconds per call; every rank runs the same count."""
    import torch
    import torch.distributed as dist
    fn()
    dist.barrier()
    start = time.perf_counter()
    fn()
    calls = torch.tensor([max(1, int(seconds / max(time.perf_counter() - start, 1e-7)))])
    dist.all_reduce(calls, op=dist.ReduceOp.MAX)
    times = torch.zeros(repeats, dtype=torch.float64)
    for r in range(repeats):
        dist.barrier()
        start = time.perf_counter()
        for _ in range(int(calls)):
            fn()
        times[r] = (time.perf_counter() - start) / int(calls)
    dist.all_reduce(times, op=dist.ReduceOp.MAX)
    return statistics.median(times.tolist())


def _time_step(ctx, replica, m, seconds, repeats):
    import torch
    import torch.distributed as dist
    from impls.torch_ddp import share
    lo, hi = share(m, ctx.rank, ctx.world)
    x, y = replica.X_train[lo:hi], replica.y_train[lo:hi]
    gradient = torch.zeros(replica.spec.n_params, dtype=replica.dtype)
    return {"step": _median_seconds(lambda: replica.step(x, y, m, LR), seconds, repeats),
            "compute": _median_seconds(lambda: (replica.local_gradients(x, y, m), replica.apply(LR)), seconds, repeats),
            "all-reduce": _median_seconds(lambda: dist.all_reduce(gradient), seconds, repeats)}


def _time_all_reduce(ctx, replica, sizes, seconds, repeats):
    import torch
    import torch.distributed as dist
    return [_median_seconds(lambda b=torch.zeros(n): dist.all_reduce(b), seconds, repeats) for n in sizes]


# -- in the driver -------------------------------------------------------------------------------------
def run(ctx) -> Output:
    from impls.torch_ddp import DataParallelNetwork
    args = ctx.args
    names = [n for n in ctx.impls if issubclass(registry().load(n)[0], DataParallelNetwork)]
    worlds = args.worlds or list(range(1, usable_cpus() + 1))
    if not names:
        return Output("No data-parallel implementation was available to run.\n")
    name, top = names[0], max(worlds)

    def ready(preset, world, sync="flat", n_train=None):
        """The network on W ranks, holding only the examples its timed mini-batches use."""
        cls, options, _ = registry().load(name)
        net = cls(preset.spec(cls.dtypes[0]), **{**options, "world": world, "sync": sync})
        net.name = name
        return build(name, preset, ctx.data, net=net, n_train=n_train or max(preset.batch(), 64))

    def timed(r, m):
        return r.net.run_on_ranks(_time_step, m, args.seconds, args.repeats)

    clock = _cpu_clock()
    # alpha and beta, on the largest world
    probe = ready(PRESETS["relu"], top)
    floats = [4 ** k for k in range(int(math.log(max(args.largest_message // 4, 1), 4)) + 1)]
    seconds = probe.net.run_on_ranks(_time_all_reduce, floats, args.seconds, args.repeats)
    sizes = np.array(floats) * 4.0
    beta, alpha = np.polyfit(sizes, seconds, 1, w=1 / np.array(seconds))   # relative residuals weigh alike
    model = lambda b: alpha + beta * b                                       # noqa: E731
    ctx.log(f"all-reduce on {top} ranks: alpha {alpha * 1e6:.1f} us, beta {beta * 1e9:.3f} ns/B")
    others = ", ".join(f"`{n}`" for n in ctx.impls if n not in names)
    text = (f"`{name}`, ranks on this machine (gloo over 127.0.0.1), one torch thread per rank; every time is the "
            f"slowest rank's, median of {args.repeats} repeats of ~{args.seconds:g} s."
            + (f" Not data-parallel, so not timed here: {others}." if others else "") + "\n\n"
            f"## The all-reduce: alpha-beta model on {top} ranks\n\n"
            f"Fitted (least squares on relative error): **alpha = {alpha * 1e6:.1f} µs**, "
            f"**beta = {beta * 1e9:.3f} ns/byte** ({1 / beta / 1e9 if beta > 0 else float('inf'):.2f} GB/s).\n\n"
            + tabulate([(f"{b:,.0f}", f"{t * 1e6:.1f}", f"{model(b) * 1e6:.1f}", f"{(t - model(b)) / t:+.0%}")
                        for b, t in zip(sizes, seconds)],
                       headers=["bytes", "measured µs", "alpha + beta B µs", "residual"], tablefmt="github") + "\n")

    # strong scaling of each preset
    rows, cells = [], {}
    for preset_name in args.presets:
        preset = PRESETS[preset_name]
        m = preset.batch()
        one = ready(preset, 1)
        ref = create(REFERENCE, one.net.spec.with_dtype("float64"))
        check_sgd_step(one.net, ref, one.params, one.X[:64], one.y[:64], lr=0.5)     # validate before timing
        one.restore()
        n_bytes = one.net.spec.n_params * np.dtype(one.net.spec.dtype).itemsize
        for sync in args.syncs:
            for world in worlds:
                r = one if (world, sync) == (1, "flat") else ready(preset, world, sync)
                t = timed(r, m)
                base = cells.get((preset_name, sync, 1), t)["step"]
                predicted = math.nan       # the model is of the flat all-reduce; DDP's buckets are not it
                if sync == "flat":
                    predicted = 1.0 if world == 1 else base / (timed(one, math.ceil(m / world))["compute"]
                                                               + model(n_bytes))
                cells[preset_name, sync, world] = {**t, "speedup": base / t["step"], "predicted": predicted}
                rows.append([preset_name, m, sync, world, f"{t['step'] * 1e6:,.0f}", f"{t['compute'] * 1e6:,.0f}",
                             f"{t['all-reduce'] * 1e6:,.0f}", f"{base / t['step']:.2f}", _fmt(predicted, ".2f"),
                             _fmt(base / t["step"] - predicted, "+.2f"), f"{base / t['step'] / world:.0%}"])
                ctx.log(f"{preset_name} {sync} W={world}: step {t['step'] * 1e6:.0f} us, speedup "
                        f"{base / t['step']:.2f} (model {predicted:.2f})")
    text += ("\n## Strong scaling at each preset's mini-batch\n\nSpeedup against the same sync on 1 rank; "
             "predicted: one share's compute measured on 1 rank plus alpha + beta B of the gradient (B: "
             "parameters x 4 bytes); efficiency: speedup / W.\n\n"
             + tabulate(rows, headers=["preset", "batch", "sync", "W", "step µs", "compute alone µs",
                                       "all-reduce alone µs", "speedup", "predicted", "residual", "efficiency"],
                        tablefmt="github", disable_numparse=True) + "\n")

    # the crossover, on the relu network
    relu = PRESETS["relu"]
    one, many = (ready(relu, w, n_train=max(args.batch_sizes)) for w in (1, top))
    sweep = [(m, timed(one, m), timed(many, m)) for m in args.batch_sizes]
    c1, c0 = np.polyfit([m for m, _, _ in sweep], [a["compute"] for _, a, _ in sweep], 1)
    n_bytes = one.net.spec.n_params * 4
    m_star = model(n_bytes) / (c1 * (1 - 1 / top))
    srows, measured = [], []
    for m, a, b in sweep:
        predicted = a["step"] / (c0 + c1 * m / top + model(n_bytes))
        measured.append(a["step"] / b["step"])
        srows.append([m, f"{a['step'] * 1e6:,.0f}", f"{b['step'] * 1e6:,.0f}", f"{measured[-1]:.2f}",
                      f"{predicted:.2f}", f"{measured[-1] - predicted:+.2f}"])
    found = next((f"between {lo} and {hi}" for (lo, s), (hi, t) in zip(zip(args.batch_sizes, measured),
                  zip(args.batch_sizes[1:], measured[1:])) if s < 1 <= t), None)
    text += (f"\n## Where {top} ranks start to pay (relu network, {n_bytes:,} bytes of gradient)\n\n"
             f"Compute on one rank fits t = {c0 * 1e6:.1f} µs + {c1 * 1e9:.1f} ns x m. Predicted crossover: "
             f"**m* = (alpha + beta B) / (c1 (1 - 1/W)) = {m_star:,.0f} examples per mini-batch**; measured: "
             + (f"**{found}**" if found else "no crossing within the sweep") + ".\n\n"
             + tabulate(srows, headers=["batch", "1 rank µs", f"{top} ranks µs", "speedup", "predicted", "residual"],
                        tablefmt="github", disable_numparse=True) + "\n")
    plots = {"scaling-speedup.png": _plot_speedup(cells, args, worlds),
             "scaling-split.png": _plot_split(cells, args, worlds),
             "scaling-crossover.png": _plot_crossover(args.batch_sizes, measured, srows, m_star, top)}
    share = other_processes_share(clock)      # the ranks, this process's children, count as its own
    if share is not None:
        text += (f"\nOther processes used {share:.0%} of the machine's CPU time during this run"
                 + (": they competed with the ranks, so read single cells with care." if share > OTHERS_WARN
                    else ".") + "\n")
    text += "".join(f"\n![{p}]({p})\n" for p in plots)
    return Output(text, plots)


def _fmt(x, spec) -> str:
    return "—" if math.isnan(x) else format(x, spec)


def _plot_speedup(cells, args, worlds) -> bytes:
    plt, fig, ax = figure()
    ax.plot(worlds, worlds, ":", color="grey", label="ideal")
    for preset in args.presets:
        colors = {}
        for sync, style in zip(args.syncs, ("-", "--")):
            line, = ax.plot(worlds, [cells[preset, sync, w]["speedup"] for w in worlds], style, marker="o",
                            label=f"{preset}, {sync}")
            colors[sync] = line.get_color()
        if "flat" in args.syncs:
            ax.plot(worlds, [cells[preset, "flat", w]["predicted"] for w in worlds], "x", color=colors["flat"],
                    markersize=10, label=f"{preset}, flat, predicted")
    ax.set(xlabel="ranks W", ylabel="speedup over 1 rank", title="Strong scaling at each preset's mini-batch")
    ax.set_xticks(worlds)
    return png(plt, fig, ax, legend_size=7)


def _plot_split(cells, args, worlds) -> bytes:
    plt, fig, ax = figure((8, 4.5))
    labels = [f"{p}\n{s} W={w}" for p in args.presets for s in args.syncs for w in worlds]
    parts = [cells[p, s, w] for p in args.presets for s in args.syncs for w in worlds]
    compute = [min(c["compute"], c["step"]) / c["step"] for c in parts]
    at = range(len(labels))
    ax.bar(at, compute, label="compute alone")
    ax.bar(at, [1 - c for c in compute], bottom=compute, label="rest of the step (all-reduce, waiting)")
    for i, (label, c) in enumerate(zip(labels, parts)):
        ax.text(i, 1.01, f"{c['step'] * 1e6:,.0f} µs", ha="center", fontsize=6)
        # as text, not tick labels: png() gives the axes plain number formatters
        ax.text(i, -0.02, label, transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=6)
    ax.set(ylabel="share of the step", title="Step time split (slowest rank)", ylim=(0, 1.1))
    ax.set_xticks(list(at))
    ax.tick_params(axis="x", labelbottom=False)
    return png(plt, fig, ax, legend_size=7)


def _plot_crossover(batches, measured, srows, m_star, top) -> bytes:
    plt, fig, ax = figure()
    ax.plot(batches, measured, "-o", label=f"measured, {top} ranks")
    ax.plot(batches, [float(r[4]) for r in srows], "--x", label="alpha-beta model")
    ax.axhline(1, color="grey", linestyle=":")
    ax.axvline(m_star, color="red", linestyle=":", label=f"predicted crossover m* = {m_star:,.0f}")
    ax.set(xscale="log", xlabel="mini-batch size (relu network)", ylabel="speedup over 1 rank",
           title="When data parallelism pays")
    return png(plt, fig, ax, legend_size=7)


STUDY = Study("scaling", "Scaling: when W data-parallel ranks beat one",
              "strong scaling of torch-ddp per preset, compute vs all-reduce, alpha-beta model and crossover",
              add_arguments, run)
