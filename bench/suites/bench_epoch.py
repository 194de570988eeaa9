"""One training epoch: ``train_epoch`` over the preset's training set in a fixed shuffled order.

Validate, then time:
- before: a short epoch (two full mini-batches and a short one) from identical weights and
  order is checked against the float64 reference (``prepare``);
- ``warm_up`` compiles what the epoch needs (both mini-batch sizes; ``compile_seconds`` records
  what compiling cost this network so far), then an untimed epoch over exactly the timed work
  warms up the rest (caches, CUDA graphs at these shapes), estimates the round time, and gives
  the expected result;
- every timed round starts from the same weights (pedantic mode, reset outside the timer);
- after: the last round's cost and weights must equal the untimed epoch's.

Where a full epoch would take more than ``EPOCH_SUBSET_ABOVE`` seconds (the per-example
reference on the bigger presets), rounds run over the first tenth of the order instead;
``extra_info["examples"]`` records how many, so examples/s stays comparable, and the
tables mark it.
"""
import math

from impls.core.check import assert_close, assert_params_close
from impls.core.train import timed_epoch

from ..harness.phases import PHASES
from ..harness.timing import EPOCH_SUBSET_ABOVE, record

PHASE = "epoch"


def test_epoch(benchmark, prepare, bench, mnist, batch):
    preset, mode = bench.preset, bench.mode
    ready, _ = prepare(preset, batch)
    net, n = ready.net, len(ready.X)

    def untimed_epoch(examples):
        work = PHASES[PHASE].workload(ready, mnist, batch, examples)
        work.reset()
        return timed_epoch(net, *work.args)

    examples = min(mode.epoch_examples or n, n)
    net.warm_up(batch, examples)                             # compile for both mini-batch sizes, untimed
    untimed_epoch(min(examples, 4 * batch))                  # warm-up, so the estimate is not start-up time
    seconds, expected_cost = untimed_epoch(examples)
    if seconds > EPOCH_SUBSET_ABOVE and mode.epoch_examples is None:
        examples = math.ceil(n / 10 / batch) * batch
        seconds, expected_cost = untimed_epoch(examples)
    expected_params = net.get_params()
    accuracy = net.evaluate(mnist.X_test, mnist.y_test)     # after one epoch from the seeded weights
    low, high = mode.epoch_rounds
    rounds = max(low, min(high, math.ceil(mode.epoch_seconds / seconds)))
    work = PHASES[PHASE].workload(ready, mnist, batch, examples)

    def same_start():
        work.reset()
        return work.args, {}

    cost = benchmark.pedantic(work.fn, setup=same_start, rounds=rounds)

    record(benchmark, phase=PHASE, net=net, preset=preset, batch=batch, examples=examples,
           subset=examples < n, accuracy=accuracy, compile_seconds=net.compile_seconds)
    # Same weights, same order: the same result, up to a device summing in another order.
    assert_close(float(cost), expected_cost, net.spec.dtype, "gradient", f"{net.name} epoch cost after timing")
    assert_params_close(net, net.get_params(), expected_params, "after a timed epoch", what="gradient")
