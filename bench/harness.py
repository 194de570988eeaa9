"""What the benchmark suites share: what each mode runs, the timer, FLOP counts, this
machine's GEMM peak, and the numbers recorded beside every timing (``extra_info``).

Kept free of pytest so the results renderer can use the same definitions.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

#: a timing whose IQR (or, with few rounds, whose range) exceeds this fraction of its median is flagged
UNSTABLE = 0.10
FEW_ROUNDS = 5
#: other processes using more than this share of the machine's CPU time make timings unreliable (flagged)
OTHERS_WARN = 0.05
#: an epoch estimated to take longer than this (seconds) is timed on a tenth of the training set
EPOCH_SUBSET_ABOVE = 4.0
#: the test id of every implementation's oracle (impls.check compares against it)
REFERENCE = "reference"


@dataclass(frozen=True)
class Mode:
    """What one benchmark mode runs. The same test id always means the same work, so a
    ``quick`` run compares against a saved ``full`` run wherever their tests overlap."""
    name: str
    forward: tuple[int, ...]                # batch sizes
    backward: tuple[int, ...]
    epoch_sweep: tuple[int, ...]            # plus the preset's own batch size
    epoch_examples: int | None              # None: the preset's training set; else a fixed prefix
    epoch_seconds: float                    # timed seconds to aim for per epoch benchmark...
    epoch_rounds: tuple[int, int]           # ...within (min, max) rounds
    tta_seeds: tuple[int, ...]
    tta_to_target: bool                     # stop each seed at its first epoch at/above target
    #: preset -> seeds the per-example reference trains in time-to-accuracy; absent: not run (why below)
    tta_reference: dict[str, tuple[int, ...]] = field(default_factory=dict)
    tta_reference_note: str = ""
    #: preset -> (training examples, epochs, target): shrunken presets that exercise the machinery only
    tta_shrink: dict[str, tuple[int, int, float]] = field(default_factory=dict)


MODES = {
    "full": Mode(
        "full", forward=(1, 10, 128, 1024, 10_000), backward=(10, 128, 1024), epoch_sweep=(10, 32, 128, 1024),
        epoch_examples=None, epoch_seconds=3.0, epoch_rounds=(3, 10),
        tta_seeds=(0, 1, 2), tta_to_target=False,
        # Measured here: per-example float64 backprop takes ~3.2 s a nielsen epoch (~100 s a seed with
        # evaluation), ~10 s a relu epoch with evaluation (~110 s a seed); a fullbatch seed is 100 such
        # epochs (~15 min).
        tta_reference={"nielsen": (0,), "relu": (0,)},
        tta_reference_note="the full bench trains the per-example reference on one seed of nielsen and "
                           "relu only; fullbatch would take ~15 minutes a seed"),
    "quick": Mode(
        "quick", forward=(10, 1024), backward=(128,), epoch_sweep=(10, 128),
        epoch_examples=None, epoch_seconds=1.0, epoch_rounds=(2, 5),
        tta_seeds=(0,), tta_to_target=True,
        tta_reference_note="quick mode leaves the per-example reference out of time-to-accuracy "
                           "(~90 s a nielsen seed); run `make bench` for it"),
    "smoke": Mode(
        "smoke", forward=(10,), backward=(10,), epoch_sweep=(10,),
        epoch_examples=500, epoch_seconds=0.0, epoch_rounds=(1, 1),
        tta_seeds=(0,), tta_to_target=True,
        tta_reference={"nielsen": (0,), "relu": (0,), "fullbatch": (0,)},
        # 2,000 examples and a few epochs: seed 0 reaches 72% (nielsen), 84% (relu), 29% (fullbatch)
        # in every implementation; the targets only prove that training happened.
        tta_shrink={"nielsen": (2_000, 2, 0.60), "relu": (2_000, 2, 0.80), "fullbatch": (2_000, 3, 0.25)}),
}


def tta_tag(mode: Mode, seeds) -> str:
    """The part of a time-to-accuracy test id that says what work the run does."""
    if mode.tta_shrink:
        return f"{mode.name}-seed{'-'.join(map(str, seeds))}"
    what = f"{len(seeds)}seeds" if len(seeds) > 1 else f"seed{seeds[0]}"
    return what + ("-to-target" if mode.tta_to_target else "")


class SyncTimer:
    """``time.perf_counter`` that first waits for the implementation's queued device work.

    pytest-benchmark reads its timer once before and once after each round (a round may
    loop many iterations), so a GPU implementation is synchronized around the round rather
    than after every call; on the CPU ``sync`` is a no-op. ``sync`` is set per test.
    """

    def __init__(self):
        self.__name__ = "SyncTimer(perf_counter)"
        self.sync = self.no_sync

    def __call__(self) -> float:
        self.sync()
        return time.perf_counter()

    @staticmethod
    def no_sync():
        pass


SYNC_TIMER = SyncTimer()


# -- work done -------------------------------------------------------------------------
def backprop_macs(spec) -> int:
    """Multiply-adds of forward + backward for one example: the forward products, one
    nabla_W = delta a^T per layer, and delta carried back through every layer but the first."""
    first = spec.sizes[0] * spec.sizes[1]
    return 3 * spec.macs_per_example - first


def phase_flops(spec, phase: str, examples: int, batch: int) -> int:
    """Floating-point operations (2 per multiply-add) of one timed round; elementwise
    activation work is O(n) and left out, the SGD update (2 per parameter per step) is in."""
    if phase == "forward":
        return 2 * spec.macs_per_example * examples
    flops = 2 * backprop_macs(spec) * examples
    if phase == "epoch":
        n_params = sum(n_in * n_out + n_out for n_in, n_out in zip(spec.sizes[:-1], spec.sizes[1:]))
        flops += 2 * n_params * math.ceil(examples / batch)
    return flops


# -- this machine's ceiling ------------------------------------------------------------------
_PEAK: dict[str, dict[str, float]] = {}     # device type ("cpu", "cuda") -> dtype -> GFLOP/s
#: the GPU's product is larger: at 2048 it takes well under a millisecond, so launch and
#: timer costs would show in the peak
GPU_GEMM_N = 8192


def gemm_peak(n: int = 2048, repeats: int = 5, device: str = "cpu") -> dict[str, float]:
    """GFLOP/s of an n x n matrix product (best of ``repeats``) per dtype, measured once per
    process and device: SGEMM for float32, DGEMM for float64. On the CPU it is NumPy's, under
    the thread limits then in force; on "cuda" torch's (n = ``GPU_GEMM_N``, TF32 off as in the
    implementations). Each implementation's GFLOP/s is shown as a share of its own device's and
    dtype's peak."""
    if device not in _PEAK:
        _PEAK[device] = _cpu_peak(n, repeats) if device == "cpu" else _torch_peak(GPU_GEMM_N, repeats, device)
    return dict(_PEAK[device])


