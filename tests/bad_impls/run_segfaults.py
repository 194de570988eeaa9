"""An implementation whose process crashes with SIGSEGV the moment it trains (a bad native
extension would): the run must say it crashed, with the signal."""
import ctypes

from impls.numpy_impl import NumpyNetwork


class Segfaulting(NumpyNetwork):
    def train_epoch(self, order, batch_size, lr):
        ctypes.string_at(0)
