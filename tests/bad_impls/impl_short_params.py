"""get_params returns the first layer's parameters only."""
from impls.numpy_impl import NumpyNetwork


class ShortParams(NumpyNetwork):
    def get_params(self):
        return super().get_params()[:1]
