"""Implementations that are wrong, or hostile, must fail `nnbench check` and `nnbench train` with
one line and exit 1, within a bounded time (tests/bad_impls/, one module per fault).

Faults in what an implementation returns (a missing layer, a wrong dtype, a modified input) run
in this process through ``main``; faults that end or hang a process run the command as a user
would, in a subprocess with a deadline, so that they cannot take the test session with them.
"""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from impls.core import registry as registry_module
from impls.core.cli import EXIT_ERROR, main

REPO = Path(__file__).resolve().parents[1]
BAD = "tests.bad_impls"
#: the hanging cases are stopped by limits this short; a bound on the whole command's time
SHORT_TIMEOUT, DEADLINE = 3, 30


@pytest.fixture(autouse=True)
def importable(monkeypatch):
    """tests.bad_impls importable here and in the supervised child (spawn copies sys.path); the
    names each test registers go with its own registry, not into the session's (where the
    benchmark tests would find them)."""
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setattr(registry_module, "_registry", None)


def nnbench_here(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def nnbench_process(*argv, env=None, deadline=DEADLINE):
    """(exit status, stdout, stderr, seconds) of ``nnbench ARGV`` in a fresh process."""
    env = dict(env or {})
    path = os.pathsep.join(filter(None, [str(REPO), env.pop("PYTHONPATH", "")]))
    environ = dict(os.environ, **env, PYTHONPATH=path)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "impls.core.cli", *argv], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=deadline)
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- A: what it returns ----------------------------------------------------------------------------
@pytest.mark.parametrize("impl,failed_check,note", [
    ("impl_one_layer_gradients:OneLayerGradients", "gradients (20-16-10",
     "gradients: 1 entries, expected 2 (W, b) pairs, one per layer"),
    ("impl_extra_layer_gradients:ExtraLayerGradients", "gradients (20-16-10",
     "gradients: 3 entries, expected 2 (W, b) pairs"),
    ("impl_short_params:ShortParams", "SGD step (20-16-10", "get_params after one SGD step: 1 entries, expected 2"),
    ("impl_float64_as_float32:Float64AsFloat32", "forward (20-16-10",
     "output activations: dtype float64, but the implementation declares float32"),
    ("impl_overwrites_input:OverwritesInput", "forward (20-16-10", "feedforward's input X: modified by the call"),
    ("impl_overwrites_batch:OverwritesBatch", "SGD step (20-16-10", "update_mini_batch's input X: modified by the call"),
    ("impl_reverses_order:ReversesOrder", "epoch (short last batch) (20-16-10",
     "train_epoch's input order: modified by the call"),
])
def test_check_fails_what_it_used_to_pass(capsys, impl, failed_check, note):
    """Each passed all 32 checks before: zip stopped at the shorter list, dtypes and inputs went unseen."""
    code, out, err = nnbench_here(capsys, "check", f"{BAD}.{impl}", "--no-mnist")
    assert code == EXIT_ERROR, out
    line = one_line(err)
    assert line.startswith(f"nnbench check: {BAD}.{impl} FAILED") and failed_check in line, line
    assert note in out and "checks passed" not in out


@pytest.mark.parametrize("impl,reason", [
    ("impl_declines_everything:DeclinesEverything", "this library computes no network at all"),
    ("impl_no_dtypes:NoDtypes", "it declares no dtypes (NoDtypes.dtypes = ())"),
])
def test_an_implementation_no_check_ran_on_fails(capsys, impl, reason):
    """Before: "all 0 checks passed", exit 0."""
    code, out, err = nnbench_here(capsys, "check", f"{BAD}.{impl}", "--no-mnist")
    assert code == EXIT_ERROR
    line = one_line(err)
    assert f"{impl} FAILED: no check ran: " in line and reason in line, line
    assert "checks passed" not in out


# -- A and B: processes that end or hang -----------------------------------------------------------
@pytest.mark.parametrize("impl,ended,phase", [
    ("impl_exits_in_epoch:ExitsInEpoch", "ended its process with exit status 0", "during the epoch check (20-16-10"),
    ("impl_os_exit_in_epoch:OsExitInEpoch", "ended its process with exit status 0", "during the epoch check (20-16-10"),
    ("impl_exits_on_import:ExitsOnImport", "ended its process with exit status 0",
     f"during importing {BAD}.impl_exits_on_import:ExitsOnImport"),
    ("impl_segfaults:Segfaults", "killed by SIGSEGV (a segmentation fault)", "during the epoch check (20-16-10"),
    ("impl_sleeps_in_epoch:SleepsInEpoch", f"did not finish within {SHORT_TIMEOUT} s", "the epoch check (20-16-10"),
    ("impl_sleeps_on_import:SleepsOnImport", f"did not finish within {SHORT_TIMEOUT} s",
     f"importing {BAD}.impl_sleeps_on_import:SleepsOnImport"),
])
def test_check_names_the_phase_a_process_ended_or_hung_in(impl, ended, phase):
    """Before: exit 0 after the header (sys.exit, os._exit), -11 with no message, or a hang."""
    code, out, err, seconds = nnbench_process("check", f"{BAD}.{impl}", "--no-mnist", "--timeout", str(SHORT_TIMEOUT),
                                              "--import-timeout", str(SHORT_TIMEOUT))
    assert code == EXIT_ERROR, out + err
    line = one_line(err)
    assert line.startswith(f"nnbench: error: {BAD}.{impl}: ") and ended in line and phase in line, line
    assert seconds < DEADLINE - 5


