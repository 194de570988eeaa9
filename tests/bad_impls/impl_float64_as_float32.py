"""Declares float32 but computes, and returns, float64: it would be timed as a float32 row."""
import numpy as np

from impls.numpy_impl import NumpyNetwork


class Float64AsFloat32(NumpyNetwork):
    dtypes = ("float32",)

    def __init__(self, spec):
        super().__init__(spec)
        self.np_dtype = np.dtype(np.float64)
