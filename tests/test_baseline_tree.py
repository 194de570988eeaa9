"""bench/harness/baseline_tree.py: the baseline's impls/ from a git revision, today's harness beside it.

A small git repository made here (impls/constant.py's VALUE changes from commit to commit) shows that
a prepared folder imports REF's implementations and the current checkout's bench; the real repository
shows that the editable install does not win over the folder and that nothing in .git changes."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness.baseline_tree import REPO, BaselineError, default_rev, prepare, resolve, sides, where_from

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def commit(repo, files: dict, message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A repository whose commits are: README only; VALUE = 1; VALUE = 2; a README change."""
    repo = tmp_path_factory.mktemp("history")
    git(repo, "init", "-q")
    shas = {"readme": commit(repo, {"README": "a\n"}, "readme")}
    shas["one"] = commit(repo, {"impls/__init__.py": "", "impls/constant.py": "VALUE = 1\n",
                                "bench/__init__.py": "MARK = 'committed'\n", "pyproject.toml": ""}, "one")
    shas["two"] = commit(repo, {"impls/constant.py": "VALUE = 2\n"}, "two")
    shas["docs"] = commit(repo, {"README": "b\n"}, "docs")
    return repo, shas


def run_in(folder, code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_folder_imports_refs_impls_and_the_checkouts_bench(history, tmp_path):
    repo, shas = history
    (repo / "bench" / "__init__.py").write_text("MARK = 'today'\n")       # uncommitted: today's harness
    try:
        folder = prepare(resolve("HEAD~2", repo), repo, tmp_path / "tree")
        out = run_in(folder, "import impls.constant, bench; print(impls.constant.VALUE, bench.MARK, bench.__file__)")
    finally:
        git(repo, "checkout", "-q", "--", "bench")
    value, mark, bench_file = out.split()
    assert (value, mark) == ("1", "today")
    assert Path(bench_file).resolve() == repo / "bench" / "__init__.py"
    assert (folder / "impls" / "constant.py").read_text() == "VALUE = 1\n" and not (folder / "impls").is_symlink()
    assert resolve(shas["two"][:10], repo) == shas["two"]


def test_default_rev_is_the_parent_of_the_last_change_to_impls(history):
    repo, shas = history
    assert default_rev(repo) == (shas["one"], "the last change to the implementations")


def test_default_rev_is_head_with_uncommitted_changes_under_impls(history):
    repo, shas = history
    (repo / "impls" / "constant.py").write_text("VALUE = 3\n")
    try:
        assert default_rev(repo) == (shas["docs"], "your uncommitted changes against the last commit")
    finally:
        git(repo, "checkout", "-q", "--", "impls")
    (repo / "impls" / "new_impl.py").write_text("")                       # an untracked module counts too
    try:
        assert default_rev(repo)[0] == shas["docs"]
    finally:
        (repo / "impls" / "new_impl.py").unlink()


@pytest.mark.parametrize("rev,message", [("no-such-branch", "REF=no-such-branch: no such revision in "),
                                         ("HEAD~3", "has no impls/ folder"),
                                         ("--all", "give a git revision")])
def test_a_bad_revision_is_one_line(history, rev, message):
    repo, _ = history
    with pytest.raises(BaselineError, match=message) as err:
        resolve(rev, repo)
    assert "\n" not in str(err.value)


def test_not_a_repository_is_one_line(tmp_path):
    for call in (lambda: resolve("HEAD", tmp_path), lambda: default_rev(tmp_path)):
        with pytest.raises(BaselineError, match="is not a git repository") as err:
            call()
        assert "\n" not in str(err.value)


def test_the_sides_folders_are_removed_even_on_an_exception(history):
    repo, _ = history
    with pytest.raises(RuntimeError, match="inside"):
        with sides("HEAD", repo) as (base, head):
            assert (base / "impls" / "constant.py").read_text() == "VALUE = 2\n"
            raise RuntimeError("inside")
    scratch = base.parent.parent
    assert scratch == head.parent.parent and not scratch.exists()


def test_the_real_repository_beats_the_editable_install_and_is_left_as_it_was():
    """The .venv's editable finder maps impls to this checkout; the folder's copy must win, and
    preparing it must change nothing git can see."""
    before = git(REPO, "status", "--porcelain", "--untracked-files=all")
    with sides("HEAD", REPO) as folders:
        for folder in folders:
            found = where_from(folder)
            assert found["impls"] == str(folder / "impls" / "__init__.py")
            assert Path(found["bench"]).resolve() == REPO / "bench" / "__init__.py"
    assert git(REPO, "status", "--porcelain", "--untracked-files=all") == before


def test_both_sides_are_prepared_alike_from_ref_and_from_the_working_tree(history):
    """Today's side runs from a copy of the working tree's impls/ (uncommitted changes in, compiled
    caches out) in a folder of the same shape as REF's: the sides differ only in their code."""
    repo, _ = history
    (repo / "impls" / "constant.py").write_text("VALUE = 'uncommitted'\n")
    (repo / "impls" / "__pycache__").mkdir(exist_ok=True)
    (repo / "impls" / "__pycache__" / "stale.pyc").write_bytes(b"")
    try:
        with sides("HEAD", repo) as (base, head):
            assert len(str(base)) == len(str(head)) and base.name == head.name == "tree"
            assert (base / "impls" / "constant.py").read_text() == "VALUE = 2\n"
            assert run_in(head, "import impls.constant; print(impls.constant.VALUE)") == "uncommitted"
            assert not (head / "impls" / "__pycache__").exists()
            assert (head / "bench").is_symlink() and (base / "bench").is_symlink()
    finally:
        git(repo, "checkout", "-q", "--", "impls")
        import shutil
        shutil.rmtree(repo / "impls" / "__pycache__")
    assert not base.exists() and not head.exists()
