"""Each implementation against the float64 reference from identical weights and inputs:
forward, every gradient, one SGD step, one short epoch (tolerances in impls.core.check).

One network and its reference per spec serve all of that spec's checks, as in ``nnbench check``:
every check sets the weights (and the epoch its training data) itself, so what one check leaves
behind cannot help the next, and a network that compiles per shape (torch.compile, Numba)
compiles each shape once instead of once per test."""
import numpy as np
import pytest

from impls import create
from impls.core.testing import create_or_skip
from impls.core.check import check_epoch, check_forward, check_gradients, check_sgd_step, random_problem
from impls.core.spec import NetworkSpec

from conftest import impl_params

PAIRS = [("sigmoid", "sigmoid_quadratic"), ("relu", "softmax_crossentropy")]
SIZES = [(20, 16, 10), (20, 16, 12, 10)]


@pytest.fixture(params=["float32", "float64"], scope="module")
def dtype(request):
    return request.param


@pytest.fixture(scope="module")
def pair(impl, dtype, hidden, output, sizes):
    """(implementation under test, reference) for one spec. Only the documented refusal (the
    implementation declines this dtype or network) skips; any other error fails."""
    spec = NetworkSpec(sizes, hidden, output, dtype)
    return create_or_skip(impl, spec), create("reference", spec.with_dtype("float64"))


parametrize_all = [
    pytest.mark.parametrize("impl", impl_params(exclude=("reference",)), scope="module"),
    pytest.mark.parametrize("hidden,output", PAIRS, ids=lambda v: v, scope="module"),
    pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "-".join(map(str, s)), scope="module"),
]


def with_all(fn):
    for mark in parametrize_all:
        fn = mark(fn)
    return fn


@with_all
def test_forward(pair):
    net, ref = pair
    params, X, _ = random_problem(net.spec, seed=1, batch=7)
    check_forward(net, ref, params, X)
    check_forward(net, ref, params, X[:1], label="forward on one example")


@with_all
def test_gradients(pair):
    net, ref = pair
    params, X, y = random_problem(net.spec, seed=2, batch=7)
    check_gradients(net, ref, params, X, y)


@with_all
def test_sgd_step(pair):
    net, ref = pair
    params, X, y = random_problem(net.spec, seed=3, batch=7)
    check_sgd_step(net, ref, params, X, y, lr=0.5)


@with_all
@pytest.mark.parametrize("batch_size", [10, 17, 53], ids=["batch10", "batch17", "fullbatch"])
def test_epoch(pair, batch_size):
    """53 examples: batch 10 leaves a short last batch, as the book's loop does; batch 17
    an odd number of examples in a block (numba's blocks of 8 take in a remainder)."""
    net, ref = pair
    params, X, y = random_problem(net.spec, seed=4, batch=53)
    order = np.random.default_rng(5).permutation(len(X))
    check_epoch(net, ref, params, X, y, order, batch_size, lr=0.5)
