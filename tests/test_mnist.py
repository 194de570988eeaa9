"""Tests for impls.core.mnist: finding, validating and loading local IDX files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from impls.core import mnist
from impls.core.errors import DataError

from conftest import idx_bytes, write_mnist

# Read before the isolated_env fixture clears NNBENCH_DATA for every test.
REAL_DATA = os.environ.get(mnist.DATA_ENV)


pytestmark = pytest.mark.usefixtures("isolated_env")


def assert_loaded(data, arrays):
    for key, arr in arrays.items():
        got = getattr(data, key)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arr)


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_valid_files_load_exactly(tmp_path, gz):
    arrays = write_mnist(tmp_path / "d", gz=gz)
    data = mnist.load_mnist(tmp_path / "d", download_missing=False)
    assert data.train_images.shape == (20, 28, 28) and data.test_labels.shape == (10,)
    assert_loaded(data, arrays)


def test_raw_preferred_over_gz(tmp_path):
    write_mnist(tmp_path, gz=True, seed=1)
    arrays = write_mnist(tmp_path, gz=False, seed=2)
    assert all(p.suffix != ".gz" for p in mnist.find_files(tmp_path).values())
    assert_loaded(mnist.load_mnist(tmp_path, download_missing=False), arrays)


def test_torchvision_layout(tmp_path):
    arrays = write_mnist(tmp_path / "root" / "MNIST" / "raw")
    assert_loaded(mnist.load_mnist(tmp_path / "root", download_missing=False), arrays)


def test_env_data_dir(tmp_path, monkeypatch):
    arrays = write_mnist(tmp_path / "envdata")
    monkeypatch.setenv(mnist.DATA_ENV, str(tmp_path / "envdata"))
    assert_loaded(mnist.load_mnist(download_missing=False), arrays)


def test_cache_used_when_nothing_explicit(tmp_path):
    arrays = write_mnist(tmp_path / "cache")
    assert_loaded(mnist.load_mnist(), arrays)


def test_cache_dir_precedence(tmp_path, monkeypatch):
    assert mnist.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv(mnist.CACHE_ENV)
    assert mnist.cache_dir() == tmp_path / "xdg" / "nnbench" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert mnist.cache_dir() == tmp_path / "home" / ".cache" / "nnbench" / "mnist"


def test_search_dirs_named_directory_or_cache(tmp_path, monkeypatch):
    root = tmp_path / "root"
    assert mnist.search_dirs(root) == [root, root / "MNIST" / "raw"]     # never the cache as well
    assert mnist.search_dirs() == [tmp_path / "cache"]
    monkeypatch.setenv(mnist.DATA_ENV, str(root))
    assert mnist.search_dirs()[0] == root
    assert mnist.search_dirs(tmp_path / "other")[0] == tmp_path / "other"  # argument beats env
    monkeypatch.setenv(mnist.DATA_ENV, "")                                 # empty: as if unset
    assert mnist.search_dirs() == [tmp_path / "cache"]


def test_truncated_payload(tmp_path):
    arr = np.zeros((20, 28, 28), np.uint8)
    write_mnist(tmp_path, overrides={"train_images": idx_bytes(arr)[:-100]})
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*15680 bytes.*15580 bytes"):
        mnist.load_mnist(tmp_path, download_missing=False)


def test_trailing_garbage(tmp_path):
    labels = np.zeros(10, np.uint8)
    write_mnist(tmp_path, gz=False, overrides={"test_labels": idx_bytes(labels) + b"xx"})
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.*10 bytes.*12 bytes"):
        mnist.load_mnist(tmp_path, download_missing=False)


def test_header_too_short(tmp_path):
    (tmp_path / "x").write_bytes(b"\x00\x00\x08")
    with pytest.raises(DataError, match="too short"):
        mnist.read_idx(tmp_path / "x", "images")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_gzip(tmp_path, damage):
    write_mnist(tmp_path)
    path = tmp_path / (mnist.FILES["train_labels"] + ".gz")
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2] if damage == "truncated" else b"\x1f\x8b" + b"\x00" * 40)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz.*gzip") as info:
        mnist.load_mnist(tmp_path, download_missing=False)
    assert "\n" not in str(info.value)


def test_bad_magic(tmp_path):
    labels = np.zeros(20, np.uint8)
    write_mnist(tmp_path, overrides={"train_labels": idx_bytes(labels, magic=2051)})
    with pytest.raises(DataError, match=r"train-labels.*magic number 2051.*expected 2049"):
        mnist.load_mnist(tmp_path, download_missing=False)


def test_wrong_image_dims(tmp_path):
    imgs = np.zeros((10, 27, 28), np.uint8)
    write_mnist(tmp_path, overrides={"test_images": idx_bytes(imgs)})
    with pytest.raises(DataError, match=r"t10k-images.*27x28.*28x28"):
        mnist.load_mnist(tmp_path, download_missing=False)


def test_count_mismatch(tmp_path):
    write_mnist(tmp_path, overrides={"train_labels": idx_bytes(np.zeros(19, np.uint8))})
    with pytest.raises(DataError, match=r"train-images.*20 images.*train-labels.*19 labels"):
        mnist.load_mnist(tmp_path, download_missing=False)


def test_label_out_of_range(tmp_path):
    labels = np.zeros(10, np.uint8)
    labels[7] = 10
    write_mnist(tmp_path, overrides={"test_labels": idx_bytes(labels)})
    with pytest.raises(DataError, match=r"t10k-labels.*label 10 at index 7"):
        mnist.load_mnist(tmp_path, download_missing=False)


def test_a_named_directory_with_three_of_four_files_is_refused_naming_the_fourth(tmp_path):
    write_mnist(tmp_path / "cache")                                     # a valid cache must not stand in
    data_dir = tmp_path / "partial"
    write_mnist(data_dir)
    (data_dir / (mnist.FILES["test_labels"] + ".gz")).unlink()
    with pytest.raises(DataError) as info:
        mnist.load_mnist(data_dir)
    msg = str(info.value)
    assert msg.startswith(f"--data {data_dir}: missing t10k-labels-idx1-ubyte(.gz) ("), msg
    assert str(data_dir / "MNIST" / "raw") in msg and "\n" not in msg
    assert "train-images" not in msg                                    # present: not blamed


@pytest.mark.parametrize("named", ["missing", "file", "empty", "env"])
def test_a_named_directory_that_cannot_be_used_is_refused_not_replaced_by_the_cache(tmp_path, monkeypatch, named):
    write_mnist(tmp_path / "cache")
    (tmp_path / "a-file").write_text("")
    data_dir, expected = {
        "missing": (tmp_path / "nope", f"--data {tmp_path / 'nope'}: no such directory"),
        "file": (tmp_path / "a-file", f"--data {tmp_path / 'a-file'}: not a directory"),
        "empty": ("", "--data is empty"),
        "env": (None, f"${mnist.DATA_ENV} {tmp_path / 'nope'}: no such directory"),
    }[named]
    monkeypatch.setenv(mnist.DATA_ENV, str(tmp_path / "nope"))
    with pytest.raises(DataError) as info:
        mnist.load_dataset(data_dir)
    assert str(info.value).startswith(expected), info.value


def fifo(path):
    os.mkfifo(path)


def dangling(path):
    path.symlink_to(path.parent / "gone")


@pytest.mark.parametrize("make,what", [(fifo, "a FIFO, not a file"), (os.mkdir, "a directory, not a file"),
                                       (dangling, "a dangling symlink")], ids=["fifo", "directory", "symlink"])
def test_what_stands_in_a_files_place_is_named(tmp_path, make, what):
    write_mnist(tmp_path)
    target = tmp_path / (mnist.FILES["test_images"] + ".gz")
    target.unlink()
    make(target)
    with pytest.raises(DataError, match=rf"t10k-images-idx3-ubyte\.gz is {what}") as info:
        mnist.load_mnist(tmp_path)        # a FIFO is never opened: this would hang
    assert "train-images" not in str(info.value)


def test_the_directory_loaded_from_is_recorded(tmp_path):
    write_mnist(tmp_path / "root" / "MNIST" / "raw")
    assert mnist.load_dataset(tmp_path / "root").source == str(tmp_path / "root" / "MNIST" / "raw")
    write_mnist(tmp_path / "cache")
    assert mnist.load_mnist().source == tmp_path / "cache"


@pytest.mark.parametrize("split", ["train", "test"])
def test_an_empty_split_is_an_error_not_a_traceback(tmp_path, split):
    write_mnist(tmp_path, **{f"n_{split}": 0})
    with pytest.raises(DataError, match=rf"{mnist.FILES[f'{split}_images']}\.gz holds 0 images"):
        mnist.load_dataset(tmp_path)


def test_missing_files_no_download(tmp_path):
    with pytest.raises(DataError, match=r"not found in the cache .*missing train-images-idx3-ubyte\(\.gz\), .*--data"):
        mnist.load_mnist(download_missing=False)
    assert not (tmp_path / "cache").exists()


def test_as_float(tmp_path):
    images = np.array([[[0] * 28] * 28, [[255] * 28] * 28], np.uint8)
    images[0, 3, 4] = 51
    out = mnist.as_float(images)
    assert out.dtype == np.float32 and out.shape == (2, 784)
    assert out.min() == 0.0 and out.max() == 1.0
    assert out[0, 3 * 28 + 4] == pytest.approx(0.2)
    assert not np.shares_memory(out, images)


def test_read_idx_rejects_unknown_kind(tmp_path):
    with pytest.raises(ValueError):
        mnist.read_idx(tmp_path / "x", "pixels")


def test_real_data_if_provided():
    """Sanity-check real MNIST when the outer environment's NNBENCH_DATA points at it."""
    # The cache is isolated (and empty) here, so anything found is in REAL_DATA itself.
    if not REAL_DATA or mnist.find_files(REAL_DATA) is None:
        pytest.skip(f"set {mnist.DATA_ENV} to a directory holding the four MNIST files to run this")
    data = mnist.load_mnist(REAL_DATA, download_missing=False)
    assert data.train_images.shape == (60000, 28, 28) and data.train_labels.shape == (60000,)
    assert data.test_images.shape == (10000, 28, 28) and data.test_labels.shape == (10000,)
    for labels in (data.train_labels, data.test_labels):
        assert set(np.unique(labels).tolist()) == set(range(10))
    assert float(mnist.as_float(data.train_images).mean()) == pytest.approx(0.1307, abs=0.001)
