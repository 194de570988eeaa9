"""update_mini_batch scales the caller's batch in place after its step (a normalisation "cache")."""
from impls.numpy_impl import NumpyNetwork


class OverwritesBatch(NumpyNetwork):
    def update_mini_batch(self, X, y, lr):
        cost = super().update_mini_batch(X, y, lr)
        X *= 0.5
        return cost
