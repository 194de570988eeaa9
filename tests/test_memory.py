"""Memory beside time (bench/harness/memory/): the peak of one call, the allocation counters,
and the memory tables of the report. Sizes here are deterministic; nothing depends on timing."""
import json

import numpy as np
import pytest

from bench import report
from bench.harness import memory
from impls.core.presets import PRESETS
from impls.core.testing import create_or_skip

from conftest import impl_params, learnable

MB = 1_000_000
needs_reset = pytest.mark.skipif(not memory.reset_peak(), reason="this OS does not let a process reset its VmHWM")


@needs_reset
def test_the_peak_is_what_the_call_added_not_what_came_before():
    big = np.ones(60 * MB // 8)                      # touched: 60 MB resident before the measured calls
    _, own = memory.peak_rss_of(lambda: np.ones(40 * MB // 8).sum())
    assert 38 * MB <= own["peak_rss"] <= 50 * MB
    del big                                          # freed: the next call must not be charged for it
    _, small = memory.peak_rss_of(lambda: np.ones(1000).sum())
    assert small["peak_rss"] < 5 * MB
    assert small["resident_before"] > 0


def test_numpy_allocations_are_counted_with_their_sizes_and_only_inside_the_call():
    x = np.ones(100)
    count, size = memory.numpy_alloc.count(lambda: [x * 2.0 for _ in range(10)])
    assert count >= 10 and size >= 10 * 800                    # ten 800-byte results (scalars may add a few)
    assert memory.numpy_alloc.count(lambda: None) == (0, 0)
    y = np.empty(1000)                                          # after the call: NumPy's own handler again
    assert y.base is None and memory.numpy_alloc.count(lambda: np.empty(1000)) == (1, 8000)


def _epoch_counts(name, batch=10, steps=6):
    spec = PRESETS["relu"].spec("float32")
    net = create_or_skip(name, spec)
    data = learnable(steps * batch, 10)
    net.set_training_data(data.X_train, data.y_train)
    net.set_params([(np.full((o, i), 0.01), np.zeros(o)) for i, o in zip(spec.sizes[:-1], spec.sizes[1:])])
    order = np.arange(steps * batch)
    net.warm_up(batch, len(order))
    net.train_epoch(order, batch, 0.1)                          # first calls' one-off allocations, outside
    return memory.count_allocations(lambda: net.train_epoch(order, batch, 0.1), net, steps)


def test_numpy_allocates_arrays_per_step_and_numbas_compiled_epoch_is_seen_by_its_runtime():
    numpy_counts = _epoch_counts("numpy")["per_step"]
    assert numpy_counts["numpy"]["count"] >= 10                 # activations, deltas, gradients of each layer
    assert numpy_counts["numpy"]["bytes"] > 10 * 100 * 4        # at least a batch's hidden activations
    numba_counts = _epoch_counts("numba")["per_step"]
    # The whole epoch is one compiled call: NumPy allocates (next to) nothing per step, and what
    # the compiled code allocates (small index arrays, parallel regions' bookkeeping) is Numba's count.
    assert numba_counts["numpy"]["count"] < 1
    assert numba_counts["numba"]["count"] > 0 and numba_counts["numba"]["bytes"] is None


@pytest.mark.parametrize("name,counter,not_counted", [
    ("torch-fast-cpu", "torch", None), ("jax-cpu", None, "XLA")])
def test_each_framework_is_counted_by_its_own_counter_or_said_not_counted(name, counter, not_counted):
    counts = _epoch_counts(name)
    if counter:
        assert counts["per_step"][counter]["count"] > 0 and counts["not_counted"] is None
    else:
        assert not_counted in counts["not_counted"]


def test_every_implementation_can_be_measured():
    """The counters run on every registered implementation that runs here (none raises)."""
    for param in impl_params():
        name = param.values[0]
        if not any(m.name == "skip" for m in param.marks) and "cuda" not in name and name != "reference":
            assert "per_step" in _epoch_counts(name, steps=2)


# -- the report ------------------------------------------------------------------------------
def _run(tmp_path, extra_by_impl):
    from test_bench_report import run_json, timing
    benchmarks = [timing("epoch", impl, b, 0.3, examples=50_000, memory=m) for (impl, b), m in extra_by_impl.items()]
    data = run_json(benchmarks)
    data["nnbench"]["dataset_bytes"] = 219_000_000
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    return report.render(report.load(path))


def test_memory_tables_headline_and_their_methods(tmp_path):
    from test_bench_report import row
    counted = {"per_step": {"numpy": {"count": 14.0, "bytes": 52_000.0}, "numba": {"count": 0.0, "bytes": None}},
               "not_counted": None}
    files = _run(tmp_path, {
        ("numpy", 10): {"peak_rss": 2_500_000, "held": 190_000_000, **counted},
        ("numpy", 1024): {"peak_rss": 40_000_000, **counted},
        ("fast", 10): {"peak_rss": 0, "per_step": {"numpy": {"count": 0.0, "bytes": 0.0}}, "not_counted": None},
        ("fast", 1024): {"peak_rss": None, "per_step": {}, "not_counted": "XLA's buffers"},
    })
    md = files["epoch.md"]
    assert row(md, "**Peak resident memory**", "numpy") == ["2.5 MB", "40 MB"]
    assert row(md, "**Peak resident memory**", "fast") == ["0 B", "not measured"]
    assert row(md, "**Allocations per step**", "numpy") == ["numpy 14 (52 kB)"] * 2
    assert row(md, "**Allocations per step**", "fast") == ["none", "XLA not counted"]
    assert row(md, "**Held by the network**", "numpy") == ["190 MB", "—"]
    assert "cannot" not in md or "high-water mark" in md
    assert "high-water mark" in md and "NEP 49" in md            # each table says how it was measured
    headline = row(files["README.md"], "## Headline", "numpy")
    assert headline[-2:] == ["2.5 MB", "40 MB"]
    assert "219 MB" in files["memory.md"] and "2.5 MB" in files["memory.md"]


def test_a_run_without_memory_figures_says_so(tmp_path):
    from test_bench_report import run_json, timing
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run_json([timing("epoch", "numpy", 10, 0.3, examples=50_000)])))
    files = report.render(report.load(path))
    assert "No memory figures in this run" in files["epoch.md"]
    assert "peak memory" not in files["README.md"].split("## Headline")[1].split("\n\n")[2]


@needs_reset
def test_the_sessions_peak_survives_the_per_call_resets():
    _, first = memory.peak_rss_of(lambda: np.ones(80 * MB // 8).sum())
    memory.peak_rss_of(lambda: None)                            # resets the kernel's mark below that peak
    assert memory.session_peak() >= first["resident_before"] + first["peak_rss"] - 2 * MB
