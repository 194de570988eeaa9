"""Each benchmark phase and mode, declared once.

A ``Phase`` says what one timing is: its name and title, its batch sizes in each mode, the
FLOPs of one timed round, the workload (what is called, on what) and the check against the
float64 reference that comes before it. The suites (``bench/suites/bench_<phase>.py``), the
report, the profiler and the studies all read these declarations, so a new phase is one
declaration here and one suite file. A ``Mode`` says how much of everything to run.

Kept free of pytest so the report and the studies can use it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from impls.core.check import check_epoch, check_forward, check_gradients
from impls.core.presets import PRESETS

#: the test id of every implementation's oracle (impls.core.check compares against it)
REFERENCE = "reference"


@dataclass(frozen=True)
class Mode:
    """What one benchmark mode runs. The same test id always means the same work, so a
    ``quick`` run compares against a saved ``full`` run wherever their tests overlap."""
    name: str
    epoch_examples: int | None              # None: the preset's training set; else a fixed prefix
    epoch_seconds: float                    # timed seconds to aim for per epoch benchmark...
    epoch_rounds: tuple[int, int]           # ...within (min, max) rounds (min: see EPOCH_MIN_ROUNDS)
    tta_seeds: tuple[int, ...]
    tta_to_target: bool                     # stop each seed at its first epoch at/above target
    #: preset -> seeds the per-example reference trains in time-to-accuracy; absent: not run (why below)
    tta_reference: dict[str, tuple[int, ...]] = field(default_factory=dict)
    tta_reference_note: str = ""
    #: every preset at its own smoke size (``Preset.smoke``): exercises the machinery only
    shrink_presets: bool = False
    #: the presets time to accuracy trains (None: all); the rest skip with ``tta_presets_note``
    tta_presets: tuple[str, ...] | None = None
    tta_presets_note: str = ""
    #: interleaved trials (bench.harness.trials): clean rounds each implementation needs at least, trials
    #: at most, and the seconds a benchmark's trials may take before they end at the least
    trials: tuple[int, int] = (5, 20)
    trial_seconds: float = 20.0
    #: rounds of a forward/backward benchmark timed without a driver (plain pytest): blocks of calls
    block_rounds: int = 20
    #: the size of the matrix product whose GFLOP/s is the session's GEMM peak (bench.harness.timing)
    gemm_n: int = 2048


#: The epoch benchmarks are the ones `make compare` must be able to decide on: they are the headline,
#: and a time-to-accuracy run is epochs of the same work. Its Mann-Whitney U test needs 4 rounds a
#: side to reach p < 0.05 at all (bench/harness/compare.py, rounds_needed), 5 to stay there with one
#: round out of order. Raising the minimum from 3 (full) and 2 (quick) to 5 adds seconds, not
#: minutes, of timed rounds to either mode (docs/measurements.md, "Benchmark harness").
#: Forward and backward get pytest-benchmark's calibration (5 rounds at least, usually hundreds);
#: time to accuracy times one round per seed (3, or 1 in quick): compare says it cannot decide there.
EPOCH_MIN_ROUNDS = 5

MODES = {
    "full": Mode(
        "full", epoch_examples=None, epoch_seconds=3.0, epoch_rounds=(EPOCH_MIN_ROUNDS, 10), tta_seeds=(0, 1, 2),
        # Each seed stops at its first epoch at/above target, as time to accuracy needs; a seed that
        # stalls still trains every epoch. Training every seed's whole schedule was most of the full
        # bench's timed seconds, since every preset reaches its target well before its last epoch
        # (docs/measurements.md, "Benchmark harness"; results/<machine>/time-to-accuracy.md).
        tta_to_target=True,
        # The per-example reference trains a seed in minutes, a fullbatch seed in about a quarter of
        # an hour (docs/measurements.md, "Benchmark harness"): one seed, and no fullbatch.
        tta_reference={"nielsen": (0,), "relu": (0,)},
        tta_reference_note="the full bench trains the per-example reference on one seed of nielsen and "
                           "relu only; fullbatch would take ~15 minutes a seed",
        trials=(5, 30), trial_seconds=60.0),
    "quick": Mode(
        "quick", epoch_examples=None, epoch_seconds=1.0, epoch_rounds=(EPOCH_MIN_ROUNDS, 10), tta_seeds=(0,),
        tta_to_target=True,
        tta_reference_note="quick mode leaves the per-example reference out of time-to-accuracy "
                           "(~90 s a nielsen seed); run `make bench` for it",
        # With torch.compile, JAX and scikit-learn in, nielsen's and fullbatch's runs were most of the
        # quick bench's timed seconds (docs/measurements.md, "Benchmark harness"); relu's is the one a
        # quick look needs.
        tta_presets=("relu",),
        tta_presets_note="quick mode trains relu only; run `make bench` for nielsen and fullbatch",
        trials=(5, 20), trial_seconds=20.0, block_rounds=10),
    "smoke": Mode(
        "smoke", epoch_examples=500, epoch_seconds=0.0, epoch_rounds=(1, 1), tta_seeds=(0,), tta_to_target=True,
        tta_reference={name: (0,) for name in PRESETS}, shrink_presets=True,
        # a smoke run times nothing worth reading: its peak is a small product's, not seconds of GEMM
        trials=(1, 2), trial_seconds=0.0, block_rounds=2, gemm_n=256),
}


@dataclass
class Workload:
    """One timed call: ``fn(*args)``, after ``reset()`` (outside the timer) when given."""
    fn: Callable
    args: tuple
    examples: int
    reset: Callable | None = None

    def __call__(self):
        if self.reset:
            self.reset()
        return self.fn(*self.args)


@dataclass(frozen=True)
class Phase:
    name: str
    title: str
    timed: str                                  # what one timing is, for table headers
    batches: dict[str, tuple[int, ...]]         # mode -> batch sizes
    flops: Callable | None = None               # (spec, examples, batch) -> FLOPs of one timed round
    workload: Callable | None = None            # (ready, data, batch, examples) -> Workload
    validate: Callable | None = None            # (ready, ref, data, batch): raises AssertionError if wrong
    traffic: Callable | None = None             # (spec, examples, batch) -> bytes it must move at least
    with_preset_batch: bool = False             # the preset's own batch size joins the sweep
    per_preset: bool = False                    # one benchmark per preset (time to accuracy), not per batch

    def batch_sizes(self, mode: str, preset) -> list[int]:
        sizes = set(self.batches[mode])
        if self.with_preset_batch:
            sizes.add(preset.batch(preset.n_train))
        return sorted(sizes)


# -- FLOPs: 2 per multiply-add of the matrix products; elementwise work is O(n) and left out ----------
def forward_flops(spec, examples, batch):
    return 2 * spec.macs_per_example * examples


def backward_flops(spec, examples, batch):
    return 2 * spec.backprop_macs_per_example * examples


def epoch_flops(spec, examples, batch):
    """Forward + backward for every example, and the SGD update (2 per parameter per step)."""
    return backward_flops(spec, examples, batch) + 2 * spec.n_params * math.ceil(examples / batch)


# -- bytes moved: the least traffic a round needs, for the roofline's arithmetic intensity ------------
# Counted in elements of the network's dtype: every parameter read once per mini-batch (and, when
# trained, its gradient or update written once), every input row read once, every activation
# written once and read once, every delta (backward) written once. Caches can only lower what
# reaches memory below this for the weights; activations of a big batch stream through anyway.
def _hidden_and_output(spec) -> int:
    return sum(spec.sizes[1:])


def _itemsize(spec) -> int:
    return np.dtype(spec.dtype).itemsize


def forward_bytes(spec, examples, batch):
    return _itemsize(spec) * (spec.n_params + examples * spec.sizes[0] + 2 * examples * _hidden_and_output(spec))


def backward_bytes(spec, examples, batch):
    return _itemsize(spec) * (2 * spec.n_params + examples * spec.sizes[0] + 3 * examples * _hidden_and_output(spec))


def epoch_bytes(spec, examples, batch):
    steps = math.ceil(examples / batch)
    return _itemsize(spec) * (2 * spec.n_params * steps + examples * spec.sizes[0] + 3 * examples * _hidden_and_output(spec))


# -- workloads and their checks ---------------------------------------------------------------------
def forward_workload(ready, data, batch, examples=None):
    net = ready.net
    return Workload(net.feedforward, (net.asarray(data.X_test[:batch]),), batch)


def backward_workload(ready, data, batch, examples=None):
    net = ready.net
    return Workload(net.backprop, (net.asarray(ready.X[:batch]), net.aslabels(ready.y[:batch])), batch)


def epoch_order(ready) -> np.ndarray:
    """The timed epochs' example order: fixed by the seed, the same for every implementation."""
    return np.random.default_rng(ready.seed).permutation(len(ready.X))


