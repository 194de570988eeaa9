"""Shared fixtures: the implementations to parametrize over, and MNIST loaded once."""
import os

import pytest

from impls import REGISTRY, available
from impls.errors import DataError

_AVAILABLE = available()


def impl_params(exclude=()):
    """pytest params over every registered implementation; unavailable ones skip with their reason."""
    return [pytest.param(name, id=name,
                         marks=[pytest.mark.skip(reason=f"{name}: {_AVAILABLE[name]}")] if _AVAILABLE[name] else [])
            for name in REGISTRY if name not in exclude]


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST dataset, loaded once per session.

    Skips when the files are not present and cannot be downloaded, unless NNBENCH_DATA
    names a directory (as CI does): then missing data is an error, not a skip.
    """
    from impls.train import load_dataset
    try:
        return load_dataset()
    except DataError as exc:
        if os.environ.get("NNBENCH_DATA"):
            raise
        pytest.skip(f"real MNIST not available: {exc}")
