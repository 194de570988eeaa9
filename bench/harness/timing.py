"""How a timing is taken and what is written beside it: the synchronizing timer, this
machine's GEMM peak, the spread, and ``extra_info`` (FLOPs from the phase's declaration).

Kept free of pytest so the report and the studies can use the same definitions.
"""
from __future__ import annotations

import statistics
import time
import timeit

import numpy as np

from .cpu import OTHERS_WARN  # noqa: F401  (the report reads it from here)

#: a timing whose IQR (or, with few rounds, whose range) exceeds this fraction of its median is flagged
UNSTABLE = 0.10
FEW_ROUNDS = 5
#: an epoch estimated to take longer than this (seconds) is timed on a tenth of the training set
EPOCH_SUBSET_ABOVE = 4.0
#: the test id of every implementation's oracle (impls.core.check compares against it)
REFERENCE = "reference"


class SyncTimer:
    """``time.perf_counter`` that first waits for the implementation's queued device work.

    pytest-benchmark reads its timer once before and once after each round (a round may
    loop many iterations), so a GPU implementation is synchronized around the round rather
    than after every call; on the CPU ``sync`` is a no-op. ``sync`` is set per test.
    Where a round is a block of ``per`` calls (forward, backward: ``time_block``) the clock
    reads in units of ``per`` seconds, so pytest-benchmark's rounds are seconds per call.
    """

    def __init__(self):
        self.__name__ = "SyncTimer(perf_counter)"
        self.sync = self.no_sync
        self.per = 1

    def __call__(self) -> float:
        self.sync()
        return time.perf_counter() / self.per

    @staticmethod
    def no_sync():
        pass


SYNC_TIMER = SyncTimer()


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
        best = min(seconds_of(lambda: a @ a) for _ in range(repeats))
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


#: a forward or backward round is a block of calls lasting about this long: many ticks of the CPU
#: clock that judges it (bench.harness.cpu), yet short enough for many trials
BLOCK_SECONDS = 0.05


def time_block(benchmark, work, sync, rounds: int):
    """Forward/backward timed in turns (``bench.harness.turns``): each round a block of calls of
    ``work`` lasting about BLOCK_SECONDS, ``sync()`` once at its end by the timer, its time in seconds
    per call. The count comes from one untimed call, then from one untimed block of that many (a
    single microsecond call mostly times its own overheads). Returns the last call's result."""
    from .turns import pedantic
    once = seconds_of(lambda: (work.fn(*work.args), sync()))
    calls = max(1, min(100_000, round(BLOCK_SECONDS / max(once, 1e-7))))
    calls = max(1, round(BLOCK_SECONDS / max(seconds_of(lambda: _block(work.fn, work.args, calls, sync)) / calls, 1e-7)))

    def block(*args):
        return _block(work.fn, args, calls, lambda: None)
    benchmark.extra_info["calls_per_round"] = calls
    SYNC_TIMER.per = calls
    try:
        return pedantic(benchmark, block, args=work.args, rounds=rounds, seconds=BLOCK_SECONDS)
    finally:
        SYNC_TIMER.per = 1


def _block(fn, args, calls, sync):
    for _ in range(calls - 1):
        fn(*args)
    out = fn(*args)
    sync()
    return out


def time_call(fn, sync, seconds: float, repeats: int) -> float:
    """Median seconds per call of ``fn()`` over ``repeats`` runs of ~``seconds`` each (calls back to
    back, ``sync()`` once at the end of a run, so a device is waited for), after a warm-up call.
    For the studies' microsecond calls, where a timer read per call would be part of the time."""
    fn()
    sync()
    once = min(timeit.repeat(lambda: (fn(), sync()), number=1, repeat=3))
    number = max(1, int(seconds / max(once, 1e-7)))

    def run():
        for _ in range(number):
            fn()
        sync()
    return statistics.median(timeit.repeat(run, number=1, repeat=repeats)) / number


def measured_peak(device: str = "cpu") -> dict[str, float] | None:
    """The device's peak if this process measured it, else None (reporting never triggers a measurement)."""
    return dict(_PEAK[device]) if device in _PEAK else None


def native_sample(net):
    """One zero input row in the implementation's native array type (NumPy, torch, JAX), on its device."""
    return net.asarray(np.zeros((1, net.spec.sizes[0]), dtype=net.np_dtype))


def device_of(net) -> str:
    """"cuda" when the implementation computes on a CUDA device (its native arrays say so: torch's
    ``is_cuda``, a JAX array's devices), else "cpu": which device's peak and bandwidth a timing is
    measured against."""
    sample = native_sample(net)
    devices = getattr(sample, "devices", None)
    on_gpu = callable(devices) and any(d.platform in ("gpu", "cuda") for d in devices())
    return "cuda" if getattr(sample, "is_cuda", False) or on_gpu else "cpu"


def seconds_of(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fmt_time(seconds: float) -> str:
    """Seconds in s, ms or µs, three significant digits (a whole number from 100 up)."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            value = seconds / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"


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
    from impls.core.threads import info
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
    from .phases import PHASES
    flops = PHASES[phase].flops(net.spec, examples, batch)
    benchmark.extra_info.update(phase=phase, impl=net.name, preset=preset.name, sizes=list(net.spec.sizes),
                                dtype=net.spec.dtype, batch=batch, examples=examples, n_train=preset.n_train,
                                flops=flops, status="passed", **more)
    stats = record_spread(benchmark, net)
    if stats:
        benchmark.extra_info["peak_gflops"] = gemm_peak(device=device_of(net))[net.spec.dtype]
        benchmark.extra_info.update(rates(benchmark.extra_info, stats))


def rates(extra: dict, stats) -> dict:
    """What a benchmark's rounds give beside its ``extra_info`` (examples, FLOPs, the GEMM peak):
    the spread, examples/s, GFLOP/s and share of the peak, from pytest-benchmark's ``Stats``.
    ``python -m bench.run`` recomputes them from the rounds it pooled."""
    out = spread(stats.median, stats.iqr, stats.stddev, stats.rounds, stats.min, stats.max)
    if stats.median > 0 and extra.get("examples") and extra.get("flops") is not None and extra.get("peak_gflops"):
        gflops = extra["flops"] / stats.median / 1e9
        out.update(examples_per_s=extra["examples"] / stats.median, gflops=gflops,
                   pct_peak=100 * gflops / extra["peak_gflops"])
    return out
