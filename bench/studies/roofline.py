"""Roofline: how close each implementation's forward, backward and epoch come to this machine's limits.

Two ceilings, measured here under the same thread pin: the GEMM peak per dtype (an n x n NumPy
product, ``bench.harness.timing.gemm_peak``) and the memory bandwidth (a 256 MiB NumPy copy,
bytes read plus written, best of 5; NumPy copies on one thread, so with more threads the real
roof may sit higher). A point's arithmetic intensity is its phase's FLOPs over the least bytes
it must move (``bench/harness/phases.py``: parameters read once per mini-batch and, when
trained, written once; inputs read once; activations written and read once; deltas written
once), so its roof is min(peak, intensity x bandwidth), and the table gives how far below that
roof each measured point sits. On a GPU the CUDA implementations are placed under the GPU's own
measured peak and device-copy bandwidth.

The memory roof is main memory's. A small network's weights (784-30-10: 95 KB in float32;
784-100-10: 318 KB) stay in the caches between calls, so at small batches, where weights are
most of the traffic, a point can sit *above* its memory roof: it read from cache, and the
ceiling that binds there is the cache's bandwidth or the per-call overhead, not DRAM's.

Every point is validated against the float64 reference (the phase's own check) before it is timed.
"""
from __future__ import annotations

import statistics
import time

import numpy as np
from tabulate import tabulate

from impls.core import threads as thread_pools
from impls.core.argtypes import positive_int, positive_float
from impls.core.presets import PRESETS
from impls.core.registry import create

from ..harness.phases import BATCH_PHASES, REFERENCE
from ..harness.timing import device_of, gemm_peak, seconds_of, time_call
from ..report.plots import figure, png
from . import Output, Study

COPY_BYTES = 256 * 2 ** 20


def roof(intensity: float, peak: float, bandwidth: float) -> tuple[float, str]:
    """(attainable FLOP/s, which ceiling binds) at ``intensity`` FLOPs per byte."""
    memory = intensity * bandwidth
    return (memory, "memory") if memory < peak else (peak, "compute")


