"""The profiling entry point (bench/profiling.py): argument errors, and one short real profile."""
import pytest

from bench import profiling


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
    assert profiling.main(argv + ["--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bench.profiling: error:") and message in err
    assert list(tmp_path.iterdir()) == []          # refused before anything was written


def test_missing_py_spy_is_a_clear_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(profiling, "py_spy", lambda: None)
    assert profiling.main(["--impl", "numpy", "--preset", "nielsen", "--out", str(tmp_path)]) == 1
    assert "py-spy not found" in capsys.readouterr().err


def test_profile_of_numpy_epoch_is_hottest_in_its_own_functions(tmp_path, capsys, mnist):
    code = profiling.main(["--impl", "numpy", "--preset", "nielsen", "--seconds", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    if code and "ptrace" in err:
        pytest.skip(f"py-spy may not attach here: {err.strip()}")
    assert code == 0, err
    base = tmp_path / "numpy-nielsen-epoch-b10"
    assert base.with_suffix(".svg").read_text().lstrip().startswith("<?xml")
    assert '"$schema"' in base.with_suffix(".speedscope.json").read_text()
    rows = profiling.hottest(base.with_suffix(".speedscope.json"))
    assert "impls/" in rows[0][0], rows                     # the hottest frame is the implementation's own
    on_stack = {frame.split(" (")[0]: pct for frame, pct, _ in rows}
    assert on_stack.get("Network.train_epoch", 0) > 90, rows   # the book's loop, inherited: not loading, not warm-up
    assert "train_epoch" in base.with_suffix(".txt").read_text()
