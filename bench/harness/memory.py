"""Memory beside time: what one benchmark's work needs, measured on an untimed call of exactly
the timed work, in the benchmark's own process.

**Peak resident memory of the work** (``peak_rss``). Just before the call, a garbage collection
and glibc's ``malloc_trim`` hand back to the OS what earlier benchmarks freed, and Linux's
resident high-water mark (``VmHWM``) is reset to the current resident size (writing 5 to
``/proc/self/clear_refs``). After the call the figure is the high-water mark minus what was
resident just before: what this work added at its highest point. Earlier implementations'
allocations are either still live (then they are in the "before" and subtract out) or were
returned to the OS, so they cannot inflate another implementation's figure. What it cannot
see: memory a library had reserved earlier and reuses (a caching pool; PyTorch's CPU allocator
and NumPy's small-block cache keep little) counts as nothing; the process's shared libraries,
the interpreter and the dataset are in the "before" (the dataset's footprint is reported
once per run, see ``dataset_bytes``). Where the reset is not allowed (not Linux) it is None.

**Held by the network** (``held``): resident memory after setting the implementation up
(built, checked, warmed up) minus before, each read after freed memory is handed back: its
weights, its copy of the training set in native form, buffers it keeps, code compiled for it.
A library's first import in the process would count too; the registry imports every
implementation's module before the first benchmark, so none does.

**Allocations per step** (``allocations``): every allocator that can count, counted over a
few untimed steps and divided by the steps:

- ``numpy``: every array buffer NumPy allocates, through NumPy's own memory-handler API
  (NEP 49, ``PyDataMem_SetHandler``) with a counting handler installed for the call only;
- ``numba``: Numba's runtime (NRT) allocation counter: arrays made inside compiled code
  (a count; NRT does not keep sizes);
- ``torch``: the profiler's allocation events (``profile_memory=True``) for CPU tensors; on
  CUDA, the caching allocator's counters (``torch.cuda.memory_stats``);
- XLA (JAX) keeps no allocation statistics on the CPU: its work is marked not counted.

**On CUDA**: ``torch.cuda.max_memory_allocated`` and ``max_memory_reserved`` after a reset, and
JAX's ``peak_bytes_in_use`` (which cannot be reset: the peak since the process started).
"""
from __future__ import annotations

import ctypes
import gc
import math
import sys

from .timing import native_sample

_CLEAR_REFS = "/proc/self/clear_refs"


# -- resident memory ------------------------------------------------------------------------
def _status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def resident() -> int | None:
    """Bytes resident now (VmRSS), or None off Linux."""
    return _status("VmRSS")


def peak_resident() -> int | None:
    """The resident high-water mark (VmHWM) since the process started or the last reset."""
    return _status("VmHWM")


def release_freed() -> None:
    """Collect garbage and return the C heap's free pages to the OS, so that memory an earlier
    benchmark freed is not silently reused (and so not counted) by the next one."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):      # not glibc: nothing to trim
        pass


_highest_before_resets = 0


def session_peak() -> int | None:
    """The process's highest resident memory since it started, across every reset below (the
    kernel's own maximum -- getrusage, ``/usr/bin/time`` -- forgets what came before a reset)."""
    now = peak_resident()
    return None if now is None else max(now, _highest_before_resets)


def reset_peak() -> bool:
    """Reset VmHWM to the current resident size, remembering the mark it had for
    ``session_peak``; False where the OS does not allow it."""
    global _highest_before_resets
    _highest_before_resets = session_peak() or 0
    try:
        with open(_CLEAR_REFS, "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def settled() -> int | None:
    """Bytes resident once freed memory is handed back: ``settled()`` after setting a network up
    minus ``settled()`` before is what the network holds (weights, its copy of the training set,
    buffers it keeps, code compiled for it)."""
    release_freed()
    return resident()


def held_since(start: int | None) -> int | None:
    now = settled()
    return None if start is None or now is None else max(0, now - start)


class PeakWatch:
    """``start()`` (untimed: collects garbage, trims the heap, resets the high-water mark), the
    work, then ``stop()`` -> ``{"peak_rss", "resident_before"}`` in bytes (``peak_rss`` None where
    the high-water mark cannot be reset). ``stop`` only reads /proc, so it may end a timed round."""

    def start(self) -> PeakWatch:
        release_freed()
        self.before = resident()
        self.ok = reset_peak()
        return self

    def stop(self) -> dict:
        peak = peak_resident()
        added = max(0, peak - self.before) if self.ok and peak is not None and self.before is not None else None
        return {"peak_rss": added, "resident_before": self.before}


def peak_rss_of(fn) -> tuple[object, dict]:
    """Call ``fn()`` once; return its result and ``PeakWatch``'s figures."""
    watch = PeakWatch().start()
    result = fn()
    return result, watch.stop()


# -- counting allocations ---------------------------------------------------------------------
class _NumpyCounter:
    """A NEP 49 memory handler that counts and forwards to the C library's allocator.

    Arrays allocated under it keep a reference to it and free through it for the rest of
    their lives, so the handler and its callbacks live for the whole process."""
    _malloc = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
    _calloc = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)
    _realloc = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
    _free = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)

    def __init__(self):
        import numpy as np
        libc = ctypes.CDLL(None)
        for name, res, args in (("malloc", ctypes.c_void_p, [ctypes.c_size_t]),
                                ("calloc", ctypes.c_void_p, [ctypes.c_size_t, ctypes.c_size_t]),
                                ("realloc", ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_size_t]),
                                ("free", None, [ctypes.c_void_p])):
            getattr(libc, name).restype, getattr(libc, name).argtypes = res, args
        self.count = self.bytes = 0

        def on_malloc(ctx, size):
            self.count, self.bytes = self.count + 1, self.bytes + size
            return libc.malloc(size)

        def on_calloc(ctx, n, size):
            self.count, self.bytes = self.count + 1, self.bytes + n * size
            return libc.calloc(n, size)

        def on_realloc(ctx, ptr, size):
            self.count, self.bytes = self.count + 1, self.bytes + size
            return libc.realloc(ptr, size)

        self.callbacks = (self._malloc(on_malloc), self._calloc(on_calloc), self._realloc(on_realloc),
                          self._free(lambda ctx, ptr, size: libc.free(ptr)))

        class Allocator(ctypes.Structure):
            _fields_ = [("ctx", ctypes.c_void_p), ("malloc", self._malloc), ("calloc", self._calloc),
                        ("realloc", self._realloc), ("free", self._free)]

        class Handler(ctypes.Structure):
            _fields_ = [("name", ctypes.c_char * 127), ("version", ctypes.c_uint8), ("allocator", Allocator)]

        self.handler = Handler(b"nnbench_counting", 1, Allocator(None, *self.callbacks))
        api = ctypes.pythonapi
        api.PyCapsule_New.restype, api.PyCapsule_New.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p,
                                                                                   ctypes.c_void_p]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        self.capsule = api.PyCapsule_New(ctypes.addressof(self.handler), b"mem_handler", None)
        # NumPy's C-API table; slot 304 is PyDataMem_SetHandler (numpy/_core/include/numpy/__multiarray_api.h)
        table = ctypes.cast(api.PyCapsule_GetPointer(np._core._multiarray_umath._ARRAY_API, None),
                            ctypes.POINTER(ctypes.c_void_p))
        self.set_handler = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.py_object)(table[304])

    def __call__(self, fn):
        start = (self.count, self.bytes)
        previous = self.set_handler(self.capsule)
        try:
            fn()
        finally:
            self.set_handler(previous)
        return self.count - start[0], self.bytes - start[1]


