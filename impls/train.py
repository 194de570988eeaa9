"""The training loop every implementation shares, and the data it trains on.

One seeded ``numpy.random.Generator`` makes the initial weights and then each
epoch's example order, and hands both to the implementation, so the same seed
gives every implementation the same run. Only ``train_epoch`` (plus a device sync)
is inside the timer; evaluation and the cost's host conversion happen outside.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DivergedError
from .presets import Preset
from .spec import init_params


@dataclass(frozen=True)
class Dataset:
    """MNIST as float32 rows in [0, 1] and int64 labels, converted once."""
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


@functools.lru_cache(maxsize=4)
def _load_dataset(data_dir: str | None) -> Dataset:
    from .mnist import as_float, load_mnist
    raw = load_mnist(data_dir)
    return Dataset(as_float(raw.train_images), raw.train_labels.astype(np.int64),
                   as_float(raw.test_images), raw.test_labels.astype(np.int64))


def load_dataset(data_dir=None) -> Dataset:
    """The dataset, loaded and converted once per process for each data directory."""
    return _load_dataset(str(Path(data_dir).expanduser().resolve()) if data_dir else None)


@dataclass
class EpochRecord:
    epoch: int
    seconds: float      # training time of this epoch alone
    cost: float         # mean mini-batch cost during the epoch
    accuracy: float     # test accuracy after the epoch


@dataclass
class RunResult:
    impl: str
    preset: str
    seed: int
    target: float
    history: list[EpochRecord] = field(default_factory=list)
    threads: dict = field(default_factory=dict)

    @property
    def final_accuracy(self) -> float:
        return self.history[-1].accuracy if self.history else float("nan")

    @property
    def train_seconds(self) -> float:
        return sum(r.seconds for r in self.history)

    @property
    def met_target(self) -> bool:
        return self.final_accuracy >= self.target

    @property
    def time_to_target(self) -> tuple[int, float] | None:
        """(first epoch at or above target, cumulative training seconds to it), or None."""
        elapsed = 0.0
        for r in self.history:
            elapsed += r.seconds
            if r.accuracy >= self.target:
                return r.epoch, elapsed
        return None


def train(net, preset: Preset, data: Dataset, *, seed: int, epochs: int | None = None,
          on_epoch=None) -> RunResult:
    """Train ``net`` on ``preset`` from seed ``seed``; call ``on_epoch(record)`` after each epoch.

    Raises DivergedError at the first epoch whose cost is NaN or infinite.
    """
    from .threads import info
    rng = np.random.default_rng(seed)
    net.set_params(init_params(net.spec, rng, preset.init))
    X, y = data.X_train[:preset.n_train], data.y_train[:preset.n_train]
    net.set_training_data(X, y)
    batch = preset.batch(len(X))
    result = RunResult(net.name, preset.name, seed, preset.target, threads=info(net))
    for epoch in range(1, (epochs or preset.epochs) + 1):
        order = rng.permutation(len(X))
        start = time.perf_counter()
        cost = net.train_epoch(order, batch, preset.lr)
        net.sync()
        seconds = time.perf_counter() - start
        cost = float(cost)
        if not math.isfinite(cost):
            raise DivergedError(f"training diverged at epoch {epoch} (cost is {cost}) with learning "
                                f"rate {preset.lr}; try a lower learning rate")
        record = EpochRecord(epoch, seconds, cost, net.evaluate(data.X_test, data.y_test))
        result.history.append(record)
        if on_epoch:
            on_epoch(record)
    return result
