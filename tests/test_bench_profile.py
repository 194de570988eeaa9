"""The profiling entry point (bench/profiling.py): argument errors, file names that carry every option,
short real profiles -- numpy's, Numba's split epoch by equation -- and implementations that print a
lot, hang in their import or their epoch, or carry a dotted name (tests/bad_impls/tool_*.py)."""
import argparse
from pathlib import Path

import pytest

from bench import profiling

BAD_IMPLS = Path(__file__).parent / "bad_impls"


@pytest.mark.parametrize("argv,message", [
    (["--impl", "nope", "--preset", "nielsen"], "unknown implementation 'nope'"),
    (["--impl", "numpy", "--preset", "nope"], "invalid choice: 'nope'"),
    (["--impl", "numpy", "--preset", "nielsen", "--phase", "train"], "invalid choice: 'train'"),
    (["--impl", "numpy", "--preset", "nielsen", "--seconds", "0"], "must be > 0"),
    (["--impl", "numpy", "--preset", "nielsen", "--seconds", "nan"], "must be > 0"),
    (["--impl", "numpy", "--preset", "nielsen", "--seconds", "soon"], "not a number"),
    (["--impl", "numpy", "--preset", "nielsen", "--batch", "0"], "must be >= 1"),
    (["--preset", "nielsen"], "the following arguments are required: --impl"),
])
def test_bad_arguments_are_usage_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        profiling.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--impl", "numpy", "--preset", "nielsen", "--phase", "forward", "--batch", "20000"],
     "a forward batch comes from the 10,000 test images"),
    (["--impl", "numpy", "--preset", "nielsen", "--batch", "60000"], "trains on 50,000 examples"),
    (["--impl", "ghost=nnbench_ghost_package.module:Net", "--preset", "nielsen"],
     "implementation 'ghost' is unavailable: cannot import nnbench_ghost_package.module:Net"),
])
def test_impossible_requests_are_one_line_errors(capsys, tmp_path, argv, message):
    assert profiling.main(argv + ["--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bench.profiling: error:") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()          # refused before anything was written


def test_missing_py_spy_is_a_clear_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(profiling, "py_spy", lambda: None)
    assert profiling.main(["--impl", "numpy", "--preset", "nielsen", "--out", str(tmp_path)]) == 1
    assert "py-spy not found" in capsys.readouterr().err


def profile(capsys, argv):
    """Run one profile; skip where py-spy may not attach (no ptrace)."""
    code = profiling.main(argv)
    err = capsys.readouterr().err
    if code and "ptrace" in err:
        pytest.skip(f"py-spy may not attach here: {err.strip()}")
    return code, err


def test_profile_of_numpy_epoch_is_hottest_in_its_own_functions(tmp_path, capsys, mnist):
    code, err = profile(capsys, ["--impl", "numpy", "--preset", "nielsen", "--seconds", "1", "--threads", "1",
                                 "--out", str(tmp_path)])
    assert code == 0, err
    base = tmp_path / "numpy-nielsen-epoch-b10-t1"
    assert Path(f"{base}.svg").read_text().lstrip().startswith("<?xml")
    assert '"$schema"' in Path(f"{base}.speedscope.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{base.name}{s}" for s in (".speedscope.json", ".svg", ".txt")]
    rows = profiling.hottest(Path(f"{base}.speedscope.json"))
    assert "impls/" in rows[0][0], rows                     # the hottest frame is the implementation's own
    on_stack = {frame.split(" (")[0]: pct for frame, pct, _ in rows}
    assert on_stack.get("Network.train_epoch", 0) > 90, rows   # the book's loop, inherited: not loading, not warm-up
    report = Path(f"{base}.txt").read_text()
    assert "train_epoch" in report and "What this profile cannot show" in report and "worker threads" in report


def stem(**options):
    args = dict(impl="numpy", preset="nielsen", phase="epoch", batch=10, threads=2, split=False, lines=False,
                native=False)
    return profiling.file_stem(argparse.Namespace(**{**args, **options}))


def test_file_names_carry_every_option_that_changes_the_measurement():
    variants = [{}, {"preset": "relu"}, {"phase": "forward"}, {"batch": 32}, {"threads": 1}, {"split": True},
                {"lines": True}, {"native": True}, {"impl": "my.net"}, {"impl": "my_net"},
                {"impl": 'mynet:MyNetwork(device="cpu")'}, {"impl": "mynet:MyNetwork(device='cpu')"}]
    stems = [stem(**v) for v in variants]
    assert len(set(stems)) == len(stems), stems
    assert all("." not in s and "/" not in s and " " not in s for s in stems), stems
    assert stem(impl="my.net").startswith("my_net-") and stem(impl="my.net", phase="forward") != stem(impl="my.net")


def test_split_mode_is_numbas_environment_variable():
    from impls.numba_impl import PROFILE_ENV
    assert profiling.SPLIT_ENV == PROFILE_ENV


def test_dotted_name_is_one_file_per_profile(tmp_path, capsys, mnist):
    """A name with a dot once lost everything after it (`my.net` -> `my.svg`), so a second phase overwrote the first."""
    code, err = profile(capsys, ["--impl", "my.net=impls.numpy_impl:NumpyNetwork", "--preset", "nielsen", "--phase",
                                 "forward", "--batch", "100", "--seconds", "1", "--out", str(tmp_path)])
    assert code == 0, err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 3 and all(n.startswith("my_net-") and "-forward-b100-" in n for n in names), names


def test_an_implementation_that_prints_a_lot_is_profiled(tmp_path, capsys, monkeypatch, mnist):
    monkeypatch.setenv("PYTHONPATH", str(BAD_IMPLS))
    code, err = profile(capsys, ["--impl", "chatty=tool_chatty:Chatty", "--preset", "nielsen", "--batch", "1000",
                                 "--seconds", "1", "--timeout", "60", "--out", str(tmp_path)])
    assert code == 0, err
    assert "chatty import" not in capsys.readouterr().out      # its output went to the worker's log, not ours


@pytest.mark.parametrize("spec", ["sleepy=tool_sleepy:SleepyEpoch", "hang=tool_hang_import:NeverImported"])
def test_a_hanging_implementation_is_stopped_in_one_line(tmp_path, capsys, monkeypatch, spec, mnist):
    monkeypatch.setenv("PYTHONPATH", str(BAD_IMPLS))
    code, err = profile(capsys, ["--impl", spec, "--preset", "nielsen", "--batch", "1000", "--seconds", "1",
                                 "--timeout", "3", "--out", str(tmp_path / "out")])
    assert code == 1
    assert err.startswith("bench.profiling: error: the worker did not start the phase within 3 s")
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_numba_split_epoch_names_each_equation(tmp_path, capsys, mnist):
    pytest.importorskip("numba")
    code, err = profile(capsys, ["--impl", "numba", "--preset", "nielsen", "--batch", "1000", "--seconds", "1",
                                 "--split", "--out", str(tmp_path)])
    assert code == 0, err
    base = tmp_path / "numba-nielsen-epoch-b1000-t{}-split".format(profiling.usable_cpus())
    names = {row[0].split(" (")[0] for row in profiling.hottest(Path(f"{base}.speedscope.json"), top=40)}
    assert {"feedforward_layer", "bp2_backpropagate_error", "bp4_weight_gradient"} <= names, names
    assert "the split epoch took" in Path(f"{base}.txt").read_text()


def test_a_terminated_launcher_takes_its_worker_with_it(tmp_path, mnist):
    """SIGTERM to `make profile` (or the launcher killed outright) must not leave the worker running."""
    import os
    import signal
    import subprocess
    import sys
    import time
    env = dict(os.environ, PYTHONPATH=str(BAD_IMPLS))
    launcher = subprocess.Popen([sys.executable, "-m", "bench.profiling", "--impl", "sleepy=tool_sleepy:SleepyEpoch",
                                 "--preset", "nielsen", "--batch", "1000", "--timeout", "120", "--out", str(tmp_path)],
                                cwd=Path(__file__).parent.parent, env=env, stderr=subprocess.PIPE, text=True)
    children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (children.exists() and children.read_text().split()):
        time.sleep(0.1)
    if not children.exists():
        launcher.kill()
        pytest.skip("needs Linux's /proc to find the worker")
    worker = int(children.read_text().split()[0])
    time.sleep(1)
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=30) == 130
    assert "interrupted" in launcher.stderr.read()
    time.sleep(0.5)
    assert not Path(f"/proc/{worker}").exists() or "Z" in Path(f"/proc/{worker}/stat").read_text().split()[2]
