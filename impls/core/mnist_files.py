"""The four MNIST files: their standard names, and what a directory holds of them.

Both the loader (``mnist``: find and read them) and the downloader (``download``: fill the cache,
keeping the valid files already there) need to know which files make MNIST and whether a
directory has them; this module is that shared knowledge, so neither imports the other for it.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _state(path: Path) -> str | None:
    """None if path is a regular file (or a symlink to one) that can be read, else what is there
    instead, without opening it (opening a FIFO would block)."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return "missing"
    if stat.S_ISLNK(mode):
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return f"a dangling symlink to {os.readlink(path)}"
    if stat.S_ISREG(mode):
        return None
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device")
    return f"{kind}, not a file"


def inspect(directory: Path) -> tuple[dict[str, Path], str]:
    """The files of FILES in directory, and what is wrong there ("" when all four are found).

    Each file may be raw or .gz, independently; where both are regular files the raw one is
    used (it needs no decompression). What is wrong names the files: "missing
    t10k-labels-idx1-ubyte(.gz); train-images-idx3-ubyte.gz is a FIFO, not a file"."""
    found, missing, odd = {}, [], []
    for key, name in FILES.items():
        states = {p: _state(p) for p in (directory / name, directory / f"{name}.gz")}
        usable = [p for p, state in states.items() if state is None]
        if usable:
            found[key] = usable[0]
            continue
        wrong = [f"{p.name} is {state}" for p, state in states.items() if state != "missing"]
        odd += wrong
        missing += [] if wrong else [f"{name}(.gz)"]
    return found, "; ".join(([f"missing {', '.join(missing)}"] if missing else []) + odd)
