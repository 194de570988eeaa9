"""Shared fixtures: the implementations to parametrize over and MNIST loaded once (both
from ``impls.core.testing``, which the benchmarks in ``bench/`` use too), plus small IDX files
and an isolated data/cache environment for the loader, download and CLI tests. Without a CUDA
device, Triton's kernels run in its interpreter.

For tests that start nnbench in another process (``python``) and, above all, for the one smoke
run of every benchmark suite (``smoke_bench``): that run is the most expensive thing ``make test``
does, so a test that needs a real benchmark session's JSON, saved history or output asserts on
this one rather than starting its own. ``make test`` has a budget (Makefile): a new test file
should stay within seconds, a few tens at most for one that must start real sessions."""
import gzip
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

# Triton decides when it decorates a kernel -- on importing impls.triton_fused, which collecting
# the tests does -- whether to compile it for a GPU or run it in its interpreter. Without a CUDA
# device the interpreter is the only way to run the kernels, so there the tests run them in it
# (test_triton_fused.py), on CPU tensors; with one they check the compiled kernels. An explicit
# TRITON_INTERPRET is left as it is.
if importlib.util.find_spec("triton") and "TRITON_INTERPRET" not in os.environ:
    import torch
    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"

# Numba's on-disk cache, for this session only: a fresh folder outside the checkout that this process
# and every child it starts (they inherit the variable) share, removed when the session ends. Numba
# keys a cached kernel on its own file's timestamp, not on the files whose functions it calls
# (numba-blas's kernels call impls/numba_impl/kernels.py's), so a cache kept across sessions could
# serve code an edit has changed; one that lives for a session never outlives the sources it was
# compiled from. Numba reads the variable when it is imported, so it is set before anything imports it.
# A session started by a test (the GPU dry run's tests step, which it may cut) uses its parent's
# folder and leaves its removal to the parent.
_inherited = Path(os.environ.get("NUMBA_CACHE_DIR", "."))
OWN_NUMBA_CACHE = not (_inherited.name.startswith("nnbench-numba-cache-") and _inherited.is_dir())
NUMBA_CACHE = Path(tempfile.mkdtemp(prefix="nnbench-numba-cache-")) if OWN_NUMBA_CACHE else _inherited
os.environ["NUMBA_CACHE_DIR"] = str(NUMBA_CACHE)

from impls.core import download as download_module, mnist as mnist_module  # noqa: E402  (after TRITON_INTERPRET is decided)
from impls.core.testing import impl_params, mnist  # noqa: E402, F401  (re-exported: tests import impl_params from here)

import background  # noqa: E402  (tests/: the smoke run beside the other tests)


REPO = Path(__file__).resolve().parents[1]
# The smoke run: every suite, every implementation, minimal timing (one round, 2 ms).
SMOKE_BENCH = background.Background(
    "smoke-bench", "-m", "pytest", "bench", "--bench-mode=smoke", "-q", "-p", "no:cacheprovider",
    "--benchmark-max-time=0.002", "--benchmark-min-rounds=1", "--benchmark-json={root}/smoke.json",
    "--benchmark-storage=file://{root}/storage", "--benchmark-autosave", env={"NNBENCH_COMMAND": "smoke test"})


# Numba's float64 kernels (numba and numba-blas), compiled into the session's cache beside the tests:
# the smoke run compiles the float32 ones, and nothing else but the tests needs float64, whose
# first network would otherwise compile them (tens of seconds) while every other test waits.
NUMBA_FLOAT64 = background.Background("numba-float64", "-c", "; ".join([
    "from impls.core.registry import create", "from impls.core.spec import NetworkSpec",
    "[create(name, NetworkSpec((4, 3, 2), dtype='float64')) for name in ('numba', 'numba-blas')]"]))


def numba_float64(item) -> bool:
    """Whether a test is parametrized with a Numba implementation in float64."""
    params = getattr(item, "callspec", None) and item.callspec.params
    return bool(params) and str(params.get("impl", "")).startswith("numba") and params.get("dtype") == "float64"


def python(*argv, cwd=REPO, env=None, timeout=600) -> subprocess.CompletedProcess:
    """``python *argv`` in a child process (this interpreter, the repository importable), its
    output captured as text; ``env`` adds to (never replaces) this process's environment."""
    return subprocess.run([sys.executable, *map(str, argv)], cwd=cwd, env=background.environ(env),
                          capture_output=True, text=True, timeout=timeout)


