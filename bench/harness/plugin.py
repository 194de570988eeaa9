"""pytest hooks that turn a pytest-benchmark run into an nnbench record.

- Every benchmark test's outcome (passed, failed with its message, skipped with its
  reason) is kept and written into the JSON under ``"nnbench"``, and each benchmark's
  ``extra_info["status"]`` follows its test: a test that fails *after* ``benchmark()``
  returned still has timings, and pytest-benchmark writes them, so the status is what
  marks them failed.
- A session stopped part-way (Ctrl-C, ``-x``, ``pytest.exit``) is marked so in the JSON:
  ``"session": "interrupted"`` and ``"stopped"`` (why, how many tests ran of how many), which
  the report puts on top of every file; otherwise ``"session"`` is "failed" or "passed".
- Machine info (pytest-benchmark's hook) gains what decides the speed of this code: CPU,
  cores, thread pools, BLAS, library versions, GPU.
- Every run carries a machine label (``--bench-machine``, default ``host.this_label()``),
  recorded as ``nnbench.machine``; pytest-benchmark's history folder is that label instead of
  its OS/Python id, so each machine has its own baselines in ``<storage>/<label>/``.
- ``--bench-only`` and ``--bench-process K/P`` make a session one of ``python -m bench.run``'s
  processes: one implementation's benchmarks (the others are never imported); started by the
  driver, the session takes turns with the others (``bench.harness.turns``).

What becomes a baseline under plain ``pytest bench`` and how such a run is compared with one:
``bench.harness.history``. ``bench/conftest.py`` imports both modules' hooks (``pytest -p
bench.harness.plugin -p bench.harness.history`` loads them alone). They rely on
pytest-benchmark internals (its session object's storage and save/compare settings, the fixture's
``has_error``): pyproject.toml pins the minor version that tests/test_bench_plugin.py exercises.
"""
from __future__ import annotations

import os
import shlex
import statistics

import pytest

from impls.core.argtypes import thread_count
from impls.core.presets import PRESETS
from impls.core.threads import usable_cpus

from . import compare, cpu, turns
from .host import check_label, describe, this_label
from .memory import session_peak
from .phases import MODES
from .record import SCHEMA
from .timing import OTHERS_WARN, measured_peak

OUTCOMES = pytest.StashKey[dict]()
FINISHED = pytest.StashKey[int]()          # tests whose run (setup, call, teardown) completed
STOPPED = pytest.StashKey[dict]()          # why and where the session stopped part-way
DATA_SOURCE = pytest.StashKey[str]()       # the MNIST directory (bench/conftest.py's fixture)
DATA_BYTES = pytest.StashKey[int]()        # what the loaded MNIST arrays occupy
CPU_AT_START = pytest.StashKey[tuple]()
SESSION = pytest.StashKey[pytest.Session]()
MACHINE = pytest.StashKey[str]()           # this run's machine label
_SEVERITY = {"passed": 0, "skipped": 1, "failed": 2}


def pytest_addoption(parser):
    group = parser.getgroup("nnbench", "nnbench benchmarks")
    group.addoption("--bench-mode", choices=list(MODES), default="full",
                    help="full: every batch size and 3-seed time-to-accuracy (make bench); quick: fewer "
                         "batch sizes, one seed trained to its target (make bench-quick); smoke: tiny sizes, "
                         "checks the benchmark code runs (CI). Default: full")
    group.addoption("--bench-preset", choices=list(PRESETS), default="nielsen",
                    help="the network, learning rate and training set of the forward/backward/epoch "
                         "suites (time-to-accuracy runs every preset). Default: nielsen")
    group.addoption("--bench-threads", type=thread_count, default=usable_cpus(),
                    help="pin BLAS/OpenMP pools and each implementation's threads to N (at most the usable CPUs). "
                         f"Default: all {usable_cpus()} usable CPUs")
    group.addoption("--bench-impl", action="append", default=[], metavar="SPEC",
                    help="also benchmark your own implementation, [NAME=]module:Class[(option=value, ...)] "
                         "(repeatable; $NNBENCH_IMPLS does the same)")
    group.addoption("--bench-only", action="append", default=[], metavar="NAME[,NAME...]",
                    help="benchmark only these implementations (repeatable); the others are deselected. "
                         "`python -m bench.run` gives each implementation its own process this way")
    group.addoption("--bench-process", type=_share, default=(1, 1), metavar="K/P",
                    help="this session is process K of P timing the same benchmarks (python -m bench.run): "
                         "each process's rounds are members of the same trials, and time to accuracy "
                         "runs in process 1 only. Default: 1/1")
    group.addoption("--bench-machine", metavar="NAME", default=None,
                    help="this machine's label: its history folder (<storage>/NAME/) and its column when "
                         "machines are compared. Default: CPU model, logical CPUs and GPU, e.g. "
                         f"{this_label()} here")
    group.addoption("--bench-compare-other-machine", action="store_true", default=False,
                    help="let --benchmark-compare use a baseline recorded under another machine label "
                         "(refused otherwise: another machine's times say nothing about a change here)")
    group.addoption("--bench-compare-fail", metavar="PCT", type=_percent, default=None,
                    help="with --benchmark-compare: fail when a benchmark is slower than the baseline by a "
                         "statistically significant amount (Mann-Whitney U on the rounds) AND its median grew "
                         "by more than PCT percent (e.g. 15)")
    group.addoption("--bench-alpha", type=float, default=compare.ALPHA, metavar="P",
                    help=f"significance level of that test (two-sided). Default: {compare.ALPHA}")


