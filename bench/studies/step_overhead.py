"""Step overhead: what one training step costs at batch 1 and 10, and what it is made of.

At batch 10 a nielsen step is ~0.5 MFLOP: microseconds of arithmetic at this machine's GEMM
peak, so whatever else a step costs -- the interpreter, a framework's dispatch, kernel launches,
a parallel region's start -- is the step. For every implementation and preset network, after
checking one SGD step against the float64 reference: the median microseconds of
``update_mini_batch`` on a fixed mini-batch (so nothing but the step is timed), the GFLOP/s
that implies, the Python-level calls one step makes (``sys.setprofile``: Python functions
and calls into C; a compiled step is a handful), and, where the framework can count them, the
PyTorch operators it dispatches (torch.profiler) and on a CUDA device the kernels it launches
and the GPU time inside them. With a CUDA device it also measures the launch floor: a chain of
dependent 1-element kernels, eager and replayed from a CUDA graph.

The learning rate is 1e-6 so that thousands of repeated steps on one mini-batch leave the
weights where they were (a step costs the same at any rate).
"""
from __future__ import annotations

import contextlib
import os
import sys

from tabulate import tabulate

from impls.core.check import check_sgd_step
from impls.core.argtypes import positive_int, positive_float
from impls.core.presets import PRESETS
from impls.core.registry import create

from ..harness.phases import REFERENCE, backward_flops
from ..harness.timing import time_call
from . import Output, Study

LR = 1e-6
FLOOR_KERNELS = 20      # about what one torch-fast CUDA step launches


def add_arguments(p):
    p.add_argument("--presets", nargs="+", default=["nielsen", "relu"], choices=list(PRESETS))
    p.add_argument("--batch-sizes", nargs="+", type=positive_int, default=[1, 10])
    p.add_argument("--seconds", type=positive_float, default=0.3, help="timed seconds per repeat (default 0.3)")
    p.add_argument("--repeats", type=positive_int, default=5, help="repeats per cell; the median is shown (default 5)")


def run(ctx) -> Output:
    args = ctx.args
    threads = (args.threads or [1])[0]
    for preset_name in args.presets:
        ctx.check_batches(args.batch_sizes, PRESETS[preset_name])
    rows = []
    for preset_name in args.presets:
        for name, ready in ctx.build_all(PRESETS[preset_name], threads).items():
            net = ready.net
            ref = create(REFERENCE, net.spec.with_dtype("float64"))
            for batch in args.batch_sizes:
                X, y = ready.X[:batch], ready.y[:batch]
                check_sgd_step(net, ref, ready.params, X, y, lr=0.5)     # validate before timing
                ready.restore()
                Xn, yn = net.asarray(X), net.aslabels(y)

                def step():
                    net.update_mini_batch(Xn, yn, LR)
                seconds = time_call(step, net.sync, args.seconds, args.repeats)
                counts = count_calls(step, net)
                rows.append([preset_name, name, batch, f"{seconds * 1e6:.1f}",
                             f"{(backward_flops(net.spec, batch, batch) + 2 * net.spec.n_params) / seconds / 1e9:.3g}",
                             counts["python"], counts["c"], counts.get("aten", "—"), counts.get("kernels", "—"),
                             counts.get("kernel_us", "—")])
                ctx.log(f"{preset_name} {name} batch {batch}: {seconds * 1e6:.1f} us/step")
    headers = ["preset", "implementation", "batch", "µs per step (median)", "GFLOP/s", "Python calls",
               "calls into C", "torch ops", "CUDA kernels", "µs in kernels"]
    text = (f"Pinned to {threads} thread(s) (`--threads`); one mini-batch of the preset's training set, "
            f"`update_mini_batch` repeated for ~{args.seconds:g} s, {args.repeats} repeats, median shown. "
            "Calls are per step, counted on one step: Python functions entered, and calls from Python into C "
            "(NumPy and PyTorch functions, a Numba kernel); torch ops are the aten operators dispatched "
            "from Python, autograd or the optimizer (not those nested inside another).\n\n"
            + tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True) + "\n")
    text += launch_floor(args)
    return Output(text)


def count_calls(step, net) -> dict:
    counts = {"python": 0, "c": 0}

    def profiler(frame, event, arg):
        if event == "call":
            counts["python"] += 1
        elif event == "c_call":
            counts["c"] += 1
    sys.setprofile(profiler)
    try:
        step()
    finally:
        sys.setprofile(None)
    counts["python"] -= 1          # the step() wrapper itself
    if _is_torch(net):
        counts.update(torch_counts(step, net))
    return counts


def _is_torch(net) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(getattr(net, "X_train", None), torch.Tensor)


def torch_counts(step, net) -> dict:
    """aten operators not called from inside another aten operator; on CUDA, kernels and their time."""
    from torch.profiler import ProfilerActivity, profile
    cuda = net.X_train.is_cuda
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    net.sync()
    with _quiet_stderr(), profile(activities=activities) as prof:
        step()
        net.sync()
    aten = 0
    for e in prof.events():
        if not e.name.startswith("aten::"):
            continue
        parent = e.cpu_parent
        while parent is not None and not parent.name.startswith("aten::"):
            parent = parent.cpu_parent
        aten += parent is None
    out = {"aten": aten}
    if cuda:
        from torch.autograd import DeviceType
        kernels = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
        out.update(kernels=len(kernels), kernel_us=f"{sum(e.time_range.elapsed_us() for e in kernels):.1f}")
    return out


def launch_floor(args) -> str:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return "\nLaunch floor: not measured (no CUDA device here).\n"
    t = torch.zeros(1, device="cuda")

    def chain():
        for _ in range(FLOOR_KERNELS):
            t.add_(1)
    chain()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        chain()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        chain()
    rows = [[label, f"{time_call(fn, torch.cuda.synchronize, args.seconds, args.repeats) * 1e6:.1f}"]
            for label, fn in (("eager, launched from Python", chain), ("replayed from a CUDA graph", graph.replay))]
    return (f"\nLaunch floor: {FLOOR_KERNELS} dependent 1-element kernels, µs per chain (chains back to back, "
            "synchronized at the end; divide by the count for one kernel's floor).\n\n"
            + tabulate(rows, headers=["chain", "µs"], tablefmt="github", disable_numparse=True) + "\n")


@contextlib.contextmanager
def _quiet_stderr():
    """The profiler's C++ side prints start/stop lines on file descriptor 2; drop them."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


STUDY = Study("step-overhead", "What one training step costs, and what it is made of",
              "one SGD step at batch 1 and 10: µs, calls into the interpreter and framework, CUDA kernels",
              add_arguments, run)
