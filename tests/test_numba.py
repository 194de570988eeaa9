"""Behaviour specific to the ``numba`` implementation (its equivalence with the reference is
checked with every other implementation in test_equivalence.py and test_gradients.py):
divergence still detected under its fast-math flags, identical results at any thread
count and in profiling mode, no compilation inside a timed call, a cache that works
when the package directory is read-only, and a clean skip without Numba."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from impls import available, create
from impls.core.check import random_problem
from impls.core.errors import ConfigError, DivergedError
from impls.core.presets import Preset
from impls.core.spec import NetworkSpec
from impls.core.mnist import Dataset
from impls.core.train import train

numba = pytest.importorskip("numba", reason="numba is not installed")
pytestmark = pytest.mark.skipif(available()["numba"] is not None, reason=f"numba: {available()['numba']}")

PAIRS = [("sigmoid", "sigmoid_quadratic"), ("relu", "softmax_crossentropy")]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def restore_numba_threads():
    """set_threads changes Numba's (thread-local) count; later tests must not inherit it."""
    n = numba.get_num_threads()
    yield
    numba.set_num_threads(n)


def epoch_result(spec, params, X, y, *, threads=None, profile=False, batch=32, lr=0.1):
    """(cost, params) after one epoch from ``params`` over X in a fixed order."""
    net = create("numba", spec)
    net.profile = profile
    if threads:
        net.set_threads(threads)
    net.set_params(params)
    net.set_training_data(X, y)
    cost = net.train_epoch(np.random.default_rng(1).permutation(len(X)), batch, lr)
    return cost, net.get_params()


def assert_identical(a, b):
    (cost_a, params_a), (cost_b, params_b) = a, b
    assert cost_a == cost_b
    for (Wa, ba), (Wb, bb) in zip(params_a, params_b):
        np.testing.assert_array_equal(Wa, Wb)
        np.testing.assert_array_equal(ba, bb)


def big_problem(hidden, output, dtype="float32"):
    """Layers wide enough (batch x n_in x n_out >= the parallel threshold) that every
    kernel takes its prange path, three layers so BP2 runs in parallel too, and odd
    halves (15, 25 neurons) so a split moves where rows are paired."""
    from impls.numba_impl.kernels import PARALLEL_MIN_MACS
    spec = NetworkSpec((784, 30, 162, 10), hidden, output, dtype)
    assert min(32 * n_in * n_out for n_in, n_out in zip(spec.sizes[:2], spec.sizes[1:3])) >= PARALLEL_MIN_MACS
    params, X, y = random_problem(spec, seed=3, batch=100)
    return spec, params, X, y


# -- fast math must not hide a divergence ----------------------------------------------------
def test_fastmath_flags_keep_nan_and_inf():
    from impls.numba_impl.kernels import FASTMATH
    assert "reassoc" in FASTMATH and not FASTMATH & {"fast", "nnan", "ninf"}


@pytest.mark.parametrize("hidden,output", PAIRS, ids=lambda v: v)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weight_gives_the_cost_numpy_gives(hidden, output, bad):
    """One NaN weight must make the cost NaN (max(z, 0) in ReLU, or nnan folding, would
    hide it); an infinite one saturates a sigmoid (finite cost) but not a ReLU: in every
    case numba's cost is finite exactly when numpy's is, in an SGD epoch too."""
    spec = NetworkSpec((20, 16, 10), hidden, output)
    params, X, y = random_problem(spec, seed=0, batch=8)
    params[0][0][3, 5] = bad         # one weight of one hidden neuron
    finite = {}
    for impl in ("numpy", "numba"):
        net = create(impl, spec)
        net.set_params(params)
        net.set_training_data(X, y)
        with np.errstate(all="ignore"):
            finite[impl] = (np.isfinite(net.gradients(X, y)[0]), np.isfinite(float(net.train_epoch(np.arange(8), 4, 0.1))))
    assert finite["numba"] == finite["numpy"]
    if np.isnan(bad):
        assert finite["numba"] == (False, False)


