"""pytest hooks that turn a pytest-benchmark run into an nnbench record.

- Every benchmark test's outcome (passed, failed with its message, skipped with its
  reason) is kept and written into the JSON under ``"nnbench"``, and each benchmark's
  ``extra_info["status"]`` follows its test: a test that fails *after* ``benchmark()``
  returned still has timings, and pytest-benchmark writes them, so the status is what
  marks them failed.
- A session stopped part-way (Ctrl-C, ``-x``, ``pytest.exit``) is marked so in the JSON:
  ``"session": "interrupted"`` and ``"stopped"`` (why, how many tests ran of how many), which
  the report puts on top of every file; otherwise ``"session"`` is "failed" or "passed".
- A session with any failure (or interrupted) never becomes a comparison baseline:
  ``--benchmark-save``/``--benchmark-autosave`` then write into ``<storage>/failed/``,
  which ``--benchmark-compare`` does not look in. ``--benchmark-json`` is still written,
  so the failure shows in results/.
- ``--benchmark-compare-fail`` without a saved run is a usage error before anything runs.
- Machine info (pytest-benchmark's hook) gains what decides the speed of this code: CPU,
  cores, thread pools, BLAS, library versions, GPU.
- Every run carries a machine label (``--bench-machine``, default ``machine.this_label()``),
  recorded as ``nnbench.machine``; pytest-benchmark's history folder is that label instead of
  its OS/Python id, so each machine has its own baselines in ``<storage>/<label>/``. Comparing
  against a run of another label is a usage error unless ``--bench-compare-other-machine``.
- With ``--benchmark-compare``, each benchmark is judged against the baseline's raw samples
  (``bench/harness/compare.py``: faster, slower, noise, or too few rounds to decide);
  ``--bench-compare-fail=PCT`` fails the run on a significant slowdown beyond PCT percent. A
  baseline whose medians or round times are not finite times is a usage error (``check_baseline``),
  and a history saved by ``python -m bench.run`` before its runs carried ``iterations`` still loads.

- ``--bench-only`` and ``--bench-process K/P`` make a session one of ``python -m bench.run``'s
  processes: one implementation's benchmarks (the others are never imported), a Pth of the rounds.

``bench/conftest.py`` imports these hooks; ``pytest -p bench.harness.plugin`` loads them alone.
It relies on pytest-benchmark internals (its session object's storage and save/compare
settings): pyproject.toml pins the minor version that tests/test_bench_plugin.py exercises.
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
from .host import check_label, describe, label_of, this_label
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
                    help="this session is process K of P timing the same benchmarks (python -m bench.run "
                         "pools their rounds): epochs time 1/P of the mode's rounds (3 at least), and time "
                         "to accuracy runs in process 1 only. Default: 1/1")
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


# -- what becomes a baseline -----------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """Runs before pytest-benchmark's own hook, which saves the run."""
    bs = getattr(session.config, "_benchmarksession", None)
    session.config.stash[STOPPED] = stopped(session, exitstatus)
    failed = exitstatus != 0 or session.testsfailed or session_failed(session.config)
    if bs is not None and (bs.save or bs.autosave) and failed:
        _divert_save(session, bs, "was interrupted" if session.config.stash[STOPPED] else "failed")
    yield
    if bs is not None and bs.json and not bs.benchmarks and session.config.stash.get(OUTCOMES, None):
        _json_of_skips(session.config, bs)


def _json_of_skips(config, bs) -> None:
    """pytest-benchmark writes no --benchmark-json when no benchmark ran; when every one skipped or
    failed before timing, write one anyway, so the record says why (``python -m bench.run`` reads it)."""
    output = config.hook.pytest_benchmark_generate_json(
        config=config, benchmarks=[], include_data=True, machine_info=bs.get_machine_info(),
        commit_info=config.hook.pytest_benchmark_generate_commit_info(config=config))
    pytest_benchmark_update_json(config, [], output)
    bs.save_json(output)


def _divert_save(session, bs, what: str) -> None:
    from pytest_benchmark.storage.file import FileStorage
    storage = bs.storage
    if isinstance(storage, FileStorage):
        bs.storage = FileStorage(storage.path / "failed", logger=storage.logger,
                                 default_machine_id=storage.default_machine_id)
        where = f"saving it under {bs.storage.path} instead"
    else:
        bs.save = bs.autosave = None
        where = "not saving it"
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write_line(f"nnbench: this session {what}, so it must not become a --benchmark-compare "
                            f"baseline: {where}", red=True, bold=True)


# (pytest only registers names starting with pytest_; specname says which hook)
@pytest.hookimpl(wrapper=True, specname="pytest_terminal_summary")
def pytest_terminal_summary_fail_on_regression(terminalreporter, config):
    """pytest-benchmark reports a --benchmark-compare-fail regression by raising from its
    summary, which prints a traceback after its own clear list of what regressed. Keep the
    list, drop the traceback, and fail the run through its exit status instead."""
    from pytest_benchmark.session import PerformanceRegression
    try:
        return (yield)
    except PerformanceRegression:
        terminalreporter.write_line("nnbench: performance regressed beyond --benchmark-compare-fail "
                                    "(the benchmarks are listed above)", red=True, bold=True)
        config.stash[SESSION].exitstatus = pytest.ExitCode.TESTS_FAILED


