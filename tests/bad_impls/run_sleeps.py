"""An implementation that hangs the moment it trains: the run must end it after --timeout."""
import time

from impls.numpy_impl import NumpyNetwork


class Sleeping(NumpyNetwork):
    def train_epoch(self, order, batch_size, lr):
        time.sleep(3600)
