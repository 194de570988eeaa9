"""An implementation that ends its process with status 0 the moment it trains: its results must
not go missing silently."""
import os

from impls.numpy_impl import NumpyNetwork


class Exiting(NumpyNetwork):
    def train_epoch(self, order, batch_size, lr):
        os._exit(0)
