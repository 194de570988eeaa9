"""One training epoch: ``train_epoch`` over the preset's training set in a fixed shuffled order.

Validate, then time:
- before: a short epoch (two full mini-batches and a short one) from identical weights and
  order is checked against the float64 reference (``prepare``);
- ``warm_up`` compiles what the epoch needs (both mini-batch sizes; ``compile_seconds`` records
  what compiling cost this network so far), then an untimed epoch over exactly the timed work
  warms up the rest (caches, CUDA graphs at these shapes), estimates the round time, and gives
  the expected result;
- memory (``bench.harness.memory``): allocations per step counted over a few untimed
  mini-batches, and the peak resident memory of that untimed epoch (on CUDA, one more epoch
  for the device's peak);
- every timed round starts from the same weights (pedantic mode, reset outside the timer);
- after: the last round's cost and weights must equal the untimed epoch's.

Where a full epoch would take more than ``EPOCH_SUBSET_ABOVE`` seconds (the per-example
reference on the bigger presets), rounds run over the first tenth of the order instead;
``extra_info["examples"]`` records how many, so examples/s stays comparable, and the
tables mark it.
"""
import math

import numpy as np

from impls.core.check import assert_close, assert_params_close
from impls.core.train import timed_epoch

from ..harness.phases import PHASES
from ..harness.memory import count_allocations, cuda_peak_of, held_since, peak_rss_of, settled, steps_of
from ..harness.timing import EPOCH_SUBSET_ABOVE, device_of, record
from ..harness.turns import pedantic

PHASE = "epoch"


def test_epoch(benchmark, prepare, bench, mnist, batch):
    preset, mode = bench.preset, bench.mode
    start = settled()
    ready, _ = prepare(preset, batch)
    net, n = ready.net, len(ready.X)

    def prepared(examples):
        """The epoch workload over ``examples``, reset to the initial weights, ready to call."""
        work = PHASES[PHASE].workload(ready, mnist, batch, examples)
        work.reset()
        return work

    def untimed_epoch(examples):
        return timed_epoch(net, *prepared(examples).args)

    examples = min(mode.epoch_examples or n, n)
    net.warm_up(batch, examples)                             # compile for both mini-batch sizes, untimed
    few = min(examples, 4 * batch)
    untimed_epoch(few)                                       # warm-up, so the estimate is not start-up time
    held = held_since(start)
    device = device_of(net)
    work = prepared(few)
    allocations = count_allocations(lambda: timed_epoch(net, *work.args), net, steps_of(few, batch), device)
    # The untimed epoch that estimates the rounds and gives the expected result is also the one
    # whose peak resident memory is taken.
    (seconds, expected_cost), memory = peak_rss_of(lambda: untimed_epoch(examples))
    if seconds > EPOCH_SUBSET_ABOVE and mode.epoch_examples is None:
        examples = math.ceil(n / 10 / batch) * batch
        (seconds, expected_cost), memory = peak_rss_of(lambda: untimed_epoch(examples))
    memory.update(allocations, steps_counted=steps_of(few, batch), held=held)
    if device == "cuda":
        memory["cuda"] = cuda_peak_of(lambda: untimed_epoch(examples), net)
    # a snapshot: get_params may hand out live views, and the weights of the timed epochs are then
    # compared with themselves
    expected_params = [(np.array(W, copy=True), np.array(b, copy=True)) for W, b in net.get_params()]
    accuracy = net.evaluate(mnist.X_test, mnist.y_test)     # after one epoch from the seeded weights
    low, high = mode.epoch_rounds
    rounds = max(low, min(high, math.ceil(mode.epoch_seconds / seconds)))
    work = PHASES[PHASE].workload(ready, mnist, batch, examples)

    def same_start():
        work.reset()
        return work.args, {}

    cost = pedantic(benchmark, work.fn, setup=same_start, rounds=rounds, seconds=seconds)

    record(benchmark, phase=PHASE, net=net, preset=preset, batch=batch, examples=examples,
           subset=examples < n, accuracy=accuracy, compile_seconds=net.compile_seconds, memory=memory)
    # Same weights, same order: the same result, up to a device summing in another order.
    assert_close(float(cost), expected_cost, net.spec.dtype, "gradient", f"{net.name} epoch cost after timing")
    assert_params_close(net, net.get_params(), expected_params, "after a timed epoch", what="gradient")
