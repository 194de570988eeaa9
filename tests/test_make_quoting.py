"""The Makefile's recipes pass user variables as arguments, never as shell text: a spec with options
is one argument, a ';' in a value runs nothing, and ARGS is split into words as a shell would but
not evaluated (bench/make_args.py). Checked against a stand-in .venv whose programs only record the
arguments they get, so nothing here runs a benchmark."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INHERITED = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "IMPL", "IMPLS", "NNBENCH_IMPLS", "PRESET", "MODE",
             "MACHINE", "ONLY", "ARGS", "PROCESSES", "COMPARE_FAIL", "PHASE", "NAME", "OUT", "BUDGET", "DATA",
             "DRY_RUN", "SECONDS", "REF", "COMPARE_PROCESSES"}

RECORD = f"""#!/bin/sh
if [ "$2" = bench.make_args ]; then exec {sys.executable} "$@"; fi
exec {sys.executable} -c 'import json, os, sys; open(os.environ["ARGV_LOG"], "a").write(json.dumps(sys.argv[1:]) + "\\n")' "$@"
"""


@pytest.fixture
def make(tmp_path):
    """``make(target, VAR=value, ...) -> (exit status, [argv of every program the recipe ran])``."""
    if not shutil.which("make"):
        pytest.skip("no make on this machine")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "nnbench"):
        (venv / "bin" / name).write_text(RECORD)
        (venv / "bin" / name).chmod(0o755)
    # run in tmp_path (the recipes write .benchmarks/ where they run), with the stamp's prerequisites
    # there and older than it: nothing is installed
    for name in ("pyproject.toml", "Makefile"):
        (tmp_path / name).touch()
        os.utime(tmp_path / name, (0, 0))
    (venv / ".installed-stamp").touch()
    log = tmp_path / "argv.jsonl"
    # not the variables of a `make test` this runs under: make passes them on to every make below it
    env = {k: v for k, v in os.environ.items() if k not in INHERITED}
    env.update(ARGV_LOG=str(log), PYTHONPATH=str(REPO))

    def run(target, **variables):
        log.write_text("")
        proc = subprocess.run(["make", "-s", "-f", str(REPO / "Makefile"), target, f"VENV={venv}",
                               *(f"{k}={v}" for k, v in variables.items())],
                              env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        return proc.returncode, [json.loads(line) for line in log.read_text().splitlines()], proc.stderr
    return run


def test_a_value_with_shell_syntax_is_one_argument_and_runs_nothing(make, tmp_path):
    code, argvs, _ = make("check", IMPL=f"numpy --no-mnist; touch {tmp_path}/x", ARGS=f"--a 'b c' ; touch {tmp_path}/y")
    assert code == 0
    assert argvs == [["check", f"numpy --no-mnist; touch {tmp_path}/x", "--a", "b c", ";", "touch", f"{tmp_path}/y"]]
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_spec_with_options_goes_through_make_check_and_train(make):
    spec = 'mynet:MyNetwork(device="cuda", n=2)'
    assert make("check", IMPL=spec)[1] == [["check", spec]]
    assert make("train", IMPL=spec, PRESET="relu")[1] == [["train", "--impl", spec, "--preset", "relu"]]


def test_bench_and_compare_quote_every_variable(make, tmp_path):
    code, argvs, _ = make("compare", REF="saved", MODE="quick", MACHINE="box; touch x", ONLY="a b",
                          COMPARE_PROCESSES="1", COMPARE_FAIL="15", ARGS="-k 'forward or epoch'")
    assert argvs == [["-m", "bench.run", "--mode=quick", "--processes=1", "--compare", "--compare-fail=15",
                      "--machine=box; touch x", "--only=a b", "--", "-k", "forward or epoch"]]
    code, argvs, _ = make("compare", REF="HEAD~1; touch x")         # today's and REF's in the same trials
    assert argvs == [["-m", "bench.run", "--mode=quick", "--processes=2", "--ref=HEAD~1; touch x",
                      "--compare-fail=3", "--"]]
    assert make("compare")[1][0][4:6] == ["--ref=auto", "--compare-fail=3"]
    code, argvs, _ = make("bench-quick", PROCESSES="2; touch x")
    assert argvs[0][:4] == ["-m", "bench.run", "--mode=quick", "--processes=2; touch x"]
    assert [a[1] for a in argvs] == ["bench.run", "bench.report", "bench.report"]
    assert not (tmp_path / "x").exists()
    code, argvs, _ = make("test", ARGS="tests/test_x.py -k 'a and not b'")
    assert argvs == [["-m", "pytest", "--durations=15", "tests/test_x.py", "-k", "a and not b"]]


def test_unbalanced_quotes_in_args_are_one_line(make):
    code, argvs, err = make("check", ARGS='"unbalanced')
    assert code != 0 and argvs == [] and "ARGS='\"unbalanced': No closing quotation" in err and "Traceback" not in err


def test_profile_study_and_gpu_run_quote_every_variable(make, tmp_path):
    spec = 'my.net=mynet:MyNetwork(device="cpu"); touch x'
    code, argvs, _ = make("profile", IMPL=spec, PHASE="forward", OUT="o u t", ARGS="--split --batch '100'")
    assert argvs == [["-m", "bench.profiling", "--impl", spec, "--preset", "nielsen", "--phase", "forward",
                      "--seconds", "15", "--out", "o u t", "--split", "--batch", "100"]]
    code, argvs, _ = make("study", NAME="cost-model; touch x", ARGS="--presets relu")
    assert argvs == [["-m", "bench.studies", "cost-model; touch x", "--presets", "relu"]]
    code, argvs, _ = make("gpu-run", DRY_RUN="1", MACHINE="gpu box", ARGS="--step-budget 'a b'")
    assert argvs[0][:6] == ["-m", "bench.gpu_run", "--out", "results/gpu-run", "--budget", "480"]
    assert argvs[0][6:] == ["--dry-run", "--machine=gpu box", "--step-budget", "a b"]
    assert not (tmp_path / "x").exists()
