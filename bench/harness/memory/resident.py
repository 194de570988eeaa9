"""Resident memory, from Linux's ``/proc/self/status``: the peak one call added (``peak_rss``)
and what a network holds once set up (``held``).

**Peak** (``PeakWatch``, ``peak_rss_of``). Just before the call, a garbage collection and glibc's
``malloc_trim`` hand back to the OS what earlier benchmarks freed, and the resident high-water
mark (``VmHWM``) is reset to the current resident size (writing 5 to ``/proc/self/clear_refs``).
After the call the figure is the high-water mark minus what was resident just before: what this
work added at its highest point. Earlier implementations' allocations are either still live (then
they are in the "before" and subtract out) or were returned to the OS, so they cannot inflate
another implementation's figure. What it cannot see: memory a library had reserved earlier and
reuses (a caching pool; PyTorch's CPU allocator and NumPy's small-block cache keep little) counts
as nothing; the process's shared libraries, the interpreter and the dataset are in the "before".
Where the reset is not allowed (not Linux) the peak is None.

**Held** (``settled``, ``held_since``): resident memory after setting the implementation up minus
before, each read after freed memory is handed back.
"""
from __future__ import annotations

import ctypes
import gc

_CLEAR_REFS = "/proc/self/clear_refs"


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
