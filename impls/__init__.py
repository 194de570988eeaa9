"""nnbench implementations of Nielsen's network, behind one interface (``impls.base``).

The registry maps the name a user types to ``module:Class`` plus constructor options.
Modules are imported only when asked for, so a missing optional dependency (or a
missing GPU) makes an implementation *unavailable*, with a reason, instead of an
import error for everything else. Adding an implementation is one module and one
line in ``REGISTRY``.
"""
from __future__ import annotations

import importlib

from .errors import ConfigError, UnavailableError

#: name -> (module, class, options passed to the constructor and unavailable_reason)
REGISTRY: dict[str, tuple[str, str, dict]] = {
    "reference": ("impls.reference", "ReferenceNetwork", {}),
    "numpy": ("impls.numpy_impl", "NumpyNetwork", {}),
    "numba": ("impls.numba_impl", "NumbaNetwork", {}),
    "torch-idiomatic-cpu": ("impls.torch_idiomatic", "IdiomaticTorchNetwork", {"device": "cpu"}),
    "torch-idiomatic-cuda": ("impls.torch_idiomatic", "IdiomaticTorchNetwork", {"device": "cuda"}),
    "torch-fast-cpu": ("impls.torch_fast", "FastTorchNetwork", {"device": "cpu"}),
    "torch-fast-cuda": ("impls.torch_fast", "FastTorchNetwork", {"device": "cuda"}),
}


def _load(name: str):
    if name not in REGISTRY:
        raise ConfigError(f"unknown implementation {name!r}; choose one of {', '.join(REGISTRY)}")
    module, cls_name, options = REGISTRY[name]
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except ImportError as exc:
        # Only a missing *third-party* package is a reason; a broken nnbench module is a bug.
        if exc.name and exc.name.split(".")[0] != "impls":
            return None, options, f"needs the Python package {exc.name!r} (pip install {exc.name.split('.')[0]})"
        raise
    return cls, options, cls.unavailable_reason(**options)


def available() -> dict[str, str | None]:
    """Every registered name -> None if it can run here, else the reason it cannot."""
    return {name: _load(name)[2] for name in REGISTRY}


def create(name: str, spec):
    """An instance of implementation ``name`` for ``spec`` (UnavailableError if it cannot run)."""
    cls, options, reason = _load(name)
    if reason:
        raise UnavailableError(f"implementation {name!r} is unavailable: {reason}")
    if spec.dtype not in cls.dtypes:
        raise ConfigError(f"implementation {name!r} supports dtype {', '.join(cls.dtypes)}, not {spec.dtype}")
    net = cls(spec, **options)
    net.name = name
    return net


def default_dtype(name: str) -> str:
    """The dtype an implementation trains in unless told otherwise (its first supported)."""
    cls, _, reason = _load(name)
    if cls is None:
        raise UnavailableError(f"implementation {name!r} is unavailable: {reason}")
    return cls.dtypes[0]
