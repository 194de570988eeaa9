"""MNIST: find, download, validate and load the four standard IDX files.

Local files (``--data``/$NNBENCH_DATA, its torchvision ``MNIST/raw``, the cache) are
checked by structure, not by archive md5, since a correct copy may be re-compressed.
Downloads are checked against the official md5s and written atomically, so the cache
never holds a partial file. Every problem a user can fix is a one-line DataError.
"""

from __future__ import annotations

import functools
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

from .errors import DataError

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
# torchvision's mirrors, in its order
MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
DATA_ENV = "NNBENCH_DATA"
CACHE_ENV = "NNBENCH_CACHE"
MIRRORS_ENV = "NNBENCH_MNIST_MIRRORS"

_MAGIC = {"images": 2051, "labels": 2049}  # 0x0803 / 0x0801: ubyte, 3 / 1 dims
_HEADER = {"images": 16, "labels": 8}  # bytes: magic, count (and rows, cols)


@dataclass(frozen=True)
class Mnist:
    """The four MNIST arrays: uint8 images (n, 28, 28) and uint8 labels (n,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


class _NetworkError(DataError):
    """No mirror could be reached: load_mnist turns this into "where to put the files"."""


def cache_dir() -> Path:
    """$NNBENCH_CACHE, else $XDG_CACHE_HOME/nnbench/mnist, else ~/.cache/nnbench/mnist."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "nnbench" / "mnist"


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Absolute directories searched, in order, without duplicates: data_dir (else
    $NNBENCH_DATA), its torchvision layout <dir>/MNIST/raw, then cache_dir()."""
    explicit = data_dir if data_dir is not None else os.environ.get(DATA_ENV) or None
    dirs = []
    if explicit is not None:
        root = Path(explicit).expanduser()
        dirs += [root, root / "MNIST" / "raw"]
    return list(dict.fromkeys(d.absolute() for d in dirs + [cache_dir()]))


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


def _file_in(directory: Path, name: str) -> Path | None:
    """name or name.gz in directory; raw wins if both exist (it needs no decompression)."""
    return next((p for p in (directory / name, directory / f"{name}.gz") if p.is_file()), None)


def find_files(data_dir: str | os.PathLike | None = None) -> dict[str, Path] | None:
    """The four files from the first of search_dirs(data_dir) that holds all of them.

    Each file may be raw or .gz, independently; where both exist the raw one is used.
    Returns None if no directory holds all four.
    """
    for directory in search_dirs(data_dir):
        found = {key: _file_in(directory, name) for key, name in FILES.items()}
        if None not in found.values():
            return found  # type: ignore[return-value]
    return None


def _fetch(url: str, target: Path, expected_md5: str, timeout: float) -> str | None:
    """Download url to target atomically; return None on success, else the md5 received.

    Network failures propagate. The temp file sits beside target so os.replace is atomic,
    and it is removed on every failure, so target is either complete and verified or absent.
    """
    tmp = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".part",
                                      delete=False)
    try:
        digest, received = hashlib.md5(), 0
        with tmp, urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            while chunk := response.read(1 << 16):
                digest.update(chunk)
                tmp.write(chunk)
                received += len(chunk)
            # http.client ends a short body silently at EOF, so compare with the promised length
            if length is not None and length.isdigit() and received != int(length):
                raise http.client.IncompleteRead(b"", int(length) - received)
            tmp.flush()
            os.fsync(tmp.fileno())
        if digest.hexdigest() != expected_md5:
            os.unlink(tmp.name)
            return digest.hexdigest()
        os.replace(tmp.name, target)
        return None
    except BaseException:  # Ctrl-C included: never leave a partial file
        Path(tmp.name).unlink(missing_ok=True)
        raise


def _describe(e: Exception) -> str:
    if isinstance(e, http.client.IncompleteRead):
        return f"transfer cut short, {e.expected} bytes missing"
    return str(getattr(e, "reason", None) or e) or type(e).__name__


def download(dest: Path, mirrors: list[str] | None = None, md5: dict[str, str] | None = None,
             timeout: float = 30.0) -> None:
    """Download the four .gz archives into dest, trying each mirror in turn for each file.

    mirrors defaults to $NNBENCH_MNIST_MIRRORS (comma-separated base URLs), else MIRRORS;
    md5 defaults to MD5. A file already in dest (raw or .gz) that reads as valid IDX is kept;
    an invalid one is removed and fetched again. Raises DataError if every mirror that
    answered sent bytes with the wrong md5, or if no mirror could be reached at all.
    """
    if mirrors is None:
        mirrors = [m.strip() for m in os.environ.get(MIRRORS_ENV, "").split(",") if m.strip()]
        mirrors = mirrors or MIRRORS
    md5 = MD5 if md5 is None else md5
    dest = Path(dest)
    for key, name in FILES.items():
        present = _file_in(dest, name)
        if present is not None:
            try:
                read_idx(present, key.split("_")[1])
                continue
            except DataError:
                present.unlink()  # else a damaged raw file would shadow the fresh .gz
        target, mismatch, failures = dest / f"{name}.gz", None, []
        for base in mirrors:
            url = base.rstrip("/") + "/" + target.name
            try:
                actual = _fetch(url, target, md5[key], timeout)
            except (OSError, http.client.HTTPException, ValueError) as e:  # ValueError: bad URL
                failures.append(f"{url}: {_describe(e)}")
                continue
            if actual is None:
                break
            mismatch = actual
        else:
            if mismatch is not None:
                raise DataError(f"{target.name}: checksum mismatch from every mirror that answered "
                                f"(expected md5 {md5[key]}, got {mismatch}); nothing saved")
            raise _NetworkError(f"could not download {target.name}: " + "; ".join(failures))


def load_mnist(data_dir: str | os.PathLike | None = None, *, download_missing: bool = True,
               md5: dict[str, str] | None = None) -> Mnist:
    """Find MNIST (see search_dirs), downloading it into cache_dir() if it is nowhere.

    Every file is validated by read_idx, and image and label counts must agree.
    md5 overrides the archive checksums a download is checked against (tests, private mirrors).
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
        files = find_files(data_dir)
        assert files is not None, "download() returned without all four files"
    arrays = {key: read_idx(path, key.split("_")[1]) for key, path in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DataError(f"{files[f'{split}_images']} has {len(images)} images but "
                            f"{files[f'{split}_labels']} has {len(labels)} labels")
    return Mnist(**arrays)


def as_float(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, 28, 28) -> a new float32 (n, 784) array scaled to [0, 1]."""
    out = images.reshape(len(images), -1).astype(np.float32)  # astype copies; input untouched
    out /= 255.0
    return out


@dataclass(frozen=True)
class Dataset:
    """MNIST as training data: float32 rows in [0, 1] and int64 labels, converted once."""
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


@functools.lru_cache(maxsize=4)
def _load_dataset(data_dir: str | None) -> Dataset:
    raw = load_mnist(data_dir)
    return Dataset(as_float(raw.train_images), raw.train_labels.astype(np.int64),
                   as_float(raw.test_images), raw.test_labels.astype(np.int64))


def load_dataset(data_dir=None) -> Dataset:
    """The dataset, loaded and converted once per process for each data directory (~190 MB)."""
    return _load_dataset(str(Path(data_dir).expanduser().resolve()) if data_dir else None)
