"""Whole-epoch times of ``numba`` against ``numpy`` on real MNIST, by batch size and threads.

    flock /tmp/nnbench-timing.lock .venv/bin/python bench/numba_epochs.py [--out results/numba_epochs.md]

For each preset's network (``nielsen`` 784-30-10 sigmoid, ``relu`` 784-100-10 softmax),
batch size and thread count, both implementations train whole epochs from the same
weights and example order, interleaved, after a warm-up epoch each; the table gives the
median and the range over the repeats, numpy/numba (> 1: numba is faster), and numba's
achieved GFLOP/s. Then: the batch size at which numpy overtakes numba, and Numba's
first-call seconds measured in fresh processes, cold (empty cache) and from the cache.
Before anything is timed, numba is checked against the float64 reference.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from tabulate import tabulate
from threadpoolctl import threadpool_info

from impls import create, threads
from impls.check import check_gradients, check_sgd_step, random_problem
from impls.presets import get_preset
from impls.spec import init_params
from impls.train import load_dataset

IMPLS = ("numpy", "numba")
#: seconds of idle before each timed epoch. OpenBLAS's worker threads busy-wait about
#: 0.1 s after numpy's last BLAS call; a numba epoch started inside that window ran at
#: up to half speed on 2 cores (0.15 s instead of 0.07 s at nielsen batch 128), which
#: would be a measurement of this script, not of either implementation.
SETTLE = 0.25
#: a cell whose slowest epoch took this many times its fastest is marked: on 2 cores one
#: busy process elsewhere made 2-thread epochs 10-35x (numba) and up to 6x (numpy) slower
NOISY = 1.5


def flop_per_example(sizes) -> int:
    """Forward z = Wa (2 n_in n_out), nabla_W (the same again), and BP2's delta W for
    every layer but the first; elementwise work is left out (it is O(n))."""
    macs = [n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    return 2 * (2 * sum(macs) + sum(macs[1:]))


def validate(spec) -> None:
    """numba against the float64 reference, as the tests do, before timing it."""
    params, X, y = random_problem(spec, seed=0, batch=16)
    ref = create("reference", spec.with_dtype("float64"))
    check_gradients(create("numba", spec), ref, params, X, y)
    check_sgd_step(create("numba", spec), ref, params, X, y, lr=0.5)


def time_epochs(nets, params, X, y, batch, lr, repeats, seed):
    """{impl: [seconds]}: one warm-up epoch each, then ``repeats`` rounds of one epoch
    per implementation (the order alternating between rounds), each from ``params``."""
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(len(X)) for _ in range(repeats + 1)]
    times = {name: [] for name in nets}
    for round_ in range(repeats + 1):
        names = list(nets) if round_ % 2 else list(nets)[::-1]
        for name in names:
            net = nets[name]
            net.set_params(params)
            time.sleep(SETTLE)
            start = time.perf_counter()
            cost = net.train_epoch(orders[round_], batch, lr)
            net.sync()
            seconds = time.perf_counter() - start
            if not np.isfinite(float(cost)):
                sys.exit(f"numba_epochs: {name} diverged at batch {batch} (cost {float(cost)}); not a timing")
            if round_:                       # round 0 is the warm-up
                times[name].append(seconds)
    return times


def first_call_seconds(dtype: str, cache_dir: str) -> float:
    """Numba's first-call seconds for ``dtype`` in a fresh process using ``cache_dir``."""
    code = ("import impls.numba_impl as m; from impls import create; from impls.spec import NetworkSpec; "
            f"create('numba', NetworkSpec((784, 30, 10), dtype='{dtype}')); print(m.first_call_seconds['{dtype}'])")
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def describe_machine() -> list[str]:
    import llvmlite
    import numba
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    blas = [f"{p['internal_api']} {p.get('version')} ({p.get('threading_layer', '?')})"
            for p in threadpool_info() if p["user_api"] == "blas"]
    return [f"machine: {cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
            f"versions: Python {platform.python_version()}, NumPy {np.__version__}, Numba {numba.__version__}, "
            f"llvmlite {llvmlite.__version__}, BLAS {', '.join(blas) or 'none found'}; "
            f"Numba threading layer {numba.threading_layer()}"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["nielsen", "relu"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[10, 32, 64, 128, 256, 512, 1024])
    parser.add_argument("--threads", nargs="+", type=int, default=sorted({1, os.cpu_count() or 1}))
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per implementation and setting")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--data", help="MNIST directory (default: $NNBENCH_DATA, then the cache)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-compile-time", action="store_true", help="skip the fresh-process compile timing")
    parser.add_argument("--out", help="also write the report (Markdown) to this file")
    args = parser.parse_args(argv)

    data = load_dataset(args.data)
    load_before = os.getloadavg()[0]
    rows, crossover, suspect = [], [], False
    for preset_name in args.presets:
        preset = get_preset(preset_name)
        spec = preset.spec(args.dtype)
        validate(spec)
        X, y = data.X_train[:preset.n_train], data.y_train[:preset.n_train]
        params = init_params(spec, np.random.default_rng(args.seed), preset.init)
        nets = {name: create(name, spec) for name in IMPLS}
        for net in nets.values():
            net.set_training_data(X, y)
        gflop = flop_per_example(spec.sizes) * len(X) / 1e9
        for n_threads in args.threads:
            threads.pin(n_threads)
            nets["numba"].set_threads(n_threads)
            overtaken, last_numba_win = None, None
            for batch in args.batch_sizes:
                t = time_epochs(nets, params, X, y, batch, preset.lr, args.repeats, args.seed)
                med = {name: statistics.median(t[name]) for name in IMPLS}
                noisy = any(max(t[n]) > NOISY * min(t[n]) for n in IMPLS)
                suspect |= noisy
                rows.append([preset_name, batch, n_threads]
                            + [f"{med[n]:.4f} [{min(t[n]):.4f}-{max(t[n]):.4f}]" for n in IMPLS]
                            + [f"{med['numpy'] / med['numba']:.2f}" + (" !" if noisy else ""),
                               f"{gflop / med['numba']:.1f}"])
                if med["numpy"] < med["numba"]:
                    overtaken = overtaken or batch
                else:
                    last_numba_win = batch
            crossover.append(f"{preset_name}, {n_threads} thread(s): " + (
                "numba is faster at every measured batch size" if overtaken is None else
                f"numpy overtakes numba between batch {last_numba_win} and {overtaken}" if last_numba_win
                and last_numba_win < overtaken else f"numpy is faster from batch {overtaken} on"))
    data_env = [f"NNBENCH_DATA={os.environ['NNBENCH_DATA']}"] if "NNBENCH_DATA" in os.environ and not args.data else []
    command = " ".join(data_env + ["flock /tmp/nnbench-timing.lock", ".venv/bin/python", *sys.argv])
    lines = describe_machine() + [
        f"threads in force at the end: {threads.info()}",
        f"load average (1 min) before: {load_before:.2f}, after: {os.getloadavg()[0]:.2f} "
        "(anything else running on these cores shows up in the times)",
        f"{args.dtype}, {args.repeats} timed epochs per cell after 1 warm-up, {SETTLE} s idle before each, "
        f"seed {args.seed}; cells: median [min-max] seconds per epoch",
        f"reproduce: `{command}`"]
    table = tabulate(rows, headers=["preset", "batch", "threads", "numpy s", "numba s", "numpy/numba",
                                    "numba GFLOP/s"], tablefmt="github")
    if suspect:
        table += (f"\n\n! slowest epoch > {NOISY}x the fastest: something else was probably running on these "
                  "cores; rerun before trusting that row (and the crossover)")
    report = ("## numba vs numpy: seconds per epoch on MNIST\n\n" + "\n".join(f"- {line}" for line in lines)
              + "\n\n" + table + "\n\ncrossover:\n\n" + "\n".join(f"- {c}" for c in crossover) + "\n")
    if not args.no_compile_time:
        with tempfile.TemporaryDirectory() as cache:
            cold = first_call_seconds(args.dtype, cache)
            warm = first_call_seconds(args.dtype, cache)
        report += (f"\nnumba first call ({args.dtype}, fresh process): {cold:.2f} s compiling with an empty "
                   f"cache, {warm:.2f} s loading from the cache\n")
    print(report, end="")
    if args.out:
        tmp = f"{args.out}.tmp"
        with open(tmp, "w") as f:
            f.write(report)
        os.replace(tmp, args.out)    # never a half-written results file
    return 0


if __name__ == "__main__":
    sys.exit(main())
