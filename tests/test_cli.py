"""The nnbench command line: what it lists, and one clear line for every error."""
import subprocess
import sys

import pytest

from impls.core.cli import EXIT_ERROR, EXIT_MISSED_TARGET, main

from conftest import idx_bytes, write_mnist


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


@pytest.mark.parametrize("argv,fragment", [
    (["train", "--impl", "nope", "--preset", "nielsen"], "unknown implementation 'nope'"),
    (["check", "nope"], "unknown implementation 'nope'"),
    (["check", "mypkg.net:Net(3)"], "options must be keyword=value"),
    (["train", "--impl", "numpy", "--preset", "nope"], "invalid choice: 'nope'"),
    (["train", "--impl", "numpy", "--preset", "nielsen", "--epochs", "0"], "must be >= 1"),
    (["train", "--impl", "numpy", "--preset", "nielsen", "--lr", "-1"], "must be > 0"),
    (["train", "--impl", "reference", "--preset", "nielsen", "--dtype", "float32"], "supports dtype float64"),
])
def test_bad_arguments(capsys, argv, fragment):
    code, _, err = run(capsys, *argv)
    assert code != 0
    assert fragment in err


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
