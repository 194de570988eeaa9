"""train_epoch calls sys.exit(): in-process, `nnbench check` ended with status 0."""
import sys

from impls.numpy_impl import NumpyNetwork


class ExitsInEpoch(NumpyNetwork):
    def train_epoch(self, order, batch_size, lr):
        sys.exit()
