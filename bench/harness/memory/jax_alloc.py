"""JAX (XLA): no allocation statistics on the CPU, so its work there is marked not counted; on a
GPU, the device's ``peak_bytes_in_use``, which cannot be reset (the peak since the process started)."""
from __future__ import annotations

NOT_COUNTED_ON_CPU = "XLA's buffers: JAX keeps no allocation statistics on the CPU"


def cuda_peak(fn) -> dict:
    """The device's peak in use after one call of ``fn()`` (since the process started)."""
    import jax
    fn()
    stats = jax.devices()[0].memory_stats() or {}
    return {"max_allocated": stats.get("peak_bytes_in_use"), "max_reserved": stats.get("bytes_reserved"),
            "method": "JAX memory_stats peak_bytes_in_use: since the process started (JAX cannot reset it)"}
