"""pytest helpers shared by the tests (``tests/``) and the benchmarks (``bench/``).

Written once here so both parametrize over the same registry the same way and load
MNIST the same way. Imported only by test code, so pytest is not a runtime dependency.
"""
from __future__ import annotations

import functools

import pytest

from .errors import DataError
from .registry import available


@functools.cache
def availability(among: frozenset | None = None) -> dict[str, str | None]:
    """``registry.available``, asked once per process (it imports every implementation asked about)."""
    return available(among)


def impl_params(exclude=(), among=None):
    """pytest params over every registered implementation (or those named in ``among``: the others'
    modules and frameworks are then never imported); unavailable ones skip with their reason."""
    status = availability(None if among is None else frozenset(among))
    return [pytest.param(name, id=name,
                         marks=[pytest.mark.skip(reason=f"{name}: {status[name]}")] if status[name] else [])
            for name in status if name not in exclude]


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST dataset, loaded once per session, for the tests.

    Skips when the files are not present and cannot be downloaded, unless NNBENCH_DATA
    names a directory (as CI does): then missing data is an error, not a skip.
    """
    from .mnist import load_dataset, named_dir
    try:
        return load_dataset()
    except DataError as exc:
        if named_dir():
            raise
        pytest.skip(f"real MNIST not available: {exc}")


def mnist_or_stop():
    """The real MNIST dataset for the benchmarks, which all need it: without it the session
    stops at once with the loader's message. Skipping every benchmark would end the run with
    status 0 and the reason only under ``-rs``, which reads as a pass."""
    from .mnist import load_dataset
    try:
        return load_dataset()
    except DataError as exc:
        pytest.exit(f"nnbench: the benchmarks need MNIST: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)


def create_or_skip(name: str, spec):
    """``create``, turning only the documented refusal (the implementation declines this
    network or dtype) into a skip with its reason; any other error fails the test."""
    from .errors import UnsupportedError
    from .registry import create
    try:
        return create(name, spec)
    except UnsupportedError as exc:
        pytest.skip(str(exc))
