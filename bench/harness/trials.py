"""Interleaved trials: the driver's side (``python -m bench.run``; the processes' side is ``turns``).

Every alternative -- an implementation's benchmark process; with ``make compare REF=`` also the
baseline's -- runs at once as a pytest process, and each asks before it uses the CPU. This module
answers, one process at a time, so nothing ever runs beside a timed round:

1. until every process has said hello, nobody goes (so no import runs beside a timed round); then
   each, in turn, starts its session and prepares its first benchmark (build, validate, warm up);
2. the benchmark to time next is the first, in the suites' order, that a waiting process is ready
   for; all processes ready for it are its members;
3. trials: each member times one round, in a fresh random order; a member's next request says how
   the round went. A benchmark's trials end when every member has its least number of clean rounds
   and every paired ratio's interval is within ``Budget.target`` (``bench.harness.paired``), or its
   time budget or the most trials are spent; a round that lost its CPU is not paired and costs a
   trial more (Kalibera & Jones: spend repetitions where the variance is).

A process that dies or exits is dropped from its benchmark; one that holds the machine past the
timeout (a hang) is ended with its process group. The trial orders and retries are returned for
the run's record; the rounds themselves are recorded by the processes.
"""
from __future__ import annotations

import json
import random
import selectors
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .children import GRACE, end, start
from .cpu import quiet


@dataclass(frozen=True)
class Budget:
    least: int              # clean rounds every member needs
    most: int               # trials at most (the rounds a process is told it may take)
    seconds: float          # wall seconds of one benchmark's trials, after which they end at `least`
    target: float = 0.05    # half-width of every ratio's interval (a fraction) that ends trials early


@dataclass
class Alternative:
    """One benchmark process: ``alt`` is what it is called in trials (numpy, numpy#2, base:numpy)."""
    alt: str
    impl: str
    cmd: list
    out: Path                                   # its pytest-benchmark JSON
    log: Path                                   # its stdout and stderr
    cwd: Path | None = None
    env: dict | None = None
    which: str = ""                             # how messages name it ("numpy: process 1 of 2")
    proc: subprocess.Popen | None = None
    conn: socket.socket | None = None
    reader: object = None
    request: dict | None = None                 # the question it waits on, if any
    held_since: float | None = None             # when it was last let go
    gone: bool = False
    timed_out: bool = False
    ready: bool = False                         # it has asked to time its first benchmark


@dataclass
class Trials:
    """One benchmark's trials (the driver's record)."""
    group: str
    fixed: bool
    started: float = field(default_factory=time.monotonic)
    orders: list = field(default_factory=list)     # per trial, the members in the order they ran
    rounds: dict = field(default_factory=dict)     # alt -> the records its process sent
    pending: list = field(default_factory=list)    # the current trial's members still to run
    enough: bool = False
    ended: float | None = None

    def as_record(self) -> dict:
        unclean = sum(not r["clean"] for rs in self.rounds.values() for r in rs)
        return {"orders": self.orders, "trials": len(self.orders), "retried_rounds": unclean,
                "seconds": (self.ended or time.monotonic()) - self.started}


