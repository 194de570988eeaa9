"""The baseline's code in a folder of its own: what ``make compare REF=<rev>`` times beside today's.

A comparison of two versions is fair only when one harness measures both: the same suites, the
same plugin, the same trials. So only the code under test, ``impls/``, comes from REF; the harness
(``bench/``), the suites' pytest settings (``pyproject.toml``) and the test helpers (``tests/``,
e.g. ``tests.slowed``) are today's. ``prepare`` builds such a folder: REF's ``impls/`` extracted with
``git archive`` (which reads the object store and changes nothing in the repository: no worktree,
no index, no HEAD), and links to the current checkout for the rest. Run
``python -m pytest bench ...`` with that folder as the working directory and Python finds REF's
``impls`` first: the folder is the first entry of ``sys.path``, and the editable install's
``__editable__`` finder sits after the path finder in ``sys.meta_path``, so it answers only for
what the path does not hold. ``prepare`` checks this in a fresh interpreter rather than trusting it.

**Both sides are prepared alike** (``sides``): today's ``impls/`` is copied into a folder of the
same shape beside REF's, and both sides' processes run from their folders. Run from the checkout,
today's side differed from the baseline's in more than its code: Numba loaded its kernels from the
checkout's on-disk cache while REF's compiled afresh, the paths and environment differed in length
(which moves a process's memory layout: Mytkowicz et al., "Producing Wrong Data Without Doing
Anything Obviously Wrong!", ASPLOS 2009), and unchanged code came out a few percent faster on
today's side in every compare. Now the only difference between the sides is the code.

Only ``impls/`` is taken from REF: an implementation of your own in another module (``$NNBENCH_IMPLS``,
an installed package) is imported from where it lives today, on both sides.

No pytest here: the driver (``python -m bench.run``) imports it.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from impls.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
#: the code under test, taken from REF
CODE = "impls"
#: taken from the current checkout (linked): the harness, its pytest settings, the test helpers
HARNESS = ("bench", "tests", "pyproject.toml")


class BaselineError(ConfigError):
    """The baseline cannot be prepared: not a git repository, no such revision, no ``impls/`` in it."""


def _git(repo: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=not binary, timeout=120)
    except FileNotFoundError:
        raise BaselineError("git is not installed: a baseline revision is read from the repository with git") from None
    except subprocess.TimeoutExpired:
        raise BaselineError(f"git {args[0]} in {repo} did not answer within 120 s") from None


def _toplevel(repo) -> Path:
    """The working tree's root, or BaselineError when ``repo`` is not inside a git repository."""
    repo = Path(repo)
    if not repo.is_dir():
        raise BaselineError(f"{repo} is not a directory, so not a git repository")
    done = _git(repo, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise BaselineError(f"{repo} is not a git repository (the baseline is a revision of its history)")
    return Path(done.stdout.strip())


def resolve(rev: str, repo=REPO) -> str:
    """The full commit id that ``rev`` names in ``repo``; BaselineError (one line) when ``repo`` is
    not a git repository, ``rev`` names no commit, or that commit has no ``impls/``."""
    top = _toplevel(repo)
    if not rev or rev.startswith("-"):         # "-x" would be read as an option by git
        raise BaselineError(f"REF={rev!r}: give a git revision (a commit id, branch, tag or HEAD~1)")
    done = _git(top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    if done.returncode != 0:
        raise BaselineError(f"REF={rev}: no such revision in {top}")
    sha = done.stdout.strip()
    if _git(top, "cat-file", "-e", f"{sha}:{CODE}").returncode != 0:
        raise BaselineError(f"REF={rev} ({sha[:12]}) has no {CODE}/ folder: nothing of nnbench's to time there")
    return sha


def default_rev(repo=REPO) -> tuple[str, str]:
    """The baseline when none is named, and why, as one phrase the run prints.

    With uncommitted changes under ``impls/`` (untracked files included), what you are comparing
    is those changes: HEAD. Otherwise the comparison worth making is the last change to the
    implementations: the parent of the newest commit that touched ``impls/``. Changes elsewhere
    (a module of your own outside ``impls/``) are not looked at: only ``impls/`` comes from REF."""
    top = _toplevel(repo)
    status = _git(top, "status", "--porcelain", "--untracked-files=all", "--", CODE)
    if status.returncode != 0:
        raise BaselineError(f"git status failed in {top}: {status.stderr.strip()}")
    if status.stdout.strip():
        return resolve("HEAD", top), "your uncommitted changes against the last commit"
    last = _git(top, "log", "-1", "--format=%H", "--", CODE).stdout.strip()
    if not last:
        raise BaselineError(f"no commit in {top} changed {CODE}/: name a baseline with REF=<rev>")
    parent = _git(top, "rev-parse", "--verify", "--quiet", f"{last}^")
    if parent.returncode != 0:
        raise BaselineError(f"the only commit that changed {CODE}/ ({last[:12]}) is the first: "
                            "there is no earlier version to compare with; name one with REF=<rev>")
    return resolve(parent.stdout.strip(), top), "the last change to the implementations"


def prepare(sha: str | None, repo, into: Path) -> Path:
    """Fill ``into`` (created; it must not exist or be empty) with ``sha``'s ``impls/`` (None: today's,
    as the working tree has it, uncommitted changes included, without compiled caches) and links to
    the current checkout's ``bench/``, ``tests/`` and ``pyproject.toml``, and check, in a fresh
    interpreter started in it, that ``impls`` comes from the folder and ``bench`` from the checkout."""
    top = _toplevel(repo)
    into = Path(into)
    if into.exists() and any(into.iterdir()):
        raise BaselineError(f"{into} is not empty: the baseline is prepared into a new folder")
    into.mkdir(parents=True, exist_ok=True)
    if sha is None:
        shutil.copytree(top / CODE, into / CODE, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi",
                                                                                "*.nbc"))
    else:
        archive = _git(top, "archive", "--format=tar", sha, "--", CODE, binary=True)
        if archive.returncode != 0:
            raise BaselineError(f"git archive {sha[:12]} {CODE} failed: "
                                f"{archive.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(into, filter="data")
    for name in HARNESS:
        if (top / name).exists():
            (into / name).symlink_to(top / name, target_is_directory=(top / name).is_dir())
    _check_imports(into, top)
    return into


def env(folder: Path, base: dict | None = None) -> dict:
    """An environment for a process run in ``folder`` whose children, started from anywhere, still
    import REF's ``impls`` (``PYTHONPATH`` starts with the folder)."""
    out = dict(os.environ if base is None else base)
    out["PYTHONPATH"] = os.pathsep.join([str(folder), *filter(None, [out.get("PYTHONPATH")])])
    return out


def where_from(folder: Path) -> dict[str, str]:
    """Where a Python started in ``folder`` finds ``impls`` and ``bench`` (their ``__init__.py``),
    found without running either package's code."""
    probe = ("import importlib.util as u\n"
             "for name in ('impls', 'bench'):\n"
             "    spec = u.find_spec(name)\n"
             "    print(name, spec.origin if spec else None)\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=folder, env=env(folder), capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0:
        raise BaselineError(f"python in {folder} could not look up impls and bench: "
                            f"{done.stderr.strip().splitlines()[-1:]}")
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


def _check_imports(folder: Path, top: Path) -> None:
    found = where_from(folder)
    if found.get("impls") != str(folder / CODE / "__init__.py"):
        raise BaselineError(f"in the baseline's folder, impls is imported from {found.get('impls')}, "
                            f"not from {folder / CODE}: something on the path wins over the folder")
    if found.get("bench") is None or not Path(found["bench"]).resolve().is_relative_to(top / "bench"):
        raise BaselineError(f"in the baseline's folder, bench is imported from {found.get('bench')}, "
                            f"not from the current checkout {top}")


@contextlib.contextmanager
def sides(rev: str, repo=REPO):
    """(REF's folder, today's folder), prepared alike in one temporary folder (paths of one length),
    removed afterwards whatever happens inside (an error, an interrupt)."""
    sha = resolve(rev, repo)
    scratch = Path(tempfile.mkdtemp(prefix="nnbench-compare-"))
    try:
        yield prepare(sha, repo, scratch / "base" / "tree"), prepare(None, repo, scratch / "head" / "tree")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
