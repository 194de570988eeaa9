"""Checks one implementation against another: forward, every gradient, an SGD step, an epoch.

Written once, used by the tests (parametrized over the registry) and by the benchmarks
(validate before timing). Each check takes two ready implementations, gives them
identical parameters and inputs, and raises AssertionError naming what differs.

Tolerances depend on the dtype of the implementation under test (the oracle is float64):
- float64: both sides compute the same sums in a different order (BLAS blocking vs a
  per-example loop), which perturbs results by a few ulps times the condition of the
  sums; 1e-9 relative is ~10^7 ulps of headroom yet catches any real formula error.
- float32: unit roundoff is 6e-8, and a 784-long dot product of terms of mixed sign loses
  up to sqrt(784) * 6e-8 ~ 2e-6 of the largest partial sums. Forward outputs lie in
  [0, 1], so 1e-4 relative with 1e-5 absolute leaves ~10x margin; gradients are further
  sums of products of those (and divide by the batch), so they get 1e-3 relative with
  an absolute floor of 1e-4 of the largest entry, below which float32 cancellation
  makes relative error meaningless.
Absolute floors are scaled by the largest |expected| entry so they mean the same for
a gradient of size 1e-3 as for one of size 10.
"""
from __future__ import annotations

import numpy as np

from .spec import NetworkSpec, init_params

TOLERANCES = {
    # dtype: {what: (rtol, atol as a fraction of max |expected|)}
    "float64": {"forward": (1e-9, 1e-12), "gradient": (1e-9, 1e-12), "params": (1e-9, 1e-12)},
    "float32": {"forward": (1e-4, 1e-5), "gradient": (1e-3, 1e-4), "params": (1e-4, 1e-5)},
}


def assert_close(actual, expected, dtype: str, what: str, label: str) -> None:
    rtol, atol_frac = TOLERANCES[dtype][what]
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    atol = atol_frac * float(np.max(np.abs(expected), initial=0.0))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol,
                               err_msg=f"{label} differs beyond {dtype} tolerance (rtol={rtol}, atol={atol:.3g})")


def random_problem(spec: NetworkSpec, seed: int, batch: int, init: str = "scaled"):
    """(params, X, y): canonical parameters and an MNIST-like batch (pixels in [0, 1])."""
    rng = np.random.default_rng(seed)
    params = init_params(spec, rng, init)
    X = rng.random((batch, spec.sizes[0]))
    y = rng.integers(0, spec.sizes[-1], size=batch)
    return params, X, y


def check_forward(net, ref, params, X, label="forward") -> None:
    for n in (net, ref):
        n.set_params(params)
    expected = ref.to_numpy(ref.feedforward(ref.asarray(X)))
    actual = net.to_numpy(net.feedforward(net.asarray(X)))
    assert actual.shape == expected.shape, f"{label}: shape {actual.shape}, expected {expected.shape}"
    assert_close(actual, expected, net.spec.dtype, "forward", f"{net.name} {label}")


def check_gradients(net, ref, params, X, y) -> None:
    for n in (net, ref):
        n.set_params(params)
    assert_gradients_close(net, net.gradients(X, y), ref.gradients(X, y))


def assert_gradients_close(net, actual, expected, label: str = "") -> None:
    """Compare host ``(cost, [(nabla_W, nabla_b)])`` of ``net`` with the reference's."""
    (cost, grads), (cost_ref, grads_ref) = actual, expected
    assert_close(cost, cost_ref, net.spec.dtype, "forward", f"{net.name} cost{label}")
    for layer, ((nW, nb), (rW, rb)) in enumerate(zip(grads, grads_ref), start=1):
        assert_close(nW, rW, net.spec.dtype, "gradient", f"{net.name} nabla_W of layer {layer}{label}")
        assert_close(nb, rb, net.spec.dtype, "gradient", f"{net.name} nabla_b of layer {layer}{label}")


def _compare_params(net, ref, label) -> None:
    assert_params_close(net, net.get_params(), ref.get_params(), label)


def assert_params_close(net, params, expected, label: str, what: str = "params") -> None:
    """Compare canonical [(W, b)] of ``net`` with ``expected`` at the ``what`` tolerance."""
    for layer, ((W, b), (rW, rb)) in enumerate(zip(params, expected), start=1):
        assert_close(W, rW, net.spec.dtype, what, f"{net.name} W of layer {layer} {label}")
        assert_close(b, rb, net.spec.dtype, what, f"{net.name} b of layer {layer} {label}")


def check_sgd_step(net, ref, params, X, y, lr: float) -> None:
    for n in (net, ref):
        n.set_params(params)
        n.update_mini_batch(n.asarray(X), n.aslabels(y), lr)
    _compare_params(net, ref, "after one SGD step")


def check_epoch(net, ref, params, X, y, order, batch_size: int, lr: float) -> None:
    costs = []
    for n in (net, ref):
        n.set_params(params)
        n.set_training_data(X, y)
        cost = n.train_epoch(order, batch_size, lr)
        n.sync()
        costs.append(float(cost))
    # Differences compound over the epoch's steps, so compare with the gradient tolerance.
    assert_close(costs[0], costs[1], net.spec.dtype, "gradient", f"{net.name} epoch cost")
    _compare_params(net, ref, "after one epoch")


def finite_difference_gradients(net, params, X, y, eps: float = 1e-6):
    """Central differences (C(p + eps) - C(p - eps)) / 2 eps of the batch's mean cost
    for every parameter; O(eps^2) truncation plus ~1e-16/eps rounding in float64."""
    grads = []
    for layer, (W, b) in enumerate(params):
        pair = []
        for which, arr in ((0, W), (1, b)):
            g = np.zeros_like(arr, dtype=np.float64)
            for idx in np.ndindex(arr.shape):
                costs = []
                for sign in (1.0, -1.0):
                    bumped = [(w.copy(), c.copy()) for w, c in params]
                    bumped[layer][which][idx] += sign * eps
                    net.set_params(bumped)
                    costs.append(net.gradients(X, y)[0])
                g[idx] = (costs[0] - costs[1]) / (2 * eps)
            pair.append(g)
        grads.append(tuple(pair))
    net.set_params(params)
    return grads
