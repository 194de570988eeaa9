"""MNIST: find, download, validate and load the four standard IDX files.

Files are looked for in an explicit directory (``--data`` / ``$NNBENCH_DATA``),
its torchvision layout ``MNIST/raw``, then the cache; if none holds all four,
the official ``.gz`` archives are downloaded into the cache. Local files are
checked by structure (magic, dims, exact length, label range), not by archive
md5, because a correct copy may be re-compressed (see the provided data's
README). Downloads are checked against the official md5s and written
atomically, so the cache never holds a partial file. Every problem a user can
fix is raised as a one-line ``DataError``.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from impls.errors import DataError

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MD5 = {  # of the official .gz archives, as torchvision checks them
    "train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
    "test_images": "9fb629c4189551a2d022fa330f9573f3",
    "test_labels": "ec29112dd5afa0611ce80d1b7f02629c",
}
MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
DATA_ENV = "NNBENCH_DATA"
CACHE_ENV = "NNBENCH_CACHE"
MIRRORS_ENV = "NNBENCH_MNIST_MIRRORS"

_MAGIC = {"images": 2051, "labels": 2049}  # 0x0803 / 0x0801: ubyte, 3 / 1 dims
_HEADER = {"images": 16, "labels": 8}
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Mnist:
    """The four MNIST arrays: uint8 images (n, 28, 28) and uint8 labels (n,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


class _NetworkError(DataError):
    """A download failed for lack of a usable network, not because of bad data."""


def cache_dir() -> Path:
    """$NNBENCH_CACHE, else $XDG_CACHE_HOME/nnbench/mnist, else ~/.cache/nnbench/mnist."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "nnbench" / "mnist"


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Directories searched, in order: data_dir (else $NNBENCH_DATA), its MNIST/raw, the cache."""
    dirs = []
    explicit = data_dir if data_dir is not None else os.environ.get(DATA_ENV) or None
    if explicit is not None:
        root = Path(explicit).expanduser()
        dirs += [root, root / "MNIST" / "raw"]
    dirs.append(cache_dir())
    unique: list[Path] = []
    for d in dirs:
        if d.absolute() not in (u.absolute() for u in unique):
            unique.append(d)
    return unique


def read_idx(path: str | os.PathLike, kind: str) -> np.ndarray:
    """Read and validate one IDX file (gzip if the name ends in .gz, else raw).

    kind is "images" (returns uint8 (n, 28, 28)) or "labels" (uint8 (n,), all 0..9).
    Any unreadable, corrupt, truncated or malformed file raises DataError.
    """
    if kind not in _MAGIC:
        raise ValueError(f"kind must be 'images' or 'labels', not {kind!r}")
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:  # before OSError: BadGzipFile is one
        raise DataError(f"{path}: corrupt or truncated gzip stream ({e or type(e).__name__})") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from e

    header = _HEADER[kind]
    if len(data) < header:
        raise DataError(f"{path}: {len(data)} bytes is too short for an IDX {kind} header ({header} bytes)")
    magic, count = int.from_bytes(data[0:4], "big"), int.from_bytes(data[4:8], "big")
    if magic != _MAGIC[kind]:
        raise DataError(f"{path}: bad magic number {magic} (expected {_MAGIC[kind]} for IDX {kind})")
    shape: tuple[int, ...] = (count,)
    if kind == "images":
        rows, cols = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
        if (rows, cols) != (28, 28):
            raise DataError(f"{path}: images are {rows}x{cols}, expected 28x28")
        shape = (count, rows, cols)
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DataError(f"{path}: header says {count} {kind} ({expected} bytes of data) "
                        f"but the file holds {len(data) - header} bytes")
    # copy() so callers get a writable array, not a view of the immutable file bytes
    arr = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()
    if kind == "labels" and arr.size and arr.max() > 9:
        i = int(np.argmax(arr > 9))
        raise DataError(f"{path}: label {arr[i]} at index {i} is outside 0..9")
    return arr


def _file_in(directory: Path, name: str) -> Path | None:
    """name or name.gz in directory, preferring raw (no decompression needed)."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _files_in(directory: Path) -> dict[str, Path] | None:
    """All four files in one directory, or None if any is missing."""
    found = {key: _file_in(directory, name) for key, name in FILES.items()}
    return None if None in found.values() else found  # type: ignore[return-value]


def find_files(data_dir: str | os.PathLike | None = None) -> dict[str, Path] | None:
    """The four files from the first of search_dirs(data_dir) holding all of them, else None.

    Each may be raw or .gz; if both exist, the raw file is used.
    """
    for directory in search_dirs(data_dir):
        found = _files_in(directory)
        if found is not None:
            return found
    return None


def _kind(key: str) -> str:
    return key.split("_")[1]


def _fetch(url: str, target: Path, expected_md5: str, timeout: float) -> str | None:
    """Download url to target atomically; return None on success, else the actual md5.

    Network failures propagate (OSError, HTTPException). The temp file lives in the
    target's directory so os.replace is atomic, and is removed on any failure.
    """
    tmp = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".part",
                                      delete=False)
    try:
        digest = hashlib.md5()
        with tmp, urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            received = 0
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                tmp.write(chunk)
                received += len(chunk)
            # http.client returns a short body silently at EOF, so check the length ourselves
            if length is not None and length.isdigit() and received != int(length):
                raise http.client.IncompleteRead(b"", int(length) - received)
            tmp.flush()
            os.fsync(tmp.fileno())
        if digest.hexdigest() != expected_md5:
            os.unlink(tmp.name)
            return digest.hexdigest()
        os.replace(tmp.name, target)
        return None
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise


def _describe(e: BaseException) -> str:
    if isinstance(e, http.client.IncompleteRead):
        return f"transfer cut short ({e.expected} bytes missing)"
    reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
    return str(reason) or type(e).__name__


def download(dest: Path, mirrors: list[str] | None = None, md5: dict[str, str] | None = None,
             timeout: float = 30.0) -> None:
    """Download the four .gz archives into dest, trying each mirror in turn per file.

    mirrors defaults to $NNBENCH_MNIST_MIRRORS (comma-separated), else MIRRORS; md5 to MD5.
    Files already in dest that read as valid IDX are kept. Raises DataError if every mirror
    returned a wrong checksum for a file, or (as a subclass) if none could be reached.
    """
    if mirrors is None:
        env = os.environ.get(MIRRORS_ENV, "")
        mirrors = [m.strip() for m in env.split(",") if m.strip()] or MIRRORS
    md5 = MD5 if md5 is None else md5
    dest = Path(dest)
    for key, name in FILES.items():
        present = _file_in(dest, name)
        if present is not None:
            try:
                read_idx(present, _kind(key))
                continue
            except DataError:
                pass  # damaged cache entry: download a fresh copy over it
        target = dest / f"{name}.gz"
        mismatch, failures = None, []
        for base in mirrors:
            url = base.rstrip("/") + "/" + target.name
            try:
                actual = _fetch(url, target, md5[key], timeout)
            except (OSError, http.client.HTTPException, ValueError) as e:
                failures.append(f"{url}: {_describe(e)}")
                continue
            if actual is None:
                break
            mismatch = actual
        else:
            if mismatch is not None:
                raise DataError(f"{target.name}: checksum mismatch from every mirror that answered "
                                f"(expected md5 {md5[key]}, got {mismatch}); not saved")
            raise _NetworkError(f"could not download {target.name}: " + "; ".join(failures))


def load_mnist(data_dir: str | os.PathLike | None = None, *, download_missing: bool = True,
               md5: dict[str, str] | None = None) -> Mnist:
    """Find (or download into cache_dir()), validate and load MNIST.

    md5 overrides the archive checksums used for a download (tests, private mirrors).
    """
    files = find_files(data_dir)
    if files is None:
        dirs = ", ".join(str(d) for d in search_dirs(data_dir))
        how = (f"put the four MNIST IDX files (.gz or raw) in a directory and pass --data DIR "
               f"or set {DATA_ENV}=DIR, or run with network access so nnbench can download them")
        if not download_missing:
            raise DataError(f"MNIST not found in {dirs}; {how}")
        dest = cache_dir()
        try:
            dest.mkdir(parents=True, exist_ok=True)
            download(dest, md5=md5)
        except _NetworkError as e:
            raise DataError(f"MNIST not found in {dirs} and the download failed ({e}); {how}") from e
        except OSError as e:
            raise DataError(f"cannot write the MNIST cache {dest}: {e.strerror or e}") from e
        files = _files_in(dest)
        assert files is not None, "download() returned without all four files"
    arrays = {key: read_idx(path, _kind(key)) for key, path in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DataError(f"{files[f'{split}_images']} has {len(images)} images but "
                            f"{files[f'{split}_labels']} has {len(labels)} labels")
    return Mnist(**arrays)


def as_float(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, 28, 28) -> a new float32 (n, 784) array scaled to [0, 1]."""
    out = images.reshape(len(images), -1).astype(np.float32)  # astype copies: the input is untouched
    out /= 255.0
    return out
