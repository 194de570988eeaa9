"""Keeps each W transposed ((n_in, n_out), as a library laid out for X @ W would) but
computes as if it were not: shapes no longer fit in feedforward."""
import numpy as np

from impls.numpy_impl import NumpyNetwork


class TransposedWeights(NumpyNetwork):
    def _set_params(self, params):
        super()._set_params([(np.asarray(W).T, b) for W, b in params])
