"""One step of the GPU run: a child process with a time budget, its output appended to one log.

Each step is its own process (in its own process group), for three reasons: a hung compile or
kernel can be cut at its budget by killing the group, children included (``python -m bench.run``
starts a pytest per implementation); a crash (a CUDA fault, an out-of-memory kill) ends that step
and not the run; and no step inherits another's CUDA context, JAX allocator or compiled caches.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.harness import children

#: a step never starts with less than this: it could not even import its libraries
MIN_SECONDS = 1.0


@dataclass
class Step:
    """What one step ran and how it ended: ``passed``, ``failed`` (non-zero exit, with the status),
    ``cut`` (ran out of its budget), ``skipped`` (never started, with the reason)."""
    name: str
    command: list[str]
    budget: float = 0.0
    status: str = "pending"
    seconds: float = 0.0
    returncode: int | None = None
    note: str = ""
    env: dict = field(default_factory=dict)      # variables set for this step only

    def record(self) -> dict:
        out = asdict(self)
        out["command"] = " ".join(self.command)
        return out


def skip(step: Step, why: str) -> Step:
    step.status, step.note = "skipped", why
    return step


def run(step: Step, log: Path) -> Step:
    """Run ``step.command`` for at most ``step.budget`` seconds, stdout and stderr appended to ``log``."""
    if step.budget < MIN_SECONDS:       # never started, for want of time: as good as cut
        step.status, step.note = "cut", f"not started: no time left in the run's budget ({step.budget:.1f} s)"
        return step
    env = {**os.environ, **step.env}
    with open(log, "a") as fh:
        fh.write(f"\n===== {step.name}: {' '.join(step.command)} (budget {step.budget:.0f} s)\n")
        fh.flush()
        began = time.monotonic()
        try:
            step.returncode = children.supervise(step.command, step.budget, stdout=fh, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL, env=env)
        except subprocess.TimeoutExpired:        # its whole process group was ended
            step.status, step.note = "cut", f"ran out of its {step.budget:.0f} s budget and was stopped"
        step.seconds = time.monotonic() - began
        if step.status != "cut":
            step.status = "passed" if step.returncode == 0 else "failed"
            if step.returncode:
                step.note = step.note or _why(step.returncode)
        fh.write(f"===== {step.name}: {step.status} after {step.seconds:.1f} s"
                 + (f" ({step.note})" if step.note else "") + "\n")
    return step


def _why(code: int) -> str:
    if code < 0:
        try:
            return f"died of {signal.Signals(-code).name}"
        except ValueError:
            return f"died of signal {-code}"
    return f"exit status {code}"
