"""A test-only implementation: NumPy's network made slower by a known factor, to show that
`make compare` catches a slowdown (README, "Compare runs"). Not registered anywhere; name it in
$NNBENCH_IMPLS, with the same NAME for the baseline and the slowed run so their test ids match,
and keep its history apart from the real one:

    export NNBENCH_IMPLS='under-test=tests.slowed:Slowed'
    python -m bench.run --mode quick --only under-test --storage /tmp/demo --save
    NNBENCH_IMPLS='under-test=tests.slowed:Slowed(factor=1.3)' \
        python -m bench.run --mode quick --only under-test --storage /tmp/demo --compare --compare-fail 15

Each public call (``train_epoch``, ``feedforward``, ``backprop``) runs NumPy's code, then spins
until ``factor`` times the time it took has passed: ``factor=1.3`` costs 30% more per call,
whatever the machine. Spinning, not sleeping: a sleep overshoots by the scheduler's tick.

``head_only=True`` slows only today's side of ``make compare REF=...`` (both sides import this file:
only ``impls/`` comes from REF), so a known slowdown can be compared with the same code unslowed:

    IMPLS='under-test=tests.slowed:Slowed(factor=1.1, head_only=True)' make compare REF=HEAD ONLY=under-test
"""
import os
import time

from impls.numpy_impl import NumpyNetwork


class Slowed(NumpyNetwork):
    def __init__(self, spec, factor: float = 1.0, head_only: bool = False):
        if not factor >= 1.0:
            raise ValueError(f"factor must be at least 1, not {factor!r}")
        super().__init__(spec)
        from bench.harness.turns import ALT_ENV
        if head_only and os.environ.get(ALT_ENV, "").startswith("base:"):
            factor = 1.0
        self.factor, self._inside = float(factor), False

    def _slowed(self, call, *args):
        if self._inside or self.factor == 1.0:      # a call within a slowed call is not slowed twice
            return call(*args)
        self._inside = True
        try:
            start = time.perf_counter()
            result = call(*args)
            until = start + self.factor * (time.perf_counter() - start)
            while time.perf_counter() < until:
                pass
            return result
        finally:
            self._inside = False

    def train_epoch(self, order, batch_size, lr):
        return self._slowed(super().train_epoch, order, batch_size, lr)

    def feedforward(self, X):
        return self._slowed(super().feedforward, X)

    def backprop(self, X, y):
        return self._slowed(super().backprop, X, y)
