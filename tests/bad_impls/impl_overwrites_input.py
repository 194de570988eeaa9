"""feedforward zeroes the caller's input after computing: every value it returns is right."""
from impls.numpy_impl import NumpyNetwork


class OverwritesInput(NumpyNetwork):
    def feedforward(self, X):
        out = super().feedforward(X)
        X[...] = 0
        return out
