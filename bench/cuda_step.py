"""Where a small-batch training step's time goes on a CUDA GPU: launches vs arithmetic.

For `torch-fast-cuda` (its CUDA-graph-captured step, and the very same step uncaptured) and
`torch-idiomatic-cuda`, on the networks of the `nielsen` and `relu` presets and real MNIST:

- **step** table, at --batch (default 10): microseconds per step over whole epochs, GPU side
  (CUDA events around the epoch) and host side (the Python loop issuing it, before the
  synchronization); then, from torch.profiler (CUPTI) over --profile-steps steps, the kernels
  a step runs and their summed duration, which is the GPU computing; the rest of a step's
  GPU-side time is the GPU idle, waiting for the next launch.
- **floor** table: the same costs for a chain of 1-element kernels, eager and in a graph, which
  is the least a step of that many dependent kernels can take on this GPU.
- **kernels** tables: one captured fast step, kernel by kernel, at --batch and at --bound-batches.
- **bound** table, at --bound-batches (default 1024): an epoch against its arithmetic bound (the
  epoch's matrix-product FLOPs at this GPU's measured SGEMM peak) and its memory bound (reading
  every training example once at the measured device copy bandwidth).

Every implementation is first checked against the float64 reference (``bench.torch_epochs.validate``).

    PYTHONPATH=. NNBENCH_DATA=DIR python -m bench.cuda_step
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from tabulate import tabulate

from impls import available, create
from impls.cli import positive_int
from impls.errors import NnbenchError
from impls.presets import get_preset
from impls.spec import init_params
from impls.train import load_dataset

from .harness import gemm_peak, phase_flops
from .torch_epochs import validate

IMPLS = ("torch-fast-cuda", "torch-idiomatic-cuda")
FLOOR_KERNELS = 20     # about what one fast step launches


def timed(run, sync):
    """(GPU seconds between CUDA events around ``run()``, host seconds until ``run`` returned)."""
    import torch
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    sync()
    host0 = time.perf_counter()
    start.record()
    run()
    host = time.perf_counter() - host0
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3, host


def gpu_events(run):
    """Kernels, copies and fills of the GPU while ``run()`` ran: [(name, start us, end us)]."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize()
    return [(e.name, e.time_range.start, e.time_range.end) for e in prof.events()
            if e.device_type == DeviceType.CUDA]


def kernel_summary(events, steps):
    """(kernels per step, us of GPU work per step, us from first start to last end per step)."""
    if not events:
        return None, None, None
    busy = sum(end - start for _, start, end in events)
    span = max(end for _, _, end in events) - min(start for _, start, _ in events)
    return len(events) / steps, busy / steps, span / steps


class Stepper:
    """One implementation's epoch at a batch size, and a way to run k of its steps."""

    def __init__(self, name, preset, data, batch, captured=True):
        self.spec = preset.spec("float32")
        self.net = create(name, self.spec)
        self.net.set_params(init_params(self.spec, np.random.default_rng(0), preset.init))
        self.net.set_training_data(data.X_train[:preset.n_train], data.y_train[:preset.n_train])
        self.order = np.random.default_rng(1).permutation(preset.n_train)
        self.batch, self.lr = batch, preset.lr
        self.n_steps = preset.n_train // batch
        self.epoch()                     # builds (and for the fast version captures) the epoch plan
        if name == "torch-fast-cuda":
            plan = self.net._plan
            if not captured:             # the plan's step as plain calls: what the graph replaces
                plan.step = lambda: self.net._counted_step(plan)

            def steps(k):
                plan.k.zero_()
                for _ in range(k):
                    plan.step()
        else:
            order = self.net.aslabels(self.order)

            def steps(k):                # train_epoch's loop body, without its accumulation
                for start in range(0, k * batch, batch):
                    idx = order[start:start + batch]
                    self.net.update_mini_batch(self.net.X_train[idx], self.net.y_train[idx], self.lr)
        self.steps = steps

    def epoch(self):
        return self.net.train_epoch(self.order, self.batch, self.lr)


def step_rows(args, data):
    rows, kernels = [], None
    for preset_name in args.presets:
        preset = get_preset(preset_name)
        for name, captured in (("torch-fast-cuda", True), ("torch-fast-cuda", False), ("torch-idiomatic-cuda", True)):
            s = Stepper(name, preset, data, args.batch, captured)
            n = s.n_steps
            epochs = [timed(lambda: s.steps(n), s.net.sync) for _ in range(args.repeats)]
            gpu = statistics.median(g for g, _ in epochs) / n * 1e6
            host = statistics.median(h for _, h in epochs) / n * 1e6
            events = gpu_events(lambda: s.steps(args.profile_steps))
            per_step, busy, span = kernel_summary(events, args.profile_steps)
            label = name + ("" if name != "torch-fast-cuda" else " (graph)" if captured else " (uncaptured)")
            rows.append([preset_name, label, args.batch, gpu, host, per_step, busy,
                         None if busy is None else gpu - busy])
            print("measured:", rows[-1], flush=True)     # a run cut short still shows what it had
            if name == "torch-fast-cuda" and captured and kernels is None:
                kernels = (preset_name, kernel_table(events, args.profile_steps))
    return rows, kernels


def kernel_table(events, steps):
    by_name = {}
    for name, start, end in events:
        by_name.setdefault(name, []).append(end - start)
    return [[name[:90], len(d) / steps, statistics.mean(d), sum(d) / steps]
            for name, d in sorted(by_name.items(), key=lambda kv: -sum(kv[1]))]


