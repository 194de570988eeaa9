"""A tool case: an implementation whose ``backprop`` raises. A study must report it in one line naming
the implementation, the method and the error, exit non-zero and write nothing."""
from impls.numpy_impl import NumpyNetwork


class RaisesInBackprop(NumpyNetwork):
    def backprop(self, X, y):
        raise RuntimeError("deliberately broken backprop")
