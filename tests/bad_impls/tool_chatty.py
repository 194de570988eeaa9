"""A tool case (bench.profiling, bench.studies): an implementation that prints a lot, on import and in
every epoch -- far more than a pipe holds. Profiling it must neither block nor time out on its output."""
import sys

from impls.numpy_impl import NumpyNetwork

print("chatty import " * 20_000)          # ~280 KB, no newline until the end: fills any pipe


class Chatty(NumpyNetwork):
    def train_epoch(self, order, batch_size, lr):
        print("epoch " * 20_000)
        sys.stdout.flush()
        return super().train_epoch(order, batch_size, lr)