def epoch_workload(ready, data, batch, examples=None):
    """``train_epoch`` over the first ``examples`` of the seeded order (default: all), each
    round from the initial weights."""
    order = epoch_order(ready)[:examples or len(ready.X)]
    return Workload(ready.net.train_epoch, (order, batch, ready.preset.lr), len(order),
                    reset=lambda: ready.net.set_params(ready.params))


def short_epoch(n: int, batch: int) -> int:
    """Examples of a validation epoch: two full mini-batches and a short one (the book's last)."""
    return min(n, 2 * batch + batch // 2 + 1)


def validate_forward(ready, ref, data, batch):
    check_forward(ready.net, ref, ready.params, data.X_test[:batch])


def validate_backward(ready, ref, data, batch):
    check_gradients(ready.net, ref, ready.params, ready.X[:batch], ready.y[:batch])


def validate_epoch(ready, ref, data, batch):
    k = short_epoch(len(ready.X), batch)
    if batch >= len(ready.X):       # full batch: one step over 300 examples, not the reference on 60,000
        k = batch = min(300, len(ready.X))
    check_epoch(ready.net, ref, ready.params, ready.X[:k], ready.y[:k], np.random.default_rng(0).permutation(k),
                batch, ready.preset.lr)


PHASES = {p.name: p for p in (
    Phase("forward", "Forward pass (`feedforward`)", "median time per call",
          {"full": (1, 10, 128, 1024, 10_000), "quick": (10, 1024), "smoke": (10,)},
          forward_flops, forward_workload, validate_forward, traffic=forward_bytes),
    Phase("backward", "Backward (`backprop`: cost and gradients of one mini-batch)", "median time per call",
          {"full": (10, 128, 1024), "quick": (128,), "smoke": (10,)},
          backward_flops, backward_workload, validate_backward, traffic=backward_bytes),
    Phase("epoch", "One training epoch (`train_epoch`)", "median seconds per epoch of the preset's training set",
          {"full": (10, 32, 128, 1024), "quick": (10, 128), "smoke": (10,)},
          epoch_flops, epoch_workload, validate_epoch, traffic=epoch_bytes, with_preset_batch=True),
    Phase("time-to-accuracy", "Time to accuracy", "training seconds to the preset's target",
          {}, validate=validate_epoch, per_preset=True),
)}
#: the phases timed per batch size, in table order
BATCH_PHASES = [p for p in PHASES.values() if not p.per_preset]


def tta_tag(mode: Mode, seeds) -> str:
    """The part of a time-to-accuracy test id that says what work the run does."""
    if mode.shrink_presets:
        return f"{mode.name}-seed{'-'.join(map(str, seeds))}"
    what = f"{len(seeds)}seeds" if len(seeds) > 1 else f"seed{seeds[0]}"
    return what + ("-to-target" if mode.tta_to_target else "")
