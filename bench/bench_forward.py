"""Forward pass: ``feedforward`` on a batch of MNIST test images.

Validate, then time: the output is checked against the float64 reference on identical
weights and inputs before timing, and the timed call's own output is checked after.
"""
from impls.check import assert_close, check_forward

from .harness import record

PHASE = "forward"


def test_forward(benchmark, networks, bench, mnist, batch):
    net, ref, params = networks(bench.preset)
    X = mnist.X_test[:batch]
    check_forward(net, ref, params, X)                       # also the warm-up: same call, same shape
    expected = ref.to_numpy(ref.feedforward(ref.asarray(X)))
    X_native = net.asarray(X)                                # host -> native outside the timings
    net.feedforward(X_native)
    net.sync()

    out = benchmark(net.feedforward, X_native)

    record(benchmark, phase=PHASE, net=net, preset=bench.preset, batch=batch, examples=batch)
    assert_close(net.to_numpy(out), expected, net.spec.dtype, "forward", f"{net.name} forward after timing")
