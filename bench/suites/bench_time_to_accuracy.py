"""Time to accuracy: train each preset from several seeds; record, per seed, the training
seconds until the first epoch at or above the preset's target and the final accuracy.

The target applies to the median final accuracy over seeds (impls.core.presets): with the
book's N(0, 1) initialization some seeds stall, and they are counted, not hidden. A seed
that diverges (the shared loop's one rule, ``impls.core.divergence``: a non-finite cost, a
blown-up or collapsed run) fails the test; so does a median below target. Either way the benchmark
stays in the JSON with ``status`` failed, and the session is not saved as a baseline.

pytest-benchmark's rounds are the seeds (pedantic mode): its table shows whole runs
(training plus the per-epoch evaluation); the training seconds to target, per seed, are
in ``extra_info``, with the FLOPs each spent up to the target and the floor they set: those
FLOPs at this session's GEMM peak for the implementation's device and dtype (the report's
"x FLOP floor" is the median time to target over the median floor). Before timing, one
short epoch is checked against the reference.
Each seed's peak resident memory (``bench.harness.memory``: the high-water mark reset before
the seed, untimed) is recorded; the benchmark's is the largest. In modes with ``tta_to_target``
a seed stops at its first epoch at/above target; in smoke mode every preset runs at its own
smoke size (``Preset.smoke``).
"""
import statistics

import numpy as np

from impls.core.errors import DivergedError
from impls.core.presets import PRESETS
from impls.core.train import RunResult, train

from ..harness.memory import PeakWatch, held_since, settled
from ..harness.phases import epoch_flops
from ..harness.timing import device_of, gemm_peak, record_spread
from ..harness.turns import pedantic

PHASE = "time-to-accuracy"


class _ReachedTarget(Exception):
    """Raised from the epoch callback to stop a seed at its target."""


def plan(preset_name, mode):
    """The preset as this mode runs it (smoke shrinks it, saying so in its name)."""
    preset = PRESETS[preset_name]
    return preset.shrunk(mode.name) if mode.shrink_presets else preset


def train_seed(net, preset, data, seed: int, to_target: bool, flops_per_epoch: float = 0.0) -> dict:
    """One seed's run, summarized; a diverged run is a result here, not an exception."""
    history, status = [], None

    def on_epoch(record):
        history.append(record)
        if to_target and record.accuracy >= preset.target:
            raise _ReachedTarget

    try:
        train(net, preset, data, seed=seed, on_epoch=on_epoch)
    except _ReachedTarget:
        pass
    except DivergedError as exc:
        status = f"diverged: {exc}"
    run = RunResult(net.name, preset.name, seed, preset.target, history=history)
    reached = run.time_to_target
    cumulative = np.cumsum([r.seconds for r in history]).tolist()
    return {
        "seed": seed,
        "status": status or ("reached" if reached else "missed"),
        "epochs": len(history),
        "final_accuracy": run.final_accuracy if history else None,
        "time_to_target": reached[1] if reached else None,
        "target_epoch": reached[0] if reached else None,
        "flops_to_target": reached[0] * flops_per_epoch if reached else None,
        "train_seconds": run.train_seconds,
        "curve": [[s, r.accuracy] for s, r in zip(cumulative, history)],   # for the accuracy-vs-time plot
    }


def flop_floor(net, runs, flops_per_epoch) -> dict:
    """The least time the seeds' FLOPs to target could take at this session's GEMM peak for the
    implementation's device and dtype: per seed, and the median over the seeds that reached it."""
    peak = gemm_peak(device=device_of(net))[net.spec.dtype]
    for r in runs:
        r["floor_seconds"] = r["flops_to_target"] / (peak * 1e9) if r["flops_to_target"] is not None else None
    floors = [r["floor_seconds"] for r in runs if r["floor_seconds"] is not None]
    return {"epoch_flops": flops_per_epoch, "peak_gflops": peak,
            "median_floor_seconds": statistics.median(floors) if floors else None}


def test_time_to_accuracy(benchmark, prepare, bench, mnist, preset_name, impl, seeds):
    mode = bench.mode
    preset = plan(preset_name, mode)
    start = settled()
    ready, _ = prepare(preset, preset.batch())                # checked: a short epoch at the preset's batch
    net, batch = ready.net, preset.batch(len(ready.X))
    net.train_epoch(np.arange(batch), batch, preset.lr)      # warm-up: one step at the real shapes
    net.sync()
    held = held_since(start)

    runs, watch = [], PeakWatch()
    next_seed = iter(seeds)
    flops = epoch_flops(net.spec, len(ready.X), batch)

    def setup():            # untimed: the previous seed's peak, then a trimmed heap and a reset peak
        if runs:
            runs[-1]["memory"] = watch.stop()
        watch.start()
        return (next(next_seed),), {}

    pedantic(benchmark, lambda seed: runs.append(train_seed(net, preset, mnist, seed, mode.tta_to_target, flops)),
             setup=setup, rounds=len(seeds), seconds=0.0, fixed=True)
    runs[-1]["memory"] = watch.stop()
    peaks = [r["memory"]["peak_rss"] for r in runs if r.get("memory", {}).get("peak_rss") is not None]

    finals = [r["final_accuracy"] or 0.0 for r in runs]
    reached = [r["time_to_target"] for r in runs if r["time_to_target"] is not None]
    failures = [f"seed {r['seed']} {r['status']}" for r in runs if r["status"].startswith("diverged")]
    median_final = statistics.median(finals)
    if median_final < preset.target:
        failures.append(f"median final accuracy {median_final:.2%} < target {preset.target:.1%}")
    extra = benchmark.extra_info
    extra.update(phase=PHASE, impl=net.name, preset=preset.name, dtype=net.spec.dtype, target=preset.target,
                 epochs=preset.epochs, n_train=preset.n_train, batch=preset.batch_size or "full",
                 to_target=mode.tta_to_target, seeds=runs, median_final_accuracy=median_final,
                 median_time_to_target=statistics.median(reached) if reached else None,
                 reached=len(reached), stalled=len(runs) - len(reached), compile_seconds=net.compile_seconds,
                 memory={"peak_rss": max(peaks) if peaks else None, "held": held,
                         "resident_before": runs[0].get("memory", {}).get("resident_before") if runs else None},
                 status="failed" if failures else "passed", **flop_floor(net, runs, flops))
    record_spread(benchmark, net)
    assert not failures, f"{net.name} on {preset.name}: " + "; ".join(failures)
