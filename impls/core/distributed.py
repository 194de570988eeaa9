"""Ranks for data-parallel training: W processes started here, or this process in a torchrun job.

A data-parallel step needs W processes (*ranks*) that each run the same code and meet in
collectives (all-reduce). Two ways to have them, behind one call, ``run(fn, *args)``:

- ``LocalRanks``: nnbench starts W ranks on this machine (multiprocessing, spawned). The
  calling process is not a rank but their *driver*: it hosts the rendezvous (a ``TCPStore`` on
  127.0.0.1; port 0 lets the kernel pick a free one), pickles ``fn`` and its arguments once and
  sends them down one pipe per rank, and waits on the pipes *and* the processes' sentinels. So a
  rank that raises sends its error, a rank that dies is seen at once, and either way every rank
  is killed and one ``RankError`` names the rank and the cause; the others, which may be blocked
  in an all-reduce with it, never hang. One set of ranks per world size is kept for the process
  and reused by every network instance (a rank imports torch and joins the group once, not per
  instance; an idle rank waits on its pipe, using no CPU); all are closed at exit, and a rank
  exits by itself when the driver's pipe closes.
- ``JoinedRank``: launched by ``torchrun`` (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT in the
  environment), this process *is* one rank of a job that may span machines: ``run`` calls ``fn``
  here, and torchrun, which started every rank, ends them all when one fails.

Every collective waits at most ``timeout`` seconds (the process group's timeout), so a rank
whose peer stopped answering raises instead of waiting for ever.
"""
from __future__ import annotations

import atexit
import datetime
import os
import signal
import sys
from dataclasses import dataclass, field
from multiprocessing.connection import wait

from .errors import ConfigError, NnbenchError
from .threads import usable_cpus

DEFAULT_TIMEOUT = 60.0      # seconds any one collective (and the start-up rendezvous) may take
HOST = "127.0.0.1"
GRACE = 0.5                 # after a first failure, how long to wait for the others' reports


class RankError(NnbenchError):
    """A rank raised, died or timed out; every rank was stopped."""


def launched_by_torchrun() -> bool:
    """True inside a process torchrun (or any launcher setting RANK and WORLD_SIZE) started."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def backend_unavailable_reason(backend: str) -> str | None:
    import torch
    import torch.distributed as dist
    if not dist.is_available():
        return f"this torch build ({torch.__version__}) has no torch.distributed"
    if backend == "gloo" and not dist.is_gloo_available():
        return f"this torch build ({torch.__version__}) has no gloo backend"
    if backend == "nccl":
        if not torch.cuda.is_available():
            return f"NCCL needs CUDA devices; torch.cuda.is_available() is False (torch {torch.__version__})"
        if not dist.is_nccl_available():
            return f"this torch build ({torch.__version__}) has no NCCL backend"
    return None


@dataclass
class RankContext:
    """What a rank's functions receive: who it is, where it computes, and its state by key."""
    rank: int
    world: int
    device: str                                   # "cpu" or "cuda" (the rank's GPU made current)
    state: dict = field(default_factory=dict)     # e.g. one replica per network instance


def join_group(backend: str, rank: int, world: int, timeout: float, store=None) -> RankContext:
    """Join the process group (every collective then times out after ``timeout`` s) as ``rank``."""
    import torch
    import torch.distributed as dist
    device = "cpu"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
        device = "cuda"
    dist.init_process_group(backend, store=store, rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout))
    return RankContext(rank, world, device)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else '(no message)'}"


def _collective_failure(exc: BaseException) -> bool:
    """A collective that failed because a peer stopped: a consequence, not a cause."""
    import torch.distributed as dist
    return isinstance(exc, getattr(dist, "DistError", ())) or "gloo" in str(exc).lower()


def _rank_main(rank, world, backend, port, timeout, conn):
    """A spawned rank: join the group, then run what the driver sends until it says stop."""
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")        # the ranks meet on loopback only
    try:
        import torch
        import torch.distributed as dist
        torch.set_num_threads(1)
        store = dist.TCPStore(HOST, port, world + 1, is_master=False,
                              timeout=datetime.timedelta(seconds=timeout))
        ctx = join_group(backend, rank, world, timeout, store)
        conn.send(("ok", None))
    except Exception as exc:        # noqa: BLE001 -- reported to the driver, which names the rank
        conn.send(("error", f"could not join the group: {_describe(exc)}", False))
        return
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:        # the driver is gone
                break
            if message is None:
                break
            fn, args = message
            try:
                conn.send(("ok", fn(ctx, *args)))
            except Exception as exc:    # noqa: BLE001
                conn.send(("error", _describe(exc), _collective_failure(exc)))
    finally:
        dist.destroy_process_group()


