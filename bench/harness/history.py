"""pytest-benchmark's history under plain ``pytest bench``: what becomes a baseline, and how a run
is compared with one (``python -m bench.run`` saves and compares by itself: ``bench/baselines.py``).

- A session with any failure (or interrupted) never becomes a comparison baseline:
  ``--benchmark-save``/``--benchmark-autosave`` then write into ``<storage>/failed/``,
  which ``--benchmark-compare`` does not look in. ``--benchmark-json`` is still written,
  so the failure shows in results/.
- ``--benchmark-compare-fail`` without a saved run is a usage error before anything runs.
- Comparing against a run of another machine label is a usage error unless
  ``--bench-compare-other-machine``.
- With ``--benchmark-compare``, each benchmark is judged against the baseline's raw samples
  (``bench/harness/compare.py``: faster, slower, noise, or too few rounds to decide);
  ``--bench-compare-fail=PCT`` fails the run on a significant slowdown beyond PCT percent. A
  baseline whose medians or round times are not finite times is a usage error (``check_baseline``),
  and a history saved by ``python -m bench.run`` before its runs carried ``iterations`` still loads.
"""
from __future__ import annotations

import pytest

from . import compare
from .host import label_of
from .plugin import MACHINE, OUTCOMES, SESSION, STOPPED, pytest_benchmark_update_json, session_failed, stopped


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


def pytest_benchmark_compare_machine_info(config, benchmarksession, machine_info, compared_benchmark):
    """A baseline from another machine label is refused (pytest-benchmark only warns)."""
    why = compare.other_machine(label_of(compared_benchmark), config.stash.get(MACHINE, None))
    if why and not config.getoption("bench_compare_other_machine", default=False):
        raise pytest.UsageError(f"--benchmark-compare: {why}; compare runs of one machine (--bench-machine), or "
                                "pass --bench-compare-other-machine to do it on purpose")
