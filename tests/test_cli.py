"""The nnbench command line: what it lists, and one clear line for every error."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from impls.core.cli import EXIT_ERROR, EXIT_MISSED_TARGET, EXIT_USAGE, main
from impls.core.threads import usable_cpus

from conftest import idx_bytes, write_mnist

README = Path(__file__).resolve().parent.parent / "README.md"


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse exits on bad arguments
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_list_shows_implementations_and_presets(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    for word in ("reference", "numpy", "nielsen", "relu", "fullbatch", "94.5%", "97.5%", "85.0%"):
        assert word in out


def test_list_reads_a_gpu_backend_as_needing_a_gpu(capsys, monkeypatch, tmp_path):
    """torch-ddp-cuda names no device but the NCCL backend, which runs only on NVIDIA GPUs."""
    from impls.core import probe
    monkeypatch.setattr(probe, "NVIDIA", tmp_path / "absent")
    code, out, _ = run(capsys, "list")
    row = next(line for line in out.splitlines() if line.startswith("torch-ddp-cuda "))
    assert code == 0 and " no " in row and "no CUDA device" in row


def test_list_imports_no_framework():
    """`nnbench list` reads the modules instead of importing them (it took seconds of torch, jax,
    numba and scikit-learn imports); what it reads still says which cannot run here."""
    code = ("import sys\nfrom impls.core.cli import main\nassert main(['list']) == 0\n"
            "print('imported:', sorted(m for m in ('torch', 'jax', 'numba', 'sklearn', 'triton') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "imported: []"
    row = next(line for line in proc.stdout.splitlines() if line.startswith("torch-fast-cuda "))
    assert " no " in row and "CUDA" in row or " yes " in row and Path("/proc/driver/nvidia/gpus").is_dir(), row


@pytest.mark.parametrize("argv,fragment", [
    (["train", "--impl", "nope", "--preset", "nielsen"], "unknown implementation 'nope'"),
    (["check", "nope"], "unknown implementation 'nope'"),
    (["check", "mypkg.net:Net(3)"], "options must be keyword=value"),
    (["train", "--impl", "numpy", "--preset", "nope"], "invalid choice: 'nope'"),
    (["train", "--impl", "numpy", "--preset", "nielsen", "--epochs", "0"], "must be >= 1"),
    (["train", "--impl", "numpy", "--preset", "nielsen", "--lr", "-1"], "must be > 0"),
    (["train", "--impl", "numpy", "--preset", "nielsen", "--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    (["train", "--impl", "torch-fast-cpu", "--preset", "nielsen", "--threads", "999"],
     f"argument --threads: 999 threads cannot run here: this process may use {usable_cpus()} CPU"),
])
def test_usage_errors_exit_2_before_anything_runs(capsys, argv, fragment):
    """argparse's convention, as README says: 2 for a command line it rejects."""
    code, out, err = run(capsys, *argv)
    assert code == EXIT_USAGE, err
    assert fragment in err and "Traceback" not in err and out == ""


def test_errors_nnbench_explains_exit_1(capsys):
    code, _, err = run(capsys, "train", "--impl", "reference", "--preset", "nielsen", "--dtype", "float32")
    assert code == EXIT_ERROR
    assert_one_line_error(err, "supports dtype float64")


def test_readme_states_the_exit_codes_the_cli_uses():
    paragraph = " ".join(README.read_text().split("`nnbench train` prints")[1].split("\n\n")[0].split())
    for code, meaning in ((0, "target is met"), (3, "missed"), (EXIT_ERROR, "anything it can explain"),
                          (EXIT_USAGE, "command line")):
        assert re.search(rf"\b{code}\b[^,;]*{meaning}", paragraph), (code, meaning, paragraph)