def cpu_bandwidth(repeats: int = 5) -> float:
    """Bytes per second of a large NumPy copy, counting bytes read and written."""
    src = np.ones(COPY_BYTES // 4, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)                      # page faults and first touch outside the timing
    best = min(seconds_of(lambda: np.copyto(dst, src)) for _ in range(repeats))
    return 2 * src.nbytes / best


def gpu_bandwidth(repeats: int = 5) -> float:
    import torch
    src = torch.ones(COPY_BYTES // 4, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    best = min(seconds_of(lambda: (dst.copy_(src), torch.cuda.synchronize())) for _ in range(repeats))
    return 2 * src.numel() * 4 / best


def ceilings(device: str) -> dict:
    if device == "cuda":
        return {"peak": gemm_peak(device="cuda"), "bandwidth": gpu_bandwidth()}
    return {"peak": gemm_peak(), "bandwidth": cpu_bandwidth()}


def add_arguments(p):
    p.add_argument("--presets", nargs="+", default=["nielsen", "relu"], choices=list(PRESETS))
    p.add_argument("--seconds", type=positive_float, default=0.2, help="timed seconds per forward/backward repeat")
    p.add_argument("--repeats", type=positive_int, default=3, help="repeats (forward, backward) or epochs per point")
    p.add_argument("--reference-examples", type=positive_int, default=2000,
                   help="examples a reference epoch is timed on (default 2000)")
    p.add_argument("--batch-sizes", nargs="+", type=positive_int,
                   help="batch sizes for every phase (default: each phase's full-mode sizes)")


def measure_point(phase, ready, data, batch, args) -> tuple[float, int]:
    """(median seconds of one round, examples in it), after validating and warming up."""
    net = ready.net
    ref = create(REFERENCE, net.spec.with_dtype("float64"))
    phase.validate(ready, ref, data, batch)
    ready.restore()
    examples = min(len(ready.X), args.reference_examples) if net.name == REFERENCE else None
    work = phase.workload(ready, data, batch, examples)
    if work.reset is None:                   # a call of microseconds to a second: back to back
        return time_call(work, net.sync, args.seconds, args.repeats), work.examples
    seconds = []
    for round_ in range(args.repeats + 1):   # round 0 warms up
        work.reset()
        start = time.perf_counter()
        work.fn(*work.args)
        net.sync()
        if round_:
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), work.examples


def run(ctx) -> Output:
    args = ctx.args
    pinned = (args.threads or [thread_pools.usable_cpus()])[0]
    for preset_name in args.presets:
        for phase in BATCH_PHASES:
            ctx.check_batches(args.batch_sizes or [], PRESETS[preset_name], phase.name)
    thread_pools.pin(pinned)
    roofs = {"cpu": ceilings("cpu")}
    points = []
    for preset_name in args.presets:
        preset = PRESETS[preset_name]
        for name, ready in ctx.build_all(preset, pinned).items():
            device = device_of(ready.net)
            roofs.setdefault(device, ceilings(device))
            for phase in BATCH_PHASES:
                for batch in args.batch_sizes or phase.batch_sizes("full", preset):
                    seconds, examples = measure_point(phase, ready, ctx.data, batch, args)
                    spec = ready.net.spec
                    flops, moved = phase.flops(spec, examples, batch), phase.traffic(spec, examples, batch)
                    points.append(dict(preset=preset_name, impl=name, phase=phase.name, batch=batch, device=device,
                                       dtype=spec.dtype, intensity=flops / moved, gflops=flops / seconds / 1e9))
                    ctx.log(f"{preset_name} {name} {phase.name} b={batch}: {flops / seconds / 1e9:.3g} GFLOP/s")
                ready.restore()
    text = [ceiling_table(roofs, pinned)]
    plots = {}
    for phase in BATCH_PHASES:
        mine = [p for p in points if p["phase"] == phase.name]
        text.append(phase_table(phase, mine, roofs))
        plots[f"roofline-{phase.name}.png"] = plot(phase, mine, roofs)
    text += [f"\n![{name}]({name})\n" for name in plots]
    return Output("\n".join(text), plots)


def ceiling_table(roofs, pinned) -> str:
    rows = [[device, *(f"{r['peak'][d]:.0f}" for d in ("float32", "float64")), f"{r['bandwidth'] / 1e9:.1f}",
             f"{r['peak']['float32'] * 1e9 / r['bandwidth']:.1f}"] for device, r in roofs.items()]
    return (f"## Ceilings\n\nThreads pinned to {pinned}. The ridge point is the intensity above which a float32 "
            "point can be compute-bound.\n\n"
            + tabulate(rows, headers=["device", "SGEMM GFLOP/s", "DGEMM GFLOP/s", "copy GB/s", "ridge FLOP/byte"],
                       tablefmt="github", disable_numparse=True) + "\n")


def phase_table(phase, points, roofs) -> str:
    rows = []
    for p in points:
        r = roofs[p["device"]]
        attainable, bound = roof(p["intensity"], r["peak"][p["dtype"]] * 1e9, r["bandwidth"])
        rows.append([p["preset"], p["impl"], p["batch"], f"{p['intensity']:.2f}", f"{p['gflops']:.3g}",
                     f"{attainable / 1e9:.3g} ({bound})", _percent(100 * p["gflops"] * 1e9 / attainable)])
    return (f"\n## {phase.title}\n\nIntensity = the phase's FLOPs / the least bytes it moves; roof = "
            "min(peak for the dtype, intensity × bandwidth) on the implementation's device.\n\n"
            + tabulate(rows, headers=["preset", "implementation", "batch", "FLOP/byte", "GFLOP/s", "roof GFLOP/s",
                                      "of roof"], tablefmt="github", disable_numparse=True) + "\n")


def _percent(value: float) -> str:
    return f"{value:.0f}%" + (" (above: from cache)" if value > 100 else "") if value >= 10 else f"{value:.1f}%"


def plot(phase, points, roofs) -> bytes:
    plt, fig, ax = figure((7.5, 5))
    cpu = roofs["cpu"]
    lo = min([p["intensity"] for p in points] or [0.1]) / 2
    hi = max([p["intensity"] for p in points] or [100]) * 2
    xs = np.geomspace(lo, hi, 200)
    for dtype, style in (("float32", "-"), ("float64", ":")):
        ax.plot(xs, [roof(x, cpu["peak"][dtype] * 1e9, cpu["bandwidth"])[0] / 1e9 for x in xs], style, color="black",
                label=f"CPU roof, {dtype}")
    markers = iter("osD^v<>ph*")
    colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3)
    for (impl, preset), style in {(p["impl"], p["preset"]): None for p in points}.items():
        mine = [p for p in points if p["impl"] == impl and p["preset"] == preset]
        ax.plot([p["intensity"] for p in mine], [p["gflops"] for p in mine], next(markers, "o"),
                color=next(colors), label=f"{impl} ({preset})", alpha=0.85)
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP per byte moved)", ylabel="GFLOP/s",
           title=f"Roofline: {phase.title}")
    return png(plt, fig, ax, legend_size=7)


STUDY = Study("roofline", "How close each implementation comes to this machine's limits: a roofline",
              "forward, backward and epoch of every implementation placed under the GEMM peak and the memory "
              "bandwidth", add_arguments, run)
