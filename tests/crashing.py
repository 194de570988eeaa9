"""A test-only implementation whose process dies the moment it trains, as one killed by the
kernel's out-of-memory killer would: ``python -m bench.run`` must record it as a failure of that
implementation and keep every other implementation's results (tests/test_bench_run.py)."""
import os
import signal

from impls.numpy_impl import NumpyNetwork


class Crashing(NumpyNetwork):
    def train_epoch(self, order, batch_size, lr):
        os.kill(os.getpid(), signal.SIGKILL)
