"""train_epoch crashes the interpreter, as a native kernel reading a null pointer would."""
import ctypes

from impls.numpy_impl import NumpyNetwork


class Segfaults(NumpyNetwork):
    def train_epoch(self, order, batch_size, lr):
        ctypes.string_at(0)
