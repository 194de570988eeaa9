"""``python -m bench.gpu.fused OUT.json [--dry-run] [--data DIR]``: the fused Triton step
(``impls/triton_fused.py``) against the three targets set when it was built (issue 14), each
figure with what bounds it:

- **step**: a batch-10 step at most 15 µs, measured as the nielsen epoch's time over its steps
  (the epoch replayed from its CUDA graph). Bound: the GPU time inside the kernels per step and
  the kernels per step, from torch's profiler over one epoch (every kernel a graph replays is
  one of its nodes): a step well above its kernel time is bound by the gaps between kernels.
- **relu**: the relu preset to 97.5% test accuracy in at most 0.2 training seconds, measured as
  the time-to-accuracy suite measures it (``bench_time_to_accuracy.train_seed``: one warm-up
  step, then epochs until the first at or above target; evaluation not counted), the median
  over seeds that reached it. Bound: the epochs it took times the kernel time of one epoch, and
  the first epoch's extra (the epoch's CUDA graph is captured inside it).
- **epoch**: a batch-1024 nielsen epoch within 5x of its arithmetic bound: the epoch's FLOPs and
  least bytes (``bench.harness.phases``) under this GPU's measured float32 GEMM peak and copy
  bandwidth (``bench.studies.roofline``), whichever binds.

Every epoch is the suites' (``PHASES["epoch"].workload``: the seeded order from the seeded
weights), after an untimed epoch that compiles the kernels and captures the graph. With
``--dry-run`` the same code runs on the CPU, the kernels in Triton's interpreter (the process
must start with TRITON_INTERPRET=1), at sizes a few seconds allow: its figures say nothing of
a GPU, and the summary says so.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np

#: the targets, as issue 14 set them: (key, what, limit, unit); relu first, so that its seeds train
#: before torch's profiler has run in this process
TARGETS = (("relu", "relu preset to 97.5% (training seconds, median of seeds)", 0.2, "s"),
           ("step", "batch-10 step (nielsen epoch ÷ steps, graph replay)", 15e-6, "s"),
           ("epoch", "batch-1024 nielsen epoch ÷ its arithmetic bound", 5.0, "x"))
#: (n_train or None for the preset's, test examples or None, timed epochs, seeds, epoch batch)
SIZES = {"gpu": dict(step_n=None, tta_n=None, test_n=None, repeats=5, seeds=(0, 1, 2), epoch_batch=1024),
         "dry": dict(step_n=20, tta_n=64, test_n=100, repeats=1, seeds=(0,), epoch_batch=32)}
IMPL = {"gpu": "triton-fused-cuda", "dry": "impls.triton_fused:interpreted"}


def epoch_figure(ready, data, batch: int, repeats: int) -> dict:
    """Median seconds of the suites' epoch at ``batch`` over ``repeats`` epochs, after an untimed
    one; then the kernels of one more, from torch's profiler."""
    from bench.harness.phases import PHASES
    from bench.studies.step_overhead import torch_counts
    from impls.core.train import timed_epoch
    net, examples = ready.net, len(ready.X)
    work = PHASES["epoch"].workload(ready, data, batch, examples)
    work.reset()
    first = timed_epoch(net, *work.args)[0]          # compiles the kernels, captures the graph
    seconds = []
    for _ in range(repeats):
        work.reset()
        seconds.append(timed_epoch(net, *work.args)[0])
    work.reset()
    counts = torch_counts(lambda: work.fn(*work.args), net)
    steps = math.ceil(examples / batch)
    median = statistics.median(seconds)
    out = {"batch": batch, "examples": examples, "steps": steps, "first_epoch_seconds": first,
           "epoch_seconds": seconds, "median_epoch_seconds": median, "step_seconds": median / steps,
           "torch_ops_per_epoch": counts.get("aten")}
    if counts.get("kernels") == 0:
        out["kernels"] = "not measured: torch's profiler saw no kernels in the epoch's replay"
    elif "kernels" in counts:
        kernel_seconds = float(counts["kernel_us"]) * 1e-6
        out.update(kernels_per_step=counts["kernels"] / steps, kernel_seconds_per_epoch=kernel_seconds,
                   kernel_seconds_per_step=kernel_seconds / steps)
    else:
        out["kernels"] = "not measured: no CUDA device (the profiler sees no kernels in Triton's interpreter)"
    return out


def step_target(make, data, size) -> dict:
    from impls.core.presets import PRESETS
    fig = epoch_figure(make(PRESETS["nielsen"], size["step_n"]), data, 10, size["repeats"])
    bound = (f"{_us(fig['kernel_seconds_per_step'])} in {fig['kernels_per_step']:g} kernels a step"
             if "kernel_seconds_per_step" in fig else fig["kernels"]) + f" ({fig['steps']} steps an epoch)"
    return {"figure": fig["step_seconds"], "bound": bound, "detail": fig}