def test_training_loop_raises_diverged():
    spec = NetworkSpec((20, 16, 10), "relu", "softmax_crossentropy")
    rng = np.random.default_rng(0)
    X, y = rng.random((200, 20), dtype=np.float32), rng.integers(0, 10, 200)
    data = Dataset(X, y, X[:50], y[:50])
    preset = Preset("huge-lr", spec.sizes, spec.hidden, spec.output, "normal", batch_size=10,
                    lr=1e30, epochs=2, n_train=200, target=0.5, provenance="test",
                    sanity=0.5, smoke=(200, 2, 0.5))
    with pytest.raises(DivergedError, match="diverged at epoch 1"):
        train(create("numba", spec), preset, data, seed=1)


# -- threads and profiling mode change nothing in the results ---------------------------------
@pytest.mark.parametrize("hidden,output", PAIRS, ids=lambda v: v)
def test_same_result_at_any_thread_count(hidden, output):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs Numba with at least 2 threads")
    spec, params, X, y = big_problem(hidden, output)
    one = epoch_result(spec, params, X, y, threads=1)
    assert_identical(one, epoch_result(spec, params, X, y, threads=1))    # repeatable
    assert_identical(one, epoch_result(spec, params, X, y, threads=2))    # and split-independent


@pytest.mark.parametrize("hidden,output", PAIRS, ids=lambda v: v)
@pytest.mark.parametrize("batch", [32, 17, 7])
def test_profiling_mode_is_the_same_epoch(hidden, output, batch):
    spec, params, X, y = big_problem(hidden, output)
    assert_identical(epoch_result(spec, params, X, y, batch=batch),
                     epoch_result(spec, params, X, y, batch=batch, profile=True))


def test_profiling_mode_from_environment(monkeypatch):
    monkeypatch.setenv("NNBENCH_NUMBA_PROFILE", "1")
    assert create("numba", NetworkSpec((4, 3, 2))).profile
    monkeypatch.setenv("NNBENCH_NUMBA_PROFILE", "0")
    assert not create("numba", NetworkSpec((4, 3, 2))).profile


def test_threads_recorded_and_checked():
    net = create("numba", NetworkSpec((4, 3, 2)))
    net.set_threads(1)
    assert net.threads()["numba"] == 1 and numba.get_num_threads() == 1
    assert net.threads()["numba_layer"] == numba.threading_layer()
    for bad in (0, numba.config.NUMBA_NUM_THREADS + 1):
        with pytest.raises(ConfigError, match="NUMBA_NUM_THREADS"):
            net.set_threads(bad)


def test_bad_input_is_a_config_error_not_a_read_out_of_bounds():
    """The compiled loops do not check bounds, so the wrapper must."""
    net = create("numba", NetworkSpec((4, 3, 2)))
    net.set_training_data(np.zeros((5, 4)), np.zeros(5, dtype=int))
    with pytest.raises(ConfigError, match="batch size"):
        net.train_epoch(np.arange(5), 0, 0.1)
    with pytest.raises(ConfigError, match="order must index the 5"):
        net.train_epoch(np.array([0, 1, 5]), 2, 0.1)
    with pytest.raises(ConfigError, match="order must index the 5"):
        net.train_epoch(np.array([-1, 1]), 2, 0.1)
    X = net.asarray(np.zeros((3, 4)))
    with pytest.raises(ConfigError, match=r"shaped \(n, 4\)"):
        net.feedforward(net.asarray(np.zeros((3, 5))))
    with pytest.raises(ConfigError, match="labels must lie in 0..1"):
        net.update_mini_batch(X, net.aslabels([0, 1, 2]), 0.1)
    with pytest.raises(ConfigError, match="labels must be 3 integers"):
        net.backprop(X, net.aslabels([0, 1]))


