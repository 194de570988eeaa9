"""The run's record: the fields beyond pytest-benchmark's own that the suites write, ``python -m
bench.run`` merges and the report reads, with their schema number.

- ``SCHEMA`` (``nnbench.schema`` in the JSON): 2 since runs are timed in interleaved trials. A run
  without it is older (schema 1: medians, and each process's median in ``extra_info["processes"]``)
  and renders as it always did; a run of a *newer* schema is refused with one line.
- One ``Round`` per timed round in ``extra_info["rounds"]``, written by the benchmark process that
  timed it (``bench.harness.turns``), never by anyone else; the driver records only the trials'
  orders (``nnbench.trials``); every statistic over rounds is computed in ``bench.harness.paired``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

SCHEMA = 2


@dataclass(frozen=True)
class Round:
    trial: int                   # the trial it was timed in: rounds of one trial are paired
    process: int                 # which of the implementation's processes timed it (1..P)
    seconds: float | None        # its time, in the unit of pytest-benchmark's stats["data"]
    cpu: float | None            # CPU seconds of the process (and its children) per wall second
    others: float | None         # share of the machine's CPU time other processes took meanwhile
    steal: float | None          # share a hypervisor gave to other guests meanwhile
    clean: bool                  # whether it had the machine (bench.harness.cpu.clean): only clean rounds pair

    def as_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def check(entry) -> str | None:
        """Why ``entry`` (one item of ``extra_info["rounds"]``) is not a round the statistics can read, or None."""
        if not isinstance(entry, dict):
            return f"a round {entry!r} is not a mapping"
        seconds = entry.get("seconds")
        trial, clean = entry.get("trial"), entry.get("clean", True)
        if (isinstance(trial, bool) or not isinstance(trial, int) or not isinstance(clean, bool)
                or isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds)
                or seconds < 0):
            return f"a round {entry!r} is not {{trial: int, seconds: time, clean: bool}}"
        return None


def check_schema(meta: dict) -> str | None:
    """Why a run's ``nnbench`` section cannot be read by this version, or None."""
    schema = meta.get("schema", 1)
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        return f"nnbench.schema {schema!r} is not a schema number"
    if schema > SCHEMA:
        return (f"written by a newer nnbench (record schema {schema}; this one reads up to {SCHEMA}): "
                "render it with that version")
    return None
