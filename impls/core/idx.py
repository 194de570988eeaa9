"""Reading one IDX file (the format MNIST comes in), validated down to the last byte."""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError

_MAGIC = {"images": 2051, "labels": 2049}  # 0x0803 / 0x0801: ubyte, 3 / 1 dims
_HEADER = {"images": 16, "labels": 8}  # bytes: magic, count (and rows, cols)


def read_idx(path: str | os.PathLike, kind: str) -> np.ndarray:
    """Read and validate one IDX file, gzip-compressed if its name ends in .gz.

    kind "images" returns uint8 (n, 28, 28); kind "labels" returns uint8 (n,) in 0..9.
    An unreadable, corrupt, truncated or malformed file raises DataError.
    """
    if kind not in _MAGIC:
        raise ValueError(f"kind must be 'images' or 'labels', not {kind!r}")
    path = Path(path)
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:  # before OSError: BadGzipFile is one
        raise DataError(f"{path}: corrupt or truncated gzip stream ({e or type(e).__name__})") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from e

    header = _HEADER[kind]
    if len(data) < header:
        raise DataError(f"{path}: {len(data)} bytes is too short for an IDX {kind} header")
    magic, count = int.from_bytes(data[0:4], "big"), int.from_bytes(data[4:8], "big")
    if magic != _MAGIC[kind]:
        raise DataError(f"{path}: bad magic number {magic} (expected {_MAGIC[kind]} for IDX {kind})")
    shape: tuple[int, ...] = (count,)
    if kind == "images":
        shape = (count, int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big"))
        if shape[1:] != (28, 28):
            raise DataError(f"{path}: images are {shape[1]}x{shape[2]}, expected 28x28")
    expected = count * (784 if kind == "images" else 1)
    if len(data) - header != expected:  # truncated, or trailing garbage
        raise DataError(f"{path}: header says {count} {kind} ({expected} bytes of data) "
                        f"but the file holds {len(data) - header} bytes")
    # copy(): a writable array that callers may shuffle in place, not a view of immutable bytes
    arr = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()
    if kind == "labels" and arr.size and arr.max() > 9:
        i = int(np.argmax(arr > 9))
        raise DataError(f"{path}: label {arr[i]} at index {i} is outside 0..9")
    return arr