def relu_target(make, data, size) -> dict:
    from bench.harness.phases import epoch_flops
    from bench.suites.bench_time_to_accuracy import train_seed
    from impls.core.presets import PRESETS
    preset = PRESETS["relu"]
    if size["tta_n"]:
        preset = dataclasses.replace(preset.shrunk("dry-run"), n_train=size["tta_n"], epochs=1)
    ready = make(preset, None)
    net, batch = ready.net, preset.batch(len(ready.X))
    runs = []
    for seed in size["seeds"]:           # before this process's first profile (TARGETS' order)
        net.train_epoch(np.arange(batch), batch, preset.lr)      # the suite's warm-up: one step at the real shapes
        net.sync()
        runs.append(train_seed(net, preset, data, seed, True, epoch_flops(net.spec, len(ready.X), batch)))
    epoch = epoch_figure(ready.restore(), data, batch, size["repeats"])
    reached = [r["time_to_target"] for r in runs if r["time_to_target"] is not None]
    epochs = statistics.median([r["target_epoch"] or r["epochs"] for r in runs])
    per_epoch = epoch.get("kernel_seconds_per_epoch")
    bound = (f"{epochs:g} epochs x {_ms(per_epoch)} of kernels = {_ms(epochs * per_epoch)}" if per_epoch
             else f"{epochs:g} epochs x {_ms(epoch['median_epoch_seconds'])} an epoch (no kernel times)")
    bound += (f"; an epoch that captures its graph took {_ms(epoch['first_epoch_seconds'])}, and each seed's first "
              "epoch does (inside its time)")
    return {"figure": statistics.median(reached) if reached else None, "bound": bound,
            "detail": {"preset": preset.name, "target": preset.target, "seeds": runs, "epoch": epoch,
                       "reached": len(reached)}}


def epoch_target(make, data, size, device) -> dict:
    from bench.harness.phases import epoch_bytes, epoch_flops
    from bench.harness.timing import gemm_peak
    from bench.studies.roofline import ceilings
    from impls.core.presets import PRESETS
    ready = make(PRESETS["nielsen"], 2 * size["epoch_batch"] if size["tta_n"] else None)
    fig = epoch_figure(ready, data, size["epoch_batch"], size["repeats"])
    spec, n, batch = ready.net.spec, fig["examples"], fig["batch"]
    if size["tta_n"]:                 # dry run: a smoke-size GEMM peak (measured once per process, then reused)
        gemm_peak(n=256, repeats=2)
    roof = ceilings(device)
    flops, traffic = epoch_flops(spec, n, batch), epoch_bytes(spec, n, batch)
    compute, memory = flops / (roof["peak"][spec.dtype] * 1e9), traffic / roof["bandwidth"]
    bound = max(compute, memory)
    fig.update(flops=flops, bytes=traffic, peak_gflops=roof["peak"][spec.dtype], bandwidth=roof["bandwidth"],
               compute_seconds=compute, memory_seconds=memory, bound_seconds=bound)
    kernels = f", kernels {_ms(fig['kernel_seconds_per_epoch'])}" if "kernel_seconds_per_epoch" in fig else ""
    return {"figure": fig["median_epoch_seconds"] / bound, "detail": fig,
            "bound": f"{_ms(bound)} ({'memory' if memory > compute else 'compute'}: {flops / 1e9:.3g} GFLOP at "
                     f"{roof['peak'][spec.dtype]:.0f} GFLOP/s, {traffic / 1e6:.3g} MB at "
                     f"{roof['bandwidth'] / 1e9:.0f} GB/s); epoch {_ms(fig['median_epoch_seconds'])}{kernels} "
                     f"({n} examples at batch {batch})"}


def _us(seconds):
    return f"{seconds * 1e6:.3g} µs"


def _ms(seconds):
    return f"{seconds * 1e3:.3g} ms"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu.fused", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--dry-run", action="store_true", help="on the CPU, the kernels in Triton's interpreter")
    p.add_argument("--data", help="MNIST directory (default: NNBENCH_DATA, then the cache)")
    args = p.parse_args(argv)
    from impls.core.mnist import Dataset, load_dataset
    from impls.core.registry import register
    from impls.core.train import build
    kind = "dry" if args.dry_run else "gpu"
    size, impl = SIZES[kind], register(IMPL[kind], "bench.gpu.fused")
    full = load_dataset(args.data)
    data = Dataset(full.X_train, full.y_train, full.X_test[:size["test_n"]], full.y_test[:size["test_n"]],
                   full.source) if size["test_n"] else full

    def make(preset, n_train):
        return build(impl, preset, data, n_train=n_train)

    record = {"impl": impl, "dry_run": args.dry_run, "targets": []}
    measure = {"step": lambda: step_target(make, data, size), "relu": lambda: relu_target(make, data, size),
               "epoch": lambda: epoch_target(make, data, size, "cpu" if args.dry_run else "cuda")}
    for key, what, limit, unit in TARGETS:
        entry = {"key": key, "what": what, "target": limit, "unit": unit}
        try:
            entry.update(measure[key]())
            entry["met"] = entry["figure"] is not None and entry["figure"] <= limit
        except Exception as exc:       # noqa: BLE001 -- one figure failing must not lose the others
            entry.update(figure=None, met=None, error=f"{type(exc).__name__}: {exc}")
        record["targets"].append(entry)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, default=str))
        tmp.replace(args.out)          # after every figure: a cut step keeps what it measured
        print(f"{key}: {entry.get('figure')} (target {limit:g} {unit}) {entry.get('bound') or entry.get('error')}",
              flush=True)
    return 1 if any("error" in t for t in record["targets"]) else 0


if __name__ == "__main__":
    sys.exit(main())
