"""The benchmark suites' configuration: parameters per mode, networks, thread pinning.

Every suite is parametrized over every registered implementation (``impls.REGISTRY``):
one added there appears here without edits; one that cannot run here skips with its
reason. Suites are ``bench_*.py``; other files in bench/ are never collected.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from impls import create, default_dtype
from impls.presets import DEFAULT_SEED, PRESETS, Preset
from impls.spec import init_params
from impls.testing import impl_params, mnist  # noqa: F401  (fixture)

from .harness import MODES, REFERENCE, SYNC_TIMER, Mode, gemm_peak, tta_tag
from .plugin import (  # noqa: F401  (hooks: this conftest is their plugin)
    pytest_addoption, pytest_benchmark_update_json, pytest_configure, pytest_benchmark_update_machine_info,
    pytest_runtest_call, pytest_runtest_makereport, pytest_sessionfinish, pytest_sessionstart, pytest_terminal_summary,
    pytest_terminal_summary_fail_on_regression)


@dataclass(frozen=True)
class Settings:
    mode: Mode
    preset: Preset      # the network the forward/backward/epoch suites time
    threads: int


def _settings(config) -> Settings:
    return Settings(MODES[config.getoption("bench_mode")], PRESETS[config.getoption("bench_preset")],
                    config.getoption("bench_threads"))


def batch_sizes(settings: Settings, phase: str) -> list[int]:
    mode, preset = settings.mode, settings.preset
    if phase == "epoch":
        return sorted(set(mode.epoch_sweep) | {preset.batch(preset.n_train)})
    return list(getattr(mode, phase))


def tta_params(mode: Mode):
    """(preset, impl, seeds) for every preset and implementation. The reference's share is
    decided per mode (it is ~30x slower); where it does not run it skips, saying why."""
    params = []
    for preset in PRESETS:
        for impl in impl_params():
            name = impl.values[0]
            seeds = mode.tta_reference.get(preset) if name == REFERENCE else mode.tta_seeds
            marks = list(impl.marks)
            if seeds is None:
                seeds = mode.tta_seeds
                marks.append(pytest.mark.skip(reason=mode.tta_reference_note))
            params.append(pytest.param(preset, name, seeds, marks=marks,
                                       id=f"{preset}-{name}-{tta_tag(mode, seeds)}"))
    return params


def pytest_generate_tests(metafunc):
    phase = getattr(metafunc.module, "PHASE", None)
    if phase is None:
        return
    settings = _settings(metafunc.config)
    if phase == "time-to-accuracy":
        metafunc.parametrize("preset_name,impl,seeds", tta_params(settings.mode))
        return
    metafunc.parametrize("impl", impl_params())
    n = settings.mode.epoch_examples
    suffix = f"-n{n}" if phase == "epoch" and n else ""   # the id says when an epoch is not the preset's
    metafunc.parametrize("batch", batch_sizes(settings, phase), ids=lambda b: f"b{b}{suffix}")


def pytest_collection_modifyitems(config, items):
    """Group benchmarks per phase and batch size (pytest-benchmark's table then compares
    implementations side by side) and time them with the synchronizing timer."""
    for item in items:
        phase = getattr(getattr(item, "module", None), "PHASE", None)
        if phase is None or "benchmark" not in getattr(item, "fixturenames", ()):
            continue
        params = item.callspec.params
        group = (f"{phase} {params['preset_name']} (whole runs, one round per seed)"
                 if phase == "time-to-accuracy" else f"{phase} batch={params['batch']}")
        item.add_marker(pytest.mark.benchmark(group=group, timer=SYNC_TIMER))


@pytest.fixture(scope="session")
def bench(request) -> Settings:
    return _settings(request.config)


@pytest.fixture(scope="session", autouse=True)
def _pinned_threads(bench):
    """Pin BLAS/OpenMP before anything is timed, then measure the GEMM peak under that pin."""
    from impls import threads
    threads.pin(bench.threads)
    gemm_peak()


@pytest.fixture
def networks(bench, impl):
    """``make(preset) -> (net, reference, params)``: the implementation under test and the
    float64 reference for the preset's network, and the seeded initial parameters both get.
    The synchronizing timer waits on this implementation for the test's duration."""
    from impls import threads

    def make(preset: Preset):
        spec = preset.spec(default_dtype(impl))
        net = create(impl, spec)
        net.set_threads(bench.threads)
        threads.pin(bench.threads)          # again: creating it may have loaded torch's or numba's pools
        ref = create(REFERENCE, spec.with_dtype("float64"))
        params = init_params(spec, np.random.default_rng(DEFAULT_SEED), preset.init)
        SYNC_TIMER.sync = net.sync
        return net, ref, params

    yield make
    SYNC_TIMER.sync = SYNC_TIMER.no_sync
