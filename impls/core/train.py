"""The one way a network is set up, the one way an epoch is timed, and the training loop.

``build`` makes a ready network from (implementation, preset, dtype, threads, seed, data):
one seeded ``numpy.random.Generator`` draws the initial weights and then, epoch after
epoch, the example order, so the same seed gives every implementation the same run. The
CLI, ``train``, the benchmark suites, the profiler and the studies all start here; nothing
else calls ``init_params`` or ``set_training_data`` or slices the training set.

``timed_epoch`` times ``train_epoch`` alone, with the device synchronized inside the timer;
the cost's host conversion and the check for a non-finite cost come after it, evaluation
elsewhere. ``train`` then judges every epoch by the one divergence rule (``divergence``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import threads as thread_pools
from .check import cost_value
from .divergence import Chance, check_finite, collapse, diverged
from .errors import DataError
from .mnist import Dataset
from .presets import DEFAULT_SEED, Preset
from .registry import create, default_dtype
from .spec import init_params


@dataclass
class Ready:
    """A network with its seeded initial parameters and its training set in place."""
    net: object
    preset: Preset
    params: list                    # the seeded initial parameters (canonical float64)
    rng: np.random.Generator        # the same generator, after the weights: it draws each epoch's order
    X: np.ndarray                   # the training slice the network holds
    y: np.ndarray
    seed: int

    def restore(self) -> Ready:
        """Back to the initial parameters and the full training slice (after a check or an epoch)."""
        self.net.set_params(self.params)
        self.net.set_training_data(self.X, self.y)
        return self

    def order(self) -> np.ndarray:
        """The next epoch's example order, from the run's generator."""
        return self.rng.permutation(len(self.X))


def build(impl: str, preset: Preset, data: Dataset, *, seed: int = DEFAULT_SEED, dtype: str | None = None,
          threads: int | None = None, n_train: int | None = None, net=None) -> Ready:
    """Create ``impl`` for ``preset`` (in ``dtype``, default the implementation's own), pin its
    threads, give it the seeded initial weights and the first ``n_train`` (default the
    preset's) training examples. ``net``: an instance already made, to set up the same way.

    A training set smaller than that is refused: the preset's accuracy target and every timing
    of it assume its size (a 5-image set, or the 10,000 test images under training names,
    would otherwise train and be timed as if it were the preset)."""
    wanted = n_train or preset.n_train
    if len(data.X_train) < wanted:
        raise DataError(f"preset {preset.name} trains on {wanted:,} training images, but "
                        f"{data.source or 'the training set'} holds only {len(data.X_train):,}")
    if net is None:
        net = create(impl, preset.spec(dtype or default_dtype(impl)))
    pin_threads(net, threads)
    rng = np.random.default_rng(seed)
    params = init_params(net.spec, rng, preset.init)
    return Ready(net, preset, params, rng, data.X_train[:wanted], data.y_train[:wanted], seed).restore()


def pin_threads(net, threads: int | None) -> None:
    """The implementation's own pool, then BLAS/OpenMP: after creating it, since that may have
    loaded torch's or numba's pools. None leaves every library's default; a count this process
    has no CPUs for is refused before any pool is touched (``threads.check``)."""
    if threads:
        thread_pools.check(threads)
        net.set_threads(threads)
        thread_pools.pin(threads)


def timed_epoch(net, order, batch_size: int, lr: float, *, epoch: int = 1) -> tuple[float, float]:
    """(seconds, mean cost) of one ``train_epoch``; DivergedError if the cost is not finite."""
    start = time.perf_counter()
    cost = net.train_epoch(order, batch_size, lr)
    net.sync()
    seconds = time.perf_counter() - start
    cost = cost_value(net, cost, "train_epoch")
    check_finite(cost, epoch, lr)
    return seconds, cost


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


def _quiet(what: str) -> None:
    """No supervisor listening (``impls.core.isolation``): phases go nowhere."""


def train(net, preset: Preset, data: Dataset, *, seed: int, epochs: int | None = None,
          on_epoch=None, progress=_quiet, warm_up=None) -> RunResult:
    """Train ``net`` on ``preset`` from seed ``seed``; call ``on_epoch(record)`` after each epoch.
    The network is warmed up (``warm_up``) for the run's shapes before the first epoch;
    ``warm_up(net, batch, n)`` replaces that call (to announce compiling), and ``progress(what)``
    hears of each step before it starts (so a supervisor can bound it).

    Raises DivergedError at the first epoch that diverged by the one rule (``divergence``):
    a non-finite cost before evaluating, a cost blown up or a collapse after ``on_epoch``
    has seen the epoch.
    """
    run = build(net.name, preset, data, seed=seed, net=net)
    batch = preset.batch(len(run.X))
    progress("warming up")
    (warm_up or type(net).warm_up)(net, batch, len(run.X))     # compiling is never part of an epoch's time
    updates = math.ceil(len(run.X) / batch)
    chance = Chance.of(preset.output, run.y, data.y_test, preset.sizes[-1])
    result = RunResult(net.name, preset.name, seed, preset.target, threads=thread_pools.info(net))
    for epoch in range(1, (epochs or preset.epochs) + 1):
        progress(f"epoch {epoch}")
        seconds, cost = timed_epoch(net, run.order(), batch, preset.lr, epoch=epoch)
        record = EpochRecord(epoch, seconds, cost, net.evaluate(data.X_test, data.y_test))
        result.history.append(record)
        if on_epoch:
            on_epoch(record)
        seen = collapse([r.cost for r in result.history], record.accuracy, chance, updates)
        if seen:
            raise diverged(epoch, seen, preset.lr)
    return result
