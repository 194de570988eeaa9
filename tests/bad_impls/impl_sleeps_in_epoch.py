"""train_epoch never returns (a deadlock, a wait on a device that never answers)."""
import time

from impls.numpy_impl import NumpyNetwork


class SleepsInEpoch(NumpyNetwork):
    def train_epoch(self, order, batch_size, lr):
        time.sleep(3600)
