"""Expensive child processes that run beside the rest of the tests.

The smoke run of every benchmark suite is most of a test session's time, spent in one child
process while pytest waits, one core idle on a 2-core machine. Started when collection ends,
it runs beside the tests that come before the one that awaits it; the work is the same, only
the waiting goes. Nothing in it is timed, and the tests beside it check behaviour, not speed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def environ(env: dict | None = None) -> dict:
    """This process's environment plus ``env``, the repository first on PYTHONPATH."""
    merged = dict(os.environ, **(env or {}))
    merged["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), merged.get("PYTHONPATH")]))
    return merged


class Background:
    """``python *argv`` started now in a folder of its own, ``root`` (``{root}`` in an argument is
    replaced by it), its output going to a file there; ``result()`` waits for it and returns a
    CompletedProcess (stdout and stderr together)."""

    def __init__(self, name: str, *argv, env: dict | None = None, cwd=REPO):
        self.root = Path(tempfile.mkdtemp(prefix=f"nnbench-{name}-"))
        self.argv = [sys.executable, *(str(a).format(root=self.root) for a in argv)]
        self._log = (self.root / "output.txt").open("w")
        self.popen = subprocess.Popen(self.argv, cwd=cwd, env=environ(env), stdout=self._log,
                                      stderr=subprocess.STDOUT, text=True)

    def result(self, timeout: float) -> subprocess.CompletedProcess:
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        self._log.close()
        output = (self.root / "output.txt").read_text()
        return subprocess.CompletedProcess(self.argv, self.popen.returncode, output, "")

    def stop(self) -> None:
        """End the child if it still runs (a session that never reached its test); remove its folder."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)