class Driver:
    def __init__(self, alternatives, socket_path: Path, budget: Budget, timeout: float, seed: int, pairs, say=print):
        self.alts, self.budget, self.timeout, self.say = alternatives, budget, timeout, say
        self.random = random.Random(seed)
        self.pairs = pairs                      # (group's members) -> [(alt_a, alt_b)] whose ratios must be known
        self.order: list[str] = []              # the benchmarks' groups, in the suites' order
        self.trials: dict[str, Trials] = {}
        self.running: Alternative | None = None
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(socket_path))
        self.listener.listen(len(alternatives) + 1)
        self.path = socket_path
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.started = time.monotonic()
        self.current: Trials | None = None      # the benchmark whose trials run now (for the progress lines)
        self.peak_total = 0                     # bytes: the most the processes held together, between turns
        self.settled = 0.0                      # seconds spent waiting for a process's threads to go idle

    # -- processes -------------------------------------------------------------------------------
    def run(self) -> dict:
        """Start every process, hand out turns until all have ended; the trials' record."""
        self.started = time.monotonic()
        try:
            for a in self.alts:
                with open(a.log, "wb") as log:
                    a.proc = start(a.cmd, cwd=a.cwd, env=a.env, stdout=log, stderr=subprocess.STDOUT)
            while not all(a.gone for a in self.alts):
                self._serve(0.2)
                self._reap()
                if self.running is None:
                    self._dispatch()
            self._finished(self.current)
        finally:
            for a in self.alts:
                if a.proc is not None and a.proc.poll() is None:
                    end(a.proc, signal.SIGTERM)
            self.selector.close()
            self.listener.close()
        return {g: t.as_record() for g, t in self.trials.items()}

    def _serve(self, wait: float) -> None:
        for key, _ in self.selector.select(wait):
            if key.fileobj is self.listener:
                conn, _ = self.listener.accept()
                self.selector.register(conn, selectors.EVENT_READ, data=[conn, conn.makefile("rwb"), None])
                continue
            conn, fh, alt = key.data
            line = fh.readline()
            if not line:                           # the process is ending: let it (its JSON is written by now)
                self.selector.unregister(conn)
                if alt is not None:
                    try:
                        alt.proc.wait(timeout=GRACE)
                    except subprocess.TimeoutExpired:
                        end(alt.proc, signal.SIGTERM)
                    self._drop(alt)
                continue
            message = json.loads(line)
            if alt is None:                        # its hello: which process this is
                alt = key.data[2] = next((a for a in self.alts if a.proc.pid == message.get("pid")), None)
                if alt is None:
                    self.selector.unregister(conn)
                    conn.close()
                    continue
                alt.conn, alt.reader = conn, fh
            self._receive(alt, message)

    def _receive(self, alt: Alternative, message: dict) -> None:
        op = message["op"]
        if op == "groups":
            self.order += [g for g in message["groups"] if g not in self.order]
        if op in ("turn", "end") and message.get("last"):
            t = self.trials.get(message["group"])
            if t is not None:
                t.rounds.setdefault(alt.alt, []).extend(message["last"])
        if op in ("groups", "end"):                 # news, answered at once; the process goes on
            self._answer(alt, {})
            return
        alt.request = message                       # a question: it waits
        if self.running is alt:
            self.running = None
            self.settled += quiet(alt.proc.pid)
            if op == "plan" and not alt.ready:      # its first benchmark is ready: say so, starting is slow
                alt.ready = True
                self.say(f"nnbench: {alt.alt}: ready to time ({time.monotonic() - alt.held_since:.1f} s to start, "
                         "load, compile and check its first benchmark)")

    def _answer(self, alt: Alternative, answer: dict) -> None:
        try:
            alt.reader.write(json.dumps(answer).encode() + b"\n")
            alt.reader.flush()
        except OSError:
            self._drop(alt)

    def _go(self, alt: Alternative, answer: dict) -> None:
        alt.request, alt.held_since, self.running = None, time.monotonic(), alt
        self._answer(alt, answer)

    def _drop(self, alt: Alternative) -> None:
        alt.gone, alt.request = True, None
        if self.running is alt:
            self.running = None

    def _reap(self) -> None:
        now = time.monotonic()
        for a in self.alts:
            if a.gone:
                continue
            if a.proc.poll() is not None and (a.conn is None or a.request is None):
                self._drop(a)
            elif self.running is a and now - a.held_since > self.timeout:
                a.timed_out = True
                end(a.proc, signal.SIGTERM)
                self._drop(a)
            elif a.conn is None and now - self.started > self.timeout:
                a.timed_out = True
                end(a.proc, signal.SIGTERM)
                self._drop(a)

    # -- turns -------------------------------------------------------------------------------------
    def _resident_total(self, live) -> None:
        """All processes' resident memory together, read between turns (they are all alive at once)."""
        total = 0
        for a in live:
            try:
                with open(f"/proc/{a.proc.pid}/status") as fh:
                    total += next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))
            except (OSError, StopIteration, ValueError):
                continue
        self.peak_total = max(self.peak_total, total)

    def _dispatch(self) -> None:
        live = [a for a in self.alts if not a.gone]
        self._resident_total(live)
        if any(a.conn is None for a in live):      # still starting: nobody goes before everybody waits
            return
        waiting = [a for a in live if a.request is not None]
        if not waiting:
            return
        hello = next((a for a in waiting if a.request["op"] == "hello"), None)
        if hello is not None:
            self._go(hello, {})
            return
        rank = {g: i for i, g in enumerate(self.order)}
        group = min((a.request["group"] for a in waiting), key=lambda g: (rank.get(g, len(rank)), g))
        members = [a for a in waiting if a.request["group"] == group]
        planning = next((a for a in members if a.request["op"] == "plan"), None)
        if planning is not None:
            t = self.trials.setdefault(group, Trials(group, planning.request["fixed"]))
            most = planning.request["wanted"] if t.fixed else self.budget.most
            self._go(planning, {"rounds": most})
            return
        t = self.trials[group]
        if not t.pending:
            if t.enough or self._enough(t, members):
                t.enough = True
                self._go(members[0], {"enough": True})
                return
            t.pending = self.random.sample(members, len(members))
            t.orders.append([a.alt for a in t.pending])
            self._progress(t, members)
        while t.pending and t.pending[0] not in members:    # gone, or out of rounds, since the trial began
            t.pending.pop(0)
        if t.pending:
            self._go(t.pending.pop(0), {"trial": len(t.orders) - 1})

    def _enough(self, t: Trials, members) -> bool:
        if t.fixed or not t.orders:
            return False
        if len(t.orders) >= self.budget.most:
            return True
        clean = {a.alt: sum(r["clean"] for r in t.rounds.get(a.alt, [])) for a in members}
        if min(clean.values()) < self.budget.least:
            return False
        if time.monotonic() - t.started > self.budget.seconds:
            return True
        from .paired import ratio
        kinds: dict[str, list] = {}            # numpy#1, numpy#2 -> numpy: an implementation's processes together
        for a in members:
            kinds.setdefault(a.alt.split("#")[0], []).extend(t.rounds.get(a.alt, []))
        for a, b in self.pairs(sorted(kinds)):
            r = ratio(kinds.get(a, []), kinds.get(b, []))
            if r is None or r.low is None or r.half_width > self.budget.target:
                return False
        return True

    def _progress(self, t: Trials, members) -> None:
        if self.current is not t:
            self._finished(self.current)
            self.current = t

    def _finished(self, t: Trials | None) -> None:
        """One line per benchmark when its trials are over."""
        if t is None:
            return
        t.ended = time.monotonic()
        r = t.as_record()
        retried = f", {r['retried_rounds']} round(s) lost the CPU and were not paired" if r["retried_rounds"] else ""
        self.say(f"nnbench: {t.group}: {len(t.rounds)} process(es), {r['trials']} trial(s) in "
                 f"{r['seconds']:.1f} s{retried}")
