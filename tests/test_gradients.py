"""Every implementation's backprop against central finite differences, in float64."""
import numpy as np
import pytest

from impls.core.check import check_finite_differences, random_problem
from impls.core.testing import create_or_skip
from impls.core.spec import NetworkSpec

from conftest import impl_params

PAIRS = [("sigmoid", "sigmoid_quadratic"), ("relu", "softmax_crossentropy"),
         ("sigmoid", "softmax_crossentropy"), ("relu", "sigmoid_quadratic")]
SIZES = [(5, 4, 3), (6, 5, 4, 3)]


@pytest.mark.parametrize("impl", impl_params())
@pytest.mark.parametrize("hidden,output", PAIRS, ids=lambda v: v)
@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "-".join(map(str, s)))
def test_backprop_matches_finite_differences(impl, hidden, output, sizes):
    spec = NetworkSpec(sizes, hidden, output, "float64")
    net = create_or_skip(impl, spec)
    params, X, y = random_problem(spec, seed=7, batch=4, init="normal")
    result = check_finite_differences(net, params, X, y)     # tolerance justified in impls.core.check
    assert len(result.comparisons) == 2 * (len(sizes) - 1)
    assert np.isfinite(net.gradients(X, y)[0])
