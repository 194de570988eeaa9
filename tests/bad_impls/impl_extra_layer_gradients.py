"""backprop returns one (nabla_W, nabla_b) pair more than the network has layers."""
from impls.numpy_impl import NumpyNetwork


class ExtraLayerGradients(NumpyNetwork):
    def backprop(self, X, y):
        cost, nablas = super().backprop(X, y)
        return cost, nablas + nablas[-1:]
