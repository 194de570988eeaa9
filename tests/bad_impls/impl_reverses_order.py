"""train_epoch trains correctly, then reverses the caller's example order in place."""
from impls.numpy_impl import NumpyNetwork


class ReversesOrder(NumpyNetwork):
    def train_epoch(self, order, batch_size, lr):
        cost = super().train_epoch(order, batch_size, lr)
        order[:] = order[::-1].copy()
        return cost