def floor_rows(args):
    """A chain of FLOOR_KERNELS dependent 1-element kernels, eager and captured."""
    import torch
    t = torch.zeros(1, device="cuda")

    def chain():
        for _ in range(FLOOR_KERNELS):
            t.add_(1)
    chain()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        chain()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        chain()
    rows = []
    for label, fn in (("eager", chain), ("graph", graph.replay)):
        n = args.floor_repeats
        seconds = [timed(lambda: [fn() for _ in range(n)], torch.cuda.synchronize) for _ in range(args.repeats)]
        gpu = statistics.median(g for g, _ in seconds) / n * 1e6
        host = statistics.median(h for _, h in seconds) / n * 1e6
        _, busy, _ = kernel_summary(gpu_events(lambda: [fn() for _ in range(200)]), 200)
        rows.append([f"{FLOOR_KERNELS} dependent 1-element kernels, {label}", gpu, host, busy])
    return rows


def copy_bandwidth(repeats):
    """Bytes per second of a 1 GiB device-to-device copy, counting bytes read and written."""
    import torch
    a, b = torch.empty(2 ** 28, device="cuda"), torch.empty(2 ** 28, device="cuda")
    b.copy_(a)
    best = min(timed(lambda: b.copy_(a), torch.cuda.synchronize)[0] for _ in range(repeats))
    return 2 * a.numel() * a.element_size() / best


def bound_rows(args, data):
    peak = gemm_peak(device="cuda")["float32"] * 1e9
    bandwidth = copy_bandwidth(args.repeats)
    rows, kernels = [], []
    for preset_name in args.presets:
        preset = get_preset(preset_name)
        for batch in args.bound_batches:
            for name in IMPLS:
                s = Stepper(name, preset, data, batch)
                if name == "torch-fast-cuda":
                    steps = min(20, s.n_steps)
                    kernels.append((preset_name, batch, kernel_table(gpu_events(lambda: s.steps(steps)), steps)))
                seconds = statistics.median(timed(s.epoch, s.net.sync)[0] for _ in range(args.repeats))
                flops = phase_flops(s.spec, "epoch", preset.n_train, batch)
                data_bytes = preset.n_train * preset.sizes[0] * 4
                bound = max(flops / peak, data_bytes / bandwidth)
                rows.append([preset_name, name, batch, seconds * 1e3, flops / peak * 1e3,
                             data_bytes / bandwidth * 1e3, seconds / bound])
                print("measured:", rows[-1], flush=True)
    return rows, kernels, peak, bandwidth


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["nielsen", "relu"], choices=["nielsen", "relu"])
    parser.add_argument("--batch", type=positive_int, default=10)
    parser.add_argument("--bound-batches", nargs="+", type=positive_int, default=[1024])
    parser.add_argument("--repeats", type=positive_int, default=3, help="timed epochs per cell (median)")
    parser.add_argument("--profile-steps", type=positive_int, default=200)
    parser.add_argument("--floor-repeats", type=positive_int, default=5000)
    parser.add_argument("--data", help="MNIST directory (default: NNBENCH_DATA, then the cache)")
    args = parser.parse_args(argv)
    import torch
    from impls.torch_common import describe_cuda_device
    reasons = available()
    for name in IMPLS:
        if reasons[name]:
            raise SystemExit(f"cuda_step: {name} is unavailable: {reasons[name]}")
    data = load_dataset(args.data)
    for preset_name in args.presets:
        for name in IMPLS:
            validate(name, get_preset(preset_name).spec("float32"))
    print(f"GPU: {describe_cuda_device()}; torch {torch.__version__}, "
          f"float32 matmul precision {torch.get_float32_matmul_precision()}\n")
    rows, kernels = step_rows(args, data)
    print(tabulate(rows, headers=["network", "implementation", "batch", "us/step GPU", "us/step host",
                                  "kernels/step", "us/step in kernels", "us/step GPU idle"],
                   floatfmt=("", "", ".0f", ".1f", ".1f", ".1f", ".1f", ".1f")))
    print()
    print(tabulate(floor_rows(args), headers=["floor", "us/chain GPU", "us/chain host", "us/chain in kernels"],
                   floatfmt=".1f"))
    if kernels:
        print(f"\nOne captured torch-fast-cuda step ({kernels[0]}, batch {args.batch}), kernel by kernel:")
        print(tabulate(kernels[1], headers=["kernel", "per step", "us each", "us/step"], floatfmt=("", ".2f", ".2f", ".2f")))
    rows, kernels, peak, bandwidth = bound_rows(args, data)
    for preset_name, batch, table in kernels:
        print(f"\nOne captured torch-fast-cuda step ({preset_name}, batch {batch}), kernel by kernel:")
        print(tabulate(table, headers=["kernel", "per step", "us each", "us/step"], floatfmt=("", ".2f", ".2f", ".2f")))
    print(f"\nEpoch bounds: SGEMM peak {peak / 1e12:.1f} TFLOP/s (torch, TF32 off), device copy "
          f"{bandwidth / 1e12:.2f} TB/s (read + write); memory bound = reading every training example once")
    print(tabulate(rows, headers=["network", "implementation", "batch", "epoch ms", "arithmetic bound ms",
                                  "memory bound ms", "x bound"], floatfmt=("", "", ".0f", ".3f", ".4f", ".4f", ".1f")))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NnbenchError as exc:
        sys.exit(f"cuda_step: error: {exc}")
