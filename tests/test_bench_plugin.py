"""bench/harness/plugin.py inside real pytest-benchmark sessions: outcomes recorded in the JSON, and
a failed session never becomes the --benchmark-compare baseline."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

SUITE = '''
PHASE = "forward"

def test_passes(benchmark):
    benchmark(sum, range(10))

def test_misses_after_timing(benchmark):
    benchmark(sum, range(10))
    assert False, "median final accuracy 90% < target 94.5%"

def test_fails_before_timing(benchmark):
    raise AssertionError("forward differs from the reference")
'''


@pytest.fixture
def session(tmp_path):
    """run(*args) -> (returncode, output): pytest on a small suite with only bench.plugin loaded.
    ``--bench-only=numpy``: the run's record then asks only numpy whether it is available, not
    every framework (seconds of imports a session that this suite of sums does not need)."""
    (tmp_path / "test_suite.py").write_text(SUITE)
    storage = tmp_path / "storage"

    def run(*args):
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "bench.harness.plugin", "-p", "bench.harness.history",
                               "-p", "no:cacheprovider",
                               str(tmp_path / "test_suite.py"), f"--benchmark-storage=file://{storage}",
                               "--benchmark-max-time=0.001", "--benchmark-min-rounds=1", "--bench-only=numpy", *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stdout + proc.stderr

    run.storage = storage
    return run


def saved(storage: Path, failed=False) -> list[Path]:
    root = storage / "failed" if failed else storage
    return sorted(p for p in root.glob("*/*.json")) if root.exists() else []


def test_failed_session_is_recorded_as_failed_and_not_saved_as_baseline(session, tmp_path):
    code, out = session("--benchmark-autosave", f"--benchmark-json={tmp_path / 'run.json'}")
    assert code == 1, out
    assert saved(session.storage) == [], "a failed session was saved where --benchmark-compare looks"
    assert len(saved(session.storage, failed=True)) == 1
    assert "this session failed" in out

    run = json.loads((tmp_path / "run.json").read_text())
    status = {b["name"]: b["extra_info"]["status"] for b in run["benchmarks"]}
    # pytest-benchmark keeps the timings of a test that failed after benchmark() returned:
    assert status == {"test_passes": "passed", "test_misses_after_timing": "failed"}
    outcomes = {o["test"].split("::")[-1]: o for o in run["nnbench"]["outcomes"]}
    assert outcomes["test_fails_before_timing"]["status"] == "failed"
    assert "forward differs from the reference" in outcomes["test_fails_before_timing"]["message"]
    assert "median final accuracy 90%" in outcomes["test_misses_after_timing"]["message"]
    assert run["nnbench"]["session"] == "failed"


def test_compare_uses_the_last_passing_session(session):
    code, out = session("--benchmark-autosave", "-k", "passes")
    assert code == 0, out
    [baseline] = saved(session.storage)
    code, out = session("--benchmark-autosave")                   # fails: diverted, not the new baseline
    assert code == 1
    assert saved(session.storage) == [baseline]
    code, out = session("-k", "passes", "--benchmark-compare", "--benchmark-compare-fail=median:100000%")
    assert code == 0, out
    assert f"Comparing against benchmarks from: {baseline.parent.name}/{baseline.name}" in out


def test_compare_fail_without_a_saved_run_is_a_usage_error(session):
    code, out = session("-k", "passes", "--benchmark-compare", "--benchmark-compare-fail=median:15%")
    assert code == pytest.ExitCode.USAGE_ERROR, out
    assert "no saved benchmark run to compare against" in out


def test_regression_fails_the_run_with_a_message_not_a_traceback(session, tmp_path, monkeypatch):
    (tmp_path / "test_suite.py").write_text(
        'import os, time\nPHASE = "forward"\n\n'
        'def test_sleeps(benchmark):\n    benchmark(time.sleep, float(os.environ["NNBENCH_TEST_SLEEP"]))\n')
    monkeypatch.setenv("NNBENCH_TEST_SLEEP", "0")
    code, out = session("--benchmark-autosave")
    assert code == 0, out
    monkeypatch.setenv("NNBENCH_TEST_SLEEP", "0.02")              # 20 ms where there was ~0
    code, out = session("--benchmark-compare", "--benchmark-compare-fail=median:15%")
    assert code == pytest.ExitCode.TESTS_FAILED, out
    assert "test_sleeps" in out and "PercentageRegressionCheck" in out
    assert "performance regressed beyond --benchmark-compare-fail" in out
    assert "Traceback" not in out, out


def test_an_interrupted_session_is_marked_interrupted_and_the_report_says_so_on_top(session, tmp_path):
    (tmp_path / "test_suite.py").write_text(
        'PHASE = "forward"\n\n'
        'def test_first(benchmark):\n    benchmark(sum, range(10))\n\n'
        'def test_second(benchmark):\n    raise KeyboardInterrupt\n\n'
        'def test_third(benchmark):\n    benchmark(sum, range(10))\n')
    code, out = session("--benchmark-autosave", f"--benchmark-json={tmp_path / 'run.json'}")
    assert code == pytest.ExitCode.INTERRUPTED, out
    assert "this session was interrupted" in out
    assert saved(session.storage) == [] and len(saved(session.storage, failed=True)) == 1

    run = json.loads((tmp_path / "run.json").read_text())
    assert run["nnbench"]["session"] == "interrupted"                 # was "passed"
    assert run["nnbench"]["stopped"] == {"reason": "interrupted", "tests_run": 1, "tests_collected": 3}
    saved_run = json.loads(saved(session.storage, failed=True)[0].read_text())
    assert saved_run["nnbench"]["session"] == "interrupted"

    from bench import report
    assert report.main([str(tmp_path / "run.json"), "--out", str(tmp_path / "results")]) == 0
    pages = sorted((tmp_path / "results").glob("*.md"))
    assert "README.md" in [p.name for p in pages] and len(pages) >= 2
    for page in pages:                          # README and every page of what the run measured
        text = page.read_text()
        top = text.split("\n\n")[1]                                   # right under the title
        assert top.startswith("> **Interrupted**: this session stopped part-way (interrupted) after 1 of its "
                              "3 benchmarks."), (name, top)


def test_a_session_stopped_by_maxfail_is_marked_too(session, tmp_path):
    code, out = session("-x", f"--benchmark-json={tmp_path / 'run.json'}")
    assert code == 1, out
    stopped = json.loads((tmp_path / "run.json").read_text())["nnbench"]["stopped"]
    assert stopped == {"reason": "stopping after 1 failures", "tests_run": 2, "tests_collected": 3}


def test_the_cpu_of_a_live_child_is_this_processs_own_not_another_processs():
    """An implementation's own workers (torch-ddp's ranks) burn CPU in child processes that are still
    alive when a benchmark ends: the contention measure must count them as this process's work, or
    every such row is flagged as 'other processes took the CPUs'."""
    from bench.harness.plugin import _cpu_clock
    if _cpu_clock() is None:
        pytest.skip("no /proc/stat: not Linux")
    burn = "import sys, time\nwhile time.process_time() < 0.6: pass\nprint('burnt', flush=True)\ntime.sleep(30)\n"
    start = _cpu_clock()
    child = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "burnt"
        end = _cpu_clock()
    finally:
        child.kill()
        child.wait()
    assert end.own - start.own >= 0.5, "the live child's CPU seconds were not counted as this process's"
