"""bench/studies/duet.py at smoke size: both designs, idle and loaded, time every cell in every trial
and write the page and its JSON (rounds in the trial record's format); bad requests are one line."""
import json
from pathlib import Path

import pytest

from bench.studies.__main__ import main

SMOKE = ["duet", "--impl", "numpy", "--pairs", "numpy:numpy", "--epoch-examples", "30", "--round-seconds", "0.002",
         "--trials", "3", "--repetitions", "1"]


def test_duet_runs_both_designs_idle_and_loaded(tmp_path, mnist):
    assert main([*SMOKE, "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["duet.json", "duet.md"]
    text = (tmp_path / "duet.md").read_text()
    rows = [line.split("|")[1:3] for line in text.splitlines() if line.startswith("| numpy:numpy")]
    assert [(cell.strip(), design.strip()) for cell, design in rows] == [
        ("numpy:numpy epoch batch=10", "interleaved"), ("numpy:numpy epoch batch=10", "duet"),
        ("numpy:numpy forward batch=128", "interleaved"), ("numpy:numpy forward batch=128", "duet")]
    assert "Moved less between idle repetitions" in text and "python -m bench.studies duet --impl numpy" in text
    data = json.loads((tmp_path / "duet.json").read_text())
    assert set(data["repetitions"]) == {"interleaved idle", "interleaved loaded", "duet idle", "duet loaded"}
    for name, reps in data["repetitions"].items():
        assert len(reps) == 1
        for a, b in reps[0]["rounds"].values():
            assert [r["trial"] for r in a] == [r["trial"] for r in b] == [0, 1, 2]
            assert all(r["seconds"] > 0 and r["clean"] for r in a + b)
            if name.startswith("duet"):          # each trial on both cores, one implementation on each
                assert all({ra["core"], rb["core"]} == set(data["cpus"][:2]) for ra, rb in zip(a, b))


@pytest.mark.parametrize("extra,message", [
    (["--pairs", "numpy"], "--pairs numpy: write a pair as A:B"),
    (["--threads", "2"], "--threads must be 1"),
])
def test_bad_requests_are_one_line_and_write_nothing(tmp_path, capsys, mnist, extra, message):
    assert main([*SMOKE, *extra, "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_zero_trials_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*SMOKE, "--trials", "0"])
    assert exit_info.value.code == 2 and "must be >= 1" in capsys.readouterr().err


def test_an_implementation_that_raises_in_its_worker_is_one_line(tmp_path, capsys, monkeypatch, mnist):
    """Registered ad hoc in the parent, registered again in its worker; it fails validation there, and the
    study stops in one line, writes nothing and leaves no worker behind."""
    import multiprocessing
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "bad_impls"))
    assert main([*SMOKE, "--impl", "raiser=tool_raising:RaisesInBackprop", "--pairs", "numpy:raiser",
                 "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("python -m bench.studies: error: implementation 'raiser': RaisesInBackprop.backprop "
                          "raised RuntimeError: deliberately broken backprop") and len(err.strip().splitlines()) == 1
    # the study's own workers are gone (torch-ddp's ranks, which other tests of the session keep, are not its)
    left = [p for p in multiprocessing.active_children() if not p.name.startswith("nnbench-rank")]
    assert not (tmp_path / "o").exists() and not left
