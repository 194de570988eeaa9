"""``python -m bench.report`` on runs it cannot render, and the one atomic write every result goes
through (``bench.report.writing``) on a full disk: one line naming the cause, a non-zero exit,
nothing written, no temporary file left, the old files as they were."""
import errno
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report
from bench.report import writing
from mounts import mounted  # noqa: F401  (fixture)
from test_bench_report import run_json, timing

REPO = Path(__file__).resolve().parent.parent


def _report(tmp_path, data, capsys, out="{machine}"):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    code = report.main([str(path), "--out", str(tmp_path / "results" / out)])
    return code, capsys.readouterr().err


def _good():
    return run_json([timing("forward", "numpy", 10, 1e-4), timing("forward", "reference", 10, 1e-2)])


def _nan_median(data):
    data["benchmarks"][0]["stats"]["median"] = math.nan


def _no_name(data):
    del data["benchmarks"][0]["name"]


def _no_median(data):
    del data["benchmarks"][1]["stats"]["median"]


def _outcomes_not_a_list(data):
    data["nnbench"]["outcomes"] = {"test": "x"}


def _outcomes_of_strings(data):
    data["nnbench"]["outcomes"] = ["passed"]


def _escaping_label(data):
    data["nnbench"]["machine"] = "../escaped"


@pytest.mark.parametrize("spoil,said", [
    (_nan_median, "benchmark test_forward[numpy-b10]: median nan is not a measured time"),
    (_no_name, "benchmark 0 has no name"),
    (_no_median, "benchmark test_forward[reference-b10] has no median"),
    (_outcomes_not_a_list, "nnbench.outcomes is a dict, not a list of test outcomes"),
    (_outcomes_of_strings, "nnbench.outcomes is a list, not a list of test outcomes"),
    (_escaping_label, "'../escaped' cannot be a machine label"),
])
def test_a_run_that_cannot_be_rendered_is_one_line_and_nothing_written(tmp_path, capsys, spoil, said):
    data = _good()
    spoil(data)
    code, err = _report(tmp_path, data, capsys)
    assert code == 1 and said in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "results").exists() and not (tmp_path / "escaped").exists()


def test_a_good_run_still_renders(tmp_path, capsys):
    code, err = _report(tmp_path, _good(), capsys)
    assert code == 0, err
    assert [p.name for p in (tmp_path / "results").glob("*/README.md")] == ["README.md"]


# -- the one atomic write --------------------------------------------------------------------------------
def _no_space(*_):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_failed_write_removes_its_temporary_files_and_keeps_the_old_ones(tmp_path, monkeypatch):
    (tmp_path / "a.md").write_text("old")
    monkeypatch.setattr(os, "fsync", _no_space)
    with pytest.raises(writing.WriteError, match=r"a\.md: disk full: nothing written"):
        writing.write_all(tmp_path, {"a.md": b"new", "b.png": b"png"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md"] and (tmp_path / "a.md").read_text() == "old"


def test_a_full_file_system_for_real(tmp_path, mounted):
    disk = mounted(tmp_path / "disk", "size=64k")
    writing.write_file(disk / "run.json", b"old")
    with pytest.raises(writing.WriteError, match=r"run\.json: disk full: nothing written"):
        writing.write_file(disk / "run.json", b"x" * 200_000)
    assert sorted(p.name for p in disk.iterdir()) == ["run.json"] and (disk / "run.json").read_bytes() == b"old"


def test_bench_report_onto_a_full_disk_says_so_in_one_line(tmp_path, mounted):
    disk = mounted(tmp_path / "disk", "size=64k")
    (disk / "filler").write_bytes(b"\0" * 56_000)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_good()))
    proc = subprocess.run([sys.executable, "-m", "bench.report", str(path), "--out", str(disk / "out")], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "disk full: nothing written" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not list((disk / "out").iterdir())


def test_check_writable_names_a_file_in_the_way(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(writing.WriteError, match="is a file, not a folder"):
        writing.check_writable(tmp_path / "f", "--storage")
    writing.check_writable(tmp_path / "new" / "folder", "--storage")
    assert (tmp_path / "new" / "folder").is_dir() and not list((tmp_path / "new" / "folder").iterdir())
