"""Child processes that run the user's code, bounded: each in a process group of its own, under a
time limit, and taken down with this process's stop signals. A broken implementation may hang, and
a driver killed mid-run must not leave its benchmark process running as an orphan
(``python -m bench.run``)."""
from __future__ import annotations

import os
import signal
import subprocess

#: seconds a signalled child's process group gets to end before it is killed
GRACE = 10.0
#: the signals that stop a run: passed on to the running child, then the run ends
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    """This driver got one of STOP_SIGNALS."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop(signum, frame):
    """The signal handler that turns a stop signal into ``Stopped``."""
    raise Stopped(signum)


def supervise(cmd, timeout: float, **popen) -> int:
    """Run ``cmd`` in a process group of its own and return its exit status. Past ``timeout``
    seconds its group is ended and ``subprocess.TimeoutExpired`` raised; on a stop signal to this
    process the signal is passed to the group, which is waited for (then killed), and ``Stopped``
    raised. The group, not only the child: pytest's own workers (Inductor's compiler) go with it."""
    proc = start(cmd, **popen)
    try:
        return proc.wait(timeout=timeout)
    except Stopped as exc:
        end(proc, exc.signum)
        raise
    except BaseException:
        end(proc, signal.SIGTERM)
        raise


def start(cmd, **popen) -> subprocess.Popen:
    """``cmd`` started in a process group of its own (``end`` takes the group down with it)."""
    return subprocess.Popen(cmd, start_new_session=True, **popen)


def end(proc, signum) -> None:
    """Signal ``proc``'s group, give it GRACE seconds, then kill what is left of the group. Further
    stop signals wait meanwhile: a second Ctrl-C must not orphan the child."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        _signal_group(proc.pid, signum)
        try:
            proc.wait(timeout=GRACE)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _signal_group(pgid: int, signum) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):     # the group has ended already
        pass
