"""Backward: ``backprop`` (forward, then BP1-BP4) giving the gradients of one mini-batch.

Validate, then time: cost and every gradient are checked against the float64 reference
on identical weights and examples before timing (``prepare``), and the timed call's own
result after.
"""
from impls.core.check import assert_gradients_close

from ..harness.phases import PHASES
from ..harness.memory import held_since, measure, settled
from ..harness.timing import device_of, record, time_block

PHASE = "backward"


def test_backward(benchmark, prepare, bench, mnist, batch):
    start = settled()
    ready, ref = prepare(bench.preset, batch)
    net, work = ready.net, PHASES[PHASE].workload(ready, mnist, batch)
    expected = ref.gradients(ready.X[:batch], ready.y[:batch])
    work()                                                   # warm-up at the timed shapes
    net.sync()
    memory = measure(work, net, device_of(net))              # untimed: one more call, then one counted
    memory["held"] = held_since(start)

    cost, nablas = time_block(benchmark, work, net.sync, bench.mode.block_rounds)

    record(benchmark, phase=PHASE, net=net, preset=bench.preset, batch=batch, examples=work.examples,
           memory=memory)
    actual = (float(cost), [(net.to_numpy(nW), net.to_numpy(nb)) for nW, nb in nablas])
    assert_gradients_close(net, actual, expected, " after timing")
