"""``nnbench check IMPL``: the conformance test a user runs on an implementation.

For each network kind the presets use (sigmoid + quadratic cost, ReLU + softmax/cross-entropy,
at small sizes so it takes seconds) and each dtype the implementation supports, from identical
weights and inputs against the float64 reference (``impls.core.check``, whose tolerances
are justified there):

    forward              output activations
    gradients            the cost and every nabla_W, nabla_b
    finite differences   every gradient against central differences of its own cost (float64)
    SGD step             the parameters after one update_mini_batch
    epoch                a 53-example epoch at batch 10: five full mini-batches and a short one
    same seed            two 2-epoch runs from one seed give identical parameters
then, on real MNIST (skipped, saying why, without it), one epoch of a preset from the default
seed must reach the preset's sanity accuracy. Every check is one line with its worst error and
the tolerance there; the tests and the benchmarks call the same check functions. Every check
also verifies structure (layers, shapes, dtypes) and that no call modified its inputs
(``impls.core.check``); an implementation none of whose checks ran (it declines every network,
or declares no dtypes) does not conform.

``nnbench check`` runs it all in the supervised child process of ``impls.core.isolation``
(``impls.core.jobs.check``), which hears of each check before it starts, so a check that hangs
or ends the process is stopped and named (docs/conformance.md).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .check import (Result, check_epoch, check_finite_differences, check_forward, check_gradients,
                    check_sgd_step, compare, params_comparisons, random_problem)
from .errors import DataError, NnbenchError, UnavailableError, UnsupportedError
from .presets import DEFAULT_SEED, PRESETS
from .registry import create, registry
from .spec import NetworkSpec

REFERENCE = "reference"
#: the network kinds of the presets, at sizes that check in seconds; the 4-layer one makes BP2
#: run between two hidden layers, which a 3-layer network never does
NETWORKS = [((20, 16, 10), "sigmoid", "sigmoid_quadratic"), ((20, 16, 10), "relu", "softmax_crossentropy"),
            ((20, 16, 12, 10), "relu", "softmax_crossentropy")]
FD_SIZES = (6, 5, 4)          # finite differences: two cost evaluations per parameter
EPOCH_EXAMPLES, EPOCH_BATCH, LR = 53, 10, 0.5


@dataclass
class Line:
    check: str
    network: str
    verdict: str                 # "pass", "FAIL", "skip"
    worst: str = ""              # worst |error| (where it was nearest its tolerance)
    allowed: str = ""            # the tolerance there
    note: str = ""


def _line(result: Result, check: str, network: str) -> Line:
    w = result.worst
    if w is None:
        return Line(check, network, "pass")
    return Line(check, network, "pass" if result.ok else "FAIL", f"{w.error:.2g}", f"{w.allowed:.2g}",
                "" if result.ok else result.message())


def _quiet(what: str) -> None:
    """Where no supervisor listens (a test calling the checks directly), phases go nowhere."""


def _guard(check: str, network: str, fn, progress=_quiet) -> Line:
    """Run one check; an exception inside the implementation is that check's failure, not a crash."""
    progress(f"the {check} check ({network})")
    try:
        return fn()
    except UnsupportedError as exc:
        return Line(check, network, "skip", note=str(exc))
    except Exception as exc:        # noqa: BLE001 -- reported on the check's line
        return Line(check, network, "FAIL", note=f"raised {type(exc).__name__}: {exc}")


def network_checks(name: str, spec: NetworkSpec, progress=_quiet, construct=create) -> list[Line]:
    label = spec.describe()
    progress(f"constructing it for {label}")
    try:
        net = construct(name, spec)
    except UnsupportedError as exc:
        return [Line("all", label, "skip", note=str(exc))]
    except UnavailableError as exc:     # a constructor that raised: this network's failure
        return [Line("construct", label, "FAIL", note=str(exc))]
    ref = create(REFERENCE, spec.with_dtype("float64"))
    params, X, y = random_problem(spec, seed=1, batch=7)
    order = np.random.default_rng(5).permutation(EPOCH_EXAMPLES)
    _, Xe, ye = random_problem(spec, seed=4, batch=EPOCH_EXAMPLES)
    checks = [
        ("forward", lambda: _line(check_forward(net, ref, params, X, strict=False), "forward", label)),
        ("gradients", lambda: _line(check_gradients(net, ref, params, X, y, strict=False), "gradients", label)),
        ("SGD step", lambda: _line(check_sgd_step(net, ref, params, X, y, LR, strict=False), "SGD step", label)),
        ("epoch", lambda: _line(check_epoch(net, ref, params, Xe, ye, order, EPOCH_BATCH, LR, strict=False),
                                "epoch (short last batch)", label)),
        ("same seed", lambda: _same_seed(name, spec, label)),
    ]
    return [_guard(check, label, fn, progress) for check, fn in checks]