def _percent(text: str) -> float:
    import argparse
    try:
        value = float(str(text).rstrip("%"))
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage (e.g. 15)")
    return value


def _share(text: str) -> tuple[int, int]:
    import argparse
    k, _, p = str(text).partition("/")
    try:
        share = int(k), int(p)
    except ValueError:
        share = (0, 0)
    if not 1 <= share[0] <= share[1]:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/P with 1 <= K <= P (e.g. 2/3)")
    return share


def only(config) -> set[str] | None:
    """The implementations ``--bench-only`` keeps, or None: all of them."""
    names = {n.strip() for arg in config.getoption("bench_only", default=[]) or [] for n in arg.split(",")}
    return {n for n in names if n} or None


def pytest_configure(config):
    config.stash[CPU_AT_START] = _cpu_clock()
    name = config.getoption("bench_machine", default=None)
    try:
        label = check_label(name) if name else this_label()
    except ValueError as exc:
        raise pytest.UsageError(f"--bench-machine: {exc}") from None
    config.stash[MACHINE] = label
    # pytest-benchmark names its history folder get_machine_id() (OS, Python, word size: the same on
    # every Linux box) when its session is made, in its own pytest_configure (trylast, after this
    # one): from here on it is the label, so each machine keeps its own baselines.
    import pytest_benchmark.session
    pytest_benchmark.session.get_machine_id = lambda: label
    from impls.core.errors import NnbenchError
    from impls.core.registry import names, register
    for spec in config.getoption("bench_impl", default=[]) or []:
        try:
            register(spec, "--bench-impl")
        except NnbenchError as exc:
            raise pytest.UsageError(f"--bench-impl: {exc}") from None
    unknown = sorted((only(config) or set()) - set(names()))
    if unknown:
        raise pytest.UsageError(f"--bench-only: no implementation named {', '.join(map(repr, unknown))} "
                                f"(registered: {', '.join(names())})")
    # one of `python -m bench.run`'s processes: from here on it runs only when the driver says so
    turns.connect(config.getoption("bench_process", default=(1, 1))[0])


def pytest_collection_finish(session):
    """Tell the driver (if any) which benchmarks this process will time, in order: their groups."""
    groups = []
    for item in session.items:
        marker = item.get_closest_marker("benchmark")
        group = marker.kwargs.get("group") if marker else None
        if group and group not in groups:
            groups.append(group)
    turns.announce(groups)


def _cpu_clock():
    """This process's reading of the CPUs (``bench.harness.cpu.clock``), or None off Linux."""
    return cpu.clock()


