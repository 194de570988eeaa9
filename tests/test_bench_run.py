"""``python -m bench.run`` (bench/run.py): every implementation in processes of its own, their
rounds pooled into one run. Merging, planning and the process-level rule of ``make compare`` on
synthetic data; then real smoke-mode runs: a run with its history and a compare against it, a
process that dies, and the usage errors. No assertion here depends on how fast anything ran."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_benchmark.stats import Stats

from bench.harness import compare, processes

from background import Background

REPO = Path(__file__).resolve().parent.parent


# -- make compare: a shift between processes is not a change -----------------------------------------
STEADY = [0.300, 0.306, 0.294, 0.312, 0.297, 0.303, 0.309, 0.291, 0.300, 0.304]


def test_a_slowdown_whose_processes_overlap_the_baselines_is_noise():
    """Two processes a side; this run's faster process is no faster than the baseline's slower one,
    though the pooled rounds differ beyond the threshold with p < 0.05: a shift between processes."""
    before = STEADY + [1.6 * t for t in STEADY]
    now = [1.6 * t for t in STEADY] * 2
    v = compare.decide(before, now, threshold=15, processes=([0.3, 0.48], [0.48, 0.481]))
    assert v.p < 0.05 and v.change > 0.15
    assert v.verdict == compare.NOISE and not v.regression and "the processes overlap" in v.why


def test_a_slowdown_in_every_process_is_a_regression():
    v = compare.decide(STEADY * 2, [1.3 * t for t in STEADY] * 2, threshold=15, processes=([0.3, 0.31], [0.39, 0.4]))
    assert v.verdict == compare.SLOWER and v.regression and "beyond the 15% threshold" in v.why
    assert "one process a side" not in v.why


def test_a_slowdown_in_every_process_fails_only_when_the_gap_between_the_processes_passes_the_threshold():
    """torch-compile-cpu's epoch at batch 128, unchanged, on the dev box: processes at 0.335 and 0.377 s,
    then at 0.405 and 0.432 s. The medians moved +23%, the nearest processes 7.4%."""
    before, now = [0.33, 0.335, 0.34, 0.37, 0.377, 0.38], [0.40, 0.405, 0.41, 0.43, 0.432, 0.44]
    v = compare.decide(before, now, threshold=15, processes=([0.335, 0.377], [0.405, 0.432]))
    assert v.change > 0.15 and v.p < 0.05
    assert v.verdict == compare.SLOWER and not v.regression
    assert "by 7% from the nearest" in v.why and "within the 15% threshold" in v.why


def test_one_process_a_side_still_decides_but_says_what_it_cannot_see():
    v = compare.decide(STEADY, [1.3 * t for t in STEADY], threshold=15, processes=(None, [0.39, 0.4]))
    assert v.regression and "one process a side" in v.why


def _bench(name, data, status="passed", examples=100, medians=None):
    extra = {"status": status, "examples": examples, "impl": name.split("[")[1].split("-")[0]}
    if medians:
        extra["processes"] = [{"median": m, "rounds": 3} for m in medians]
    return {"name": name, "fullname": f"bench/x.py::{name}", "stats": {"data": data, "median": sorted(data)[len(data) // 2],
                                                                      "rounds": len(data)}, "extra_info": extra}


def test_compare_runs_judges_per_example_and_by_process():
    baseline = [_bench("test_epoch[a-b10]", STEADY, medians=[0.3, 0.31]),
                _bench("test_epoch[b-b10]", STEADY, medians=[0.3, 0.31])]
    current = [_bench("test_epoch[a-b10]", [1.3 * t for t in STEADY], medians=[0.39, 0.4]),
               _bench("test_epoch[b-b10]", [0.02 * t for t in STEADY], examples=10, medians=[0.006, 0.0061]),
               _bench("test_epoch[c-b10]", STEADY)]                            # not in the baseline: left out
    rows, counts, regressions = compare.compare_runs(baseline, current, threshold=15)
    assert regressions == ["test_epoch[a-b10]"] and counts == {"slower": 1, "faster": 1}
    assert "compared per example" in rows[1][-1] and len(rows) == 2
    assert "1 faster, 1 slower" in compare.render(rows, counts, 0.05, 15)


# -- merging the processes' JSONs -------------------------------------------------------------------------
def _part(benchmarks, outcomes, peak, rss, threads):
    return {"machine_info": {"nnbench": {"threads": threads, "blas": []}}, "commit_info": {}, "datetime": "now",
            "version": "5", "benchmarks": benchmarks,
            "nnbench": {"mode": "quick", "outcomes": outcomes, "gemm_peak_gflops": {"float32": peak},
                        "peak_rss_session": rss, "session": "passed", "available": {}, "sources": {},
                        "built_in": []}}


def _timed(name, data, status="passed"):
    stats = Stats()
    for t in data:
        stats.update(t)
    return {"name": name, "fullname": name, "stats": {**stats.as_dict(), "data": data},
            "extra_info": {"status": status, "examples": 10, "flops": 4e9, "peak_gflops": 100.0,
                           "gflops": 4 / stats.median}}


def test_merge_pools_each_benchmarks_rounds_and_keeps_each_processes_median():
    one = _part([_timed("f[a]", [1.0, 2.0, 3.0])], [{"test": "f[a]", "status": "passed", "impl": "a"},
                                                     {"test": "t[a]", "status": "passed", "impl": "a"}],
                100.0, 5e8, {"numpy": 2})
    two = _part([_timed("f[a]", [4.0, 5.0], status="failed")], [{"test": "f[a]", "status": "failed", "impl": "a"}],
                300.0, 7e8, {"torch": 2})
    run = processes.merge([one, two], processes=2)
    [bench] = run["benchmarks"]
    assert bench["stats"]["data"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert bench["stats"]["rounds"] == 5 and bench["stats"]["median"] == 3.0 and bench["stats"]["max"] == 5.0
    assert [p["median"] for p in bench["extra_info"]["processes"]] == [2.0, 4.5]
    assert bench["extra_info"]["status"] == "failed"                   # failed in any process: failed
    # what the report shows beside the time is the pooled median's, not the first process's
    assert bench["extra_info"]["gflops"] == 4 / 3.0 and bench["extra_info"]["examples_per_s"] == 10 / 3.0
    assert bench["extra_info"]["pct_peak"] == pytest.approx(100 * 4 / 3.0 / 100.0)
    assert bench["extra_info"]["iqr_frac"] == bench["stats"]["iqr"] / 3.0
    assert {o["test"]: o["status"] for o in run["nnbench"]["outcomes"]} == {"f[a]": "failed", "t[a]": "passed"}
    assert run["nnbench"]["gemm_peak_gflops"] == {"float32": 200.0}
    assert run["nnbench"]["peak_rss_session"] == 7e8 and run["nnbench"]["processes"] == 2
    assert run["nnbench"]["peak_rss_processes"] == {"a": 7e8}          # the higher of a's two processes
    assert run["machine_info"]["nnbench"]["threads"] == {"numpy": 2, "torch": 2}


def test_plan_interleaves_the_processes_and_groups_what_cannot_run():
    status = {"a": None, "b": None, "gpu1": "no GPU", "gpu2": "no GPU"}
    assert processes.plan(status, None, 2) == [(["a"], 1), (["b"], 1), (["a"], 2), (["b"], 2), (["gpu1", "gpu2"], 1)]
    assert processes.plan(status, "b", 1) == [(["b"], 1)]
    with pytest.raises(ValueError, match="no implementation named nope"):
        processes.plan(status, "a,nope", 1)


# -- real runs, smoke mode ------------------------------------------------------------------------------------
def _argv(storage, *args):
    return ("-m", "bench.run", "--mode=smoke", f"--storage={storage}", "--machine=box", *args)


def _run(tmp_path, *args, impls=""):
    env = dict(os.environ, PYTHONPATH=str(REPO), NNBENCH_IMPLS=impls)
    proc = subprocess.run([sys.executable, *_argv(tmp_path / "storage", *args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


# The two runs below that save (numpy in two processes; numpy beside a process that dies) start when
# collection ends and run beside the other tests (tests/background.py); their tests await them.
FORWARD_AND_EPOCH = ("-k", "test_forward or test_epoch", "--benchmark-min-rounds=2", "--benchmark-max-time=0.002")
SAVED_IN_TWO_PROCESSES = Background(
    "bench-run-two-processes", *_argv("{root}/storage", "--only=numpy", "--processes=2", "--json={root}/run.json",
                                      "--save", "--", *FORWARD_AND_EPOCH), env={"NNBENCH_IMPLS": ""})
AGAINST_HEAD = Background(
    "bench-run-ref-head", *_argv("{root}/storage", "--only=numpy", "--ref=HEAD", "--compare-fail=3",
                                 "--json={root}/run.json", "--", "-k", "test_forward"), env={"NNBENCH_IMPLS": ""})
ONE_DIES = Background(
    "bench-run-one-dies", *_argv("{root}/storage", "--only=numpy,crash", "--processes=1", "--json={root}/run.json",
                                 "--save", "--", "-k", "test_epoch"), env={"NNBENCH_IMPLS": "crash=tests.crashing:Crashing"})


@pytest.mark.usefixtures("mnist")
@pytest.mark.background(SAVED_IN_TWO_PROCESSES)
def test_a_run_in_two_processes_is_saved_then_compared_against():
    proc = SAVED_IN_TWO_PROCESSES.result(timeout=600)
    code, out, root = proc.returncode, proc.stdout, SAVED_IN_TWO_PROCESSES.root
    assert code == 0, out[-4000:]
    run = json.loads((root / "run.json").read_text())
    assert run["nnbench"]["processes"] == 2 and run["nnbench"]["session"] == "passed"
    assert set(run["nnbench"]["peak_rss_processes"]) == {"numpy"}
    for bench in run["benchmarks"]:
        procs = bench["extra_info"]["processes"]
        assert len(procs) == 2 and sum(p["rounds"] for p in procs) == bench["stats"]["rounds"] == len(bench["stats"]["data"])
    assert [p.name for p in (root / "storage" / "box").glob("0001_*.json")]

    # README's `pytest bench --benchmark-compare` reads that history as pytest-benchmark's own save
    # (run from the run's folder: pytest-benchmark's machine_info warning fails on a storage outside it)
    proc = subprocess.run([sys.executable, "-m", "pytest", str(REPO / "bench"), "-p", "no:cacheprovider",
                           "--bench-mode=smoke", "--bench-only=numpy", "--bench-machine=box", "--benchmark-storage=storage",
                           "--benchmark-compare", "-k", "test_forward", "--benchmark-max-time=0.002"], cwd=root,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "nnbench compare against box/0001_" in proc.stdout, (proc.stdout + proc.stderr)[-3000:]

    code, out = _run(root, "--only=numpy", "--processes=2", "--compare", "--compare-fail=15", "--", *FORWARD_AND_EPOCH)
    assert code in (0, 1), out[-4000:]
    assert "nnbench compare against" in out and "2 process(es) a benchmark there, 2 here" in out
    assert ("no regression" in out) == (code == 0)
    assert not list((root / "storage" / "box").glob("0002_*.json")), "a compare saves nothing"


@pytest.mark.usefixtures("mnist")
@pytest.mark.background(ONE_DIES)
def test_a_process_that_dies_is_a_failure_of_its_implementation_and_the_others_are_kept():
    proc = ONE_DIES.result(timeout=600)
    code, out, root = proc.returncode, proc.stdout, ONE_DIES.root
    assert code == 1, out[-4000:]
    assert "crash: process 1 of 1: the benchmark process died of SIGKILL" in out
    run = json.loads((root / "run.json").read_text())
    assert run["nnbench"]["session"] == "failed"
    assert {b["extra_info"]["impl"] for b in run["benchmarks"]} == {"numpy"}
    assert any(o["status"] == "failed" and o["impl"] == "crash" for o in run["nnbench"]["outcomes"])
    assert not list((root / "storage" / "box").glob("*.json")), "a failed run is no baseline"
    assert list((root / "storage" / "failed" / "box").glob("*.json"))


@pytest.mark.usefixtures("mnist")
@pytest.mark.background(AGAINST_HEAD)
def test_ref_times_the_baselines_implementations_in_the_same_trials_and_decides_from_the_pairs():
    """`make compare REF=HEAD`: HEAD's impls/ and today's, members of the same trials; smoke mode's one or
    two trials are too few for an interval, so every verdict is 'undecided' and the run passes."""
    proc = AGAINST_HEAD.result(timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Traceback" not in out, out[-4000:]
    assert "the baseline is the implementations of" in out and "against" in out and "undecided" in out
    run = json.loads((AGAINST_HEAD.root / "run.json").read_text())
    trials = run["nnbench"]["trials"]["benchmarks"]
    assert trials and all(sorted(order) == ["base:numpy", "numpy"] for t in trials.values() for order in t["orders"])
    assert {b["extra_info"]["impl"] for b in run["benchmarks"]} == {"numpy"}     # the run is today's side
    assert all(r["trial"] is not None for b in run["benchmarks"] for r in b["extra_info"]["rounds"])


def test_a_ref_that_is_no_revision_is_one_line_before_anything_runs(tmp_path):
    code, out = _run(tmp_path, "--ref=no-such-revision-anywhere")
    assert code == 2 and "--ref no-such-revision-anywhere" in out and "Traceback" not in out, out[-2000:]
    assert "take turns, one at a time" not in out


@pytest.mark.parametrize("args,said", [
    (["--processes=0"], "is not a whole number of processes"),
    (["--compare"], "no saved smoke run of machine 'box'"),
    (["--compare-fail=15"], "--compare-fail needs --compare"),
    (["--compare", "--ref=HEAD"], "one baseline at a time"),
    (["--compare", "--compare-fail=-3"], "is not a percentage"),
    (["--only=nope"], "no implementation named nope"),
])
def test_bad_arguments_are_one_line_before_anything_runs(tmp_path, args, said):
    code, out = _run(tmp_path, *args)
    assert code != 0 and said in out and "Traceback" not in out, out[-2000:]
    assert "take turns, one at a time" not in out


def test_most_benchmarks_moving_one_way_is_called_out():
    """`make compare MODE=full` on unchanged code, the machine slower that hour: 41 slower, 3 faster."""
    assert "41 of 121 benchmarks slower, 3 the other way" in compare.one_way(
        {"slower": 41, "faster": 3, "noise": 52, "undecided": 25})
    assert compare.one_way({"slower": 1, "faster": 6, "noise": 33, "undecided": 8}) is None
    assert compare.one_way({"slower": 5, "noise": 1}) is not None


def test_a_baseline_of_another_machine_is_refused_before_anything_runs(tmp_path):
    saved = tmp_path / "laptop.json"
    saved.write_text(json.dumps({"nnbench": {"machine": "laptop", "mode": "smoke"}, "benchmarks": []}))
    code, out = _run(tmp_path, f"--compare={saved}")
    assert code == 4 and "measured on machine 'laptop', this is 'box'" in out and "--compare-other-machine" in out
    assert "Traceback" not in out and "take turns, one at a time" not in out
