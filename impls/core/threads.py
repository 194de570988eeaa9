"""Pin and record the thread pools that decide how fast CPU code runs.

BLAS (OpenBLAS/MKL behind NumPy) and OpenMP pools are limited with threadpoolctl;
PyTorch's and Numba's own pools through each implementation's ``set_threads``.
Only libraries already imported are touched, so asking does not import torch.

One rule for every implementation and every command: at most one thread per CPU this
process may run on (``usable_cpus``). A thread beyond that gets no CPU of its own: it
waits while another runs, and every parallel region then waits for the slowest of them.
torch-fast-cpu at ``--threads 999`` on 2 CPUs took hundreds of times as long for an epoch
(docs/measurements.md, "Threads"); NumPy silently capped OpenBLAS; only Numba refused. Now all
refuse the same way.
"""
from __future__ import annotations

import os
import sys

from threadpoolctl import threadpool_info, threadpool_limits

_limits = None  # kept alive: the limit lasts as long as this object


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. under taskset or a container's
    cpuset), else every CPU: the most threads worth pinning, and the default."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check(n: int) -> None:
    """ConfigError unless 1 <= n <= usable_cpus(): the one rule, with the one message."""
    from .errors import ConfigError
    usable = usable_cpus()
    if not 1 <= n <= usable:
        raise ConfigError(f"{n} threads cannot run here: this process may use {usable} CPU"
                          f"{'s' if usable > 1 else ''}, so pin 1 to {usable} threads (more only wait "
                          f"for a CPU, and every parallel step waits for the slowest)")


def pin(n: int | None) -> None:
    """Limit BLAS/OpenMP pools to n threads (None leaves the libraries' defaults)."""
    global _limits
    if n is None:
        return
    check(n)
    _limits = threadpool_limits(limits=n)


def info(net=None) -> dict:
    """Thread counts in force: each native pool, plus the implementation's own."""
    record = {"cpus": os.cpu_count()}
    for pool in threadpool_info():
        record[f"{pool['user_api']}:{pool['internal_api']}"] = pool["num_threads"]
    if "torch" in sys.modules:
        record["torch"] = sys.modules["torch"].get_num_threads()
    if "numba" in sys.modules:
        record["numba"] = _numba_threads(sys.modules["numba"])
    if net is not None:
        record.update(net.threads())
    return record


def _numba_threads(numba) -> int:
    """Numba's thread count, without starting its pool just to ask.

    ``numba.get_num_threads()`` starts the pool, and starting it can move torch's own thread
    count: on a 16-CPU machine (torch 2.11+cu130, numba 0.68, both on OpenMP), with numba
    imported before torch as the registry does, torch went from the 2 threads it was set to
    to 16 the moment the pool started, so recording the counts changed them. On the 2-CPU
    development machine both are 2 and nothing shows.
    """
    from numba.np.ufunc import parallel
    if not parallel._is_initialized:
        return numba.config.NUMBA_NUM_THREADS     # what the pool will start with
    return numba.get_num_threads()
