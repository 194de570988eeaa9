"""Tests for impls.core.download against local HTTP servers (127.0.0.1 only)."""

from __future__ import annotations

import errno
import gzip
import hashlib
import http.server
import os
import stat
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from impls.core import download, mnist
from impls.core.errors import DataError
from conftest import free_port, write_mnist

pytestmark = pytest.mark.usefixtures("isolated_env")


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory and records every requested path on the server."""

    timeout = 5  # a stuck client cannot hold a handler thread for long

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass  # keep pytest output clean


class TruncatingHandler(CountingHandler):
    """Promises 1000 more bytes than it sends, then closes: an interrupted transfer."""

    def do_GET(self):
        self.server.requests.append(self.path)
        path = Path(self.directory) / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) + 1000))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.close_connection = True


@pytest.fixture
def serve():
    """serve(directory, handler=CountingHandler) -> (base_url, server); all shut down after."""
    servers = []

    def start(directory, handler=CountingHandler):
        bound = partial(handler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), bound)
        server.daemon_threads = True
        server.requests = []
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/", server

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def archives(tmp_path):
    """A directory of small synthetic .gz archives, their arrays and their md5s."""
    directory = tmp_path / "served"
    arrays = write_mnist(directory, gz=True, seed=3)
    md5 = {key: hashlib.md5((directory / f"{name}.gz").read_bytes()).hexdigest()
           for key, name in mnist.FILES.items()}
    return directory, arrays, md5


def cache(tmp_path):
    return tmp_path / "cache"


def test_download_verifies_caches_and_is_reused(tmp_path, monkeypatch, serve, archives):
    directory, arrays, md5 = archives
    url, server = serve(directory)
    monkeypatch.setenv(download.MIRRORS_ENV, url)
    data = mnist.load_mnist(md5=md5)
    for key, arr in arrays.items():
        np.testing.assert_array_equal(getattr(data, key), arr)
    assert sorted(server.requests) == sorted(f"/{n}.gz" for n in mnist.FILES.values())
    cached = sorted(p.name for p in cache(tmp_path).iterdir())
    assert cached == sorted(f"{n}.gz" for n in mnist.FILES.values())  # no temp files left
    for key, name in mnist.FILES.items():
        assert (cache(tmp_path) / f"{name}.gz").read_bytes() == (directory / f"{name}.gz").read_bytes()

    again = mnist.load_mnist(md5=md5)
    np.testing.assert_array_equal(again.train_images, arrays["train_images"])
    assert len(server.requests) == 4  # the second load came from the cache


def test_download_keeps_valid_files_and_replaces_damaged_ones(tmp_path, serve, archives):
    directory, arrays, md5 = archives
    url, server = serve(directory)
    dest = tmp_path / "dest"
    kept = write_mnist(dest, gz=False, seed=9)  # raw copies: valid, though no .gz md5 applies
    (dest / mnist.FILES["test_labels"]).unlink()
    (dest / mnist.FILES["train_labels"]).write_bytes(b"damaged")
    download.download(dest, mirrors=[url], md5=md5, timeout=5)
    fetched = sorted(f"/{mnist.FILES[k]}.gz" for k in ("train_labels", "test_labels"))
    assert sorted(server.requests) == fetched
    assert not (dest / mnist.FILES["train_labels"]).exists()  # it would shadow the fresh .gz
    found = mnist.find_files(dest)
    assert found["train_labels"].suffix == ".gz" and found["train_images"].suffix != ".gz"
    np.testing.assert_array_equal(mnist.read_idx(found["train_labels"], "labels"),
                                  arrays["train_labels"])
    np.testing.assert_array_equal(mnist.read_idx(found["train_images"], "images"),
                                  kept["train_images"])


def test_corrupted_archive_rejected_and_nothing_kept(tmp_path, monkeypatch, serve, archives):
    directory, _, md5 = archives
    served = directory / f"{mnist.FILES['train_images']}.gz"
    blob = bytearray(served.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte in transit
    served.write_bytes(bytes(blob))
    actual = hashlib.md5(blob).hexdigest()
    url, _ = serve(directory)
    monkeypatch.setenv(download.MIRRORS_ENV, url)
    pattern = rf"train-images-idx3-ubyte\.gz.*expected md5 {md5['train_images']}.*got {actual}"
    with pytest.raises(DataError, match=pattern):
        mnist.load_mnist(md5=md5)
    assert list(cache(tmp_path).iterdir()) == []  # neither the bad archive nor a temp file


def test_default_md5_rejects_synthetic_archives(tmp_path, serve, archives):
    directory, _, _ = archives
    url, _ = serve(directory)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DataError, match=f"expected md5 {download.MD5['train_images']}"):
        download.download(dest, mirrors=[url], timeout=5)
    assert list(dest.iterdir()) == []


def test_interrupted_transfer_leaves_nothing(tmp_path, monkeypatch, serve, archives):
    directory, _, md5 = archives
    url, server = serve(directory, TruncatingHandler)
    monkeypatch.setenv(download.MIRRORS_ENV, url)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*cut short") as info:
        mnist.load_mnist(md5=md5)
    assert "--data" in str(info.value) and "\n" not in str(info.value)
    assert server.requests == [f"/{mnist.FILES['train_images']}.gz"]
    assert list(cache(tmp_path).iterdir()) == []


def test_first_mirror_down_second_used(tmp_path, monkeypatch, serve, archives):
    directory, arrays, md5 = archives
    url, server = serve(directory)
    dead = f"http://127.0.0.1:{free_port()}/"
    monkeypatch.setenv(download.MIRRORS_ENV, f"{dead}, {url}")
    data = mnist.load_mnist(md5=md5)
    np.testing.assert_array_equal(data.test_labels, arrays["test_labels"])
    assert len(server.requests) == 4


def test_first_mirror_bad_second_good(tmp_path, serve, archives):
    directory, _, md5 = archives
    bad_dir = tmp_path / "bad"
    for name in mnist.FILES.values():
        (bad_dir / f"{name}.gz").parent.mkdir(exist_ok=True)
        (bad_dir / f"{name}.gz").write_bytes(gzip.compress(b"not mnist"))
    bad_url, bad_server = serve(bad_dir)
    good_url, good_server = serve(directory)
    dest = tmp_path / "dest"
    dest.mkdir()
    download.download(dest, mirrors=[bad_url, good_url], md5=md5, timeout=5)
    assert len(bad_server.requests) == 4 and len(good_server.requests) == 4
    for name in mnist.FILES.values():
        assert (dest / f"{name}.gz").read_bytes() == (directory / f"{name}.gz").read_bytes()
    assert len(list(dest.iterdir())) == 4


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664)])
def test_downloaded_files_follow_the_umask(tmp_path, monkeypatch, serve, archives, umask, mode):
    """A cache shared by a group must stay readable by it: files are made as any the user writes."""
    directory, _, md5 = archives
    url, _ = serve(directory)
    monkeypatch.setenv(download.MIRRORS_ENV, url)
    previous = os.umask(umask)
    try:
        mnist.load_mnist(md5=md5)
    finally:
        os.umask(previous)
    assert {stat.S_IMODE(p.stat().st_mode) for p in cache(tmp_path).iterdir()} == {mode}


def test_an_unwritable_cache_is_a_permission_error_not_a_failed_download(tmp_path, monkeypatch, serve, archives):
    """Root ignores permission bits, so the refusal is made where any file is created."""
    directory, _, md5 = archives
    url, server = serve(directory)
    monkeypatch.setenv(download.MIRRORS_ENV, url)
    cache(tmp_path).mkdir()
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if Path(path).parent == cache(tmp_path) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(DataError) as info:
        mnist.load_mnist(md5=md5)
    msg = str(info.value)
    assert msg.startswith(f"cannot write the MNIST cache {cache(tmp_path)}: Permission denied"), msg
    assert "download failed" not in msg and "network" not in msg
    assert server.requests == []                    # nothing was fetched only to be thrown away


def test_the_downloader_does_not_import_the_loader():
    """The loader uses the downloader (an empty cache is filled); the downloader needs only the
    file names and the IDX reader (``mnist_files``, ``idx``), never the loader: no import cycle."""
    import subprocess
    import sys
    probe = "import sys, impls.core.download; print('impls.core.mnist' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
