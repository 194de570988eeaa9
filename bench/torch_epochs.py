"""Why PyTorch is slow or fast here: epoch times against numpy and the reference, and
the per-call overhead behind them.

Times one training epoch on real MNIST for `reference`, `numpy` and every available
PyTorch implementation, at mini-batch sizes 10, 32, 128 and 1024, on the networks of
the `nielsen` and `relu` presets. Every implementation is first checked against the
float64 reference (forward, gradients, one SGD step; impls/check.py), then warmed up
with one epoch, then timed over several epochs (median and spread; the device is
synchronized inside the timer, the cost is read outside it). The per-example
reference takes seconds per epoch, so it is timed on a prefix of the data and scaled
(the output says so). Thread counts and library versions are printed with the table.

The second table times single calls at the nielsen size (784 -> 30, batch 10) and one
training step of each implementation, and counts the PyTorch operator calls a step
dispatches, which is where the idiomatic version's time goes.

    flock /tmp/nnbench-timing.lock .venv/bin/python bench/torch_epochs.py --threads 1
    .venv/bin/python bench/torch_epochs.py --presets nielsen --batches 10 --repeats 5
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
import timeit
from pathlib import Path

import numpy as np
from tabulate import tabulate

from impls import available, create, threads
from impls.cli import positive_int
from impls.errors import NnbenchError
from impls.check import check_forward, check_gradients, check_sgd_step, random_problem
from impls.presets import get_preset
from impls.spec import init_params
from impls.train import load_dataset

IMPLS = ["reference", "numpy", "torch-idiomatic-cpu", "torch-fast-cpu", "torch-idiomatic-cuda", "torch-fast-cuda"]


def validate(name, spec):
    """Refuse to time an implementation that does not compute the reference's numbers."""
    net, ref = create(name, spec), create("reference", spec.with_dtype("float64"))
    params, X, y = random_problem(spec, seed=11, batch=7)
    check_forward(net, ref, params, X)
    check_gradients(net, ref, params, X, y)
    check_sgd_step(net, ref, params, X, y, lr=0.5)


def epoch_flops(spec, n):
    """Multiply-add FLOPs of an epoch: forward and BP4 in every layer, BP2 in all but the first."""
    macs = [a * b for a, b in zip(spec.sizes[:-1], spec.sizes[1:])]
    return 2 * n * (2 * sum(macs) + sum(macs[1:]))


def time_epochs(net, data, n, batch, lr, repeats, rng):
    """Seconds of one warm-up then ``repeats`` timed epochs over the first n examples."""
    net.set_training_data(data.X_train[:n], data.y_train[:n])
    seconds = []
    for r in range(repeats + 1):
        order = rng.permutation(n)
        start = time.perf_counter()
        cost = net.train_epoch(order, batch, lr)
        net.sync()
        elapsed = time.perf_counter() - start
        if not np.isfinite(float(cost)):
            raise SystemExit(f"{net.name}: cost became {float(cost)} at batch {batch}; timing is meaningless")
        if r:   # r == 0 is the warm-up
            seconds.append(elapsed)
    return seconds


def epoch_table(args, data, names):
    rows = []
    for preset_name in args.presets:
        preset = get_preset(preset_name)
        n = preset.n_train
        for name in names:
            spec = preset.spec("float64" if name == "reference" else "float32")
            validate(name, spec)
            net = create(name, spec)
            if args.threads:
                net.set_threads(args.threads)
            rng = np.random.default_rng(0)
            net.set_params(init_params(spec, rng, preset.init))
            subset = min(args.reference_subset, n) if name == "reference" else n
            for batch in args.batches:
                seconds = [s * n / subset for s in time_epochs(net, data, subset, batch, preset.lr, args.repeats, rng)]
                median = statistics.median(seconds)
                rows.append([preset_name, name, batch, median, f"{min(seconds):.3f}-{max(seconds):.3f}",
                             epoch_flops(spec, n) / median / 1e9, net.threads().get("torch", "-"),
                             _blas_threads(),
                             f"{subset:,} of {n:,}, x{n / subset:g}" if subset < n else f"{n:,}"])
    return rows


def _blas_threads():
    """NumPy's BLAS pool (torch's own MKL/OpenMP threads are torch.get_num_threads())."""
    return ",".join(str(v) for k, v in threads.info().items() if k.startswith("blas:")) or "-"


def ratio_lines(rows):
    """The issue's claims, as measured ratios."""
    t = {(r[0], r[1], r[2]): r[3] for r in rows}
    lines = []
    for preset, batch, base in (("nielsen", 10, "reference"), ("nielsen", 10, "numpy"), ("relu", 128, "numpy"),
                                ("relu", 32, "numpy")):
        for name in IMPLS[2:]:
            if (preset, name, batch) in t and (preset, base, batch) in t:
                lines.append(f"{preset} batch {batch}: {name} takes {t[preset, name, batch]:.3f} s, "
                             f"{t[preset, base, batch] / t[preset, name, batch]:.2f}x the speed of {base} "
                             f"({t[preset, base, batch]:.3f} s)")
    return lines


