"""nnbench's implementations of Nielsen's network, and the public API to write your own.

Listing this folder lists the implementations (one module or package each); the machinery
-- network spec, interface, checks, training loop, data, presets, registry, CLI -- lives in
``impls.core``. What an implementation needs is re-exported here::

    from impls import Network, NetworkSpec, minibatches

    class MyNetwork(Network):
        ...                                  # see README, "Benchmark your own implementation"

and is registered without editing nnbench: an entry point in the group
``nnbench.implementations`` of your own package (``my-net = "mypkg.net:MyNetwork"``), or ad
hoc as ``nnbench check mypkg.net:MyNetwork`` / ``--impl`` / ``$NNBENCH_IMPLS``
(``impls.core.registry``). nnbench's own implementations are registered the same way, in
its ``pyproject.toml``.
"""
from .core.base import Network, minibatches
from .core.errors import ConfigError, NnbenchError, UnavailableError, UnsupportedError
from .core.registry import Implementation, available, create, default_dtype, names, register
from .core.spec import NetworkSpec

__all__ = ["Network", "NetworkSpec", "Implementation", "minibatches", "available", "create", "default_dtype",
           "names", "register", "NnbenchError", "ConfigError", "UnavailableError", "UnsupportedError"]