def _cpu_peak(n, repeats):
    rng, peak = np.random.default_rng(0), {}
    for dtype in ("float32", "float64"):
        a = rng.random((n, n)).astype(dtype)
        a @ a  # first call: BLAS thread start-up and page faults
        best = min(_timed(lambda: a @ a) for _ in range(repeats))
        peak[dtype] = 2 * n ** 3 / best / 1e9
    return peak


def _torch_peak(n, repeats, device):
    import torch
    peak = {}
    for dtype in ("float32", "float64"):
        a = torch.rand(n, n, dtype=getattr(torch, dtype), device=device)
        seconds = []
        for _ in range(repeats + 1):     # the first: cuBLAS handle, workspace and kernel selection
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            a @ a
            end.record()
            end.synchronize()
            seconds.append(start.elapsed_time(end) / 1e3)
        peak[dtype] = 2 * n ** 3 / min(seconds[1:]) / 1e9
        del a
    return peak


def measured_peak(device: str = "cpu") -> dict[str, float] | None:
    """The device's peak if this process measured it, else None (reporting never triggers a measurement)."""
    return dict(_PEAK[device]) if device in _PEAK else None


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# -- what is written beside a timing --------------------------------------------------------
def spread(median: float, iqr: float, stddev: float, rounds: int, low: float, high: float) -> dict:
    """Spread as fractions of the median, and whether it is large enough to flag.

    IQR is the measure shown: thousands of rounds of a microsecond call always include a few
    interrupted ones, which inflate the standard deviation but not the IQR. Below
    ``FEW_ROUNDS`` rounds quartiles say little, so there the full range is judged instead.
    """
    if not median > 0:
        return {"iqr_frac": None, "stddev_frac": None, "range_frac": None, "unstable": False}
    iqr_frac, range_frac = iqr / median, (high - low) / median
    unstable = iqr_frac > UNSTABLE or (rounds < FEW_ROUNDS and range_frac > UNSTABLE)
    return {"iqr_frac": iqr_frac, "stddev_frac": stddev / median, "range_frac": range_frac,
            "unstable": bool(unstable)}


def record_spread(benchmark, net):
    """Record the thread counts in force and, when timings were taken, their spread.
    Returns pytest-benchmark's Stats, or None under ``--benchmark-disable``."""
    from impls.threads import info
    benchmark.extra_info["threads"] = info(net)
    stats = benchmark.stats.stats if benchmark.stats else None
    if stats:
        benchmark.extra_info.update(spread(stats.median, stats.iqr, stats.stddev, stats.rounds,
                                           stats.min, stats.max))
    return stats


def record(benchmark, *, phase: str, net, preset, batch: int, examples: int, **more) -> None:
    """Fill ``benchmark.extra_info``: what was timed, on how many threads, the work done and
    (when timings were taken) examples/s, GFLOP/s, share of the GEMM peak and spread.

    ``status`` starts as passed; the plugin overwrites it when the test then fails.
    """
    flops = phase_flops(net.spec, phase, examples, batch)
    benchmark.extra_info.update(phase=phase, impl=net.name, preset=preset.name, sizes=list(net.spec.sizes),
                                dtype=net.spec.dtype, batch=batch, examples=examples, n_train=preset.n_train,
                                flops=flops, status="passed", **more)
    stats = record_spread(benchmark, net)
    if stats:
        # Torch implementations carry a torch.device; every other one computes on the CPU.
        peak = gemm_peak(device=getattr(getattr(net, "device", None), "type", "cpu"))[net.spec.dtype]
        gflops = flops / stats.median / 1e9
        benchmark.extra_info.update(examples_per_s=examples / stats.median, gflops=gflops, peak_gflops=peak,
                                    pct_peak=100 * gflops / peak)