# -- C and B: nnbench train ------------------------------------------------------------------------
@pytest.mark.data
@pytest.mark.parametrize("impl,message", [
    ("impl_raises_in_backprop:RaisesInBackprop", "backprop raised RuntimeError: BP2 is not written yet"),
    ("impl_raises_in_epoch:RaisesInEpoch", "train_epoch raised ValueError: order must be sorted"),
    ("impl_none_cost:NoneCost", "train_epoch returned None, not the mean cost (a number)"),
    ("impl_transposed_weights:TransposedWeights", "_forward raised ValueError: matmul: Input operand 1 has a mismatch"),
])
def test_train_says_which_method_failed_in_one_line(capsys, mnist, impl, message):
    """Before: a raw traceback."""
    code, out, err = nnbench_here(capsys, "train", "--impl", f"{BAD}.{impl}", "--preset", "relu", "--epochs", "1")
    assert code == EXIT_ERROR
    line = one_line(err)
    assert line.startswith(f"nnbench: error: {BAD}.{impl}: ") and message in line, line


def test_train_refuses_an_implementation_without_dtypes(capsys):
    """Before: IndexError from dtypes[0]; refused before any data is read."""
    code, _, err = nnbench_here(capsys, "train", "--impl", f"{BAD}.impl_no_dtypes:NoDtypes", "--preset", "relu")
    assert code == EXIT_ERROR
    assert one_line(err) == (f"nnbench: error: implementation '{BAD}.impl_no_dtypes:NoDtypes' declares no dtypes "
                             "(NoDtypes.dtypes is empty): nothing it could be trained in")


@pytest.mark.data
@pytest.mark.parametrize("impl,message", [
    ("impl_sleeps_in_epoch:SleepsInEpoch", f"epoch 1 did not finish within {SHORT_TIMEOUT} s; stopped it"),
    ("impl_os_exit_in_epoch:OsExitInEpoch", "ended its process with exit status 0 during epoch 1"),
])
def test_train_is_bounded_and_names_the_epoch(mnist, impl, message):
    code, out, err, seconds = nnbench_process("train", "--impl", f"{BAD}.{impl}", "--preset", "relu",
                                              "--timeout", str(SHORT_TIMEOUT))
    assert code == EXIT_ERROR, out + err
    assert message in one_line(err)
    assert seconds < DEADLINE - 5


# -- controls --------------------------------------------------------------------------------------
def test_a_correct_implementation_still_passes_every_check(capsys):
    """The stricter checks find nothing in numpy's network (the same process run as above)."""
    code, out, err = nnbench_here(capsys, "check", "numpy", "--no-mnist")
    assert code == 0, out + err
    assert out.splitlines()[-1] == "numpy: all 32 checks passed" and err == ""


def test_check_says_when_it_compiles_and_how_long_it_took(capsys):
    code, out, err = nnbench_here(capsys, "check", f"slow={BAD}.impl_compiles_slowly:CompilesSlowly", "--no-mnist")
    assert code == 0, out + err
    said = re.findall(r"^slow: compiling for (float\d\d) \(slow the first time, then cached; \$SLOW_COMPILE_CACHE_DIR "
                      r"says where\)\.\.\. done in (\d+\.\d) s$", out, re.M)
    assert [dtype for dtype, _ in said] == ["float32", "float64"], out       # once per dtype, not per network
    assert all(float(seconds) >= 0.3 for _, seconds in said)


# -- nnbench list ----------------------------------------------------------------------------------
@pytest.fixture
def installed(tmp_path):
    """A package's metadata on the path, declaring entry points whose import hangs, exits, crashes."""
    dist = tmp_path / "hostile_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hostile-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[nnbench.implementations]\n"
        f"hangs = {BAD}.impl_sleeps_on_import:SleepsOnImport\n"
        f"exits = {BAD}.impl_exits_on_import:ExitsOnImport\n"
        f"crashes = {BAD}.impl_segfaults_on_import:SegfaultsOnImport\n")
    return {"PYTHONPATH": str(tmp_path)}


def test_list_reads_without_importing(installed):
    """Before: it imported every implementation (seconds of torch and jax; a hanging entry point
    hung it, one that exited or crashed left it printing nothing)."""
    code, out, err, seconds = nnbench_process("list", env=installed)
    assert code == 0 and err == "", err
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.split()}
    assert rows["hangs"] == rows["exits"] == rows["crashes"] == rows["numpy"] == "yes"
    assert "nielsen" in rows and seconds < DEADLINE - 5


def test_list_probe_reports_each_hostile_import_on_its_own_row(installed):
    code, out, err, _ = nnbench_process("list", "--probe", "--import-timeout", str(SHORT_TIMEOUT),
                                        "hangs", "exits", "numpy", "crashes", env=installed)
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()}
    assert " no " in rows["hangs"] and f"did not finish within {SHORT_TIMEOUT} s" in rows["hangs"]
    assert " no " in rows["exits"] and "ended its process with exit status 0" in rows["exits"]
    assert " no " in rows["crashes"] and "SIGSEGV" in rows["crashes"]
    assert rows["numpy"].split()[1] == "yes"
