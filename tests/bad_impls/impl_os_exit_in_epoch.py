"""train_epoch calls os._exit(0), which no handler can catch."""
import os

from impls.numpy_impl import NumpyNetwork


class OsExitInEpoch(NumpyNetwork):
    def train_epoch(self, order, batch_size, lr):
        os._exit(0)