def same_mode_baseline(config, bs) -> None:
    """``--benchmark-compare`` without a run id takes the newest saved run; make that the newest
    of this session's mode. A full run's microsecond benchmarks ran beside other batch sizes and
    phases, and between such sessions unchanged code moved far past the threshold, with hundreds of
    rounds on each side (docs/measurements.md, "Compare"): the rounds of one session cannot show
    that, so the test would call it a change. A run id given on purpose is kept; with no saved run of this mode, the newest is used
    and the terminal says which mode it was."""
    mode = config.getoption("bench_mode")
    if bs is None or bs.compare is not True or not bs.compared_mapping:
        return
    (path, baseline), = bs.compared_mapping.items()
    if _mode_of(bs, path) == mode:
        return
    found = compare.newest_of_mode(bs.storage.load(), mode)
    if found:
        older, data = found
        config.hook.pytest_benchmark_compare_machine_info(config=config, benchmarksession=bs,
                                                          machine_info=bs.get_machine_info(), compared_benchmark=data)
        bs.compared_mapping = {older: {b["fullname"]: b for b in data["benchmarks"]}}


def _mode_of(bs, path) -> str | None:
    """The mode of a saved run (``path`` as pytest-benchmark's file storage names it: relative to it)."""
    import json
    from pathlib import Path
    full = Path(path) if Path(path).is_absolute() else Path(getattr(bs.storage, "path", ".")) / path
    try:
        return json.loads(full.read_text()).get("nnbench", {}).get("mode")
    except (OSError, ValueError):
        return None


def pytest_sessionstart(session):
    session.config.stash[SESSION] = session
    bs = getattr(session.config, "_benchmarksession", None)
    same_mode_baseline(session.config, bs)
    compared = (bs.compared_mapping or {}) if bs is not None else {}
    for path, baseline in compared.items():     # NaN medians compare as "no regression": refuse them
        try:
            compare.check_baseline({"benchmarks": list(baseline.values())})
        except ValueError as exc:
            raise pytest.UsageError(f"--benchmark-compare {path}: cannot compare with it: {exc}") from None
        for bench in baseline.values():       # saved by python -m bench.run before it wrote "iterations"
            bench["stats"].setdefault("iterations", 1)
    ours = session.config.getoption("bench_compare_fail", default=None) is not None
    if ours and bs is not None and not bs.compare:
        raise pytest.UsageError("--bench-compare-fail needs --benchmark-compare (the run to compare against)")
    if bs is not None and (bs.compare_fail or ours) and not bs.compared_mapping:
        label = session.config.stash.get(MACHINE, None)
        raise pytest.UsageError(
            f"{'--bench-compare-fail' if ours else '--benchmark-compare-fail'}: there is no saved benchmark run "
            f"to compare against in {bs.storage}/{label} (machine {label!r}); run `make bench` (or `make "
            "bench-quick`) on it first")


# -- machine -------------------------------------------------------------------------------
def pytest_benchmark_update_machine_info(config, machine_info):
    cpu = machine_info.get("cpu", {})
    for volatile in ("hz_actual", "hz_actual_friendly"):   # changes run to run; would flag every compare
        cpu.pop(volatile, None)
    machine_info["nnbench"] = describe()


def pytest_benchmark_compare_machine_info(config, benchmarksession, machine_info, compared_benchmark):
    """A baseline from another machine label is refused (pytest-benchmark only warns)."""
    why = compare.other_machine(label_of(compared_benchmark), config.stash.get(MACHINE, None))
    if why and not config.getoption("bench_compare_other_machine", default=False):
        raise pytest.UsageError(f"--benchmark-compare: {why}; compare runs of one machine (--bench-machine), or "
                                "pass --bench-compare-other-machine to do it on purpose")


# -- compare: faster, slower, or noise -------------------------------------------------------
@pytest.hookimpl(trylast=True, specname="pytest_terminal_summary")
def pytest_terminal_summary_compare(terminalreporter, config):
    """Per benchmark against each baseline: the verdict of ``compare.decide`` on the raw samples;
    a significant slowdown beyond --bench-compare-fail fails the run."""
    bs = getattr(config, "_benchmarksession", None)
    if bs is None or not bs.compared_mapping or not bs.benchmarks:
        return
    fail = config.getoption("bench_compare_fail", default=None)
    alpha = config.getoption("bench_alpha", default=compare.ALPHA)
    threshold = compare.THRESHOLD if fail is None else fail
    current = [b.as_dict(include_data=True) for b in bs.benchmarks if b]
    regressions = []
    for path, baseline in bs.compared_mapping.items():
        rows, counts, slower = compare.compare_runs(list(baseline.values()), current, alpha, threshold)
        regressions += slower
        if not rows:
            continue
        terminalreporter.write_sep("-", f"nnbench compare against {path}")
        theirs, mode = _mode_of(bs, path), config.getoption("bench_mode")
        if theirs != mode:
            terminalreporter.write_line(
                f"nnbench: the baseline is a {theirs} run and this is {mode}: its benchmarks ran beside others, and "
                f"such differences are not in the rounds; save a {mode} run (`make bench{'-quick' if mode == 'quick' else ''}` or --bench-mode "
                f"{mode} --benchmark-autosave) to compare like with like", yellow=True)
        terminalreporter.write_line(compare.render(rows, counts, alpha, fail))
    if fail is not None:
        terminalreporter.write_line(compare.conclusion(regressions, fail), red=bool(regressions),
                                    green=not regressions, bold=bool(regressions))
    if regressions and fail is not None:
        config.stash[SESSION].exitstatus = pytest.ExitCode.TESTS_FAILED
