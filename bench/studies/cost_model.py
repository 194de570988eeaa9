"""Cost model: why one implementation wins at small batches and another at large ones.

Every implementation's epoch time over a batch-size sweep (the epoch-grid study's
measurement: validated first, rounds interleaved) is fitted to

    t(b) = (N / b) * c_step + N * c_example

-- ``c_step`` the fixed cost of one mini-batch (interpreter, framework dispatch, kernel
launches, a parallel region's start), ``c_example`` the arithmetic per example -- by least
squares on *relative* error (each point weighted by 1 / its measured time, so a 20 ms epoch
counts as much as a 2 s one). The fit's residual at every batch size is shown: where it is
large, two parameters do not describe the implementation (a cache cliff, BLAS switching
kernels, threads that only pay off above some size), and the table says where. From the
fitted parameters, every pair of implementations crosses where their curves meet,

    b* = (c_step_a - c_step_b) / (c_example_b - c_example_a),

which is set next to the crossover the measurements show.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np
from tabulate import tabulate

from impls.core.argtypes import positive_int
from impls.core.presets import PRESETS
from impls.core.threads import usable_cpus

from ..harness.phases import REFERENCE
from ..report.plots import figure, png
from . import Output, Study
from .epoch_grid import measure, measured_crossovers

#: a fit whose worst residual exceeds this is flagged: the model does not describe that implementation
BREAKS = 0.15


@dataclass
class Fit:
    c_step: float            # seconds per mini-batch
    c_example: float         # seconds per example
    residuals: list[float]   # (fitted - measured) / measured at each batch size

    def time(self, n: int, batch: float) -> float:
        return n / batch * self.c_step + n * self.c_example

    @property
    def worst(self) -> float:
        return max(self.residuals, key=abs)


def fit(n: int, batches, seconds) -> Fit:
    """Least squares on relative error of t(b) = (n/b) c_step + n c_example."""
    b, t = np.asarray(batches, dtype=float), np.asarray(seconds, dtype=float)
    design = np.column_stack([n / b, np.full_like(b, n)]) / t[:, None]
    (c_step, c_example), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    model = Fit(float(c_step), float(c_example), [])
    model.residuals = [(model.time(n, k) - s) / s for k, s in zip(batches, seconds)]
    return model


def predicted_crossover(a: Fit, b: Fit) -> float | None:
    """The batch size where the two fitted curves meet, if they meet at a positive one."""
    if a.c_example == b.c_example:
        return None
    crossing = (a.c_step - b.c_step) / (b.c_example - a.c_example)
    return crossing if crossing > 0 and math.isfinite(crossing) else None


def agrees(predicted: float | None, measured: list[tuple], batches) -> bool:
    """Within one batch-size step: the prediction lies between the sizes one step outside the
    measured interval (and, with no measured crossover, outside the measured range)."""
    if not measured:
        return predicted is None or not batches[0] < predicted < batches[-1]
    if predicted is None or len(measured) > 1:
        return False
    lo, hi = batches.index(measured[0][0]), batches.index(measured[0][1])
    return batches[max(lo - 1, 0)] <= predicted <= batches[min(hi + 1, len(batches) - 1)]


def add_arguments(p):
    p.add_argument("--presets", nargs="+", default=["nielsen", "relu"], choices=list(PRESETS))
    p.add_argument("--batch-sizes", nargs="+", type=positive_int, default=[10, 16, 32, 64, 128, 256, 512, 1024])
    p.add_argument("--repeats", type=positive_int, default=3, help="timed epochs per cell, after one warm-up (default 3)")
    p.add_argument("--reference-examples", type=positive_int, default=2000,
                   help="examples the per-example reference is timed on, scaled to the epoch (default 2000)")


def run(ctx) -> Output:
    args = ctx.args
    threads = (args.threads or [usable_cpus()])[0]
    batches = sorted(args.batch_sizes)
    for preset_name in args.presets:
        ctx.check_batches(batches, PRESETS[preset_name])
    text, plots = [f"Threads pinned to {threads} (`--threads`).\n"], {}
    for preset_name in args.presets:
        g = measure(ctx, PRESETS[preset_name], batches, [threads], args.repeats, args.reference_examples)
        medians = {name: [statistics.median(g.cells[name, threads, b]) for b in batches] for name in g.ready}
        fits = {name: fit(g.n, batches, medians[name]) for name in g.ready}
        text.append(preset_section(g, fits, medians, threads, batches))
        plots[f"cost-model-{preset_name}.png"] = plot(g, fits, medians, batches)
    text += [f"\n![{name}]({name})\n" for name in plots]
    return Output("\n".join(text), plots)


def preset_section(g, fits, medians, threads, batches) -> str:
    spec = next(iter(g.ready.values())).net.spec
    flops = 2 * spec.backprop_macs_per_example
    rows = []
    for name, f in fits.items():
        broken = [f"b={b} ({100 * r:+.0f}%)" for b, r in zip(batches, f.residuals) if abs(r) > BREAKS]
        rows.append([name, f"{f.c_step * 1e6:.1f}", f"{f.c_example * 1e9:.0f}",
                     f"{flops / f.c_example / 1e9:.3g}" if f.c_example > 0 else "—",
                     f"{100 * f.worst:+.1f}%", "; ".join(broken) or "fits"])
    residuals = [[name] + [f"{100 * r:+.1f}%" for r in f.residuals] for name, f in fits.items()]
    text = (f"## `{g.preset.name}`: {spec.describe().rsplit(' ', 1)[0]}, N = {g.n:,} examples\n\n"
            f"Fitted to the median epoch over {len(batches)} batch sizes. GFLOP/s from `c_example`: the "
            f"{flops:,} FLOPs of one example's forward and backward / `c_example`. A residual beyond "
            f"±{BREAKS:.0%} means two parameters do not describe that implementation there.\n\n"
            + tabulate(rows, headers=["implementation", "c_step (µs)", "c_example (ns)", "GFLOP/s implied",
                                      "worst residual", "where the model breaks"],
                       tablefmt="github", disable_numparse=True)
            + "\n\nResidual at each batch size, (fitted − measured) / measured:\n\n"
            + tabulate(residuals, headers=["implementation"] + [f"b={b}" for b in batches],
                       tablefmt="github", disable_numparse=True) + "\n")
    return text + "\n" + crossover_table(g, fits, threads, batches)


def crossover_table(g, fits, threads, batches) -> str:
    names = [n for n in fits if n != REFERENCE]
    rows, hits = [], 0
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            predicted = predicted_crossover(fits[a], fits[b])
            measured = measured_crossovers(g.cells, a, b, threads, batches)
            ok = agrees(predicted, measured, batches)
            hits += ok
            rows.append([f"`{a}` vs `{b}`", f"{predicted:.0f}" if predicted else "never",
                         "; ".join(f"{lo}–{hi}" for lo, hi, *_ in measured) or "none in range",
                         "yes" if ok else "**no**"])
    return (f"Crossovers: predicted by the fitted curves, and measured (between which batch sizes the faster "
            f"one changes); {hits} of {len(rows)} agree within one batch-size step.\n\n"
            + tabulate(rows, headers=["pair", "predicted b*", "measured", "agree"], tablefmt="github",
                       disable_numparse=True) + "\n")


def plot(g, fits, medians, batches) -> bytes:
    plt, fig, ax = figure((7.5, 4.8))
    grid = np.geomspace(batches[0], batches[-1], 100)
    for color, name in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3, fits):
        ax.plot(batches, medians[name], "o", color=color, label=f"{name} (measured)")
        ax.plot(grid, [fits[name].time(g.n, b) for b in grid], "-", color=color, alpha=0.7)
    ax.set(xscale="log", yscale="log", xlabel="mini-batch size b", ylabel="seconds per epoch",
           title=f"t(b) = (N/b)·c_step + N·c_example: {g.preset.name} (lines: fits)")
    ax.set_xticks(batches)
    return png(plt, fig, ax, legend_size=7)


STUDY = Study("cost-model", "Why one is faster: a per-step cost model fitted to every implementation",
              "fit t(b) = (N/b)·c_step + N·c_example to each implementation's epochs; predicted vs measured "
              "crossovers", add_arguments, run)
