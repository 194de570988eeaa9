"""``python -m bench.run`` against hostile or broken implementations (tests/bad_impls/run_*.py), bad
output targets, a full disk, stop signals and bad baselines: each ends with one line naming the
cause and a non-zero exit, bounded in time, with nothing half-written and no process left behind.
Smoke mode, one process, and a pytest filter that leaves one benchmark (or none) keep each real
run to a few seconds."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from argparse import Namespace
from pathlib import Path

import pytest

from bench import baselines
from bench import run as bench_run
from bench.harness import compare
from mounts import mounted  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parent.parent
BAD = "tests.bad_impls"


def _env(tmp_path, impls=""):
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return dict(os.environ, PYTHONPATH=str(REPO), NNBENCH_IMPLS=impls, TMPDIR=str(tmp))


def _run(tmp_path, *args, impls="", timeout=120):
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--mode=smoke", "--processes=1", "--machine=box",
                           f"--storage={tmp_path / 'storage'}", *args], cwd=REPO, env=_env(tmp_path, impls),
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def _left_behind(tmp_path):
    """The run's temporary folders, and processes whose command line names this test's folder."""
    folders = list((tmp_path / "tmp").glob("nnbench-run-*"))
    procs = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(tmp_path).encode() in cmdline.read_bytes():
                procs.append(cmdline.parent.name)
        except OSError:
            pass
    return folders, procs


# -- the user's code ----------------------------------------------------------------------------
def test_modules_that_print_raise_or_exit_on_import_are_named_and_fail_the_run(tmp_path):
    """Printing on import (no newline) once broke the list of implementations (JSONDecodeError), a
    module exiting on import gave an IndexError, one raising gave exit 0 with 0 benchmarks."""
    impls = (f"chatty={BAD}.run_prints:Chatty,raises={BAD}.run_raises_on_import:X,"
             f"exits={BAD}.run_exits_on_import:X")
    code, out = _run(tmp_path, "--only=chatty,raises,exits", "--save", "--", "-k", "no_such_benchmark",
                     impls=impls)
    assert code == 1 and "Traceback" not in out, out[-3000:]
    assert "raises: loading the implementation: importing tests.bad_impls.run_raises_on_import:X raised " \
           "RuntimeError: this module is broken" in out
    assert ("exits: loading the implementation: importing tests.bad_impls.run_exits_on_import:X called "
            "sys.exit(0)") in out
    assert "chatty" not in out.split("take turns, one at a time")[0].replace("chatty: process", "")   # it was listed fine
    assert not list((tmp_path / "storage").rglob("*.json")), "a failed run is never a baseline"


@pytest.mark.usefixtures("mnist")
def test_a_process_that_exits_or_segfaults_while_training_is_a_failure_saying_how(tmp_path):
    impls = f"exiting={BAD}.run_os_exit:Exiting,segv={BAD}.run_segfaults:Segfaulting"
    code, out = _run(tmp_path, "--only=exiting,segv", "--save", "--", "-k", "test_epoch", impls=impls)
    assert code == 1 and "Traceback" not in out, out[-3000:]
    assert "exiting: process 1 of 1: the benchmark process exited with status 0 and wrote no results" in out
    assert "segv: process 1 of 1: the benchmark process died of SIGSEGV: it crashed" in out
    assert "no benchmark ran" not in out and "every benchmark process failed" in out
    assert not list((tmp_path / "storage").rglob("*.json")), "a failed run is never a baseline"


@pytest.mark.usefixtures("mnist")
def test_a_hanging_train_epoch_is_ended_at_the_timeout_with_one_line(tmp_path):
    start = time.monotonic()
    code, out = _run(tmp_path, "--only=sleepy", "--timeout=5", "--", "-k", "test_epoch",
                     impls=f"sleepy={BAD}.run_sleeps:Sleeping", timeout=60)
    assert code == 1 and "Traceback" not in out, out[-3000:]
    assert "sleepy: process 1 of 1: held the machine past --timeout 5 s and was stopped" in out
    assert time.monotonic() - start < 40
    assert _left_behind(tmp_path) == ([], [])


def test_a_module_whose_import_hangs_is_bounded_too(tmp_path):
    (tmp_path / "hangs_on_import.py").write_text("import time\ntime.sleep(3600)\n")
    env = _env(tmp_path, "hangs=hangs_on_import:X")
    env["PYTHONPATH"] += os.pathsep + str(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--mode=smoke", "--only=hangs", "--timeout=2"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in out, out[-3000:]
    assert "did not finish within --timeout 2 s while importing 'hangs'" in out


def test_the_default_timeout_is_generous():
    args, _ = bench_run.parse_args([])
    assert args.timeout >= 3600


# -- stop signals ------------------------------------------------------------------------------------
SUPERVISED = textwrap.dedent("""
    import signal, subprocess, sys
    from bench.harness.children import STOP_SIGNALS, Stopped, stop, supervise
    for s in STOP_SIGNALS:
        signal.signal(s, stop)
    try:
        supervise([sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(600)", sys.argv[1]], 600)
    except Stopped as exc:
        sys.exit(f"stopped by {exc}")
""")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_is_passed_to_the_child_which_ends_with_the_driver(tmp_path, signum):
    driver = subprocess.Popen([sys.executable, "-c", SUPERVISED, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    assert driver.stdout.readline().strip() == "ready"
    driver.send_signal(signum)
    _, err = driver.communicate(timeout=30)
    assert driver.returncode == 1 and f"stopped by {signal.Signals(signum).name}" in err
    assert _left_behind(tmp_path)[1] == []


@pytest.mark.usefixtures("mnist")
def test_sigterm_to_bench_run_mid_run_ends_its_benchmark_process_and_cleans_up(tmp_path):
    driver = subprocess.Popen([sys.executable, "-m", "bench.run", "--mode=smoke", "--processes=1", "--only=sleepy",
                               f"--json={tmp_path / 'run.json'}", "--save", f"--storage={tmp_path / 'storage'}",
                               "--", "-k", "test_epoch"], cwd=REPO,
                              env=_env(tmp_path, f"sleepy={BAD}.run_sleeps:Sleeping"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in driver.stdout:                 # the benchmark process has started
        if "take turns, one at a time" in line:
            break
    time.sleep(1)
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=60)
    assert driver.returncode == 128 + signal.SIGTERM and "stopped by SIGTERM" in err, err[-3000:]
    assert "Traceback" not in err
    assert _left_behind(tmp_path) == ([], [])
    assert not (tmp_path / "run.json").exists() and not list((tmp_path / "storage").rglob("*.json"))


# -- where the run writes ----------------------------------------------------------------------------
def test_output_targets_are_checked_before_anything_runs(tmp_path):
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("")
    for args, said in [([f"--json={tmp_path / 'a-folder'}"], "is a folder; name the file to write"),
                       ([f"--storage={tmp_path / 'a-file'}", "--save"], "is a file, not a folder"),
                       ([f"--json={tmp_path / 'a-file' / 'run.json'}"], "its folder")]:
        proc = subprocess.run([sys.executable, "-m", "bench.run", "--mode=smoke", *args], cwd=REPO,
                              env=_env(tmp_path), capture_output=True, text=True, timeout=60)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2 and said in out and "Traceback" not in out, out[-2000:]
        assert "take turns, one at a time" not in out


def test_a_read_only_storage_is_refused_before_anything_runs(tmp_path, mounted):
    storage = mounted(tmp_path / "ro", "ro")
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--mode=smoke", f"--storage={storage}", "--save"],
                          cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "cannot write there (Read-only file system)" in out, out[-2000:]
    assert "take turns, one at a time" not in out and "Traceback" not in out


def _saved_run():
    return {"benchmarks": [{"name": "t[x]", "fullname": "b.py::t[x]", "stats": {"median": 1.0, "data": [1.0] * 9000}}],
            "machine_info": {}, "commit_info": {}, "nnbench": {"machine": "box", "mode": "smoke"}}


def test_saving_onto_a_full_disk_leaves_no_truncated_history(tmp_path, mounted):
    from bench.report.writing import WriteError
    disk = mounted(tmp_path / "full", "size=64k")
    (disk / "box").mkdir()
    (disk / "box" / "0001_old.json").write_text("{}")
    args = Namespace(storage=disk, machine="box")
    with pytest.raises(WriteError, match="disk full: nothing written"):
        baselines.save(_saved_run(), args, failed=False)
    assert sorted(p.name for p in disk.rglob("*")) == ["0001_old.json", "box"]


def test_saving_stays_atomic_when_the_write_fails(tmp_path, monkeypatch):
    """ENOSPC injected where no tiny file system can be mounted."""
    import errno

    from bench.report.writing import WriteError

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(WriteError, match=r"0001_.*\.json: disk full: nothing written"):
        baselines.save(_saved_run(), Namespace(storage=tmp_path, machine="box"), failed=False)
    assert list(tmp_path.rglob("*.json")) == [] and list(tmp_path.rglob("*.tmp")) == []


# -- baselines -------------------------------------------------------------------------------------
@pytest.mark.parametrize("stats,said", [
    ({"median": float("nan"), "data": [1.0, 2.0]}, "its median nan is not a measured time"),
    ({"median": 1.0, "data": ["fast", "slow"]}, "its round times hold 'fast'"),
])
def test_a_baseline_with_nan_or_non_numeric_times_is_refused_with_one_line(tmp_path, stats, said):
    saved = _saved_run()
    saved["benchmarks"][0]["stats"] = stats
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=said):
        compare.check_baseline(json.loads(path.read_text()))
    code, out = _run(tmp_path, f"--compare={path}", "--", "-k", "no_such_benchmark")
    assert code == 4 and said in out and "Traceback" not in out, out[-2000:]
    assert "take turns, one at a time" not in out


@pytest.mark.usefixtures("mnist")
def test_pytest_benchmark_compare_refuses_a_nan_history(tmp_path):
    saved = _saved_run()
    saved["benchmarks"][0].update(name="test_forward[numpy-b10]", fullname="bench/suites/bench_forward.py::"
                                  "test_forward[numpy-b10]",
                                  stats={"median": float("nan"), "mean": 1.0, "ops": 1.0, "data": [1.0]})
    (tmp_path / "storage" / "box").mkdir(parents=True)
    (tmp_path / "storage" / "box" / "0001_nan.json").write_text(json.dumps(saved))
    # run from tmp_path: pytest-benchmark's warning about another machine_info fails on a storage
    # outside the working directory
    proc = subprocess.run([sys.executable, "-m", "pytest", str(REPO / "bench"), "-p", "no:cacheprovider",
                           "--bench-mode=smoke", "--bench-only=numpy", "--bench-machine=box",
                           "--benchmark-storage=storage", "--benchmark-compare", "-k", "test_forward"],
                          cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4 and "cannot compare with it: benchmark test_forward[numpy-b10]: its median nan" in out
    assert "Traceback" not in out and "no regression" not in out


# -- the benchmark's own checks -----------------------------------------------------------------------
@pytest.mark.usefixtures("mnist")
def test_the_after_timing_weight_check_is_not_fooled_by_live_views(tmp_path):
    """Both implementations' timed epochs end on other weights than the untimed one; ``live`` hands
    out live views of its weights, ``copying`` copies (the control). Both must fail."""
    impls = f"live={BAD}.run_live_views:LiveViews,copying={BAD}.run_live_views:Copying"
    proc = subprocess.run([sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", "--bench-mode=smoke",
                           "--bench-only=live,copying", "-k", "test_epoch", "-q"], cwd=REPO,
                          env=_env(tmp_path, impls), capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    for name in ("live", "copying"):
        assert f"FAILED bench/suites/bench_epoch.py::test_epoch[{name}-b10" in out
        assert f"{name} parameters: W of layer 1 after a timed epoch differs beyond tolerance" in out
