"""Downloading MNIST into the per-user cache: the official archives, checked and written safely.

Each archive is checked against its official md5 and written to a temporary name beside its
target, then renamed, so the cache never holds a partial file. Failures are told apart by
where they happen: a mirror that cannot be reached or sends a short body is a network
problem (``Unreachable``: the caller says where to put the files by hand); a cache that
cannot be written is an ``OSError`` the caller reports as a permission or disk problem,
never as "download failed".
"""
from __future__ import annotations

import hashlib
import http.client
import os
import secrets
import urllib.request
from pathlib import Path

from .errors import DataError
from .idx import read_idx
from .mnist_files import FILES, inspect

MD5 = {  # of the official .gz archives, as torchvision checks them
    "train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
    "test_images": "9fb629c4189551a2d022fa330f9573f3",
    "test_labels": "ec29112dd5afa0611ce80d1b7f02629c",
}
# torchvision's mirrors, in its order
MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
MIRRORS_ENV = "NNBENCH_MNIST_MIRRORS"


class Unreachable(DataError):
    """No mirror could deliver a file: the loader turns this into "where to put the files"."""


def _body(url: str, timeout: float):
    """The body of ``url`` in 64 KiB chunks; any failure to receive it raises Unreachable.

    Only the network is inside this ``try``: the caller's writes to disk fail as themselves."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length, received = response.headers.get("Content-Length"), 0
            while chunk := response.read(1 << 16):
                received += len(chunk)
                yield chunk
            # http.client ends a short body silently at EOF, so compare with the promised length
            if length is not None and length.isdigit() and received != int(length):
                raise http.client.IncompleteRead(b"", int(length) - received)
    except http.client.IncompleteRead as e:
        raise Unreachable(f"{url}: transfer cut short, {e.expected} bytes missing") from e
    except (OSError, http.client.HTTPException, ValueError) as e:  # ValueError: a malformed URL
        raise Unreachable(f"{url}: {getattr(e, 'reason', None) or e or type(e).__name__}") from e


def _fetch(url: str, target: Path, expected_md5: str, timeout: float) -> str | None:
    """Download url to target atomically; return None on success, else the md5 received.

    The temporary file sits beside target so the rename is atomic; it is created with mode
    0666 less the umask, as any file the user writes (a shared cache stays shared), and it is
    removed on every failure, so target is either complete and verified or absent."""
    part = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    out = os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb")
    try:
        digest = hashlib.md5()
        with out:
            for chunk in _body(url, timeout):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected_md5:
            part.unlink()
            return digest.hexdigest()
        os.replace(part, target)
        return None
    except BaseException:  # Ctrl-C included: never leave a partial file
        part.unlink(missing_ok=True)
        raise


def download(dest: Path, mirrors: list[str] | None = None, md5: dict[str, str] | None = None,
             timeout: float = 30.0) -> None:
    """Download the four .gz archives into dest, trying each mirror in turn for each file.

    mirrors defaults to $NNBENCH_MNIST_MIRRORS (comma-separated base URLs), else MIRRORS;
    md5 defaults to MD5. A file already in dest (raw or .gz) that reads as valid IDX is kept;
    an invalid one is removed and fetched again. Raises DataError if every mirror that
    answered sent bytes with the wrong md5, Unreachable if no mirror could deliver a file, and
    OSError if dest cannot be written.
    """
    if mirrors is None:
        mirrors = [m.strip() for m in os.environ.get(MIRRORS_ENV, "").split(",") if m.strip()]
        mirrors = mirrors or MIRRORS
    md5 = MD5 if md5 is None else md5
    dest = Path(dest)
    present, _ = inspect(dest)
    for key, name in FILES.items():
        if key in present:
            try:
                read_idx(present[key], key.split("_")[1])
                continue
            except DataError:
                present[key].unlink()  # else a damaged raw file would shadow the fresh .gz
        target, mismatch, failures = dest / f"{name}.gz", None, []
        for base in mirrors:
            try:
                actual = _fetch(base.rstrip("/") + "/" + target.name, target, md5[key], timeout)
            except Unreachable as e:
                failures.append(str(e))
                continue
            if actual is None:
                break
            mismatch = actual
        else:
            if mismatch is not None:
                raise DataError(f"{target.name}: checksum mismatch from every mirror that answered "
                                f"(expected md5 {md5[key]}, got {mismatch}); nothing saved")
            raise Unreachable(f"could not download {target.name}: " + "; ".join(failures))
