"""backprop returns the gradients of the last layer only: a check that zips the lists passes it."""
from impls.numpy_impl import NumpyNetwork


class OneLayerGradients(NumpyNetwork):
    def backprop(self, X, y):
        cost, nablas = super().backprop(X, y)
        return cost, nablas[-1:]