def other_processes_share(start, end=None) -> float | None:
    """Fraction of the machine's CPU time that other processes used since ``start``: another process
    on the CPUs skews every timing, so the record says whether there was one."""
    return cpu.others_share(start, end)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Per benchmark, too: which timings shared the CPUs with another process. Taking turns, the
    other benchmark processes run while this one waits, so there it is what its rounds saw (the
    median round's share: ``bench.harness.turns`` judges every round)."""
    start = _cpu_clock()
    yield
    fixture = getattr(item, "funcargs", {}).get("benchmark")
    if fixture is None:
        return
    seen = [r["others"] for r in fixture.extra_info.get("rounds", []) if r.get("others") is not None]
    fixture.extra_info["other_processes_cpu_share"] = (
        (statistics.median(seen) if seen else None) if turns.driven() else other_processes_share(start))


# -- outcomes ------------------------------------------------------------------------------
def _message(call) -> str:
    """The first lines of why a test failed or was skipped."""
    if call.excinfo is None:
        return ""
    value = call.excinfo.value
    text = getattr(value, "msg", None) if call.excinfo.typename == "Skipped" else None
    text = text or call.excinfo.exconly()
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return " ".join(lines[:3])[:400]


def _jsonable(value):
    return value if isinstance(value, (int, float, str, bool, type(None))) else (
        list(value) if isinstance(value, (tuple, list)) else str(value))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if "benchmark" not in getattr(item, "fixturenames", ()):
        return
    if report.when != "call" and report.passed:
        return
    status = "passed" if report.passed else "skipped" if report.skipped else "failed"
    outcomes = item.config.stash.setdefault(OUTCOMES, {})
    previous = outcomes.get(item.nodeid)
    if previous and _SEVERITY[previous["status"]] >= _SEVERITY[status]:
        return
    params = getattr(item, "callspec", None)
    outcomes[item.nodeid] = {
        "test": item.nodeid, "status": status, "message": _message(call),
        "phase": getattr(getattr(item, "module", None), "PHASE", None),
        **{k: _jsonable(v) for k, v in (params.params.items() if params else ())},
    }
    fixture = getattr(item, "funcargs", {}).get("benchmark")
    if status == "failed" and fixture is not None:
        fixture.extra_info["status"] = "failed"
        fixture.extra_info["failure"] = outcomes[item.nodeid]["message"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Counts the tests that ran to the end: one interrupted on the way raises through here."""
    result = yield
    item.config.stash[FINISHED] = item.config.stash.get(FINISHED, 0) + 1
    return result


def session_failed(config) -> bool:
    return any(o["status"] == "failed" for o in config.stash.get(OUTCOMES, {}).values())


def stopped(session, exitstatus) -> dict | None:
    """Why and where the session stopped before running every test it collected, or None."""
    ran, collected = session.config.stash.get(FINISHED, 0), len(getattr(session, "items", ()))
    if exitstatus != pytest.ExitCode.INTERRUPTED and ran >= collected:
        return None
    why = ("interrupted" if exitstatus == pytest.ExitCode.INTERRUPTED
           else str(session.shouldfail or session.shouldstop or f"pytest exit status {int(exitstatus)}"))
    return {"reason": why, "tests_run": ran, "tests_collected": collected}


def pytest_benchmark_update_json(config, benchmarks, output_json):
    outcomes = config.stash.get(OUTCOMES, {})
    for bench in output_json["benchmarks"]:
        outcome = outcomes.get(bench["fullname"])
        if outcome:
            bench["extra_info"]["status"] = outcome["status"]
    from impls.core.registry import built_in, source
    from impls.core.testing import availability
    kept = only(config)
    status = availability(None if kept is None else frozenset(kept))   # what the session parametrized over
    output_json["nnbench"] = {
        "schema": SCHEMA,
        "design": "interleaved" if turns.driven() else "sequential",
        "mode": config.getoption("bench_mode"),
        "preset": config.getoption("bench_preset"),
        "pinned_threads": config.getoption("bench_threads"),
        "command": os.environ.get("NNBENCH_COMMAND")
                   or shlex.join(["pytest", *map(str, config.invocation_params.args)]),
        "gemm_peak_gflops": measured_peak(),
        "gpu_gemm_peak_gflops": measured_peak("cuda"),
        "other_processes_cpu_share": other_processes_share(config.stash.get(CPU_AT_START, None)),
        "available": status,
        "sources": {name: source(name) for name in status},
        "built_in": [name for name in status if built_in(name)],
        "data": config.stash.get(DATA_SOURCE, None),
        "dataset_bytes": config.stash.get(DATA_BYTES, None),
        "peak_rss_session": session_peak(),
        "machine": config.stash.get(MACHINE, None),
        "session": ("interrupted" if config.stash.get(STOPPED, None)
                    else "failed" if session_failed(config) else "passed"),
        "stopped": config.stash.get(STOPPED, None),
        "outcomes": list(outcomes.values()),
    }


@pytest.hookimpl(tryfirst=True)   # before pytest-benchmark's summary, which raises on a regression
def pytest_terminal_summary(terminalreporter, config):
    bs = getattr(config, "_benchmarksession", None)
    share = other_processes_share(config.stash.get(CPU_AT_START, None))
    peak = session_peak()
    if bs is not None and bs.benchmarks and peak:
        terminalreporter.write_line(f"nnbench: this session's peak resident memory was {peak / 1e9:.2f} GB")
    if bs is None or not bs.benchmarks or share is None:
        return
    busy = share > OTHERS_WARN
    terminalreporter.write_line(
        f"nnbench: other processes used {100 * share:.1f}% of the machine's CPU time during this session"
        + (": they competed with the benchmarks, so these timings (and any comparison) are unreliable"
           if busy else ""), yellow=busy)


# -- machine -------------------------------------------------------------------------------
def pytest_benchmark_update_machine_info(config, machine_info):
    cpu = machine_info.get("cpu", {})
    for volatile in ("hz_actual", "hz_actual_friendly"):   # changes run to run; would flag every compare
        cpu.pop(volatile, None)
    machine_info["nnbench"] = describe()
