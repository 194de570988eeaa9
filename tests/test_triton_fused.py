"""The fused Triton step (impls/triton_fused.py) against the float64 reference.

Without a CUDA device its kernels run in Triton's interpreter on CPU tensors -- the very kernels
a GPU compiles, element for element in NumPy -- because conftest.py sets TRITON_INTERPRET=1
before they are imported; with one, the compiled kernels run here and test_equivalence.py and
test_gradients.py check `triton-fused-cuda` with every other implementation. Shapes are small
where the interpreter runs (it takes milliseconds per program), but include both presets'
networks: 784 inputs (not a multiple of BLOCK_K), hidden widths 30 and 100 (not powers of two),
mini-batches of one, of several BLOCK_M blocks and the book's short last one."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from impls import available
from impls.core.check import (assert_params_close, check_epoch, check_forward, check_gradients, check_sgd_step,
                              random_problem)
from impls.core.presets import PRESETS
from impls.core.spec import NetworkSpec

triton = pytest.importorskip("triton", reason="triton is not installed (make setup installs it)")
from impls.triton_fused import INTERPRETED, MAX_WIDTH, TritonFusedNetwork  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEVICE = "cpu" if INTERPRETED else "cuda"
# What `nnbench check` is given: the registered CUDA name, or the CPU variant only the interpreter runs.
NAME = "impls.triton_fused:interpreted" if INTERPRETED else "triton-fused-cuda"
REASON = TritonFusedNetwork.unavailable_reason(device=DEVICE)
runs_here = pytest.mark.skipif(REASON is not None, reason=f"triton-fused on {DEVICE}: {REASON}")
PRESET_NETWORKS = [pytest.param(PRESETS[name], id=name) for name in ("nielsen", "relu")]


def make(spec):
    net = TritonFusedNetwork(spec, device=DEVICE)
    net.name = NAME
    return net


def reference(spec):
    from impls import create
    return create("reference", spec.with_dtype("float64"))


@runs_here
def test_nnbench_check_passes():
    """The conformance suite, as a user runs it (in a child process, so the ad hoc name is
    not registered in this one); the 4-layer network is declined, with the reason."""
    out = subprocess.run([sys.executable, "-m", "impls.core.cli", "check", NAME, "--no-mnist"], cwd=REPO,
                         env=os.environ, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "all 10 checks passed, 2 skipped" in out.stdout
    assert "fuses networks with exactly one hidden layer, not 2" in out.stdout


@runs_here
@pytest.mark.parametrize("preset", PRESET_NETWORKS)
def test_preset_network_forward_gradients_and_step(preset):
    spec = preset.spec()
    net, ref = make(spec), reference(spec)
    params, X, y = random_problem(spec, seed=1, batch=21, init=preset.init)   # two BLOCK_M blocks
    check_forward(net, ref, params, X)
    check_forward(net, ref, params, X[:1], label="forward on one example")
    check_gradients(net, ref, params, X, y)
    check_sgd_step(net, ref, params, X, y, preset.lr)
    net.set_params(params)
    before = net.get_params()
    net.gradients(X, y)
    assert_params_close(net, net.get_params(), before, "after backprop, which changes nothing", "identical")


@runs_here
@pytest.mark.parametrize("preset", PRESET_NETWORKS)
@pytest.mark.parametrize("n,batch_size", [(45, None), (45, 17), (45, 64), (5, 1)],
                         ids=["preset-batch", "batch17", "fullbatch", "batch1"])
def test_preset_network_epoch(preset, n, batch_size):
    """45 examples: the preset's batch (10 or 32) and 17 end on a short mini-batch, 64 is one
    mini-batch of all 45 (three BLOCK_M blocks)."""
    spec = preset.spec()
    net, ref = make(spec), reference(spec)
    params, X, y = random_problem(spec, seed=4, batch=n, init=preset.init)
    order = np.random.default_rng(5).permutation(n)
    check_epoch(net, ref, params, X, y, order, batch_size or preset.batch_size, preset.lr)


@runs_here
def test_epoch_plan_is_reused_across_orders_and_rebuilt_for_a_new_rate():
    """The epoch's static state (on CUDA, its captured graph) serves every epoch of the same shape;
    each epoch's new order reaches it, and a new rate builds a new one."""
    spec = PRESETS["relu"].spec()
    net, ref = make(spec), reference(spec)
    params, X, y = random_problem(spec, seed=6, batch=40)
    rng = np.random.default_rng(7)
    for n in (net, ref):
        n.set_params(params)
        n.set_training_data(X, y)
    plans = []
    for lr in (0.1, 0.1, 0.05):
        order = rng.permutation(len(X))
        costs = [float(n.train_epoch(order, 16, lr)) for n in (net, ref)]
        plans.append(net._plan)
        np.testing.assert_allclose(costs[0], costs[1], rtol=1e-3)
        assert_params_close(net, net.get_params(), ref.get_params(), f"after an epoch at lr {lr}", "gradient")
    assert plans[1] is plans[0] and plans[2] is not plans[1]
    if DEVICE == "cuda":
        assert all(hasattr(p, "graph") for p in plans)


def test_declines_what_it_does_not_fuse_with_the_reason():
    assert "exactly one hidden layer, not 2" in TritonFusedNetwork.unsupported_reason(NetworkSpec((20, 16, 12, 10)))
    assert "not float64" in TritonFusedNetwork.unsupported_reason(NetworkSpec((20, 16, 10), dtype="float64"))
    wide = NetworkSpec((20, MAX_WIDTH + 1, 10))
    assert f"at most {MAX_WIDTH} units" in TritonFusedNetwork.unsupported_reason(wide)
    assert TritonFusedNetwork.unsupported_reason(PRESETS["relu"].spec()) is None


def test_cpu_needs_the_interpreter():
    """Outside the interpreter, device "cpu" is a reason, not an error (in a child process: this
    one decided when its kernels were imported)."""
    probe = "from impls.triton_fused import TritonFusedNetwork as N; print(N.unavailable_reason(device='cpu'))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=dict(os.environ, TRITON_INTERPRET="0"),
                         capture_output=True, text=True, timeout=120, check=True)
    assert "start the process with TRITON_INTERPRET=1" in out.stdout


@pytest.mark.skipif(DEVICE == "cuda", reason="a CUDA device is present")
def test_without_a_gpu_the_cuda_variant_is_unavailable_with_the_reason():
    assert "no CUDA device" in available()["triton-fused-cuda"]


def test_missing_triton_is_a_clean_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)          # makes `import triton` fail
    monkeypatch.delitem(sys.modules, "impls.triton_fused", raising=False)
    from impls.core import registry
    monkeypatch.setattr(registry, "_registry", None)          # a fresh registry imports afresh
    assert "needs the Python package 'triton'" in available()["triton-fused-cuda"]
