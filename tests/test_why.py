"""The cost-model and roofline studies' arithmetic, on cases whose answer is known, and each
study end to end at a tiny size on real MNIST."""
import math

import pytest

from bench.harness.phases import PHASES
from bench.studies.__main__ import main
from bench.studies.cost_model import Fit, agrees, fit, predicted_crossovers
from bench.studies.roofline import roof
from impls.core.spec import NetworkSpec

N = 50_000
BATCHES = [10, 32, 128, 1024]


@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_fit_recovers_known_step_and_example_costs(noise):
    c_step, c_example = 20e-6, 2e-6
    jitter = [1 + noise, 1 - noise, 1 + noise, 1 - noise]
    seconds = [(N / b * c_step + N * c_example) * j for b, j in zip(BATCHES, jitter)]
    model = fit(N, BATCHES, seconds)
    assert model.c_step == pytest.approx(c_step, rel=0.1 if noise else 1e-9)
    assert model.c_example == pytest.approx(c_example, rel=0.1 if noise else 1e-9)
    assert abs(model.worst) <= noise * 1.5 + 1e-9


def test_a_cache_cliff_shows_as_a_large_residual_where_it_is():
    seconds = [N / b * 20e-6 + N * 2e-6 for b in BATCHES]
    seconds[-1] *= 2                                         # batch 1024 falls off a cliff
    model = fit(N, BATCHES, seconds)
    assert abs(model.residuals[-1]) > 0.15 and abs(model.residuals[-1]) == max(abs(r) for r in model.residuals)


def test_predicted_crossover_where_the_curves_meet():
    cheap_steps = Fit(c_step=10e-6, c_example=100e-9, residuals=[0.0])   # e.g. a compiled loop
    fast_math = Fit(c_step=100e-6, c_example=50e-9, residuals=[0.0])     # e.g. BLAS behind a framework
    [b] = predicted_crossovers(cheap_steps, fast_math, N, BATCHES)
    assert b == pytest.approx(1800, rel=0.02)                            # found on a grid: within one step
    assert cheap_steps.time(N, b) == pytest.approx(fast_math.time(N, b), rel=0.01)
    assert predicted_crossovers(cheap_steps, Fit(5e-6, 50e-9, [0.0]), N, BATCHES) == []   # one is better everywhere


@pytest.mark.parametrize("predicted,measured,ok", [
    ([100.0], [(32, 128, "a", "b")], True),
    ([500.0], [(32, 128, "a", "b")], True),                 # one step past the interval
    ([2000.0], [(10, 32, "a", "b")], False),
    ([], [], True),
    ([5000.0], [], True),                                    # beyond the measured range: none seen, none expected
    ([64.0], [], False),                                     # predicted inside the range, none measured
    ([], [(32, 128, "a", "b")], False),                      # measured, none predicted
])
def test_agreement_is_within_one_batch_size_step(predicted, measured, ok):
    assert agrees(predicted, measured, BATCHES) is ok


def test_roofline_arithmetic_worked_by_hand():
    """784-30-10 is too big to do by hand: 4-3-2 in float32, batch 2.
    Parameters P = 4*3 + 3 + 3*2 + 2 = 23; hidden + output units H = 3 + 2 = 5.
    forward: FLOPs = 2 * (12 + 6) * 2 = 72; bytes = 4 * (P + 2*4 + 2*2*H) = 4 * 51 = 204.
    backward: FLOPs = 2 * (3*18 - 12) * 2 = 168; bytes = 4 * (2P + 2*4 + 3*2*H) = 4 * 84 = 336.
    epoch of 5 examples at batch 2 (3 steps): FLOPs = 2*42*5 + 2*23*3 = 558; bytes = 4 * (2P*3 + 5*4 + 3*5*H) = 932."""
    spec = NetworkSpec((4, 3, 2))
    cases = {"forward": (2, 2, 72, 204), "backward": (2, 2, 168, 336), "epoch": (5, 2, 558, 932)}
    for name, (examples, batch, flops, moved) in cases.items():
        phase = PHASES[name]
        assert (phase.flops(spec, examples, batch), phase.traffic(spec, examples, batch)) == (flops, moved), name
    # at 10 GB/s and 100 GFLOP/s, 72/204 FLOP/byte is memory-bound at 3.53 GFLOP/s
    assert roof(72 / 204, 100e9, 10e9) == (pytest.approx(72 / 204 * 10e9), "memory")
    assert roof(50.0, 100e9, 10e9) == (100e9, "compute")
    assert math.isclose(PHASES["forward"].traffic(spec.with_dtype("float64"), 2, 2), 2 * 204)


def test_cost_model_study_runs(tmp_path, mnist):
    assert main(["cost-model", "--impl", "numpy", "--impl", "torch-fast-cpu", "--presets", "nielsen",
                 "--batch-sizes", "100", "1000", "5000", "--repeats", "1", "--threads", "1",
                 "--out", str(tmp_path)]) == 0
    text = (tmp_path / "cost-model.md").read_text()
    assert "| numpy " in text and "c_step (µs)" in text and "predicted b*" in text
    assert (tmp_path / "cost-model-nielsen.png").exists()


def test_roofline_study_runs(tmp_path, mnist):
    assert main(["roofline", "--impl", "numpy", "--presets", "nielsen", "--batch-sizes", "1000",
                 "--seconds", "0.01", "--repeats", "1", "--threads", "1", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "roofline.md").read_text()
    assert "## Ceilings" in text and "copy GB/s" in text
    for phase in ("Forward pass", "Backward", "One training epoch"):
        assert phase in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roofline-backward.png", "roofline-epoch.png",
                                                           "roofline-forward.png", "roofline.md"]
