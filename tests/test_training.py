"""The shared training loop: seeding, divergence, time-to-target, and real MNIST runs."""
import dataclasses

import numpy as np
import pytest

from impls import create, default_dtype
from impls.core.errors import DataError, DivergedError
from impls.core.presets import DEFAULT_SEED, PRESETS
from impls.core.registry import unsupported
from impls.core.train import EpochRecord, RunResult, train

from conftest import impl_params, learnable
from impls.core.testing import create_or_skip


def tiny(preset_name, **changes):
    """A preset shrunk to a few hundred examples and a small hidden layer (same kind of network)."""
    preset = PRESETS[preset_name]
    sizes = (preset.sizes[0], 16, preset.sizes[-1])
    return dataclasses.replace(preset, **{"sizes": sizes, "n_train": 300, "epochs": 2, **changes})


@pytest.fixture(scope="module")
def synthetic():
    return learnable(300, 100)


@pytest.mark.parametrize("impl", impl_params())
@pytest.mark.parametrize("preset", ["nielsen", "relu", "fullbatch"])
def test_same_seed_same_run(impl, preset, synthetic):
    preset = tiny(preset)
    dtype = "float64" if not unsupported(impl, preset.spec("float64")) else default_dtype(impl)
    runs = [train(create_or_skip(impl, preset.spec(dtype)), preset, synthetic, seed=seed) for seed in (5, 5, 6)]
    first, again, other = ([(r.cost, r.accuracy) for r in run.history] for run in runs)
    assert first == again
    assert first != other


def test_training_leaves_callers_data_alone(synthetic):
    """Nielsen's network.py shuffles the caller's list in place; here the order is separate."""
    before = [a.copy() for a in dataclasses.astuple(synthetic)[:4]]
    train(create("numpy", PRESETS["relu"].spec()), tiny("relu"), synthetic, seed=0)
    for a, b in zip(before, dataclasses.astuple(synthetic)[:4]):
        np.testing.assert_array_equal(a, b)


def test_training_learns_the_synthetic_task(synthetic):
    result = train(create("numpy", tiny("relu").spec()), tiny("relu", epochs=5), synthetic, seed=0)
    assert result.history[-1].cost < result.history[0].cost
    assert result.final_accuracy > 0.9


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow on the way to NaN is the point
def test_divergence_is_reported_with_its_epoch(synthetic):
    preset = tiny("relu", lr=1e30)
    with pytest.raises(DivergedError, match=r"diverged at epoch 1 .*lower learning rate"):
        train(create("numpy", preset.spec()), preset, synthetic, seed=0)


def test_a_training_set_smaller_than_the_preset_needs_is_refused(synthetic):
    """5 images, or the 10,000 test images under training names, are not the preset."""
    with pytest.raises(DataError, match=r"preset nielsen trains on 50,000 training images, but the training "
                                        r"set holds only 300$"):
        train(create("numpy", PRESETS["nielsen"].spec()), PRESETS["nielsen"], synthetic, seed=0)


def test_time_to_target_is_first_epoch_at_target():
    result = RunResult("x", "nielsen", 0, target=0.9, history=[
        EpochRecord(1, 1.0, 0.5, 0.80), EpochRecord(2, 2.0, 0.4, 0.91),
        EpochRecord(3, 4.0, 0.3, 0.89)])
    assert result.time_to_target == (2, 3.0)
    assert result.final_accuracy == 0.89 and not result.met_target
    assert result.train_seconds == 7.0


@pytest.mark.data
@pytest.mark.parametrize("preset", list(PRESETS))
def test_one_epoch_on_real_mnist(mnist, preset):
    """One epoch reaches the preset's sanity bar (the book shows ~90% after its first epoch)."""
    preset = PRESETS[preset]
    result = train(create("numpy", preset.spec()), preset, mnist, seed=DEFAULT_SEED, epochs=1)
    assert result.final_accuracy >= preset.sanity, result.history


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("preset", list(PRESETS))
def test_full_preset_reaches_target_with_default_seed(mnist, preset):
    preset = PRESETS[preset]
    result = train(create("numpy", preset.spec()), preset, mnist, seed=DEFAULT_SEED)
    assert result.met_target, [r.accuracy for r in result.history]
