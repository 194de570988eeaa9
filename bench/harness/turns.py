"""Taking turns: a benchmark process's side of interleaved trials (``python -m bench.run``).

The driver (``bench.harness.trials``) starts every implementation's pytest process at once and
lets one of them use the machine at a time. A process asks before anything it does on the CPU:
``hello`` before its session starts, ``plan`` when a benchmark is ready to be timed (how many
rounds may it take), ``turn`` before each timed round. Each question blocks until the driver
answers, so while one process times a round every other one waits, using no CPU. The driver hands
out the rounds of one benchmark in *trials*: every implementation one round, in a fresh random
order, so a slow phase of the machine hits them all alike (Abedi & Brecht, ICPE 2017), and it ends
a benchmark's trials (``Enough``) once its ratios are known well enough or its time is spent.

Each round is judged here, around the timed call: this process's CPU time against the wall time
and the machine's (``bench.harness.cpu``), so a round that lost its CPU to another process is seen
(``clean``: False), told to the driver, which runs another trial for it, and recorded.

Without a driver (plain ``pytest bench``) the same code times ``wanted`` rounds back to back, and
the rounds are recorded the same way, their trial being their number.

The wire: one JSON object per line over a Unix socket whose path is ``$NNBENCH_TURNS``; every
message gets one answer.
"""
from __future__ import annotations

import json
import os
import socket

from . import cpu
from .record import Round

ENV = "NNBENCH_TURNS"
#: this process's name among the alternatives (implementation, ``#k`` for its k-th process, ``base:``)
ALT_ENV = "NNBENCH_ALT"


class Enough(Exception):
    """The driver has the trials it needs of this benchmark: no more rounds."""


class _Driver:
    def __init__(self, path: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")

    def ask(self, **message) -> dict:
        self.file.write(json.dumps(message).encode() + b"\n")
        self.file.flush()
        line = self.file.readline()
        if not line:      # the driver is gone: nothing this process times can be used
            os._exit(3)
        return json.loads(line)


_driver: _Driver | None = None
_process = 1


def connect(process: int = 1) -> bool:
    """Join the driver's trials if this process was started by one: say hello and wait for the first
    turn (everything after this, collection and imports included, runs while the others wait)."""
    global _driver, _process
    _process = process
    path = os.environ.get(ENV)
    if not path or _driver is not None:
        return _driver is not None
    _driver = _Driver(path)
    _driver.ask(op="hello", alt=os.environ.get(ALT_ENV, ""), pid=os.getpid())
    return True


def driven() -> bool:
    """Whether this process times in a driver's trials."""
    return _driver is not None


def announce(groups: list[str]) -> None:
    """Tell the driver this process's benchmarks (their groups), in the order it will run them."""
    if _driver is not None:
        _driver.ask(op="groups", groups=groups)


def pedantic(benchmark, fn, *, rounds: int, seconds: float, setup=None, args=(), fixed: bool = False):
    """``benchmark.pedantic(fn, ...)`` in turns: up to ``rounds`` rounds (standalone: exactly that many;
    under a driver, as many as its trials take), each after ``setup()`` (untimed, as pytest-benchmark's),
    each judged for contention and recorded in ``extra_info["rounds"]``. ``seconds``: the estimated time
    of one round, from which the driver budgets trials; ``fixed``: the rounds are distinct work (time to
    accuracy's seeds), never cut short. Returns the last round's result."""
    timed = _Rounds(benchmark, rounds, seconds, fixed)
    last = []

    def call(*a, **k):
        last[:] = [fn(*a, **k)]
        return last[0]
    try:
        benchmark.pedantic(call, args=args, setup=timed.setup(setup), rounds=timed.max)
    except Enough:
        # pytest-benchmark marks a fixture whose pedantic raised as failed and leaves it out of its JSON;
        # these rounds are complete and valid, the trials simply ended
        benchmark.has_error = False
    finally:
        timed.finish()
    return last[0] if last else None


class _Rounds:
    """One benchmark's rounds: asks for each, judges each, records them."""

    def __init__(self, benchmark, wanted: int, seconds: float, fixed: bool):
        self.benchmark, self.group, self.records = benchmark, benchmark.group, []
        self.max = wanted
        if _driver is not None:
            self.max = _driver.ask(op="plan", group=self.group, seconds=seconds, wanted=wanted, fixed=fixed)["rounds"]
        self.start = self.trial = None
        self.told = 0                       # records the driver has been sent

    def setup(self, user_setup):
        def setup():
            self._close()
            if _driver is not None:
                answer = _driver.ask(op="turn", group=self.group, last=self._untold())
                if answer.get("enough"):
                    raise Enough
                self.trial = answer["trial"]
            else:
                self.trial = len(self.records)
            prepared = user_setup() if user_setup else None
            self.start = cpu.clock()
            return prepared
        return setup

    def _untold(self):
        new, self.told = self.records[self.told:], len(self.records)
        return new

    def _close(self):
        if self.start is None:
            return
        end, data = cpu.clock(), self.benchmark.stats.stats.data if self.benchmark.stats else []
        self.records.append(Round(self.trial, _process, data[-1] if data else None, cpu.own_cpu(self.start, end),
                                  cpu.others_share(self.start, end), cpu.steal_share(self.start, end),
                                  cpu.clean(self.start, end)).as_dict())
        self.start = None

    def finish(self):
        self._close()
        self.benchmark.extra_info["rounds"] = self.records
        if _driver is not None:
            _driver.ask(op="end", group=self.group, last=self._untold())
