"""Memory beside time: what one benchmark's work needs, measured on an untimed call of exactly
the timed work, in the benchmark's own process. One module per thing that measures:

- ``resident``: Linux's resident memory -- the **peak** one call added (``peak_rss``: the
  high-water mark reset just before the call) and what the network **holds** once set up
  (``held``: resident after minus before, freed memory handed back each time);
- **allocations per step** (``allocations``), every allocator that can count, over a few untimed
  steps divided by the steps: ``numpy_alloc`` (NumPy's NEP 49 memory handler, counts and sizes),
  ``numba_alloc`` (Numba's runtime counter, counts only), ``torch_alloc`` (the profiler's
  allocation events on the CPU, the caching allocator's counters on CUDA); ``jax_alloc``: XLA
  keeps no allocation statistics on the CPU, so JAX's work there is marked not counted;
- **on CUDA**, the device's peak: ``torch_alloc.cuda_peak`` (reset before the call) and
  ``jax_alloc.cuda_peak`` (the peak since the process started: JAX cannot reset it).

This package joins them: which counters see an implementation (``framework``), one call counted
by all of them at once (``count_allocations``) and everything for one benchmark (``measure``).
The names the suites import are re-exported here.
"""
from __future__ import annotations

import math
import sys

from ..timing import native_sample
from . import jax_alloc, numba_alloc, numpy_alloc, torch_alloc
from .resident import (  # noqa: F401  (the suites import these from here)
    PeakWatch, held_since, peak_resident, peak_rss_of, release_freed, reset_peak, resident, session_peak, settled)


def framework(net) -> str:
    """"torch", "jax" or "numpy": the library of the implementation's native arrays."""
    module = type(native_sample(net)).__module__.split(".")[0]
    return {"torch": "torch", "jax": "jax", "jaxlib": "jax"}.get(module, "numpy")


def count_allocations(fn, net, steps: int, device: str = "cpu") -> dict:
    """Allocations per step of ``fn()`` (which runs ``steps`` steps) by every counter that sees
    this implementation: {"per_step": {counter: {"count", "bytes"}}, "not_counted": reason}."""
    counters = {"numpy": numpy_alloc.count}
    if "numba" in sys.modules:
        counters["numba"] = numba_alloc.count
    kind, not_counted = framework(net), None
    if kind == "torch":
        counters["torch"] = torch_alloc.count_cuda if device == "cuda" else torch_alloc.count_cpu
    elif kind == "jax":
        not_counted = jax_alloc.NOT_COUNTED_ON_CPU if device == "cpu" else None

    def nested(names):                    # each counter wraps the next, so one call is counted by all
        if not names:
            return fn
        inner = nested(names[1:])
        return lambda: results.__setitem__(names[0], counters[names[0]](inner))
    results: dict = {}
    nested(list(counters))()
    lost = [name for name, (c, _) in results.items() if c is None]
    if lost:
        not_counted = f"{', '.join(lost)}: this version keeps no allocation records nnbench can read"
    per_step = {name: {"count": c / steps, "bytes": None if b is None else b / steps}
                for name, (c, b) in results.items() if c is not None}
    return {"per_step": per_step, "not_counted": not_counted}


def cuda_peak_of(fn, net) -> dict | None:
    """Device memory of one call of ``fn()`` on CUDA, by the implementation's library (see
    ``torch_alloc.cuda_peak``, ``jax_alloc.cuda_peak``). None for a CPU implementation."""
    backend = {"torch": torch_alloc, "jax": jax_alloc}.get(framework(net))
    return None if backend is None else backend.cuda_peak(fn)


def measure(fn, net, device: str, steps: int = 1, count_fn=None) -> dict:
    """Everything above for one benchmark: the peak resident memory of ``fn()``, the allocations
    per step of ``count_fn()`` (default ``fn``; it runs ``steps`` steps) and, on CUDA, the device's
    peak. Each is a separate untimed call, so counting never slows what the peak measures."""
    _, memory = peak_rss_of(fn)
    memory.update(count_allocations(count_fn or fn, net, steps, device), steps_counted=steps)
    if device == "cuda":
        memory["cuda"] = cuda_peak_of(fn, net)
    return memory


def steps_of(examples: int, batch: int) -> int:
    return math.ceil(examples / batch)
