"""`make compare`'s decision (bench/harness/compare.py) on synthetic round times, and the plugin's
machine labels, per-label history and verdicts inside real pytest-benchmark sessions whose timer is
fake: every round takes exactly what the test says, so nothing here depends on timing luck."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import compare
from bench.harness.host import check_label, default_label, label_of

REPO = Path(__file__).resolve().parent.parent

# Round times of an unchanged benchmark: the same ten values in another order, spread over ±4%.
STEADY = [0.300, 0.306, 0.294, 0.312, 0.297, 0.303, 0.309, 0.291, 0.300, 0.304]


def test_the_same_rounds_in_another_order_are_noise():
    v = compare.decide(STEADY, list(reversed(STEADY)))
    assert v.verdict == compare.NOISE and not v.regression and v.p > 0.5


def test_a_30_percent_slowdown_is_a_regression_with_five_rounds_each():
    v = compare.decide(STEADY[:5], [1.3 * t for t in STEADY[5:]], threshold=15)
    assert v.verdict == compare.SLOWER and v.regression
    assert v.p < 0.05 and v.change == pytest.approx(0.3, abs=0.03)
    assert "beyond the 15% threshold" in v.why


def test_a_significant_slowdown_within_the_threshold_does_not_fail():
    v = compare.decide(STEADY, [1.08 * t for t in STEADY], threshold=15)
    assert v.verdict == compare.SLOWER and not v.regression and "within the 15% threshold" in v.why


def test_a_big_change_inside_the_spread_is_noise_not_a_regression():
    """A median 20% up, but the rounds overlap as much as chance would have them: not significant."""
    before = [0.2, 0.4, 0.25, 0.45, 0.3]
    now = [0.36, 0.22, 0.5, 0.28, 0.42]
    v = compare.decide(before, now, threshold=15)
    assert v.change > 0.15 and v.verdict == compare.NOISE and not v.regression


def test_faster():
    v = compare.decide(STEADY, [0.7 * t for t in STEADY])
    assert v.verdict == compare.FASTER and v.change < 0 and not v.regression


@pytest.mark.parametrize("n,m", [(1, 1), (2, 2), (3, 3), (2, 5), (1, 30)])
def test_too_few_rounds_to_decide_says_so_even_for_a_doubling(n, m):
    v = compare.decide(STEADY[:n], [2 * t for t in (STEADY * 3)[:m]])
    assert v.verdict == compare.UNDECIDED and not v.regression and v.p is None
    assert "too few rounds" in v.why and f"{compare.rounds_needed()} each" in v.why


def test_rounds_needed_follows_from_the_exact_test():
    assert compare.smallest_p(3, 3) == pytest.approx(0.1)
    assert compare.smallest_p(4, 4) == pytest.approx(2 / 70)
    assert compare.rounds_needed(0.05) == 4 and compare.rounds_needed(0.01) == 5


def test_the_modes_time_enough_epoch_rounds_for_a_decision():
    from bench.harness.phases import MODES
    for mode in ("full", "quick"):
        low = MODES[mode].epoch_rounds[0]
        assert compare.smallest_p(low, low) < compare.ALPHA / 2, mode      # with a round to spare


def test_a_baseline_without_round_times_is_undecided():
    v = compare.decide(None, STEADY)
    assert v.verdict == compare.UNDECIDED and "--benchmark-save-data" in v.why


# -- labels -------------------------------------------------------------------------------------
def paired_bench(impl, factor, *, examples=10, trials=12, status="passed", clean=True):
    """A benchmark of a run with trials: its rounds ``factor`` times a machine phase shared by every
    benchmark timed in that trial (slow in every third trial), plus a little noise of its own."""
    wobble = [1.0, 1.01, 0.99, 1.02, 0.98, 1.0]
    rounds = [{"trial": t, "process": 1, "seconds": examples * factor * (3.0 if t % 3 == 0 else 1.0)
               * wobble[(t + len(impl)) % 6], "cpu": 1.0, "others": 0.0, "steal": 0.0, "clean": clean}
              for t in range(trials)]
    return {"name": f"test_epoch[{impl}-b10]", "fullname": f"bench/suites/x.py::test_epoch[{impl}-b10]",
            "group": "epoch batch=10", "extra_info": {"impl": impl, "examples": examples, "status": status,
                                                      "rounds": rounds}}


def test_the_paired_compare_decides_each_benchmark_on_its_trials():
    base = [paired_bench(i, 1.0) for i in ("same", "slowed", "sped", "few", "failed")]
    head = [paired_bench("same", 1.0), paired_bench("slowed", 1.10), paired_bench("sped", 0.8),
            paired_bench("few", 2.0, trials=2), paired_bench("failed", 1.0, status="failed"),
            paired_bench("new", 1.0)]
    rows, counts, regressions = compare.compare_paired(head, base)
    verdicts = {r[0]: r[3] for r in rows}
    assert verdicts == {"test_epoch[same-b10]": "noise", "test_epoch[slowed-b10]": "SLOWER",
                        "test_epoch[sped-b10]": "faster", "test_epoch[few-b10]": "undecided",
                        "test_epoch[failed-b10]": ""}
    assert counts == {"noise": 1, "slower": 1, "faster": 1, "undecided": 1}
    assert regressions == ["test_epoch[slowed-b10]"]
    slowed = next(r for r in rows if r[0] == "test_epoch[slowed-b10]")
    assert slowed[1] == "12 / 12" and slowed[2].startswith("1.1") and " [" in slowed[2]
    text = compare.render_paired(rows, counts, regressions)
    assert "same interleaved trials" in text and "95% bootstrap interval" in text
    assert text.splitlines()[-1].startswith("nnbench: 1 benchmark(s) slower than the base")
    assert "no regression" in compare.render_paired(rows, counts, [])


def test_the_paired_compare_is_per_example_and_ignores_unclean_rounds():
    base = [paired_bench("ref", 1.0, examples=50_000)]
    head = [paired_bench("ref", 1.0, examples=5_000)]            # a tenth of the epoch, the same speed
    head[0]["extra_info"]["rounds"] += [dict(r, seconds=99.0, clean=False) for r in head[0]["extra_info"]["rounds"]]
    rows, counts, _ = compare.compare_paired(head, base)
    assert counts == {"noise": 1} and rows[0][2].startswith("1.00×")


def test_the_saved_run_compare_says_it_is_the_weaker_test():
    text = compare.render([], {}, 0.05, 15)
    assert text.startswith("The weaker test, against a run saved earlier") and "make compare REF=<rev>" in text


def test_default_label_names_cpu_cores_and_gpu():
    assert default_label("Intel(R) Xeon(R) Processor", 2, None) == "intel-xeon-2cpu"
    assert default_label("Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz", 8, None) == "intel-core-i7-8650u-8cpu"
    assert (default_label("Intel(R) Xeon(R) Processor", 16, "NVIDIA H100 80GB HBM3 (79.2 GiB, compute capability "
                          "9.0, 132 SMs), driver 580.159.04") == "intel-xeon-16cpu-nvidia-h100-80gb-hbm3")


def test_a_run_from_before_labels_gets_the_default_from_its_description():
    old = {"nnbench": {}, "machine_info": {"node": "vm", "nnbench": {"cpu": "AMD EPYC 7B13 64-Core Processor",
                                                                    "logical_cpus": 4, "gpu": None}}}
    assert label_of(old) == "amd-epyc-7b13-64-core-4cpu"
    assert label_of({"nnbench": {"machine": "laptop"}}) == "laptop"


@pytest.mark.parametrize("bad", ["", "a/b", "../x", "failed", "has space", "-x"])
def test_a_label_must_be_a_folder_name(bad):
    with pytest.raises(ValueError, match="cannot be a machine label"):
        check_label(bad)


# -- inside pytest-benchmark sessions ----------------------------------------------------------------
SUITE = '''
import pytest
PHASE = "epoch"

def test_epoch(benchmark):
    import os
    benchmark.extra_info.update(phase="epoch", impl="numpy", batch=10, status="passed",
                                examples=int(os.environ.get("FAKE_EXAMPLES", "50000")))
    benchmark.pedantic(lambda: None, rounds=ROUNDS, iterations=1)
'''

# pytest-benchmark reads the timer before and after each round: each pair is one round of
# $FAKE_ROUND seconds times the next of a fixed ±3% pattern.
TIMER = '''
import itertools, os
_pattern = itertools.cycle([1.00, 1.02, 0.98, 1.03, 0.97, 1.01, 0.99])
_now, _calls = 0.0, 0
def clock():
    global _now, _calls
    _calls += 1
    if _calls % 2 == 0:
        _now += float(os.environ["FAKE_ROUND"]) * next(_pattern)
    return _now
'''


def fake_session(tmp_path):
    """run(round_seconds, *args, rounds=7) -> (returncode, output): the fake-timed suite with only
    bench.harness.plugin loaded, history in tmp_path/storage. ``--bench-only=numpy``: the suite's
    one benchmark says it is numpy's, so the run's record asks only numpy whether it is available
    (importing every framework to ask would take seconds a session and check nothing here)."""
    (tmp_path / "faketimer.py").write_text(TIMER)
    storage = tmp_path / "storage"

    def run(round_seconds, *args, rounds=7, examples=50_000):
        (tmp_path / "test_suite.py").write_text(SUITE.replace("ROUNDS", str(rounds)))
        env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{tmp_path}", FAKE_ROUND=str(round_seconds),
                   FAKE_EXAMPLES=str(examples))
        proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "bench.harness.plugin", "-p", "bench.harness.history",
                               "-p", "no:cacheprovider",
                               str(tmp_path / "test_suite.py"), f"--benchmark-storage=file://{storage}",
                               "--benchmark-timer=faketimer.clock", "--benchmark-disable-gc", "--benchmark-warmup=off",
                               "--bench-only=numpy", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        return proc.returncode, proc.stdout + proc.stderr

    run.storage = storage
    return run


@pytest.fixture
def session(tmp_path):
    return fake_session(tmp_path)


@pytest.fixture(scope="module")
def saved_baseline(tmp_path_factory):
    """The storage of one passing run of 0.3 s rounds saved as machine ``m``: the baseline the
    compare cases below each copy, saved once for all of them."""
    run = fake_session(tmp_path_factory.mktemp("baseline"))
    code, out = run(0.3, "--benchmark-autosave", "--benchmark-save-data", "--bench-machine=m")
    assert code == 0, out
    return run.storage


@pytest.fixture
def session_with_baseline(session, saved_baseline):
    shutil.copytree(saved_baseline, session.storage)
    return session


def test_history_is_kept_per_machine_label_with_round_times(session):
    code, out = session(0.3, "--benchmark-autosave", "--benchmark-save-data", "--bench-machine=laptop")
    assert code == 0, out
    [saved] = (session.storage / "laptop").glob("*.json")
    run = json.loads(saved.read_text())
    assert run["nnbench"]["machine"] == "laptop"
    assert len(run["benchmarks"][0]["stats"]["data"]) == 7

    code, out = session(0.3, "--benchmark-autosave")                   # the default label: this machine's
    assert code == 0, out
    [other] = [p.name for p in session.storage.iterdir() if p.name != "laptop"]
    from bench.harness.host import this_label
    assert other == this_label() and other != "vm"


def test_a_baseline_from_another_machine_is_refused_in_one_line_unless_asked_for(session):
    session(0.3, "--benchmark-autosave", "--benchmark-save-data", "--bench-machine=laptop")
    [saved] = (session.storage / "laptop").glob("*.json")
    code, out = session(0.3, "--bench-machine=ci-box", f"--benchmark-compare={saved}")
    assert code == pytest.ExitCode.USAGE_ERROR, out
    [line] = [ln for ln in out.splitlines() if "ERROR" in ln]
    assert "measured on machine 'laptop', this is 'ci-box'" in line and "--bench-compare-other-machine" in line
    assert "Traceback" not in out
    code, out = session(0.3, "--bench-machine=ci-box", f"--benchmark-compare={saved}", "--bench-compare-other-machine")
    assert code == 0, out


@pytest.mark.parametrize("now,rounds,code,verdict", [
    (0.3, 7, 0, "noise"),                   # unchanged
    (0.39, 7, 1, "SLOWER"),                 # 30% slower: significant and beyond 15%
    (0.33, 7, 0, "slower"),                 # 10% slower: significant, within 15%
    (0.2, 7, 0, "faster"),
    (0.6, 2, 0, "undecided"),               # twice as slow, but 2 rounds against 7 cannot decide
])
def test_compare_reports_each_benchmark_and_fails_only_on_a_significant_slowdown_beyond_the_threshold(
        session_with_baseline, now, rounds, code, verdict):
    session = session_with_baseline
    got, out = session(now, "--bench-machine=m", "--benchmark-compare", "--bench-compare-fail=15", rounds=rounds)
    assert got == code, out
    ours = out[out.index("nnbench compare against"):]
    row = next(ln for ln in ours.splitlines() if ln.startswith("test_epoch"))
    assert f" {verdict} " in f" {row} ", row
    assert ("no regression" in out) == (code == 0)
    assert "Traceback" not in out


def test_compare_fail_without_compare_is_a_usage_error(session):
    code, out = session(0.3, "--bench-compare-fail=15")
    assert code == pytest.ExitCode.USAGE_ERROR and "needs --benchmark-compare" in out


def test_compare_takes_the_newest_saved_run_of_its_own_mode_and_says_when_there_is_none(session):
    assert session(0.3, "--benchmark-autosave", "--benchmark-save-data", "--bench-machine=m", "--bench-mode=quick")[0] == 0
    assert session(0.6, "--benchmark-autosave", "--benchmark-save-data", "--bench-machine=m", "--bench-mode=full")[0] == 0
    code, out = session(0.3, "--bench-machine=m", "--bench-mode=quick", "--benchmark-compare", "--bench-compare-fail=15")
    assert code == 0, out
    ours = out[out.index("nnbench compare against"):]
    assert "0001_" in ours.splitlines()[0]                       # the quick run, not the newer full one
    assert " noise " in next(ln for ln in ours.splitlines() if ln.startswith("test_epoch"))
    assert "the baseline is a" not in out
    code, out = session(0.3, "--bench-machine=m", "--bench-mode=smoke", "--benchmark-compare")
    assert "the baseline is a full run and this is smoke" in out, out


def test_rounds_over_a_different_number_of_examples_are_compared_per_example(session):
    """The reference's epoch is timed on a tenth of the set when its estimate passes 4 s: one run
    may time the whole epoch, the next a tenth, under one test id."""
    assert session(4.4, "--benchmark-autosave", "--benchmark-save-data", "--bench-machine=m")[0] == 0
    code, out = session(0.44, "--bench-machine=m", "--benchmark-compare", "--bench-compare-fail=15", examples=5_000)
    assert code == 0, out
    row = next(ln for ln in out[out.index("nnbench compare against"):].splitlines() if ln.startswith("test_epoch"))
    assert " noise " in row and "compared per example" in row, row