# -- compilation happens at construction, never inside a timed call ----------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_no_compilation_after_construction(dtype):
    from impls.numba_impl import kernels as numba_kernels
    dispatchers = {name: f for name, f in vars(numba_kernels).items() if isinstance(f, numba.core.dispatcher.Dispatcher)}
    for profile in (False, True):
        spec = NetworkSpec((784, 30, 10), dtype=dtype)
        net = create("numba", spec)
        net.profile = profile
        assert net.compile_seconds > 0
        before = {name: len(f.signatures) for name, f in dispatchers.items()}
        params, X, y = random_problem(spec, seed=0, batch=40)
        X.setflags(write=False)       # a read-only array would be a new Numba type
        net.set_params(params)
        net.set_training_data(X, y)
        net.train_epoch(np.random.default_rng(0).permutation(40), 10, 0.1)
        net.update_mini_batch(net.asarray(X), net.aslabels(y), 0.1)
        net.gradients(X, y)
        net.evaluate(X, y)
        assert {name: len(f.signatures) for name, f in dispatchers.items()} == before


# -- the on-disk cache --------------------------------------------------------------------------
CACHE_PROBE = textwrap.dedent("""
    import warnings, numpy as np
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")      # as a user sees them: once per place
        from impls.numba_impl import kernels as K
    K.make_layout(np.array([4, 3, 2]), 5)     # one small kernel: compiles in a second
    print(K.__file__, sum(K.make_layout.stats.cache_hits.values()), len(caught))
""")


def run_probe(package_root, env):
    """(cache hits, warnings) of a fresh process importing the package at package_root."""
    out = subprocess.run([sys.executable, "-c", CACHE_PROBE], cwd=package_root, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    module, hits, warned = out.stdout.split()
    assert Path(module).is_relative_to(package_root)
    return int(hits), int(warned)


@pytest.fixture
def read_only_install(tmp_path):
    """(root, env): a copy of the package whose __pycache__ cannot be created (a file stands in
    its place: this also holds for root, who ignores permission bits), imported from root."""
    root = tmp_path / "install"
    shutil.copytree(REPO / "impls", root / "impls", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "impls" / "numba_impl" / "__pycache__").write_text("not a directory")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "user-cache"), PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=str(root))
    return root, env


def nowhere_writable(tmp_path, env):
    (tmp_path / "blocked").write_text("")
    env["XDG_CACHE_HOME"] = str(tmp_path / "blocked" / "cache")


def test_cache_works_in_a_read_only_install(tmp_path, read_only_install):
    """A read-only install caches per user."""
    root, env = read_only_install
    assert run_probe(root, env) == (0, 0)                     # compiled, cached per user
    assert list((tmp_path / "user-cache" / "numba").rglob("*make_layout*.nbi"))
    assert run_probe(root, env) == (1, 0)                     # loaded from that cache
    # Nowhere writable at all: one warning, and the kernels still compile and run.
    nowhere_writable(tmp_path, env)
    hits, warned = run_probe(root, env)
    assert hits == 0 and warned == 1


def test_the_command_line_shows_that_warning(tmp_path, read_only_install):
    """It used to ignore every RuntimeWarning, so each run compiled afresh (many times slower) unsaid."""
    root, env = read_only_install
    nowhere_writable(tmp_path, env)
    proc = subprocess.run([sys.executable, "-m", "impls.core.cli", "list", "--probe", "numba"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("nnbench: warning: Numba finds no writable cache directory for "), proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "numba" in proc.stdout


# -- without Numba the implementation is unavailable, not an import error -------------------------
def test_missing_numba_is_a_clean_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)          # makes `import numba` fail
    for name in ("impls.numba_impl", "impls.numba_impl.kernels"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    from impls.core import registry
    monkeypatch.setattr(registry, "_registry", None)          # a fresh registry imports afresh
    reason = available()["numba"]
    assert reason and "numba" in reason


# -- it learns on real MNIST --------------------------------------------------------------------
@pytest.mark.data
def test_one_nielsen_epoch_learns(mnist):
    from impls.core.presets import get_preset
    preset = get_preset("nielsen")
    net = create("numba", preset.spec())
    result = train(net, preset, mnist, seed=0, epochs=1)
    assert result.final_accuracy > 0.85
    assert result.threads["numba"] == net.n_threads
