"""Expensive child processes that run beside the rest of the tests.

The smoke run of every benchmark suite (conftest's ``smoke_bench``) and the real ``bench.run``
sessions were most of a test session's time, spent in child processes while pytest waited, one
core idle on a 2-core machine. Declared by a test module and started when collection ends (for
the selected tests that name them, ``@pytest.mark.background(run)``), they run beside the tests
that come before the ones that await them (those go last): the work is the same, only the waiting
goes. Nothing in them is timed, and the tests beside them check behaviour, not speed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: every run started in this process, by name: conftest stops what is left of them when the session ends
started: dict[str, "Background"] = {}


def environ(env: dict | None = None) -> dict:
    """This process's environment plus ``env``, the repository first on PYTHONPATH."""
    merged = dict(os.environ, **(env or {}))
    merged["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), merged.get("PYTHONPATH")]))
    return merged


class Background:
    """``python *argv`` in a folder of its own, ``root`` (``{root}`` in an argument is replaced by
    it), its output going to a file there. Declared when a test module is imported; ``start()``
    runs it (conftest starts, when collection ends, every run a selected test names with
    ``@pytest.mark.background(run)``); ``result()`` starts it if need be, waits, and returns a
    CompletedProcess (stdout and stderr together)."""

    def __init__(self, name: str, *argv, env: dict | None = None, cwd=REPO):
        self.name, self.argv, self.env, self.cwd = name, argv, env, cwd
        self.popen = None

    def start(self) -> Background:
        if self.popen is None:
            started[self.name] = self
            self.root = Path(tempfile.mkdtemp(prefix=f"nnbench-{self.name}-"))
            self._log = (self.root / "output.txt").open("w")
            self.popen = subprocess.Popen([sys.executable, *(str(a).format(root=self.root) for a in self.argv)],
                                          cwd=self.cwd, env=environ(self.env), stdout=self._log,
                                          stderr=subprocess.STDOUT, text=True)
        return self

    def result(self, timeout: float) -> subprocess.CompletedProcess:
        self.start()
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        self._log.close()
        return subprocess.CompletedProcess(self.popen.args, self.popen.returncode,
                                           (self.root / "output.txt").read_text(), "")

    def wait(self, timeout: float) -> None:
        """Wait for the child if it was started and still runs; never start it."""
        if self.popen is not None and self.popen.poll() is None:
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.stop()
                raise

    def stop(self) -> None:
        """End the child if it still runs (a session that never reached its test); remove its folder."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)
        self.popen = None
