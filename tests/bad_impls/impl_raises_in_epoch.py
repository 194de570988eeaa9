"""train_epoch raises."""
from impls.numpy_impl import NumpyNetwork


class RaisesInEpoch(NumpyNetwork):
    def train_epoch(self, order, batch_size, lr):
        raise ValueError("order must be sorted")
