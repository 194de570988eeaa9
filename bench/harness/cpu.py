"""Who had the CPUs: this process (with its children) against the whole machine, read from /proc.

A timing is only as good as the CPU it got. Linux counts, per machine (``/proc/stat``), the time the
CPUs were busy and the time a hypervisor gave them to another guest (*steal*), and per process the
CPU time it used; the difference between the machine's busy time and ours is what *other*
processes took. Everything here is a reading (``clock()``) and a difference of two readings, so a
benchmark round, a pytest session and a whole run are judged the same way. The clock ticks at
``SC_CLK_TCK`` (100 Hz) and the machine's busy time is sampled per tick on each CPU, while a
process's own time is counted exactly: their difference is uncertain by about a tick per CPU at each
reading, so a round is judged clean up to ``TICKS_ALLOWED`` ticks per CPU of others' work (``clean``).
"""
from __future__ import annotations

import os
import time
from typing import NamedTuple

#: other processes using more than this share of the machine's CPU time make timings unreliable
OTHERS_WARN = 0.05
#: ticks per CPU of other processes' work a round may contain and still count as clean: the resolution
#: of the difference between the machine's sampled busy time and a process's exact one
TICKS_ALLOWED = 2
TICK = 1.0 / os.sysconf("SC_CLK_TCK")


class Clock(NamedTuple):
    wall: float        # time.monotonic()
    busy: float        # CPU seconds the whole machine was busy (steal included)
    steal: float       # CPU seconds the hypervisor gave to other guests
    own: float         # CPU seconds of this process and its children (live or waited for)


def _descendants_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by the live processes descended from ``root``: an implementation's own
    workers (torch-ddp's ranks) and a driver's benchmark processes are its work, not another's."""
    parent, ticks = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            parent[int(entry.name)], ticks[int(entry.name)] = int(fields[1]), int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            continue                                        # gone while we looked
    total = 0
    for pid, t in ticks.items():
        ancestor, hops = parent.get(pid), 0
        while ancestor and ancestor != root and hops < 64:
            ancestor, hops = parent.get(ancestor), hops + 1
        if ancestor == root:
            total += t
    return total * TICK


def clock(children: bool = True) -> Clock | None:
    """A reading, or None where /proc/stat is missing (not Linux). ``children=False`` skips the scan of
    /proc for live descendants (a millisecond or so), for processes that start none."""
    try:
        with open("/proc/stat") as fh:
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, fh.readline().split()[1:9])
    except (OSError, ValueError):
        return None
    own = os.times()
    mine = own.user + own.system + own.children_user + own.children_system
    if children:
        mine += _descendants_cpu_seconds(os.getpid())
    return Clock(time.monotonic(), (user + nice + system + irq + softirq + steal) * TICK, steal * TICK, mine)


def others_share(start: Clock | None, end: Clock | None = None) -> float | None:
    """Fraction of the machine's CPU time that other processes used between two readings."""
    end = end or clock()
    if not start or not end or end.wall <= start.wall:
        return None
    others = (end.busy - start.busy) - (end.own - start.own)
    return max(0.0, others / ((end.wall - start.wall) * (os.cpu_count() or 1)))


def steal_share(start: Clock | None, end: Clock | None) -> float | None:
    """Fraction of the machine's CPU time a hypervisor gave to other guests between two readings."""
    if not start or not end or end.wall <= start.wall:
        return None
    return (end.steal - start.steal) / ((end.wall - start.wall) * (os.cpu_count() or 1))


def own_cpu(start: Clock | None, end: Clock | None) -> float | None:
    """CPU seconds this process (and its children) used per wall second between two readings."""
    if not start or not end or end.wall <= start.wall:
        return None
    return (end.own - start.own) / (end.wall - start.wall)


def clean(start: Clock | None, end: Clock | None) -> bool:
    """Whether the span between two readings had the machine to itself: other processes' work (steal
    included) within OTHERS_WARN of its CPU time, or within the clock's resolution. No /proc: True
    (nothing says otherwise, and the record's ``others`` is None)."""
    if not start or not end:
        return True
    others = max(0.0, (end.busy - start.busy) - (end.own - start.own))
    cpus = os.cpu_count() or 1
    allowed = max(OTHERS_WARN * (end.wall - start.wall) * cpus, TICKS_ALLOWED * cpus * TICK)
    return others <= allowed


#: the longest the next turn waits for the last process's threads to go idle
SETTLE_MOST = 0.5


def _running_threads(pid: int) -> int:
    """Threads of ``pid`` running or runnable now (state R in ``/proc/<pid>/task/*/stat``)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    running = 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                running += fh.read().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            continue                                        # ended while we looked
    return running


def quiet(pid: int, step: float = 0.002) -> float:
    """Wait until no thread of process ``pid`` runs, at most SETTLE_MOST seconds; the seconds waited.
    A process whose turn ended may still have threads spinning: BLAS and OpenMP pools busy-wait for
    their next task before they sleep (OpenBLAS's for about 0.1 s), and beside the next process's
    round they are another tenant taking its CPU. Its last request says it waits, not that its
    threads do. The threads' states say it, not their CPU time: the kernel adds a spinning thread's
    time only at its clock ticks (every 4 ms at 250 Hz), so readings a few ms apart can show none
    while it spins (found by measuring: half of the rounds timed right after numpy's were not clean)."""
    start = time.monotonic()
    while _running_threads(pid) and time.monotonic() - start < SETTLE_MOST:
        time.sleep(step)
    return time.monotonic() - start