def finite_difference_lines(name: str, progress=_quiet) -> list[Line]:
    lines = []
    for _, hidden, output in NETWORKS[:2]:
        spec = NetworkSpec(FD_SIZES, hidden, output, "float64")
        label = spec.describe()

        def run(spec=spec, label=label):
            net = create(name, spec)
            params, X, y = random_problem(spec, seed=7, batch=4, init="normal")
            return _line(check_finite_differences(net, params, X, y, strict=False), "finite differences", label)
        lines.append(_guard("finite differences", label, run, progress))
    return lines


def _same_seed(name: str, spec: NetworkSpec, label: str) -> Line:
    """Two runs from one seed, each on a fresh instance: identical parameters and costs."""
    from .mnist import Dataset
    from .train import train
    rng = np.random.default_rng(123)
    X = rng.random((60, spec.sizes[0]))
    y = rng.integers(0, spec.sizes[-1], 60)
    data = Dataset(X, y, X[:10], y[:10])
    preset = dataclasses.replace(PRESETS["relu"], sizes=spec.sizes, hidden=spec.hidden, output=spec.output,
                                 n_train=60, batch_size=EPOCH_BATCH, lr=LR, epochs=2)
    runs = []
    for _ in range(2):
        net = create(name, spec)
        result = train(net, preset, data, seed=DEFAULT_SEED)
        runs.append(([r.cost for r in result.history], net.get_params()))
    (costs_a, params_a), (costs_b, params_b) = runs
    comparisons = [compare(costs_a, costs_b, spec.dtype, "identical", "epoch costs")]
    comparisons += params_comparisons(net, params_a, params_b, "after 2 epochs", "identical")
    return _line(Result("same seed", comparisons), "same seed twice", label)


def load_mnist(data_dir=None):
    """MNIST for the sanity check, or the reason it is skipped; a directory the user named is
    used or refused (DataError), never skipped."""
    from .mnist import load_dataset, named_dir
    try:
        return load_dataset(data_dir)
    except DataError as exc:
        if named_dir(data_dir):
            raise
        return f"no MNIST here ({exc})"


def mnist_sanity(name: str, data, progress=_quiet) -> Line:
    """One epoch of the first preset ``name`` computes, from the default seed, on ``data`` (a
    Dataset, or the reason there is none): at least the preset's sanity accuracy."""
    from .train import train
    if isinstance(data, str):
        return Line("MNIST, 1 epoch", "-", "skip", note=data)
    if not registry().load(name)[0].dtypes:
        return Line("MNIST, 1 epoch", "-", "skip", note="declares no dtypes")
    for preset in (PRESETS["relu"], PRESETS["nielsen"]):
        cls, options, _ = registry().load(name)
        spec = preset.spec(cls.dtypes[0])
        if cls.unsupported_reason(spec, **options):
            continue
        label = f"{preset.name} ({spec.describe()})"

        def run(preset=preset, spec=spec, label=label):
            result = train(create(name, spec), preset, data, seed=DEFAULT_SEED, epochs=1)
            acc = result.final_accuracy
            return Line("MNIST, 1 epoch", label, "pass" if acc >= preset.sanity else "FAIL", f"{acc:.2%}",
                        f">= {preset.sanity:.0%}", f"MNIST from {data.source}" if acc >= preset.sanity
                        else "test accuracy below the sanity bar")
        return _guard("MNIST, 1 epoch", label, run, progress)
    return Line("MNIST, 1 epoch", "-", "skip", note="declines every preset's network")


def run_checks(name: str, data=None, mnist: bool = True, progress=_quiet, construct=create) -> list[Line]:
    """Every check of ``name``, in order (``data``: a Dataset, the reason there is none, or None
    to load it here); NnbenchError if it cannot run here at all."""
    cls, options, reason = registry().load(name)
    if reason:
        raise NnbenchError(f"implementation {name!r} is unavailable: {reason}")
    lines = [] if cls.dtypes else [Line("all", "-", "skip", note=f"it declares no dtypes ({cls.__name__}.dtypes = ())")]
    for sizes, hidden, output in NETWORKS:
        for dtype in cls.dtypes:
            lines += network_checks(name, NetworkSpec(sizes, hidden, output, dtype), progress, construct)
    if "float64" in cls.dtypes:
        lines += finite_difference_lines(name, progress)
    else:
        lines.append(Line("finite differences", "-", "skip", note="needs float64, which this implementation lacks"))
    if mnist:
        if data is None:
            progress("loading MNIST")
            data = load_mnist()
        lines.append(mnist_sanity(name, data, progress))
    return lines


def nothing_verified(lines: list[Line]) -> str | None:
    """Why a run of checks proves nothing (no check of a network passed or failed), or None. An
    implementation that declines every network, or declares ``dtypes = ()``, would otherwise
    'pass all 0 checks'."""
    if any(l.verdict != "skip" for l in lines if l.check != "MNIST, 1 epoch"):
        return None
    reasons = [l.note for l in lines if l.verdict == "skip" and l.note]
    return ("no check ran: " + (reasons[0] if reasons else "it declares no dtypes (dtypes = ())")
            + "; an implementation must compute at least one of the checked networks")
