"""Backward: ``backprop`` (forward, then BP1-BP4) giving the gradients of one mini-batch.

Validate, then time: cost and every gradient are checked against the float64 reference
on identical weights and examples before timing, and the timed call's own result after.
"""
from impls.check import assert_gradients_close, check_gradients

from .harness import record

PHASE = "backward"


def test_backward(benchmark, networks, bench, mnist, batch):
    net, ref, params = networks(bench.preset)
    X, y = mnist.X_train[:batch], mnist.y_train[:batch]
    check_gradients(net, ref, params, X, y)                  # also the warm-up: same call, same shape
    expected = ref.gradients(X, y)
    X_native, y_native = net.asarray(X), net.aslabels(y)
    net.backprop(X_native, y_native)
    net.sync()

    cost, nablas = benchmark(net.backprop, X_native, y_native)

    record(benchmark, phase=PHASE, net=net, preset=bench.preset, batch=batch, examples=batch)
    actual = (float(cost), [(net.to_numpy(nW), net.to_numpy(nb)) for nW, nb in nablas])
    assert_gradients_close(net, actual, expected, " after timing")