class LocalRanks:
    """W ranks spawned on this machine, driven from this process (which is not a rank)."""

    def __init__(self, world: int, backend: str = "gloo", port: int = 0, timeout: float = DEFAULT_TIMEOUT):
        import torch.distributed as dist
        import torch.multiprocessing as mp      # its pickler sends CPU tensors as shared memory
        usable = usable_cpus()
        if backend == "gloo" and not 1 <= world <= usable:
            raise ConfigError(f"world={world} ranks cannot run here: this process may use {usable} CPU"
                              f"{'s' if usable > 1 else ''}, so choose 1 to {usable} (a rank beyond that only "
                              "waits for a CPU, and every all-reduce waits for the slowest rank)")
        self.world, self.backend, self.timeout = world, backend, timeout
        try:
            self.store = dist.TCPStore(HOST, port, world + 1, is_master=True, wait_for_workers=False,
                                       timeout=datetime.timedelta(seconds=timeout))
        except (RuntimeError, OSError) as exc:
            raise ConfigError(f"port={port} on {HOST} cannot host the ranks' rendezvous ({_describe(exc)}): "
                              "it is in use; choose another port, or leave port out to pick a free one") from None
        self.port = self.store.port
        context = mp.get_context("spawn")
        self.conns, self.procs = [], []
        for rank in range(world):
            ours, theirs = context.Pipe()
            proc = context.Process(target=_rank_main, args=(rank, world, backend, self.port, timeout, theirs),
                                   name=f"nnbench-rank-{rank}", daemon=True)
            proc.start()
            theirs.close()
            self.conns.append(ours)
            self.procs.append(proc)
        self._collect(range(world), "starting")

    @property
    def alive(self) -> bool:
        return bool(self.procs) and all(p.is_alive() for p in self.procs)

    def run(self, fn, *args, everywhere: bool = True, doing: str | None = None):
        """``fn(ctx, *args)`` on every rank (or on rank 0 alone); rank 0's result. ``doing`` names
        the call in an error."""
        which = range(self.world) if everywhere else range(1)
        for rank in which:
            try:
                # pickled once per rank: a tensor in shared memory travels as a file descriptor
                # that only one receiver can take
                self.conns[rank].send((fn, args))
            except OSError:
                pass                       # a dead rank: its sentinel says so below
        return self._collect(which, doing or getattr(fn, "__name__", "?"))[0]

    def _collect(self, which, doing: str) -> list:
        results, failures = {}, []
        pending = {self.conns[r]: r for r in which}           # pipes not yet answered
        sentinels = {self.procs[r].sentinel: r for r in which}  # processes not yet seen to end or answer
        deadline = None
        # Until every rank has answered or died; after a first failure, GRACE more for the others' reports.
        while sentinels and (deadline is None or _now() < deadline):
            ready = wait(list(pending) + list(sentinels), None if deadline is None else max(0, deadline - _now()))
            for obj in ready:
                if obj in pending:
                    rank = pending.pop(obj)
                    try:
                        reply = obj.recv()
                    except (EOFError, OSError):
                        continue                           # died: its sentinel reports it
                    sentinels.pop(self.procs[rank].sentinel, None)
                    if reply[0] == "ok":
                        results[rank] = reply[1]
                    else:
                        failures.append((reply[2], rank, f"raised {reply[1]}"))
                elif obj in sentinels:
                    rank = sentinels.pop(obj)
                    pending.pop(self.conns[rank], None)
                    self.procs[rank].join(timeout=1)       # reap it, so its exit code is known
                    failures.append((False, rank, f"died ({_exit_reason(self.procs[rank].exitcode)})"))
            if failures and deadline is None:
                deadline = _now() + GRACE
        if failures:
            self.close(kill=True)        # the others may be blocked in a collective with the failed one
            # The cause first: a rank that died or raised on its own, before those whose all-reduce
            # then failed for want of it.
            _, rank, why = min(failures)
            raise RankError(f"rank {rank} of {self.world} {why} while running {doing}; "
                            f"all {self.world} ranks were stopped")
        return [results[r] for r in sorted(results)]

    def close(self, kill: bool = False) -> None:
        """Stop every rank: ask (unless ``kill``), then kill; nothing is left running."""
        for conn in self.conns:
            try:
                conn.send(None)
            except OSError:
                pass
        for proc in self.procs:
            proc.join(timeout=0 if kill else 5)
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        for conn in self.conns:
            conn.close()
        self.procs, self.conns = [], []
        self.store = None


def _now() -> float:
    import time
    return time.monotonic()


def _exit_reason(code) -> str:
    if code is None:
        return "no exit code"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class JoinedRank:
    """This process as one rank of a job torchrun launched; the group is joined once per process."""

    def __init__(self, backend: str, timeout: float = DEFAULT_TIMEOUT):
        import torch.distributed as dist
        if not dist.is_initialized():
            self.ctx = join_group(backend, int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), timeout)
            _joined[backend] = self.ctx
        self.ctx = _joined[backend]
        self.world, self.backend = self.ctx.world, backend

    alive = True

    def run(self, fn, *args, everywhere: bool = True, doing: str | None = None):
        return fn(self.ctx, *args)


_local: dict = {}       # (world, backend, timeout) -> LocalRanks: idle ranks wait on their pipe, using no CPU
_joined: dict = {}


def ranks(world: int, backend: str, port: int = 0, timeout: float = DEFAULT_TIMEOUT):
    """The ranks to run on: this torchrun rank, or W local ranks (reused while they live)."""
    if launched_by_torchrun():
        return JoinedRank(backend, timeout)
    key = (world, backend, timeout)
    old = _local.get(key)
    if old is not None and (not old.alive or port not in (0, old.port)):
        del _local[key]
        old.close()
    if key not in _local:
        _local[key] = LocalRanks(world, backend, port, timeout)
    return _local[key]


@atexit.register
def shutdown() -> None:
    """Stop every set of local ranks (at exit; and whenever a caller wants nothing left running)."""
    while _local:
        _local.popitem()[1].close()