def per_call_table(number, repeats):
    """Microseconds per call at the nielsen size (784 -> 30, batch 10), median over repeats,
    and how many PyTorch operators each call dispatches."""
    import torch
    import torch.nn.functional as F

    from impls.activations import sigmoid

    rng = np.random.default_rng(0)
    m, n_in, n_out = 10, 784, 30
    x, W, b = (rng.random((m, n_in), dtype=np.float32), rng.standard_normal((n_out, n_in), dtype=np.float32),
               rng.standard_normal(n_out, dtype=np.float32))
    tx, tW, tb = torch.from_numpy(x), torch.from_numpy(W), torch.from_numpy(b)
    linear = torch.nn.Linear(n_in, n_out)
    z, a = x @ W.T + b, np.empty((m, n_out), dtype=np.float32)
    tz, ta = torch.from_numpy(z), torch.from_numpy(a)
    calls = [
        ("numpy: x @ W.T + b", lambda: x @ W.T + b),
        ("torch.addmm(b, x, W.t(), out=z)", lambda: torch.addmm(tb, tx, tW.t(), out=tz)),
        ("F.linear(x, W, b)", lambda: F.linear(tx, tW, tb)),
        ("nn.Linear(x), parameters require grad", lambda: linear(tx)),
        ("numpy: sigmoid(z) = 1/(1+exp(-z))", lambda: sigmoid(z)),
        ("torch.sigmoid(z, out=a)", lambda: torch.sigmoid(tz, out=ta)),
    ]
    preset = get_preset("nielsen")
    y = rng.integers(0, 10, m)
    nets = {}
    for name in ("numpy", "torch-idiomatic-cpu", "torch-fast-cpu"):
        net = nets[name] = create(name, preset.spec("float32"))
        net.set_params(init_params(net.spec, np.random.default_rng(0), "normal"))
        X, Y = net.asarray(x), net.aslabels(y)
        # a tiny learning rate keeps the weights where they are over thousands of steps
        calls.append((f"{name}: update_mini_batch (one SGD step)", lambda net=net, X=X, Y=Y: net.update_mini_batch(X, Y, 1e-6)))
    idiomatic, X, Y = nets["torch-idiomatic-cpu"], torch.from_numpy(x), torch.from_numpy(y)

    def forward_backward():
        idiomatic.optimizer.zero_grad()
        idiomatic.loss(idiomatic.model(X), Y).backward()
    forward_backward()
    calls += [("idiomatic step, part: model(x) and the loss", lambda: idiomatic.loss(idiomatic.model(X), Y)),
              ("idiomatic step, part: zero_grad, model, loss, backward()", forward_backward),
              ("idiomatic step, part: optimizer.step()", idiomatic.optimizer.step)]
    return [[what, _median_us(fn, number if "step" not in what else number // 10, repeats),
             "-" if what.startswith("numpy") else _count_ops(fn)] for what, fn in calls]


def _median_us(fn, number, repeats):
    fn()
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeats)) / number * 1e6


def _count_ops(fn):
    """Operator calls one call of fn dispatches: aten ops not called from inside another aten
    op, whether Python, autograd or the optimizer called them."""
    from torch.profiler import ProfilerActivity, profile
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    count = 0
    for e in prof.events():
        if not e.name.startswith("aten::"):
            continue
        parent = e.cpu_parent
        while parent is not None and not parent.name.startswith("aten::"):
            parent = parent.cpu_parent
        count += parent is None
    return count


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


def header(args):
    import torch
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    from impls.torch_common import describe_cuda_device
    gpu = describe_cuda_device()
    return (f"machine: {cpu}, {os.cpu_count()} logical CPUs; " + (f"GPU: {gpu}; " if gpu else "")
            + f"Python {platform.python_version()}, NumPy {np.__version__}, torch {torch.__version__}; "
            f"threads {threads.info()}; repeats {args.repeats} (+1 warm-up)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["nielsen", "relu"], choices=["nielsen", "relu"])
    parser.add_argument("--batches", nargs="+", type=positive_int, default=[10, 32, 128, 1024])
    parser.add_argument("--impls", nargs="+", default=IMPLS, choices=IMPLS)
    parser.add_argument("--repeats", type=positive_int, default=3, help="timed epochs per cell (after one warm-up)")
    parser.add_argument("--threads", type=positive_int, help="pin BLAS/OpenMP and torch to this many threads")
    parser.add_argument("--reference-subset", type=positive_int, default=5000,
                        help="examples the per-example reference is timed on, scaled to the full epoch")
    parser.add_argument("--data", help="MNIST directory (default: NNBENCH_DATA, then the cache)")
    parser.add_argument("--skip-epochs", action="store_true", help="only the per-call table")
    parser.add_argument("--tablefmt", default="simple", help="tabulate format, e.g. github for README")
    args = parser.parse_args(argv)
    if args.threads:
        threads.pin(args.threads)
    import torch
    from impls.torch_common import DEFAULT_CPU_THREADS
    # The per-call table runs raw torch calls at the thread count the implementations use.
    torch.set_num_threads(args.threads or DEFAULT_CPU_THREADS)
    data = None if args.skip_epochs else load_dataset(args.data)    # fail before timing anything
    reasons = available()
    names = [n for n in args.impls if reasons[n] is None]
    print(header(args))
    for n in args.impls:
        if reasons[n]:
            print(f"skipped {n}: {reasons[n]} (its numbers are unmeasured)")
    print()
    print(tabulate(per_call_table(number=20_000, repeats=args.repeats + 2),
                   headers=["784 -> 30, batch 10, float32", "us per call", "aten ops per call"],
                   floatfmt=".1f", tablefmt=args.tablefmt))
    if args.skip_epochs:
        return 0
    rows = epoch_table(args, data, names)
    print()
    print(tabulate(rows, headers=["network", "implementation", "batch", "epoch s (median)", "min-max s",
                                  "GFLOP/s", "torch threads", "NumPy BLAS threads", "timed on examples"],
                   floatfmt=(".0f", "", ".0f", ".3f", "", ".2f"), tablefmt=args.tablefmt))
    print()
    print("\n".join(ratio_lines(rows)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NnbenchError as exc:     # missing data, an unavailable implementation: one line
        sys.exit(f"torch_epochs: error: {exc}")
