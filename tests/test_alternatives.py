"""torch.compile, JAX and scikit-learn: the behaviour their correctness tests cannot see.

The shared equivalence and gradient tests already hold each of them to the float64
reference. Here: compiling happens in ``warm_up`` and never inside a timed epoch (the book's
short last mini-batch included), the thread record says what was not pinned, scikit-learn's
epoch is exactly one pass of the book's mini-batches, and a missing package is "unavailable:
needs ...", never an import error.
"""
import subprocess
import sys

import numpy as np
import pytest

from impls.core.presets import PRESETS
from impls.core.spec import NetworkSpec, init_params
from impls.core.testing import create_or_skip

SPEC = NetworkSpec((20, 16, 10), "relu", "softmax_crossentropy")


def ready(name, n=25, spec=SPEC):
    """``name`` with seeded weights and ``n`` random training examples."""
    net = create_or_skip(name, spec)
    rng = np.random.default_rng(0)
    net.set_params(init_params(spec, rng, "scaled"))
    net.set_training_data(rng.random((n, spec.sizes[0]), dtype=np.float32), rng.integers(0, 10, n))
    return net


def test_torch_compile_compiles_in_warm_up_and_never_in_an_epoch():
    """53 examples and SPEC, as test_equivalence's epochs: the step sizes compiled here (10, the
    short 3 and all 53) are the ones those compile, and Dynamo compiles each once per process."""
    torch = pytest.importorskip("torch")
    net = ready("torch-compile-cpu", n=53)
    before = net.get_params()
    assert net.warm_up(10) > 0 and net.compile_seconds > 0       # 53 examples: batches of 10 and of 3
    for (W, b), (W0, b0) in zip(net.get_params(), before):     # the compiling steps left no trace
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
    graphs = dict(torch._dynamo.utils.counters["stats"])
    net.train_epoch(np.arange(53), 10, 0.1)
    assert dict(torch._dynamo.utils.counters["stats"]) == graphs, "a timed epoch compiled"
    assert net.warm_up(10) == 0.0                              # nothing left to compile
    assert net.warm_up(60) > 0                                 # above n: one mini-batch of all 53
    graphs = dict(torch._dynamo.utils.counters["stats"])
    net.train_epoch(np.arange(53), 60, 0.1)
    assert dict(torch._dynamo.utils.counters["stats"]) == graphs, "a timed epoch compiled"


def test_jax_compiles_in_warm_up_and_never_in_an_epoch():
    net = ready("jax-cpu")
    assert net.warm_up(10) > 0
    compiled = net.compile_seconds
    net.train_epoch(np.random.default_rng(1).permutation(25), 10, 0.1)
    net.sync()
    assert net.compile_seconds == compiled, "a timed epoch compiled"


def test_jax_records_that_its_threads_are_not_pinned():
    assert create_or_skip("jax-cpu", SPEC).threads()["xla"].startswith("not pinned")


def test_sklearn_declines_the_books_network_with_the_reason():
    from impls.core.errors import UnsupportedError
    from impls.core.registry import create
    with pytest.raises(UnsupportedError, match="sigmoid output with quadratic cost"):
        create("sklearn", PRESETS["nielsen"].spec())


def test_sklearn_epoch_is_one_pass_of_the_books_mini_batches():
    net = ready("sklearn")
    seen = net.model.t_
    cost = net.train_epoch(np.arange(25), 10, 0.1)      # batches of 10, 10 and 5
    assert net.model.t_ - seen == 25                   # every example once
    # The mean of the three batches' costs, not the mean over examples (which weighs the 5 less):
    # redo it batch by batch from the same start.
    again = ready("sklearn")
    costs = [again.update_mini_batch(again.X_train[s:s + 10], again.y_train[s:s + 10], 0.1) for s in (0, 10, 20)]
    assert cost == pytest.approx(np.mean(costs), rel=1e-6)


@pytest.mark.parametrize("name, package", [("jax-cpu", "jax"), ("sklearn", "sklearn")])
def test_a_missing_package_is_unavailable_with_what_to_install(name, package):
    code = (f"import sys; sys.modules[{package!r}] = None; from impls.core.registry import available; "
            f"print(available({{{name!r}}})[{name!r}])")   # this name only: no other framework imported
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert f"pip install 'nnbench[{package}]'" in out
