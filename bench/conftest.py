"""The benchmark suites' configuration: what each suite is parametrized over, and the one
fixture that hands a suite a network ready to time.

Every suite (``bench/suites/bench_<phase>.py``, with ``PHASE = "<phase>"``) is parametrized
over every registered implementation -- nnbench's own, any installed package's entry points,
and ``--bench-impl``/``$NNBENCH_IMPLS`` -- and over the batch sizes its phase declares for the
mode (``bench/harness/phases.py``). One that cannot run here skips with its reason; one that
declines the network skips with its reason; any other error fails.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from impls.core.errors import UnsupportedError
from impls.core.presets import PRESETS, Preset
from impls.core.registry import create
from impls.core.testing import impl_params, mnist_or_stop
from impls.core.train import build

from .harness.phases import MODES, PHASES, REFERENCE, Mode, tta_tag
from .harness.history import (  # noqa: F401  (hooks: this conftest is their plugin)
    pytest_benchmark_compare_machine_info, pytest_sessionfinish, pytest_sessionstart,
    pytest_terminal_summary_compare, pytest_terminal_summary_fail_on_regression)
from .harness.plugin import (  # noqa: F401  (hooks)
    DATA_BYTES, DATA_SOURCE, only, pytest_addoption, pytest_benchmark_update_json,
    pytest_benchmark_update_machine_info, pytest_collection_finish, pytest_configure, pytest_runtest_call,
    pytest_runtest_makereport, pytest_runtest_protocol, pytest_terminal_summary)
from .harness.timing import SYNC_TIMER, gemm_peak


@dataclass(frozen=True)
class Settings:
    mode: Mode
    preset: Preset      # the network the forward/backward/epoch suites time
    threads: int


def _settings(config) -> Settings:
    # With several processes (--bench-process K/P) each is a member of every trial, whose driver says
    # when a benchmark's trials end (bench.harness.trials): the mode's rounds are not shared out.
    return Settings(MODES[config.getoption("bench_mode")], PRESETS[config.getoption("bench_preset")],
                    config.getoption("bench_threads"))


def tta_params(mode: Mode, among=None):
    """(preset, impl, seeds) for every preset and implementation (of ``among``, if given). The reference's share is
    decided per mode (it is far slower: results/<machine>/time-to-accuracy.md); where it does not run it
    skips, saying why."""
    params = []
    for preset in PRESETS:
        for impl in impl_params(among=among):
            name = impl.values[0]
            seeds = mode.tta_reference.get(preset) if name == REFERENCE else mode.tta_seeds
            marks = list(impl.marks)
            if seeds is None:
                seeds = mode.tta_seeds
                marks.append(pytest.mark.skip(reason=mode.tta_reference_note))
            if mode.tta_presets is not None and preset not in mode.tta_presets:
                marks.append(pytest.mark.skip(reason=mode.tta_presets_note))
            params.append(pytest.param(preset, name, seeds, marks=marks,
                                       id=f"{preset}-{name}-{tta_tag(mode, seeds)}"))
    return params


def pytest_generate_tests(metafunc):
    name = getattr(metafunc.module, "PHASE", None)
    if name is None:
        return
    phase, settings = PHASES[name], _settings(metafunc.config)
    if phase.per_preset:
        metafunc.parametrize("preset_name,impl,seeds", tta_params(settings.mode, only(metafunc.config)))
        return
    metafunc.parametrize("impl", impl_params(among=only(metafunc.config)))
    n = settings.mode.epoch_examples
    suffix = f"-n{n}" if name == "epoch" and n else ""   # the id says when an epoch is not the preset's
    metafunc.parametrize("batch", phase.batch_sizes(settings.mode.name, settings.preset), ids=lambda b: f"b{b}{suffix}")


def pytest_collection_modifyitems(config, items):
    """Keep what ``--bench-only`` and ``--bench-process`` ask for (time to accuracy, one round per
    seed, runs in process 1 only); group benchmarks per phase and batch size (pytest-benchmark's
    table then compares implementations side by side) and time them with the synchronizing timer."""
    keep, (process, _) = only(config), config.getoption("bench_process")

    def wanted(item):
        params = getattr(item, "callspec", None)
        params = params.params if params else {}
        phase = getattr(getattr(item, "module", None), "PHASE", None)
        return ((keep is None or "impl" not in params or params["impl"] in keep)
                and not (process > 1 and phase in PHASES and PHASES[phase].per_preset))

    deselected = [item for item in items if not wanted(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if wanted(item)]
    for item in items:
        phase = getattr(getattr(item, "module", None), "PHASE", None)
        if phase is None or "benchmark" not in getattr(item, "fixturenames", ()):
            continue
        params = item.callspec.params
        group = (f"{phase} {params['preset_name']} (whole runs, one round per seed)"
                 if PHASES[phase].per_preset else f"{phase} batch={params['batch']}")
        item.add_marker(pytest.mark.benchmark(group=group, timer=SYNC_TIMER))


@pytest.fixture(scope="session")
def bench(request) -> Settings:
    return _settings(request.config)


@pytest.fixture(scope="session")
def mnist(request):
    """Real MNIST, which every suite needs: without it the session stops at once, saying why.
    Where it was loaded from, and what it occupies (held once per
    process), go into the run's record."""
    data = mnist_or_stop()
    request.config.stash[DATA_SOURCE] = data.source
    request.config.stash[DATA_BYTES] = sum(a.nbytes for a in (data.X_train, data.y_train, data.X_test, data.y_test))
    return data


@pytest.fixture(scope="session", autouse=True)
def _pinned_threads(bench, mnist):
    """Once MNIST is there, pin BLAS/OpenMP before anything is timed, then measure the GEMM
    peak under that pin."""
    from impls.core import threads
    threads.pin(bench.threads)
    gemm_peak(n=bench.mode.gemm_n)


@pytest.fixture(autouse=True)
def _return_freed_memory():
    """After each benchmark, hand what it freed back to the OS. Without this a full-batch run
    left hundreds of MB of freed heap resident (docs/measurements.md, "Benchmark harness") and
    every later benchmark, and the session's peak, carried it."""
    yield
    from .harness.memory import release_freed
    release_freed()


@pytest.fixture
def prepare(request, bench, impl, mnist):
    """``prepare(preset, batch) -> (ready, reference)``: the implementation under test built
    through the one setup path (``impls.core.train.build``) with the seeded weights, checked
    against the float64 reference for this suite's phase at this batch size, then restored
    to its initial state; the synchronizing timer waits on it for the test's duration."""
    phase = PHASES[request.module.PHASE]

    def make(preset: Preset, batch: int):
        try:
            ready = build(impl, preset, mnist, threads=bench.threads)
        except UnsupportedError as exc:
            pytest.skip(str(exc))
        ref = create(REFERENCE, ready.net.spec.with_dtype("float64"))
        phase.validate(ready, ref, mnist, batch)
        ready.restore()
        SYNC_TIMER.sync = ready.net.sync
        return ready, ref

    yield make
    SYNC_TIMER.sync = SYNC_TIMER.no_sync
