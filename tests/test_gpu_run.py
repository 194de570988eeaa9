"""``make gpu-run`` proved on the CPU: one dry run (``python -m bench.gpu_run --dry-run``) with
one step cut by its budget and one failing, shared by the tests below; then the step runner,
the JUnit counts and the usage errors on their own.

The dry run takes every path of the GPU run: facts, the tests step (cut here at 1 s: its own
run of the CUDA-named tests would add ~15 s and is in CI anyway), ``nnbench check`` (one
conforming implementation, one that does not exist), the fused Triton step in Triton's
interpreter, two implementations' suites in smoke mode through ``python -m bench.run`` and
their runs put together, and the summary. About 45 s on a 2-core machine.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from background import Background
from bench.gpu.outcome import junit_counts
from bench.gpu.steps import Step, run

REPO = Path(__file__).resolve().parents[1]
ARTEFACTS = {"summary.md", "summary.json", "environment.json", "tests.xml", "fused.json", "benchmark.json",
             "steps.log"}


def gpu_run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "bench.gpu_run", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, **kw)


# The dry run (about a minute) starts when collection ends and runs beside the other tests
# (tests/background.py); the tests that read it await it, last. MNIST: $NNBENCH_DATA or the cache.
DRY_RUN = Background("gpu-dry-run", "-m", "bench.gpu_run", "--dry-run", "--out", "{root}/out", "--step-budget", "tests=1",
                     "--check", "torch-fast-cpu", "--check", "no-such-impl")
awaits_dry_run = pytest.mark.background(DRY_RUN)


@pytest.fixture(scope="module")
def dry_run(mnist):
    pytest.importorskip("triton", reason="the dry run's fused step runs Triton's interpreter")
    proc = DRY_RUN.result(timeout=600)
    out = DRY_RUN.root / "out"
    proc.stderr = proc.stdout                      # one stream: the background run's output file
    summary = json.loads((out / "summary.json").read_text())
    return proc, out, summary, {s["name"]: s for s in summary["steps"]}


@awaits_dry_run
def test_dry_run_writes_every_artefact_flat_and_small(dry_run):
    proc, out, _, _ = dry_run
    # nothing else, no folder: what a device hands back; the cut tests step left no JUnit file
    assert {p.name for p in out.iterdir()} == ARTEFACTS - {"tests.xml"}
    assert all(p.stat().st_size < 16 * 2 ** 20 for p in out.iterdir())
    assert proc.returncode == 1, proc.stderr                  # a cut and a failed step: not a clean run


@awaits_dry_run
def test_a_cut_step_says_so_and_a_failing_one_stops_nothing(dry_run):
    _, out, _, steps = dry_run
    assert steps["tests"]["status"] == "cut" and "ran out of its 1 s budget" in steps["tests"]["note"]
    assert steps["check:torch-fast-cpu"]["status"] == "passed"
    assert steps["check:no-such-impl"]["status"] == "failed" and steps["check:no-such-impl"]["returncode"] != 0
    assert [s for s in steps if s.startswith("check:")] == ["check:torch-fast-cpu", "check:no-such-impl"]
    after = list(steps)[list(steps).index("check:no-such-impl") + 1:]
    assert after == ["fused", "suite:torch-fast-cpu", "suite:numpy"]
    assert all(steps[s]["status"] == "passed" for s in ["facts", *after])
    log = (out / "steps.log").read_text()
    assert "unknown implementation 'no-such-impl'" in log and "===== tests: cut" in log


@awaits_dry_run
def test_summary_printed_last_and_written(dry_run):
    proc, out, summary, _ = dry_run
    md = (out / "summary.md").read_text()
    assert "DRY RUN" in md and "against its targets" in md and "| tests " in md
    assert summary["tests"] is None                             # cut before pytest wrote its report
    tail = proc.stdout.strip().splitlines()
    assert tail[-1].startswith("gpu-run: wrote ") and "not passed: tests, check:no-such-impl" in tail[-1]
    assert "## The fused Triton step against its targets" in "\n".join(tail[-20:])
    assert summary["machine"].endswith("-dry-run") and summary["seconds"] < summary["budget"]


@awaits_dry_run
def test_environment_names_what_cannot_run_and_why(dry_run):
    _, out, summary, _ = dry_run
    facts = json.loads((out / "environment.json").read_text())
    assert facts["implementations"]["numpy"] is None
    assert facts["versions"]["torch"] and facts["python"]
    if not facts["torch"].get("cuda_available"):
        assert "no CUDA device" in facts["implementations"]["torch-fast-cuda"]
        assert "no CUDA device" in summary["unavailable"]["torch-fast-cuda"]
        assert "`torch-fast-cuda` cannot run here: no CUDA device" in (out / "summary.md").read_text()


@awaits_dry_run
def test_fused_targets_measured_with_their_bounds(dry_run):
    _, out, _, _ = dry_run
    fused = json.loads((out / "fused.json").read_text())
    assert fused["dry_run"] and fused["impl"] == "impls.triton_fused:interpreted"
    targets = {t["key"]: t for t in fused["targets"]}
    assert set(targets) == {"step", "relu", "epoch"} and not any("error" in t for t in targets.values())
    step, epoch = targets["step"], targets["epoch"]
    assert step["figure"] == pytest.approx(step["detail"]["median_epoch_seconds"] / step["detail"]["steps"])
    assert epoch["detail"]["bound_seconds"] == max(epoch["detail"]["compute_seconds"], epoch["detail"]["memory_seconds"])
    assert epoch["figure"] == pytest.approx(epoch["detail"]["median_epoch_seconds"] / epoch["detail"]["bound_seconds"])
    assert targets["relu"]["detail"]["seeds"][0]["status"] in ("reached", "missed")


@awaits_dry_run
def test_suites_are_one_machines_run_the_report_renders(dry_run, tmp_path):
    _, out, summary, _ = dry_run
    run_json = json.loads((out / "benchmark.json").read_text())
    meta = run_json["nnbench"]
    assert meta["modes"] == {"torch-fast-cpu": "smoke", "numpy": "smoke"} and meta["session"] == "passed"
    assert {b["extra_info"]["impl"] for b in run_json["benchmarks"]} == {"torch-fast-cpu", "numpy"}
    assert meta["machine"] == summary["machine"] and meta["command"] == summary["command"]
    assert summary["benchmark"]["benchmarks"] == len(run_json["benchmarks"])
    from bench.report import build
    files, _ = build(out / "benchmark.json", tmp_path / "report")
    assert "README.md" in files and "epoch.md" in files


def test_default_out_is_ignored_by_git():
    assert subprocess.run(["git", "check-ignore", "-q", "results/gpu-run/summary.md"], cwd=REPO).returncode == 0


def test_a_cut_step_takes_its_children_with_it(tmp_path):
    pid_file = tmp_path / "child.pid"
    code = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            f" open({str(pid_file)!r}, 'w').write(str(c.pid)); time.sleep(60)")
    step = run(Step("sleepy", [sys.executable, "-c", code], budget=2.0), tmp_path / "log")
    assert step.status == "cut" and step.seconds < 10
    child = int(pid_file.read_text())
    time.sleep(0.2)
    assert not running(child)


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, dead but not yet reaped by its new parent, is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_a_step_with_no_budget_left_is_cut_unstarted(tmp_path):
    step = run(Step("late", [sys.executable, "-c", "pass"], budget=0.5), tmp_path / "log")
    assert step.status == "cut" and "not started: no time left" in step.note and step.returncode is None


def test_a_run_too_large_to_come_back_is_gzipped(tmp_path, monkeypatch):
    import gzip
    from bench.gpu import outcome
    run = {"benchmarks": [{"stats": {"data": [1e-5] * 1000}}]}
    assert outcome.write_run(tmp_path, run).name == "benchmark.json"
    monkeypatch.setattr(outcome, "FILE_LIMIT", 1000)
    packed = outcome.write_run(tmp_path, run)
    assert packed.name == "benchmark.json.gz" and not (tmp_path / "benchmark.json").exists()
    assert json.loads(gzip.decompress(packed.read_bytes())) == run


def test_junit_counts(tmp_path):
    xml = tmp_path / "t.xml"
    xml.write_text('<testsuites><testsuite tests="4" failures="1" errors="0" skipped="2">'
                   '<testcase classname="tests.a" name="ok"/><testcase classname="tests.a" name="bad"><failure/></testcase>'
                   '</testsuite></testsuites>')
    assert junit_counts(xml) == {"tests": 4, "failures": 1, "errors": 0, "skipped": 2, "passed": 1,
                                 "failed_tests": ["tests.a::bad"]}
    assert junit_counts(tmp_path / "missing.xml") is None


@pytest.mark.parametrize("args, said", [
    (["--budget", "-3"], "is not a number of seconds"),
    (["--step-budget", "nosuch=3"], "no step or group named nosuch"),
    (["--step-budget", "tests"], "NAME=SECONDS"),
    (["--budget", "0"], "is not a number of seconds above 0"),
    (["--data", "/no/such/dir"], "--data: /no/such/dir is not a directory"),
])
def test_usage_errors_are_one_line(args, said):
    proc = gpu_run(*args)
    assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr


def test_an_unwritable_out_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    proc = gpu_run("--out", str(tmp_path / "file" / "out"))
    assert proc.returncode == 2 and proc.stderr.startswith("gpu-run: error: cannot write into --out")
    assert "Traceback" not in proc.stderr
