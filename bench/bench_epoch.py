"""One training epoch: ``train_epoch`` over the preset's training set in a fixed shuffled order.

Validate, then time:
- before: a short epoch (two full mini-batches and a short one) from identical weights and
  order is checked against the float64 reference (``impls.check.check_epoch``);
- an untimed epoch over exactly the timed work warms up (JIT, CUDA graphs at these shapes),
  estimates the round time, and gives the expected result;
- every timed round starts from the same weights (pedantic mode, reset outside the timer);
- after: the last round's cost and weights must equal the untimed epoch's.

Where a full epoch would take more than ``EPOCH_SUBSET_ABOVE`` seconds (the per-example
reference on the bigger presets), rounds run over the first tenth of the order instead;
``extra_info["examples"]`` records how many, so examples/s stays comparable, and the
tables mark it.
"""
import math
import time

import numpy as np

from impls.check import assert_close, assert_params_close, check_epoch
from impls.presets import DEFAULT_SEED

from .harness import EPOCH_SUBSET_ABOVE, record

PHASE = "epoch"


def test_epoch(benchmark, networks, bench, mnist, batch):
    preset, mode = bench.preset, bench.mode
    net, ref, params = networks(preset)
    X, y = mnist.X_train[:preset.n_train], mnist.y_train[:preset.n_train]
    rng = np.random.default_rng(DEFAULT_SEED)
    k = min(len(X), 2 * batch + batch // 2 + 1)
    check_epoch(net, ref, params, X[:k], y[:k], rng.permutation(k), batch, preset.lr)

    order = rng.permutation(len(X))
    net.set_training_data(X, y)

    def untimed_epoch(n):
        net.set_params(params)
        start = time.perf_counter()
        cost = net.train_epoch(order[:n], batch, preset.lr)
        net.sync()
        return time.perf_counter() - start, float(cost)

    examples = min(mode.epoch_examples or len(X), len(X))
    untimed_epoch(min(examples, 4 * batch))                  # warm-up, so the estimate is not compile time
    seconds, expected_cost = untimed_epoch(examples)
    if seconds > EPOCH_SUBSET_ABOVE and mode.epoch_examples is None:
        examples = math.ceil(len(X) / 10 / batch) * batch
        seconds, expected_cost = untimed_epoch(examples)
    expected_params = net.get_params()
    accuracy = net.evaluate(mnist.X_test, mnist.y_test)     # after one epoch from the seeded weights
    low, high = mode.epoch_rounds
    rounds = max(low, min(high, math.ceil(mode.epoch_seconds / seconds)))
    timed_order = order[:examples]

    def same_start():
        net.set_params(params)
        return (timed_order, batch, preset.lr), {}

    cost = benchmark.pedantic(net.train_epoch, setup=same_start, rounds=rounds)

    record(benchmark, phase=PHASE, net=net, preset=preset, batch=batch, examples=examples,
           subset=examples < len(X), accuracy=accuracy)
    # Same weights, same order: the same result, up to a device summing in another order.
    assert_close(float(cost), expected_cost, net.spec.dtype, "gradient", f"{net.name} epoch cost after timing")
    assert_params_close(net, net.get_params(), expected_params, "after a timed epoch", what="gradient")
