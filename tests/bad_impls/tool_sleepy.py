"""A tool case: an implementation whose ``train_epoch`` never returns in any time a user would wait.
A profile of it must stop at --timeout with one line."""
import time

from impls.numpy_impl import NumpyNetwork


class SleepyEpoch(NumpyNetwork):
    def train_epoch(self, order, batch_size, lr):
        time.sleep(3600)
        return super().train_epoch(order, batch_size, lr)
