"""Cost model: why one implementation wins at small batches and another at large ones.

Every implementation's epoch time over a batch-size sweep (the epoch-grid study's
measurement: validated first, rounds interleaved) is fitted to

    t(b) = (N / b) * c_step + N * c_example

-- ``c_step`` the fixed cost of one mini-batch (interpreter, framework dispatch, kernel
launches, a parallel region's start), ``c_example`` the arithmetic per example -- by least
squares on *relative* error (each point weighted by 1 / its measured time, so a 20 ms epoch
counts as much as a 2 s one).

A fit is only an explanation if it is physical and close, so each one is checked and the
table says why it fails: a negative cost (least squares will trade a negative fixed cost
against a larger per-example one to bend the line: no step takes negative time) or a
residual beyond ±15% at some batch size. Where the two-parameter model fails, a piecewise
one is tried: the same two parameters fitted separately below and above one batch size,
the split chosen where the worse residual is smallest. Its physics: BLAS switches
kernels or blocking with the matrix shape, and activations fall out of a cache level, so the
per-example cost of small and large mini-batches differs -- a change of regime, not a
smooth curve. (A BLAS-efficiency factor that saturates as ``b / (b + b_half)`` adds
``N c_example b_half / b``, the same shape as ``c_step``: it cannot be told apart from it.)

Every pair of implementations is then predicted to cross where the chosen curves meet
(found numerically over the measured range and a factor of 8 beyond), set next to the
crossover the measurements show.
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
#: measured batch sizes each regime of a piecewise fit needs (two would fit any two points exactly)
REGIME_POINTS = 3


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

    @property
    def regimes(self) -> list["Fit"]:
        return [self]

    def problems(self, batches) -> list[str]:
        """Why this fit does not explain the measurement: empty if it does."""
        why = [f"c_step {r.c_step * 1e6:.1f} µs < 0: non-physical" for r in self.regimes if r.c_step < 0]
        why += [f"c_example {r.c_example * 1e9:.0f} ns <= 0: non-physical" for r in self.regimes if r.c_example <= 0]
        off = [f"b={b} ({100 * r:+.0f}%)" for b, r in zip(batches, self.residuals) if abs(r) > BREAKS]
        return why + ([f"residual beyond ±{BREAKS:.0%} at " + ", ".join(off)] if off else [])


@dataclass
class Piecewise(Fit):
    """Two regimes: ``small`` below ``boundary`` (between two measured batch sizes), ``large`` above."""
    small: Fit = None
    large: Fit = None
    boundary: float = 0.0

    def time(self, n: int, batch: float) -> float:
        return (self.small if batch < self.boundary else self.large).time(n, batch)

    @property
    def regimes(self) -> list[Fit]:
        return [self.small, self.large]


def fit(n: int, batches, seconds) -> Fit:
    """Least squares on relative error of t(b) = (n/b) c_step + n c_example."""
    b, t = np.asarray(batches, dtype=float), np.asarray(seconds, dtype=float)
    design = np.column_stack([n / b, np.full_like(b, n)]) / t[:, None]
    (c_step, c_example), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    model = Fit(float(c_step), float(c_example), [])
    model.residuals = [(model.time(n, k) - s) / s for k, s in zip(batches, seconds)]
    return model


def piecewise(n: int, batches, seconds) -> Piecewise | None:
    """The best two-regime fit (physical first, then the smallest worst residual), or None when the
    sweep is too short to give each regime REGIME_POINTS batch sizes."""
    best = None
    for k in range(REGIME_POINTS, len(batches) - REGIME_POINTS + 1):
        small, large = fit(n, batches[:k], seconds[:k]), fit(n, batches[k:], seconds[k:])
        model = Piecewise(0.0, 0.0, small.residuals + large.residuals, small, large, math.sqrt(batches[k - 1] * batches[k]))
        key = (not physical(model), abs(model.worst))
        if best is None or key < best[0]:
            best = key, model
    return best and best[1]


def choose(n: int, batches, seconds) -> tuple[Fit, Fit | None]:
    """(the two-parameter fit, the piecewise one if it was needed and tried)."""
    two = fit(n, batches, seconds)
    return two, (piecewise(n, batches, seconds) if two.problems(batches) else None)


def physical(model: Fit) -> bool:
    return all(r.c_step >= 0 and r.c_example > 0 for r in model.regimes)


def explains(two: Fit, alternative: Fit | None, batches) -> Fit:
    """The model the crossovers use: the piecewise fit where two parameters failed and it is physical
    and closer (its own flags, if any, stay in the table)."""
    better = alternative is not None and physical(alternative) and (
        not physical(two) or abs(alternative.worst) < abs(two.worst))
    return alternative if better else two


def predicted_crossovers(a: Fit, b: Fit, n: int, batches) -> list[float]:
    """Batch sizes where the two curves meet, from batches[0] / 8 to batches[-1] * 8."""
    grid = np.geomspace(batches[0] / 8, batches[-1] * 8, 600)
    sign = np.sign([a.time(n, x) - b.time(n, x) for x in grid])
    return [float(math.sqrt(grid[i] * grid[i + 1])) for i in range(len(grid) - 1) if sign[i] * sign[i + 1] < 0]


def agrees(predicted: list[float], measured: list[tuple], batches) -> bool:
    """Within one batch-size step: as many predicted crossings inside the measured range as measured
    ones, each between the sizes one step outside its measured interval."""
    inside = [p for p in predicted if batches[0] < p < batches[-1]]
    if len(inside) != len(measured):
        return False
    for p, (lo, hi, *_) in zip(inside, measured):
        i, j = batches.index(lo), batches.index(hi)
        if not batches[max(i - 1, 0)] <= p <= batches[min(j + 1, len(batches) - 1)]:
            return False
    return True


def add_arguments(p):
    p.add_argument("--presets", nargs="+", default=["nielsen", "relu"], choices=list(PRESETS))
    p.add_argument("--batch-sizes", nargs="+", type=positive_int, default=[10, 16, 32, 64, 128, 256, 512, 1024])
    p.add_argument("--repeats", type=positive_int, default=3, help="timed epochs per cell, after one warm-up (default 3)")
    p.add_argument("--reference-examples", type=positive_int, default=2000,
                   help="examples the per-example reference is timed on, scaled to the epoch (default 2000)")


def run(ctx) -> Output:
    args = ctx.args
    threads = (args.threads or [usable_cpus()])[0]
    batches = sorted(set(args.batch_sizes))
    for preset_name in args.presets:
        ctx.check_batches(batches, PRESETS[preset_name])
    text, plots = [f"Threads pinned to {threads} (`--threads`).\n"], {}
    for preset_name in args.presets:
        g = measure(ctx, PRESETS[preset_name], batches, [threads], args.repeats, args.reference_examples)
        medians = {name: [statistics.median(g.cells[name, threads, b]) for b in batches] for name in g.ready}
        fits = {name: choose(g.n, batches, medians[name]) for name in g.ready}
        text.append(preset_section(g, fits, threads, batches))
        plots[f"cost-model-{preset_name}.png"] = plot(g, fits, medians, batches)
    text += [f"\n![{name}]({name})\n" for name in plots]
    return Output("\n".join(text), plots)


def _row(name, model, flops, batches, chosen):
    if isinstance(model, Piecewise):
        what = f"piecewise, split at b≈{model.boundary:.0f}"
        c_step = " / ".join(f"{r.c_step * 1e6:.1f}" for r in model.regimes)
        c_example = " / ".join(f"{r.c_example * 1e9:.0f}" for r in model.regimes)
        gflops = " / ".join(f"{flops / r.c_example / 1e9:.3g}" if r.c_example > 0 else "—" for r in model.regimes)
    else:
        what, c_step, c_example = "two-parameter", f"{model.c_step * 1e6:.1f}", f"{model.c_example * 1e9:.0f}"
        gflops = f"{flops / model.c_example / 1e9:.3g}" if model.c_example > 0 else "—"
    problems = model.problems(batches)
    verdict = ("**flagged**: " + "; ".join(problems)) if problems else "fits"
    return [name if not isinstance(model, Piecewise) else "↳", what + (" (used)" if chosen else ""), c_step,
            c_example, gflops, f"{100 * model.worst:+.1f}%", verdict]


def preset_section(g, fits, threads, batches) -> str:
    spec = next(iter(g.ready.values())).net.spec
    flops = 2 * spec.backprop_macs_per_example
    rows, residuals = [], []
    for name, (two, alternative) in fits.items():
        used = explains(two, alternative, batches)
        rows.append(_row(name, two, flops, batches, used is two))
        residuals.append([name] + [f"{100 * r:+.1f}%" for r in two.residuals])
        if alternative is not None:
            rows.append(_row(name, alternative, flops, batches, used is alternative))
            residuals.append(["↳ piecewise"] + [f"{100 * r:+.1f}%" for r in alternative.residuals])
    text = (f"## `{g.preset.name}`: {spec.describe().rsplit(' ', 1)[0]}, N = {g.n:,} examples\n\n"
            f"Fitted to the median epoch over {len(batches)} batch sizes. GFLOP/s from `c_example`: the "
            f"{flops:,} FLOPs of one example's forward and backward / `c_example`. A fit is **flagged** when a "
            f"parameter is non-physical (a negative cost) or a residual lies beyond ±{BREAKS:.0%}; then a piecewise "
            f"fit (two regimes, each with {REGIME_POINTS}+ batch sizes; parameters below / above the split) is "
            "tried, and used for the crossovers where it is physical and closer (still flagged if it misses "
            "a point too).\n\n"
            + tabulate(rows, headers=["implementation", "model", "c_step (µs)", "c_example (ns)", "GFLOP/s implied",
                                      "worst residual", "verdict"], tablefmt="github", disable_numparse=True)
            + "\n\nResidual at each batch size, (fitted − measured) / measured:\n\n"
            + tabulate(residuals, headers=["implementation"] + [f"b={b}" for b in batches],
                       tablefmt="github", disable_numparse=True) + "\n")
    return text + "\n" + crossover_table(g, fits, threads, batches)


def crossover_table(g, fits, threads, batches) -> str:
    used = {name: explains(two, alternative, batches) for name, (two, alternative) in fits.items()}
    names = [n for n in fits if n != REFERENCE]
    rows, hits = [], 0
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            predicted = predicted_crossovers(used[a], used[b], g.n, batches)
            measured = measured_crossovers(g.cells, a, b, threads, batches)
            ok = agrees(predicted, measured, batches)
            hits += ok
            rows.append([f"`{a}` vs `{b}`", "; ".join(f"{p:.0f}" for p in predicted) or "never",
                         "; ".join(f"{lo}–{hi}" for lo, hi, *_ in measured) or "none in range",
                         "yes" if ok else "**no**"])
    return (f"Crossovers: predicted by the curves used above (within {batches[0] / 8:g}–{batches[-1] * 8:g}), and "
            f"measured (between which batch sizes the faster one changes); {hits} of {len(rows)} agree within one "
            "batch-size step.\n\n"
            + tabulate(rows, headers=["pair", "predicted b*", "measured", "agree"], tablefmt="github",
                       disable_numparse=True) + "\n")


def plot(g, fits, medians, batches) -> bytes:
    plt, fig, ax = figure((7.5, 4.8))
    grid = np.geomspace(batches[0], batches[-1], 200)
    for color, name in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3, fits):
        model = explains(*fits[name], batches)
        ax.plot(batches, medians[name], "o", color=color, label=f"{name} (measured)")
        ax.plot(grid, [model.time(g.n, b) for b in grid], "-" if model is fits[name][0] else "--", color=color,
                alpha=0.7)
    ax.set(xscale="log", yscale="log", xlabel="mini-batch size b", ylabel="seconds per epoch",
           title=f"t(b) = (N/b)·c_step + N·c_example: {g.preset.name} (lines: fits; dashed: piecewise)")
    ax.set_xticks(batches)
    return png(plt, fig, ax, legend_size=7)


STUDY = Study("cost-model", "Why one is faster: a per-step cost model fitted to every implementation",
              "fit t(b) = (N/b)·c_step + N·c_example to each implementation's epochs, flag what it cannot "
              "explain, try two regimes there; predicted vs measured crossovers", add_arguments, run)
