"""Forward pass: ``feedforward`` on a batch of MNIST test images.

Validate, then time: the output is checked against the float64 reference on identical
weights and inputs before timing (``prepare``), and the timed call's own output after.
"""
from impls.core.check import assert_close

from ..harness.phases import PHASES
from ..harness.memory import held_since, measure, settled
from ..harness.timing import device_of, record, time_block

PHASE = "forward"


def test_forward(benchmark, prepare, bench, mnist, batch):
    start = settled()
    ready, ref = prepare(bench.preset, batch)
    net, work = ready.net, PHASES[PHASE].workload(ready, mnist, batch)
    expected = ref.to_numpy(ref.feedforward(ref.asarray(mnist.X_test[:batch])))
    work()                                                   # warm-up at the timed shapes
    net.sync()
    memory = measure(work, net, device_of(net))              # untimed: one more call, then one counted
    memory["held"] = held_since(start)

    out = time_block(benchmark, work, net.sync, bench.mode.block_rounds)

    record(benchmark, phase=PHASE, net=net, preset=bench.preset, batch=batch, examples=work.examples,
           memory=memory)
    assert_close(net.to_numpy(out), expected, net.spec.dtype, "forward", f"{net.name} forward after timing")
