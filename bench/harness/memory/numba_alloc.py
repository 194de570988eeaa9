"""Numba's allocations: its runtime's (NRT) allocation counter, which sees the arrays made
inside compiled code. A count only: NRT keeps no sizes."""
from __future__ import annotations


def count(fn) -> tuple[int, None]:
    """(allocations, None) Numba's runtime made during ``fn()``; its statistics are switched on
    for the call where they were off."""
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
