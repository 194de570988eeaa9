"""The one divergence rule (impls/core/divergence.py), applied by the shared loop: runs that blew
up or collapsed are stopped with one line, the same for every implementation, and slow but
legitimate runs never are. Histories below are measured runs (numpy, seed 0, full MNIST)."""
import dataclasses
import math
import re

import numpy as np
import pytest

from impls.core.testing import create_or_skip
from impls.core.divergence import MIN_UPDATES, Chance, collapse
from impls.core.errors import DivergedError
from impls.core.presets import PRESETS
from impls.core.registry import default_dtype
from impls.core.train import train

from conftest import impl_params, learnable

#: MNIST's: the commonest test digit (1) is 11.35%; class-frequency costs for each output
SOFTMAX = Chance(accuracy=0.1135, cost=2.3012)
QUADRATIC = Chance(accuracy=0.1135, cost=0.4499)
NIELSEN, RELU, FULL = 5000, 1875, 1            # updates per epoch: 50,000 / 10, 60,000 / 32, full batch


def first_verdict(costs, accuracies, chance, updates):
    """(epoch, what was seen) at the first epoch the rule stops, or None: as train() applies it."""
    for epoch in range(1, len(costs) + 1):
        seen = collapse(costs[:epoch], accuracies[epoch - 1], chance, updates)
        if seen:
            return epoch, seen
    return None


@pytest.mark.parametrize("costs,accuracies,chance,updates,epoch,words", [
    ([18.3767], [0.0974], SOFTMAX, RELU, 1, "over 5 times the cost of always guessing"),       # relu, lr 50
    ([78.4684], [0.1010], SOFTMAX, RELU, 1, "over 5 times"),                                   # relu, lr 1e4
    ([1.25897e17, 4636.38], [0.1010, 0.1028], SOFTMAX, RELU, 1, "over 5 times"),               # torch-fast, 1e4
    ([1.2871, 1.28707, 1.28707], [0.1135] * 3, QUADRATIC, NIELSEN, 2, "at chance"),           # nielsen, lr 1e6
    ([0.500243, 0.5], [0.0980] * 2, QUADRATIC, NIELSEN, 2, "no longer falls"),                # nielsen, lr 300
    ([2.32476, 6.37432, 63.7363], [0.1746, 0.1194, 0.2055], SOFTMAX, FULL, 3, "its starting cost"),  # fullbatch, 10
], ids=["relu-lr50", "relu-lr1e4", "torch-fast-lr1e4", "nielsen-lr1e6", "nielsen-lr300", "fullbatch-lr10"])
def test_runs_that_blew_up_or_collapsed_are_stopped(costs, accuracies, chance, updates, epoch, words):
    verdict = first_verdict(costs, accuracies, chance, updates)
    assert verdict is not None and verdict[0] == epoch and words in verdict[1], verdict


@pytest.mark.parametrize("costs,accuracies,chance,updates", [
    # fullbatch: one update an epoch, near chance at first, the cost falling 2.5-3% an epoch
    ([2.32476, 2.2601, 2.20465, 2.15411, 2.1062], [0.1478, 0.2195, 0.2888, 0.3375, 0.3873], SOFTMAX, FULL),
    # ... and from a seed that starts at chance, for the 100 epochs of the preset, falling 1% an epoch
    ([2.35 * 0.99 ** k for k in range(100)], [0.10] * 100, SOFTMAX, FULL),
    # nielsen at batch 50,000: the initial N(0, 1) network's cost, up to 6.6 H over 40 seeds
    ([2.96, 1.9, 1.2], [0.1025, 0.0896, 0.0863], QUADRATIC, FULL),
    # nielsen at lr 0.001: still at chance after 5,000 updates, but the cost falls 32% in the next epoch
    ([1.1838, 0.799665], [0.1023, 0.1202], QUADRATIC, NIELSEN),
    # one of the book's N(0, 1) seeds that stalls near 86%: flat cost, far above chance
    ([0.1, 0.07] + [0.065] * 28, [0.84, 0.85] + [0.8629] * 28, QUADRATIC, NIELSEN),
    # a Fashion-MNIST run (10 balanced classes) that misses MNIST's target
    ([0.6, 0.45, 0.42, 0.42, 0.421], [0.80, 0.83, 0.84, 0.85, 0.85], Chance(0.10, math.log(10)), RELU),
    # relu as the presets train it
    ([0.3352, 0.1475, 0.1027], [0.944, 0.962, 0.968], SOFTMAX, RELU),
], ids=["fullbatch", "fullbatch-slow-seed", "nielsen-full-batch", "nielsen-lr0.001", "nielsen-stalled-seed",
        "fashion-mnist", "relu"])
def test_slow_but_legitimate_runs_are_never_stopped(costs, accuracies, chance, updates):
    assert first_verdict(costs, accuracies, chance, updates) is None


def test_chance_is_the_best_constant_guess():
    y = np.repeat(np.arange(10), 10)
    assert Chance.of("softmax_crossentropy", y, y, 10) == Chance(0.1, pytest.approx(math.log(10)))
    assert Chance.of("sigmoid_quadratic", y, np.array([3, 3, 3, 1]), 10) == Chance(0.75, pytest.approx(0.45))


def test_a_collapse_is_judged_only_after_enough_updates():
    """A few updates on a tiny set (the conformance checks train 6 a epoch) prove nothing."""
    assert collapse([1.0, 1.0], 0.1, QUADRATIC, MIN_UPDATES // 2 - 1) is None
    assert collapse([1.0, 1.0], 0.1, QUADRATIC, MIN_UPDATES // 2) is not None


@pytest.fixture(scope="module")
def synthetic():
    """Big enough for 100 updates an epoch at batch 32."""
    return learnable(3200, 400)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")      # NumPy's overflow on the way is the point
@pytest.mark.parametrize("impl", impl_params())
@pytest.mark.parametrize("preset,lr,epoch", [("relu", 50.0, 1), ("nielsen", 1e6, 3)])
def test_every_implementation_gets_the_same_verdict(synthetic, impl, preset, lr, epoch):
    """The float64 reference sees an infinite cost where float32 ones see a huge finite one (or
    a flat one): all stop at the same epoch with the one message."""
    preset = dataclasses.replace(PRESETS[preset], sizes=(784, 16, 10), n_train=3200, epochs=4, lr=lr)
    net = create_or_skip(impl, preset.spec(default_dtype(impl)))
    if impl == "sklearn":
        # scikit-learn reports log-loss with probabilities clipped to [eps, 1 - eps], so its cost
        # stays under -ln(eps) = 15.9 an example and cannot blow up fivefold from ln 10 = 2.3 as
        # the others' does: the same run is caught one epoch later, collapsed at chance.
        epoch += 1
    start = re.escape(f"training diverged at epoch {epoch} with learning rate {lr:g}: ")
    with pytest.raises(DivergedError, match=rf"^{start}.*; try a lower learning rate$"):
        train(net, preset, synthetic, seed=0)
