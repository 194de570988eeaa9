"""Writing results: every file of a report to a temporary name, renamed into place only once
everything is written, so results/ never holds a half-written file and a failed write leaves it
as it was. The one way nnbench writes a result: the report, ``python -m bench.run``'s --json and
saved history, the profiler and the studies all write through here.

A write that fails (a full disk above all: a truncated JSON in the history would be read by every
later compare) removes every temporary file it made and raises ``WriteError``, whose message is
the one line to show: which file, and that nothing was written."""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


class WriteError(OSError):
    """A result could not be written; nothing was (the old files are as they were)."""


def write_all(out_dir: Path, files: dict[str, bytes]) -> None:
    """Write every file to a temporary name in out_dir, then rename each into place."""
    out_dir = Path(out_dir)
    staged: list[tuple[str, Path]] = []
    name = None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
            staged.append((tmp, out_dir / name))      # before writing: a failed write is removed too
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())                 # ENOSPC can wait for the flush to the disk
            os.chmod(tmp, 0o644)
    except BaseException as exc:
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if isinstance(exc, OSError):
            raise WriteError(_why(exc, out_dir / name if name else out_dir)) from exc
        raise
    for tmp, final in staged:
        os.replace(tmp, final)


def write_file(path: Path, content: bytes) -> None:
    """One file, whole or not at all (``write_all`` of one)."""
    path = Path(path)
    write_all(path.parent, {path.name: content})


def _why(exc: OSError, path: Path) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{path}: disk full: nothing written"
    return f"{path}: cannot write ({exc.strerror or exc}): nothing written"


def check_writable(folder: Path, what: str) -> None:
    """Raise WriteError now, before minutes of work, if nothing can be written into ``folder``
    (created if missing): a file where the folder should be, a read-only file system, no
    permission. Probed by writing, as the real write will: permission bits say nothing to root."""
    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise WriteError(f"{what} {folder}: is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".nnbench-probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(f"{what} {folder}: cannot write there ({exc.strerror or exc})") from exc
