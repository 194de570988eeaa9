"""Shared fixtures: the implementations to parametrize over, and MNIST loaded once.

Both live in ``impls.testing`` so the benchmarks in ``bench/`` use the same ones.
"""
from impls.testing import impl_params, mnist  # noqa: F401  (re-exported: tests import impl_params from here)