def pytest_collection_finish(session):
    """Start every background run a selected test names (``@pytest.mark.background(run)``, or the
    ``smoke_bench`` fixture) as soon as the tests are known."""
    if session.config.option.collectonly:
        return
    for item in session.items:
        if skipped(item):
            continue
        runs = [mark.args[0] for mark in item.iter_markers("background") if mark.args]
        for run in runs + ([SMOKE_BENCH] if "smoke_bench" in getattr(item, "fixturenames", ()) else []):
            run.start()
    if any(numba_float64(item) and not skipped(item) for item in session.items):
        NUMBA_FLOAT64.start()


def skipped(item) -> bool:
    """Whether a skip or a skipif with a true condition marks the test: its run is not started."""
    return (item.get_closest_marker("skip") is not None
            or any(mark.args and mark.args[0] is True for mark in item.iter_markers("skipif")))


def pytest_runtest_setup(item):
    """A float64 Numba test waits for the kernels compiling beside it rather than compile them again."""
    if numba_float64(item):
        NUMBA_FLOAT64.wait(timeout=600)


def pytest_sessionfinish(session):
    for run in list(background.started.values()):
        run.stop()
    if OWN_NUMBA_CACHE:
        shutil.rmtree(NUMBA_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def smoke_bench(mnist):
    """One ``pytest bench --bench-mode=smoke`` session over every implementation, started when
    collection ended and run beside the tests before this one (``background``): ``proc`` (its
    CompletedProcess), ``output`` (stdout and stderr together), ``json`` (its --benchmark-json)
    and ``storage`` (its --benchmark-storage, autosaved). ``NNBENCH_COMMAND`` is "smoke test"."""
    proc = SMOKE_BENCH.result(timeout=900)
    return SimpleNamespace(proc=proc, output=proc.stdout, json=SMOKE_BENCH.root / "smoke.json",
                           storage=SMOKE_BENCH.root / "storage")


def write_mnist(directory, *, gz=True, n_train=20, n_test=10, seed=0, overrides=None):
    """Write four valid IDX files into directory and return the arrays written.

    overrides maps a FILES key to raw (decompressed) bytes to write instead, so a
    test can corrupt exactly one file. Returns {key: array}.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, arr in arrays.items():
        data = (overrides or {}).get(key, idx_bytes(arr))
        name = mnist_module.FILES[key] + (".gz" if gz else "")
        (directory / name).write_bytes(gzip.compress(data) if gz else data)
    return arrays


def learnable(n_train, n_test):
    """Synthetic training data a network learns in an epoch: the label is which tenth of the
    input is brightest."""
    from impls.core.mnist import Dataset
    rng = np.random.default_rng(123)
    X = rng.random((n_train + n_test, 784)).astype(np.float32) * 0.2
    y = rng.integers(0, 10, n_train + n_test)
    for i, label in enumerate(y):
        X[i, label * 78:(label + 1) * 78] += 0.8
    return Dataset(X[:n_train], y[:n_train], X[n_train:], y[n_train:])


def idx_bytes(arr, magic=None):
    """IDX encoding of a uint8 array: big-endian magic, dims, then the bytes."""
    magic = magic if magic is not None else 0x0800 + arr.ndim
    dims = b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return magic.to_bytes(4, "big") + dims + arr.tobytes()


def free_port():
    """A local port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    """Point every data/cache location into tmp_path and forbid real downloads."""
    monkeypatch.delenv(mnist_module.DATA_ENV, raising=False)
    monkeypatch.setenv(mnist_module.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(download_module.MIRRORS_ENV, f"http://127.0.0.1:{free_port()}/")
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """The tests that await a background run go last, so that it runs beside all the others.

    Where an implementation compiles for seconds at every new input shape (``torch.compile``:
    ``compiles_per_shape``), the shared tests keep its float32 three-layer cases by default and
    move the rest -- float64 and the four-layer network, each one more compile -- to ``-m slow``.
    Run cold, all of them took longer than the rest of the suite (docs/measurements.md).
    ``nnbench check`` and the benchmarks validate every network they use in full."""
    from impls.core.registry import registry
    heavy = {}
    for item in items:
        params = getattr(item, "callspec", None) and item.callspec.params
        name = params and params.get("impl")
        if not isinstance(name, str):
            continue
        if name not in heavy:
            try:
                heavy[name] = getattr(registry().load(name)[0], "compiles_per_shape", False)
            except Exception:        # an unregistered name: the test itself will say so
                heavy[name] = False
        if heavy[name] and (params.get("dtype") == "float64" or len(params.get("sizes", ())) > 3):
            item.add_marker(pytest.mark.slow)
    # The tests that await a background run last (stable: the rest keep their order).
    items.sort(key=lambda item: "smoke_bench" in getattr(item, "fixturenames", ())
               or item.get_closest_marker("background") is not None)
