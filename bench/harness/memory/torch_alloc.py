"""PyTorch's allocations and device peak: on the CPU, the profiler's allocation events
(``profile_memory=True``); on CUDA, the caching allocator's counters (``torch.cuda.memory_stats``)
and ``max_memory_allocated``/``max_memory_reserved`` after a reset."""
from __future__ import annotations


def count_cpu(fn) -> tuple[int | None, int | None]:
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


def count_cuda(fn) -> tuple[int, int]:
    """(allocations, bytes) the CUDA caching allocator served during ``fn()``."""
    import torch
    before = torch.cuda.memory_stats()
    fn()
    torch.cuda.synchronize()
    after = torch.cuda.memory_stats()
    return (after["allocation.all.allocated"] - before["allocation.all.allocated"],
            after["allocated_bytes.all.allocated"] - before["allocated_bytes.all.allocated"])


def cuda_peak(fn) -> dict:
    """Peak device memory allocated and reserved by one call of ``fn()``, the peaks reset before it."""
    import torch
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return {"max_allocated": torch.cuda.max_memory_allocated(), "max_reserved": torch.cuda.max_memory_reserved(),
            "method": "torch.cuda.max_memory_allocated/reserved, reset before the call"}
