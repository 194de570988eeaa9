"""Run a user's implementation in a supervised child process, so that nothing it does can take
``nnbench`` down with it or hold it forever.

An implementation is arbitrary code: its import may hang or call ``sys.exit``, a method may
call ``os._exit(0)``, sleep, or crash the interpreter (a segfault in a native kernel). Run in the
``nnbench`` process itself, the first ends the command with status 0 after printing only its
header, the second hangs it, the third leaves no message at all. So ``nnbench check``, ``train``
and ``list`` run the implementation in one child process (``spawn``: a fresh interpreter that
inherits no threads or locks from this one) and supervise it over a pipe:

- the child announces each *phase* before it starts (importing, loading MNIST, compiling, a
  check, an epoch) with the limit that applies to it, sends what the user should see, and ends
  with ``done``; an error nnbench can explain comes back as its one line;
- the parent waits for each phase at most its limit, then kills the child and says which phase
  of which implementation did not finish; a child that ends without ``done`` (an exit, a signal)
  is reported with the phase it was in and how it ended.

One child per command, not per check: data are loaded and kernels compiled once, as in-process.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import NnbenchError

#: a fresh interpreter: forking a parent that has started BLAS or OpenMP threads can deadlock
CONTEXT = multiprocessing.get_context("spawn")
#: seconds one import may take (torch's or jax's first import on a busy 2-core machine takes
#: several) and one step may take (a check, compiling kernels, an epoch of the per-example
#: reference on MNIST); both far above what a working implementation needs, so they only end
#: what is stuck; `--import-timeout` and `--timeout` change them
IMPORT_TIMEOUT, STEP_TIMEOUT = 120.0, 600.0


class StoppedError(NnbenchError):
    """The implementation's process hung past its limit, exited, or crashed."""


@dataclass
class Limits:
    imports: float = IMPORT_TIMEOUT
    step: float = STEP_TIMEOUT

    def option(self, kind: str) -> str:
        return "--import-timeout" if kind == "imports" else "--timeout"


class Channel:
    """The child's end of the pipe: what a job uses to tell the parent where it is."""

    def __init__(self, conn):
        self.conn = conn

    def phase(self, what: str, kind: str = "step") -> None:
        """``what`` starts now; the parent allows it the limit of ``kind`` ("step" or "imports")."""
        self.conn.send(("phase", (what, kind)))

    def say(self, text: str, end: str = "\n") -> None:
        """A line for the user, printed by the parent (so it is captured and ordered like its own)."""
        self.conn.send(("say", (text, end)))

    def send(self, kind: str, value) -> None:
        self.conn.send((kind, value))


def _die_with_parent(parent: int) -> None:
    """Linux: have the kernel kill this process when its parent dies (SIGTERM, SIGKILL), so a
    stopped ``nnbench`` leaves no implementation running; elsewhere, nothing to do."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:          # it died before the request was made
        os._exit(1)


def _child(conn, job: str, payload: dict, registrations: list, parent: int) -> None:
    """The child process: register the parent's ad hoc specs again, run the job, report."""
    _die_with_parent(parent)
    from importlib import import_module
    from .cli import quiet_warnings
    from .registry import register
    quiet_warnings()
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the parent's: it stops this process
    channel = Channel(conn)
    try:
        for spec, source in registrations:
            register(spec, source)
        module, _, function = job.rpartition(".")
        result = getattr(import_module(module), function)(channel, **payload)
        channel.send("done", result)
    except NnbenchError as exc:
        channel.send("error", str(exc))
    except Exception as exc:        # noqa: BLE001 -- a bug of nnbench's own, sent back with its trace
        channel.send("bug", "".join(traceback.format_exception(exc)))
    finally:
        conn.close()


def _registrations() -> list[tuple[str, str]]:
    """The ad hoc specs this process registered (``--impl mod:Class``): the child must know them too."""
    from .registry import registry
    return [(e.spec, e.source) for e in registry().entries.values() if e.spec]


def how_it_ended(exitcode: int | None) -> tuple[str, str]:
    """(what happened to the child, what the user should know about it)."""
    if exitcode is None:
        return "stopped answering", ""
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        what = {"SIGSEGV": " (a segmentation fault)", "SIGKILL": " (out of memory, or killed)",
                "SIGABRT": " (aborted)", "SIGBUS": " (a bus error)"}.get(name, "")
        return f"crashed: its process was killed by {name}{what}", ""
    return (f"ended its process with exit status {exitcode}",
            " (sys.exit or os._exit in the implementation? it must return, or raise, never exit)")


def supervise(impl: str, job: str, payload: dict, limits: Limits, on_message=None):
    """Run ``job`` (``"module.function"``, called as ``function(channel, **payload)``) in a child
    process and return what it returns. ``on_message(kind, value)`` receives everything else it
    sends; ``say`` messages are printed. StoppedError names ``impl`` and the phase when the child
    outlives that phase's limit or ends without finishing; the child's own errors come back as
    NnbenchError with their message."""
    receive, conn = CONTEXT.Pipe(duplex=False)
    # not a daemon: an implementation may start processes of its own (torch-ddp's ranks), which
    # multiprocessing forbids a daemon; the finally below ends the child, and the kernel does when
    # this process dies (_die_with_parent)
    process = CONTEXT.Process(target=_child, args=(conn, job, payload, _registrations(), os.getpid()), daemon=False,
                              name=f"nnbench: {impl}")
    process.start()
    conn.close()
    phase, kind = "starting", "imports"
    deadline = time.monotonic() + getattr(limits, kind)
    try:
        while True:
            if not receive.poll(max(0.0, deadline - time.monotonic())):
                limit = getattr(limits, kind)
                raise StoppedError(f"{impl}: {phase} did not finish within {limit:g} s; stopped it "
                                   f"({limits.option(kind)} SECONDS allows more)")
            try:
                message, value = receive.recv()
            except (EOFError, ConnectionError):
                process.join(10)
                what, advice = how_it_ended(process.exitcode)
                raise StoppedError(f"{impl}: {what} during {phase}{advice}") from None
            if message == "phase":
                (phase, kind), now = value, time.monotonic()
                deadline = now + getattr(limits, kind)
            elif message == "say":
                print(value[0], end=value[1], flush=True)
            elif message == "done":
                return value
            elif message == "error":
                raise NnbenchError(value)
            elif message == "bug":
                raise RuntimeError(f"nnbench's child process for {impl} failed:\n{value}")
            elif on_message:
                on_message(message, value)
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receive.close()


def where_it_raised(exc: BaseException, net) -> str | None:
    """The implementation's method an exception came out of: the innermost frame that is a
    method of ``net`` (so ``backprop`` called by the base class's ``train_epoch`` is named)."""
    method = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        if frame.f_locals.get("self") is net:
            method = frame.f_code.co_name
    return method


@contextmanager
def compiling(channel, name: str, cls, what: str):
    """Around whatever may compile (constructing a Numba network, a warm-up): for an
    implementation that declares a compile cache, say so before and how long it took after,
    measured here -- the first run in a fresh cache can take half a minute of silence."""
    if getattr(cls, "compile_cache_env", None) is None:
        yield
        return
    channel.phase(f"compiling {what}")
    channel.say(f"{name}: compiling {what} (slow the first time, then cached; ${cls.compile_cache_env} "
                "says where)...", end=" ")
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        channel.say("failed")
        raise
    channel.say(f"done in {time.perf_counter() - start:.1f} s")
