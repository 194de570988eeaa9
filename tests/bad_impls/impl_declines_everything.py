"""Declines every network: no check runs, which must not read as "all 0 checks passed"."""
from impls.numpy_impl import NumpyNetwork


class DeclinesEverything(NumpyNetwork):
    @classmethod
    def unsupported_reason(cls, spec, **options):
        return "this library computes no network at all"
