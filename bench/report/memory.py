"""The report's memory figures (measured by ``bench/harness/memory/``): the notes that say how
each was measured and what it cannot see, the cells, and one phase's memory tables."""
from __future__ import annotations

import textwrap

from .reading import Run, Timing

PEAK_NOTE = ("**Peak resident memory** (what one untimed call of the timed work added to the process's resident "
             "memory at its highest point: Linux's high-water mark, reset just before the call after a garbage "
             "collection and `malloc_trim`, minus what was resident then. Not in it: the dataset, the libraries and "
             "the network's own weights and data, resident before the call; and memory a library reserved earlier "
             "and reuses, which costs nothing here. For a CUDA implementation this is host memory; the device's is "
             "in its own table.)\n")
ALLOC_NOTE = ("**Allocations per {per}** (counted on untimed {what}, by every counter that sees the implementation: "
              "`numpy`: array buffers, through NumPy's memory-handler API (NEP 49); `numba`: allocations inside "
              "Numba-compiled code (its runtime counts them but keeps no sizes); `torch`: the profiler's allocation "
              "events (CPU) or the caching allocator's counters (CUDA). Bytes are the sizes requested, summed, not a "
              "peak. Not seen: XLA's buffers (JAX keeps no statistics on the CPU), memory C libraries allocate "
              "themselves (OpenBLAS, OpenMP) and Python objects.)\n")
HELD_NOTE = ("**Held by the network** (resident memory after it was built, checked against the reference and "
             "warmed up, minus before, each read after freed memory was handed back: its weights, its copy of the "
             "training set in native form, buffers it keeps between calls, code compiled for it. Shared libraries "
             "were loaded before, so they are not in it.)\n")
CUDA_NOTE = ("**Device memory** (CUDA: `torch.cuda.max_memory_allocated` / `max_memory_reserved` after a reset, "
             "around one untimed call; JAX cannot reset its peak, so its figure is the peak since the process "
             "started)\n")


def fmt_bytes(n) -> str:
    if n is None:
        return "—"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def memory_of(t: Timing) -> dict:
    return t.extra.get("memory") or {}


def peak_cell(t: Timing) -> str:
    peak = memory_of(t).get("peak_rss")
    return "not measured" if peak is None else fmt_bytes(peak)


def allocations_cell(t: Timing) -> str:
    m = memory_of(t)
    counted = {name: c for name, c in (m.get("per_step") or {}).items() if c.get("count")}
    text = "; ".join(f"{name} {c['count']:.3g}" + (f" ({fmt_bytes(c['bytes'])})" if c.get("bytes") is not None else "")
                     for name, c in counted.items())
    if m.get("not_counted"):
        what = "XLA" if m["not_counted"].startswith("XLA") else m["not_counted"].split(":")[0]
        return (text + "; " if text else "") + f"{what} not counted"
    return text or ("none" if "per_step" in m else "—")


def _wrap(note: str) -> str:
    return textwrap.fill(note.strip(), 100, break_long_words=False, break_on_hyphens=False) + "\n"


def _title(note: str) -> str:
    """The note's bold title alone: where the page explains the measurement once elsewhere."""
    return note.split(" (")[0] + "\n"


def memory_notes() -> str:
    """How every memory figure is measured, said once (memory.md)."""
    return "\n".join(_wrap(n.format(per="step or call", what="calls")) for n in (PEAK_NOTE, ALLOC_NOTE, HELD_NOTE, CUDA_NOTE))


def memory_tables(run: Run, phase: str, table, notes: bool = True, only_peak: bool = False) -> str:
    """The phase's memory: peak resident memory, allocations, what the network holds, and device
    memory where any ran on CUDA. ``table(cell)`` renders implementations x batch sizes; ``notes``:
    each table under its full explanation, else under its title alone; ``only_peak``: the first table."""
    timed = [t for t in run.timings if t.phase == phase and memory_of(t)]
    if not timed:
        return "No memory figures in this run (it predates them).\n"
    per = "step" if phase == "epoch" else "call"
    what = "mini-batches, the first few of the epoch" if phase == "epoch" else "calls"
    say = _wrap if notes else _title
    parts = [say(PEAK_NOTE), table(lambda t, b: peak_cell(t))]
    if not only_peak:
        parts += ["\n" + say(ALLOC_NOTE.format(per=per, what=what)), table(lambda t, b: allocations_cell(t)),
                  "\n" + say(HELD_NOTE), table(lambda t, b: fmt_bytes(memory_of(t).get("held")))]
    if not only_peak and any(memory_of(t).get("cuda") for t in timed):
        def cuda_cell(t, b):
            cuda = memory_of(t).get("cuda")
            return f"{fmt_bytes(cuda['max_allocated'])} / {fmt_bytes(cuda['max_reserved'])}" if cuda else "—"
        parts += ["\n" + say(CUDA_NOTE), table(cuda_cell)]
    return "\n".join(parts) + "\n"
