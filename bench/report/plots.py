"""The report's plots (matplotlib, the ``plots`` extra): epoch time against batch size, and
test accuracy against training time per preset. Legends list implementations fastest first, as the
tables do, so the first entry is the answer."""
from __future__ import annotations

import io

from .answer import TTA, speed_order
from .reading import Run
from .tables import batches, epoch_seconds
from .tta import tta_presets


def plot_names(run: Run) -> list[str]:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return []
    names = ["epoch-vs-batch.png"] if any(t.phase == "epoch" and t.passed for t in run.timings) else []
    return names + [f"tta-{p}.png" for p in tta_presets(run)
                    if any(t.phase == TTA and t.params.get("preset_name") == p for t in run.timings)]


def figure(size=(7, 4.5)):
    """(pyplot, figure, axes) on the non-interactive backend: every plot nnbench writes starts here."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=size)
    return plt, fig, ax


def png(plt, fig, ax, legend_size=None) -> bytes:
    """Plain tick labels (0.3, 10, 1024 rather than 3x10^-1 on log axes), a grid, the legend; as PNG bytes."""
    from matplotlib.ticker import FuncFormatter
    plain = FuncFormatter(lambda x, _: f"{x:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.yaxis.set_major_formatter(plain)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=legend_size)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def plots(run: Run) -> dict[str, bytes]:
    names = plot_names(run)
    if not names:
        return {}
    nn = run.machine.get("nnbench", {})
    gpu = (nn.get("gpu") or "").split(" (")[0]     # the name, without memory and driver
    where = (f"{gpu} + " if gpu else "") + f"{nn.get('cpu') or run.machine.get('node')}, " \
            f"{run.meta.get('pinned_threads')} threads"
    out = {}
    for name in names:
        plt, fig, ax = figure()
        if name == "epoch-vs-batch.png":
            for impl in speed_order(run, "epoch", run.available, batches(run, "epoch")):
                points = sorted((t.batch, epoch_seconds(t)) for t in run.timings
                                if t.phase == "epoch" and t.impl == impl and t.passed)
                if points:
                    ax.plot(*zip(*points), marker="o", label=impl)
            ax.set_xscale("log")
            ax.set_xticks(sorted({t.batch for t in run.timings if t.phase == "epoch"}))
            ax.set(yscale="log", xlabel="mini-batch size",
                   ylabel="seconds per epoch", title=f"Epoch time vs batch size ({run.meta.get('preset')}; {where})")
        else:
            preset = name[len("tta-"):-len(".png")]
            colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4)
            target = None
            for impl in sorted(run.available, key=lambda i: _to_target(run, i, preset)):
                t = run.timing(TTA, impl, preset_name=preset)
                if t is None:
                    continue
                color, target = next(colors), t.extra.get("target")
                for i, seed in enumerate(t.extra.get("seeds", [])):
                    if seed["curve"]:
                        seconds, acc = zip(*seed["curve"])
                        ax.plot(seconds, [100 * a for a in acc], color=color, marker=".",
                                label=impl if i == 0 else None, alpha=0.8)
            if target:
                ax.axhline(100 * target, color="grey", linestyle="--", label=f"target {100 * target:.1f}%")
            ax.set(xscale="log", xlabel="cumulative training seconds", ylabel="test accuracy (%)",
                   title=f"Test accuracy vs training time: {preset} ({where})")
        out[name] = png(plt, fig, ax)
    return out


def _to_target(run: Run, impl: str, preset: str) -> float:
    """Median seconds to the preset's target, for the legend's order (never reached, or not run: last)."""
    t = run.timing(TTA, impl, preset_name=preset)
    seconds = t.extra.get("median_time_to_target") if t is not None and t.passed else None
    return float("inf") if seconds is None else seconds
