"""Declares no dtypes (``dtypes = ()``): nothing to check and nothing to train in."""
from impls.numpy_impl import NumpyNetwork


class NoDtypes(NumpyNetwork):
    dtypes = ()
