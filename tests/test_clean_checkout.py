"""The documented tool commands leave a checkout as they found it (`git status --porcelain` unchanged).

In a throwaway copy of this working tree (its tracked and untracked, not ignored, files, committed
into a fresh repository), `make study` and `make profile` run at smoke sizes with their default
output folders (out/, ignored), and the same through `python -m bench.studies` and
`python -m bench.profiling`. Not run here: `make bench-quick` writes results/quick/, which is
ignored too, and `make bench` regenerates the committed results/ pages on purpose -- that is its
job, so a checkout after it differs by design. Publishing a study or a profile is asked for
explicitly (`OUT=results/studies`, `--out results/profiles`).
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV = Path(sys.executable).parent.parent
SMOKE_STUDY = "--impl numpy --presets nielsen --batch-sizes 10 --seconds 0.01 --repeats 1"
SMOKE_PROFILE = "--batch 100 --seconds 1"


def git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("needs git and make")
    copy = tmp_path_factory.mktemp("checkout")
    for name in git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0"):
        if name and (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "copy"]):
        git(copy, *args)
    return copy


def run_in(copy, command: list[str]) -> subprocess.CompletedProcess:
    # this interpreter's venv, so make does not build one; -o: take its install stamp as up to date
    make_args = [f"VENV={VENV}", "-o", str(VENV / ".installed-stamp")] if command[0] == "make" else []
    env = dict(os.environ, PYTHONPATH=str(copy))
    return subprocess.run(command[:1] + make_args + command[1:], cwd=copy, capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.parametrize("command", [
    ["make", "study", "NAME=step-overhead", f"ARGS={SMOKE_STUDY}"],
    [sys.executable, "-m", "bench.studies", "step-overhead", *SMOKE_STUDY.split()],
    ["make", "profile", "IMPL=numpy", "PHASE=forward", "SECONDS=1", f"ARGS={SMOKE_PROFILE}"],
    [sys.executable, "-m", "bench.profiling", "--impl", "numpy", "--preset", "nielsen", "--phase", "forward",
     *SMOKE_PROFILE.split()],
], ids=["make-study", "bench.studies", "make-profile", "bench.profiling"])
def test_tool_leaves_git_status_unchanged(checkout, command, mnist):
    before = git(checkout, "status", "--porcelain", "--untracked-files=all")
    result = run_in(checkout, command)
    if result.returncode and "ptrace" in result.stderr:
        pytest.skip(f"py-spy may not attach here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert git(checkout, "status", "--porcelain", "--untracked-files=all") == before
    assert any((checkout / "out").rglob("*.md" if "stud" in " ".join(command) else "*.svg"))   # it did write
