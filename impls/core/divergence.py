"""When a training run has diverged: one rule, the same verdict for every implementation.

The shared loop (``impls.core.train``) applies it to what it records anyway, each epoch's
mean mini-batch cost and the test accuracy after the epoch, so no implementation detects
anything itself and the float64 reference, whose ``-log(a_y)`` overflows to inf, gets the
verdict the float32 ones get from a huge but finite cost. A run has diverged at an epoch when

1. its cost is not finite (NaN or inf), checked before the network is even evaluated;
2. its cost has **blown up**: more than ``BLOWUP`` times its starting cost; or
3. it has **collapsed**: its test accuracy is at chance and its cost no longer falls.

Both yardsticks come from the data, never from the implementation: a network that ignores
its input can at best always answer the commonest class (the *chance* accuracy) and output
the class frequencies p (cost H: the entropy -sum p ln p for softmax + cross-entropy,
(1 - sum p^2) / 2 for the quadratic cost). On MNIST that is 11.35% and H = 2.30 or 0.45.

The thresholds, from measured runs (numpy, seed 0, full MNIST; starting costs over 40 seeds):

- ``BLOWUP`` = 5. The starting cost is H for epoch 1 and afterwards the larger of H and the
  first epoch's mean cost. He-initialized softmax networks start at 1.00-1.05 H; runs that
  blew up sat at 8 H (relu, lr 50: 18.4), 34 H (lr 1e4: 78; torch-fast: 1.3e17) and, full
  batch at lr 10, 27 times the first epoch's cost by epoch 3. Epoch 1 is only judged when it
  made ``MIN_UPDATES`` updates: an epoch of one full-batch update reports the initial
  network's cost, and the book's N(0, 1) quadratic network starts anywhere in 1.28-2.96,
  up to 6.6 H.
- Collapse needs accuracy within ``CHANCE_MARGIN`` (5 points) of chance *and* a cost that fell
  by less than ``STALL`` (0.1%) since the epoch before, after ``MIN_UPDATES`` (100) updates.
  A collapsed network answers one class whatever the input: nielsen at lr 1e6 stays at
  11.35% with its cost at 1.28710, 1.28707 (-0.002%); at lr 300, 9.80% and 0.500243, 0.5.
  Slow runs keep falling: fullbatch (one update an epoch) climbs from 14.8% at chance while
  its cost falls 2.5-3% an epoch; nielsen at lr 0.001 is at chance after an epoch, but its
  cost falls 32% in the next. Runs that learn but stall or miss a target are far from chance:
  the book's unlucky N(0, 1) seeds stop near 86%, a Fashion-MNIST run near 85%.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import DivergedError

BLOWUP = 5.0
CHANCE_MARGIN = 0.05
STALL = 1e-3
MIN_UPDATES = 100


@dataclass(frozen=True)
class Chance:
    """What a network that ignores its input scores on this data: the test accuracy of always
    answering the commonest class, and the mean cost of outputting the class frequencies."""
    accuracy: float
    cost: float

    @classmethod
    def of(cls, output: str, y_train, y_test, n_classes: int) -> Chance:
        p = np.bincount(np.asarray(y_train), minlength=n_classes) / len(y_train)
        q = np.bincount(np.asarray(y_test), minlength=n_classes) / max(len(y_test), 1)
        if output == "softmax_crossentropy":
            cost = -np.sum(p[p > 0] * np.log(p[p > 0]))           # the entropy of the labels
        else:
            cost = 0.5 * (1.0 - np.sum(p * p))                      # sum_k p_k(1-p_k), halved
        return cls(float(q.max()), float(cost))


def diverged(epoch: int, seen: str, lr: float) -> DivergedError:
    """The one message: the epoch, what was seen there, and what to try."""
    return DivergedError(f"training diverged at epoch {epoch} with learning rate {lr:g}: {seen}; "
                         f"try a lower learning rate")


def check_finite(cost: float, epoch: int, lr: float) -> None:
    if not math.isfinite(cost):
        raise diverged(epoch, f"the cost is {cost}", lr)


def collapse(costs: list[float], accuracy: float, chance: Chance, updates_per_epoch: int) -> str | None:
    """What shows that a run has blown up or collapsed by its last epoch, or None.

    ``costs``: every epoch's mean cost so far, the last one being judged; ``accuracy``: the
    test accuracy after it."""
    epochs, cost = len(costs), costs[-1]
    start = chance.cost if epochs == 1 else max(chance.cost, costs[0])
    if cost > BLOWUP * start and (epochs > 1 or updates_per_epoch >= MIN_UPDATES):
        what = "the cost of always guessing the class frequencies" if epochs == 1 else "its starting cost"
        return f"the cost {cost:.4g} is over {BLOWUP:g} times {what} ({start:.4g})"
    if (epochs > 1 and epochs * updates_per_epoch >= MIN_UPDATES
            and accuracy < chance.accuracy + CHANCE_MARGIN and cost > (1 - STALL) * costs[-2]):
        return (f"test accuracy {accuracy:.2%} is at chance (always answering the commonest class scores "
                f"{chance.accuracy:.2%}) and the cost no longer falls ({costs[-2]:.6g}, then {cost:.6g})")
    return None