@pytest.mark.usefixtures("isolated_env")
@pytest.mark.parametrize("how", ["--data", "NNBENCH_DATA", "--data ''"])
def test_a_named_data_directory_that_cannot_be_used_is_an_error(capsys, tmp_path, monkeypatch, how):
    """Before: each fell back to the per-user cache and trained on whatever was there."""
    write_mnist(tmp_path / "cache")                        # what the run fell back to
    argv = ["train", "--impl", "numpy", "--preset", "nielsen", "--epochs", "1"]
    if how == "NNBENCH_DATA":
        monkeypatch.setenv("NNBENCH_DATA", str(tmp_path / "nope"))
    else:
        argv += ["--data", "" if how == "--data ''" else str(tmp_path / "nope")]
    code, out, err = run(capsys, *argv)
    assert code == EXIT_ERROR
    expected = {"--data": f"--data {tmp_path / 'nope'}: no such directory",
                "NNBENCH_DATA": f"$NNBENCH_DATA {tmp_path / 'nope'}: no such directory", "--data ''": "--data is empty"}
    assert_one_line_error(err, f"nnbench: error: {expected[how]}")
    assert "epoch" not in out


@pytest.mark.usefixtures("isolated_env")
def test_check_refuses_a_named_data_directory_before_checking(capsys, tmp_path):
    """It used to skip the MNIST check with a note, after all the others, and exit 0."""
    code, out, err = run(capsys, "check", "numpy", "--data", str(tmp_path / "nope"))
    assert code == EXIT_ERROR and out == ""
    assert_one_line_error(err, f"nnbench: error: --data {tmp_path / 'nope'}: no such directory")


@pytest.mark.usefixtures("isolated_env")
def test_a_training_set_smaller_than_the_preset_is_refused(capsys, tmp_path):
    write_mnist(tmp_path / "d", n_train=5)
    code, out, err = run(capsys, "train", "--impl", "numpy", "--preset", "nielsen", "--data", str(tmp_path / "d"))
    assert code == EXIT_ERROR
    assert_one_line_error(err, f"preset nielsen trains on 50,000 training images, but {tmp_path / 'd'} holds only 5")
    assert f"data: {tmp_path / 'd'} (5 training and 10 test images)" in out


@pytest.mark.usefixtures("isolated_env")
def test_missing_data_without_network_names_every_place(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "train", "--impl", "numpy", "--preset", "nielsen", "--data", str(empty))
    assert code == EXIT_ERROR
    assert_one_line_error(err, "nnbench: error:", str(empty), str(empty / "MNIST" / "raw"), "--data")


@pytest.mark.usefixtures("isolated_env")
def test_corrupt_data_file_gives_one_line(capsys, tmp_path):
    arrays = write_mnist(tmp_path / "d")
    truncated = idx_bytes(arrays["test_images"])[:-100]
    write_mnist(tmp_path / "d", overrides={"test_images": truncated})
    code, _, err = run(capsys, "train", "--impl", "numpy", "--preset", "nielsen", "--data", str(tmp_path / "d"))
    assert code == EXIT_ERROR
    assert_one_line_error(err, "nnbench: error:", "t10k-images-idx3-ubyte")


@pytest.mark.data
def test_diverging_learning_rate_gives_one_line(capsys, mnist):
    code, out, err = run(capsys, "train", "--impl", "numpy", "--preset", "relu", "--epochs", "1", "--lr", "1e30")
    assert code == EXIT_ERROR
    assert_one_line_error(err, "diverged at epoch 1", "lower learning rate")


@pytest.mark.data
def test_train_prints_epochs_and_summary(mnist):
    """Through the installed console script, as a user runs it; one epoch cannot meet the target."""
    proc = subprocess.run([sys.executable, "-m", "impls.core.cli", "train", "--impl", "numpy", "--preset", "nielsen",
                           "--epochs", "2", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, EXIT_MISSED_TARGET), proc.stderr
    lines = proc.stdout.splitlines()
    epochs = [line.split() for line in lines if line.split() and line.split()[0] in ("1", "2")]
    assert len(epochs) == 2 and all(float(e[3].rstrip("%")) > 85 for e in epochs), proc.stdout
    assert "final test accuracy" in lines[-1] and "target 94.5%" in lines[-1]
    assert lines[1].startswith("threads:") and "openblas=1" in lines[1], lines[1]
