"""Every implementation's backprop against central finite differences, in float64."""
import numpy as np
import pytest

from impls import create
from impls.check import finite_difference_gradients, random_problem
from impls.spec import NetworkSpec

from conftest import impl_params

PAIRS = [("sigmoid", "sigmoid_quadratic"), ("relu", "softmax_crossentropy"),
         ("sigmoid", "softmax_crossentropy"), ("relu", "sigmoid_quadratic")]
SIZES = [(5, 4, 3), (6, 5, 4, 3)]


@pytest.mark.parametrize("impl", impl_params())
@pytest.mark.parametrize("hidden,output", PAIRS, ids=lambda v: v)
@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "-".join(map(str, s)))
def test_backprop_matches_finite_differences(impl, hidden, output, sizes):
    spec = NetworkSpec(sizes, hidden, output, "float64")
    net = create(impl, spec)
    params, X, y = random_problem(spec, seed=7, batch=4, init="normal")
    net.set_params(params)
    cost, grads = net.gradients(X, y)
    numeric = finite_difference_gradients(net, params, X, y)
    assert np.isfinite(cost)
    for layer, ((gW, gb), (nW, nb)) in enumerate(zip(grads, numeric), start=1):
        # Central differences with eps=1e-6 are accurate to ~1e-9 absolute here
        # (O(eps^2) truncation, ~1e-10 rounding), far below any real gradient error.
        np.testing.assert_allclose(gW, nW, rtol=1e-5, atol=1e-8, err_msg=f"{impl} nabla_W layer {layer}")
        np.testing.assert_allclose(gb, nb, rtol=1e-5, atol=1e-8, err_msg=f"{impl} nabla_b layer {layer}")