_numpy_counter: _NumpyCounter | None = None


def _count_numpy(fn):
    global _numpy_counter
    _numpy_counter = _numpy_counter or _NumpyCounter()
    return _numpy_counter(fn)


def _count_numba(fn):
    from numba.core.runtime import _nrt_python as nrt
    was_on = nrt.memsys_stats_enabled()
    nrt.memsys_enable_stats()
    try:
        start = nrt.memsys_get_stats_alloc()
        fn()
        return nrt.memsys_get_stats_alloc() - start, None
    finally:
        if not was_on:
            nrt.memsys_disable_stats()


def _count_torch_cpu(fn):
    """Allocation events of the profiler's event tree. The tree and ``_EventType`` are torch
    internals (present in the 2.13.0 that ``make setup`` installs): where they are missing the
    call still runs, and the count is None (reported as not counted)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    try:
        from torch._C._profiler import _EventType
        stack = list(prof.profiler.kineto_results.experimental_event_tree())
    except (ImportError, AttributeError):
        return None, None
    count = size = 0
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        if event.tag == _EventType.Allocation and event.extra_fields.alloc_size > 0 \
                and event.extra_fields.device.type == "cpu":
            count, size = count + 1, size + event.extra_fields.alloc_size
    return count, size


def _count_torch_cuda(fn):
    import torch
    before = torch.cuda.memory_stats()
    fn()
    torch.cuda.synchronize()
    after = torch.cuda.memory_stats()
    return (after["allocation.all.allocated"] - before["allocation.all.allocated"],
            after["allocated_bytes.all.allocated"] - before["allocated_bytes.all.allocated"])


def framework(net) -> str:
    """"torch", "jax" or "numpy": the library of the implementation's native arrays."""
    module = type(native_sample(net)).__module__.split(".")[0]
    return {"torch": "torch", "jax": "jax", "jaxlib": "jax"}.get(module, "numpy")


def count_allocations(fn, net, steps: int, device: str = "cpu") -> dict:
    """Allocations per step of ``fn()`` (which runs ``steps`` steps) by every counter that sees
    this implementation: {"per_step": {counter: {"count", "bytes"}}, "not_counted": reason}."""
    counters = {"numpy": _count_numpy}
    if "numba" in sys.modules:
        counters["numba"] = _count_numba
    kind, not_counted = framework(net), None
    if kind == "torch":
        counters["torch"] = _count_torch_cuda if device == "cuda" else _count_torch_cpu
    elif kind == "jax":
        not_counted = "XLA's buffers: JAX keeps no allocation statistics on the CPU" if device == "cpu" else None

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


# -- CUDA -------------------------------------------------------------------------------------
def cuda_peak_of(fn, net) -> dict | None:
    """Device memory of one call of ``fn()`` on CUDA: torch's peak allocated and reserved after a
    reset, or JAX's peak in use (not resettable). None for a CPU implementation."""
    kind = framework(net)
    if kind == "torch":
        import torch
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return {"max_allocated": torch.cuda.max_memory_allocated(), "max_reserved": torch.cuda.max_memory_reserved(),
                "method": "torch.cuda.max_memory_allocated/reserved, reset before the call"}
    if kind == "jax":
        import jax
        fn()
        stats = jax.devices()[0].memory_stats() or {}
        return {"max_allocated": stats.get("peak_bytes_in_use"), "max_reserved": stats.get("bytes_reserved"),
                "method": "JAX memory_stats peak_bytes_in_use: since the process started (JAX cannot reset it)"}
    return None


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
