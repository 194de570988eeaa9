"""backprop raises: `nnbench train` printed a raw traceback."""
from impls.numpy_impl import NumpyNetwork


class RaisesInBackprop(NumpyNetwork):
    def backprop(self, X, y):
        raise RuntimeError("BP2 is not written yet")
