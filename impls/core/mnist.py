"""MNIST: find, validate and load the four standard IDX files.

Where they are read from, in order:

1. a directory the user names (``--data DIR``, else $NNBENCH_DATA), or its torchvision layout
   ``DIR/MNIST/raw``. A named directory is used or refused with what is wrong there (no such
   directory, not a directory, which file is missing or is a dangling symlink, a FIFO, a
   directory): it is never silently passed over for the cache, which would train on other
   data than the user asked for;
2. otherwise the per-user cache (``cache_dir``), which ``download`` fills from the mirrors.

Local files are checked by structure, not by archive md5, since a correct copy may be
re-compressed. Every problem a user can fix is a one-line DataError.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError
from .idx import read_idx
from .mnist_files import FILES, inspect  # noqa: F401  (FILES: callers read it from here too)

DATA_ENV = "NNBENCH_DATA"
CACHE_ENV = "NNBENCH_CACHE"
HOW = (f"put the four MNIST IDX files (.gz or raw) in a directory and pass --data DIR or set {DATA_ENV}=DIR, "
       f"or run with network access so nnbench can download them into its cache")

@dataclass(frozen=True)
class Mnist:
    """The four MNIST arrays: uint8 images (n, 28, 28) and uint8 labels (n,), and their directory."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: Path | None = None


def cache_dir() -> Path:
    """$NNBENCH_CACHE, else $XDG_CACHE_HOME/nnbench/mnist, else ~/.cache/nnbench/mnist."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "nnbench" / "mnist"


def named_dir(data_dir: str | os.PathLike | None = None) -> tuple[Path, str] | None:
    """The directory the user named and how (``--data``, else $NNBENCH_DATA), or None.

    An empty $NNBENCH_DATA counts as unset, as is usual for environment variables; an empty
    ``data_dir`` would mean the current directory, which nobody means: refused."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV) or None
        how = f"${DATA_ENV}"
    else:
        how = "--data"
    if data_dir is None:
        return None
    if not str(data_dir):
        raise DataError(f"{how} is empty: name the directory holding the four MNIST IDX files, "
                        f"or leave it out to use the cache")
    return Path(data_dir).expanduser().absolute(), how


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories that may hold the files, in order: a named one and its torchvision
    layout <dir>/MNIST/raw, else only cache_dir()."""
    named = named_dir(data_dir)
    if named is None:
        return [cache_dir().absolute()]
    return [named[0], named[0] / "MNIST" / "raw"]


def find_files(data_dir: str | os.PathLike | None = None) -> dict[str, Path] | None:
    """The four files from the first of search_dirs(data_dir) that holds all of them, or None."""
    for directory in search_dirs(data_dir):
        found, problems = inspect(directory)
        if not problems:
            return found
    return None


def _named_files(root: Path, how: str) -> tuple[dict[str, Path], Path]:
    """The four files in a directory the user named (or its MNIST/raw), or a DataError that
    says what is wrong there: the place with the most of them is the one described."""
    if not root.exists():
        raise DataError(f"{how} {root}: no such directory")
    if not root.is_dir():
        raise DataError(f"{how} {root}: not a directory")
    places = [(directory, *inspect(directory)) for directory in (root, root / "MNIST" / "raw")]
    for directory, found, problems in places:
        if not problems:
            return found, directory
    directory, found, problems = max(places, key=lambda place: len(place[1]))
    raise DataError(f"{how} {directory}: {problems} (looked in {root} and {root / 'MNIST' / 'raw'}; "
                    f"a directory you name is used as it is, never replaced by the cache)")


def _cached_files(download_missing: bool, md5) -> tuple[dict[str, Path], Path]:
    """The four files in cache_dir(), downloading whatever is missing or invalid there."""
    from .download import Unreachable, download
    dest = cache_dir().absolute()
    found, problems = inspect(dest)
    if not problems:
        return found, dest
    if not download_missing:
        raise DataError(f"MNIST not found in the cache {dest} ({problems}); {HOW}")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        download(dest, md5=md5)
    except Unreachable as e:
        raise DataError(f"MNIST not found in the cache {dest} ({problems}) and the download "
                        f"failed ({e}); {HOW}") from e
    except OSError as e:
        where = f"{e.filename2}: " if e.filename2 else ""
        raise DataError(f"cannot write the MNIST cache {dest}: {where}{e.strerror or e}; make it writable, "
                        f"set {CACHE_ENV} to a writable directory, or pass --data DIR") from e
    found, problems = inspect(dest)
    assert not problems, f"download() returned without all four files: {problems}"
    return found, dest


def load_mnist(data_dir: str | os.PathLike | None = None, *, download_missing: bool = True,
               md5: dict[str, str] | None = None) -> Mnist:
    """Load MNIST from the directory named (data_dir, else $NNBENCH_DATA) or from the cache,
    downloading into the cache only when no directory is named (see the module's docstring).

    Every file is validated by read_idx; image and label counts must agree and no split may be
    empty. md5 overrides the archive checksums a download is checked against (tests, private mirrors).
    """
    named = named_dir(data_dir)
    files, source = _named_files(*named) if named else _cached_files(download_missing, md5)
    arrays = {key: read_idx(path, key.split("_")[1]) for key, path in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DataError(f"{files[f'{split}_images']} has {len(images)} images but "
                            f"{files[f'{split}_labels']} has {len(labels)} labels")
        if len(images) == 0:
            raise DataError(f"{files[f'{split}_images']} holds 0 images: there is nothing to "
                            f"{'train on' if split == 'train' else 'test with'}")
    return Mnist(**arrays, source=source)


def as_float(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, 28, 28) -> a new float32 (n, 784) array scaled to [0, 1]."""
    out = images.reshape(len(images), -1).astype(np.float32)  # astype copies; input untouched
    out /= 255.0
    return out


@dataclass(frozen=True)
class Dataset:
    """MNIST as training data: float32 rows in [0, 1] and int64 labels, converted once, and the
    directory they came from (empty for data made in memory)."""
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    source: str = ""


@functools.lru_cache(maxsize=4)
def _load_dataset(data_dir: str | None, *where) -> Dataset:
    """``where``: what else decides the directory ($NNBENCH_DATA, the cache), so that a changed
    environment loads afresh instead of handing back another directory's data."""
    raw = load_mnist(data_dir)
    return Dataset(as_float(raw.train_images), raw.train_labels.astype(np.int64),
                   as_float(raw.test_images), raw.test_labels.astype(np.int64), str(raw.source))


def load_dataset(data_dir=None) -> Dataset:
    """The dataset, loaded and converted once per process for each data directory (~190 MB)."""
    data_dir = str(Path(data_dir).expanduser().resolve()) if data_dir else data_dir     # "": refused
    return _load_dataset(data_dir, os.environ.get(DATA_ENV), str(cache_dir()))
