"""Dataset loaders: real MNIST / Fashion-MNIST from the shared data folder, CIFAR on small official-format files."""
from __future__ import annotations

import gzip
import pickle
import shutil
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import DATA_ROOT, needs_fashion, needs_mnist
from kdutils.data import datasets as kdata, registry
from kdutils.data.datasets import NORMALIZATION, ArrayDataset, parse_idx, verify_checksums
from kdutils.data.registry import load_dataset


MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ---------------------------------------------------------------- registry

def test_registry_names_and_unknown():
    for name in ("mnist", "fashion_mnist", "cifar10", "cifar100"):
        assert name in registry.dataset_names()
        assert name in NORMALIZATION
    with pytest.raises(ValueError, match=r"unknown dataset 'foo'.*mnist"):
        load_dataset("foo")
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_dataset("mnist", split="val")


def test_normalization_shapes():
    assert NORMALIZATION["mnist"] == ((0.1307,), (0.3081,))
    for name, channels in (("mnist", 1), ("fashion_mnist", 1), ("cifar10", 3), ("cifar100", 3)):
        mean, std = NORMALIZATION[name]
        assert len(mean) == len(std) == channels
        assert all(0 < v < 1 for v in mean + std)


def test_subset():
    ds = ArrayDataset(torch.arange(10, dtype=torch.uint8).reshape(10, 1, 1, 1), torch.arange(10), ["a"], "t")
    sub = ds.subset(torch.tensor([7, 2]))
    assert len(sub) == 2 and sub.y.tolist() == [7, 2] and sub.x.flatten().tolist() == [7, 2]


# ---------------------------------------------------------------- idx parsing

def _idx_bytes(arr: np.ndarray) -> bytes:
    magic = {1: 2049, 3: 2051}[arr.ndim]
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def test_parse_idx_roundtrip_and_errors():
    arr = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(parse_idx(_idx_bytes(arr), 3), arr)
    labels = np.array([3, 1, 4], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(_idx_bytes(labels), 1), labels)
    with pytest.raises(ValueError, match="magic number 2049"):
        parse_idx(_idx_bytes(labels), 3)  # a label file where images are expected
    with pytest.raises(ValueError, match="header says shape"):
        parse_idx(_idx_bytes(arr)[:-1], 3)
    with pytest.raises(ValueError, match="too short"):
        parse_idx(b"\x00\x00", 1)


# ---------------------------------------------------------------- real MNIST / Fashion-MNIST

@needs_mnist
def test_mnist_real_shapes_counts_and_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # content md5 matches the official one: no warning
        train = load_dataset("mnist", "train", root=DATA_ROOT, download=False)
        test = load_dataset("mnist", "test", root=DATA_ROOT, download=False)
    assert train.x.shape == (60000, 1, 28, 28) and train.x.dtype == torch.uint8
    assert train.y.shape == (60000,) and train.y.dtype == torch.int64
    assert test.x.shape == (10000, 1, 28, 28)
    assert torch.bincount(train.y).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(test.y).tolist() == MNIST_TEST_COUNTS
    assert train.name == "mnist" and train.classes == [str(i) for i in range(10)]
    assert int(train.x.max()) == 255 and int(train.x.min()) == 0
    # the normalisation constants are the training-set statistics
    xf = train.x.double() / 255
    assert abs(xf.mean().item() - NORMALIZATION["mnist"][0][0]) < 1e-4
    assert abs(xf.std().item() - NORMALIZATION["mnist"][1][0]) < 1e-4


@needs_mnist
def test_mnist_via_env_and_checksums(monkeypatch):
    monkeypatch.setenv("KDUTILS_DATA", str(DATA_ROOT))
    test = load_dataset("mnist", "test")  # root from $KDUTILS_DATA
    assert len(test) == 10000
    checks = verify_checksums("mnist")
    assert len(checks) == 4 and all(checks.values())


@needs_fashion
def test_fashion_real():
    train = load_dataset("fashion_mnist", "train", root=DATA_ROOT, download=False)
    test = load_dataset("fashion_mnist", "test", root=DATA_ROOT, download=False)
    assert train.x.shape == (60000, 1, 28, 28) and train.x.dtype == torch.uint8
    assert torch.bincount(train.y).tolist() == [6000] * 10
    assert torch.bincount(test.y).tolist() == [1000] * 10
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    xf = train.x.double() / 255
    assert abs(xf.mean().item() - NORMALIZATION["fashion_mnist"][0][0]) < 1e-3
    assert abs(xf.std().item() - NORMALIZATION["fashion_mnist"][1][0]) < 1e-3


@needs_mnist
def test_uncompressed_idx_and_modified_content_warns(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for base in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / base).write_bytes(gzip.open(DATA_ROOT / "MNIST" / "raw" / f"{base}.gz").read())
    ref = load_dataset("mnist", "test", root=DATA_ROOT, download=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = load_dataset("mnist", "test", root=tmp_path, download=False)
    assert torch.equal(plain.x, ref.x) and torch.equal(plain.y, ref.y)

    labels = bytearray((raw / "t10k-labels-idx1-ubyte").read_bytes())
    labels[8] = (labels[8] + 1) % 10  # first label changed: valid structure, not the official content
    (raw / "t10k-labels-idx1-ubyte").write_bytes(bytes(labels))
    with pytest.warns(UserWarning, match="not the official mnist"):
        changed = load_dataset("mnist", "test", root=tmp_path, download=False)
    assert changed.y[0] == (ref.y[0] + 1) % 10


@needs_mnist
def test_wrong_structure_raises(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    # labels file where the images should be
    shutil.copy(DATA_ROOT / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz", raw / "t10k-images-idx3-ubyte.gz")
    shutil.copy(DATA_ROOT / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz", raw / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(ValueError, match="magic number"):
        load_dataset("mnist", "test", root=tmp_path, download=False)


# ---------------------------------------------------------------- missing files and downloading

@pytest.mark.parametrize("name,expected", [
    ("mnist", "MNIST/raw/train-images-idx3-ubyte.gz"),
    ("fashion_mnist", "FashionMNIST/raw/train-labels-idx1-ubyte.gz"),
    ("cifar10", "cifar-10-batches-py/data_batch_3"),
    ("cifar100", "cifar-100-python/train"),
])
def test_missing_files_error(tmp_path, name, expected):
    with pytest.raises(FileNotFoundError) as info:
        load_dataset(name, "train", root=tmp_path, download=False)
    msg = str(info.value)
    assert str(tmp_path / expected) in msg
    assert repr(name) in msg and "KDUTILS_DATA" in msg and "root=" in msg and "http" in msg
    assert not any(tmp_path.iterdir())  # download=False writes nothing


@needs_mnist
def test_download_fetches_missing_files_with_official_md5(tmp_path, monkeypatch):
    calls = []

    def fake_download_url(url, root, filename=None, md5=None):  # stands in for torchvision's (offline machine)
        calls.append((url, filename, md5))
        shutil.copy(DATA_ROOT / "MNIST" / "raw" / filename, Path(root) / filename)

    fake = types.SimpleNamespace(download_url=fake_download_url)
    monkeypatch.setattr(kdata, "_tv_download_utils", lambda: fake)
    ds = load_dataset("mnist", "test", root=tmp_path)  # download=None: try
    assert len(ds) == 10000 and torch.bincount(ds.y).tolist() == MNIST_TEST_COUNTS
    assert [c[1] for c in calls] == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert all(c[0].endswith(c[1]) and c[2] == kdata.OFFICIAL_MD5["mnist"][c[1]] for c in calls)
    assert (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").is_file()


def test_failed_download_reports_reason(tmp_path, monkeypatch):
    def failing(url, root, filename=None, md5=None):
        raise OSError("no network here")

    monkeypatch.setattr(kdata, "_tv_download_utils", lambda: types.SimpleNamespace(download_url=failing))
    with pytest.raises(FileNotFoundError, match="no network here") as info:
        load_dataset("fashion_mnist", "test", root=tmp_path, download=True)
    assert str(tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte.gz") in str(info.value)
    with pytest.raises(ValueError, match="download must be"):
        load_dataset("mnist", "test", root=tmp_path, download="yes")


# ---------------------------------------------------------------- CIFAR in the official pickle format

def _cifar_images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _dump(path: Path, obj: dict, bytes_keys: bool) -> None:
    if bytes_keys:  # how the official Python-2 pickles look when read with encoding="bytes"
        obj = {k.encode(): ([v.encode() for v in val] if k.endswith("names") else val) for k, val in obj.items()}
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


@pytest.mark.parametrize("bytes_keys", [True, False])
def test_cifar10_roundtrip(tmp_path, bytes_keys):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rows, labels = {}, {}
    for i, fname in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        rows[fname] = _cifar_images(2 + i % 2, seed=i)
        labels[fname] = [(3 * i + j) % 10 for j in range(len(rows[fname]))]
        _dump(folder / fname, {"batch_label": fname, "data": rows[fname], "labels": labels[fname],
                               "filenames": [f"img{j}.png" for j in range(len(rows[fname]))]}, bytes_keys)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _dump(folder / "batches.meta", {"label_names": names, "num_cases_per_batch": 10000}, bytes_keys)

    train = load_dataset("cifar10", "train", root=tmp_path, download=False)
    test = load_dataset("cifar10", "test", root=tmp_path, download=False)
    train_rows = np.concatenate([rows[f"data_batch_{k}"] for k in range(1, 6)])
    assert train.x.shape == (len(train_rows), 3, 32, 32) and train.x.dtype == torch.uint8
    assert train.y.dtype == torch.int64
    assert train.y.tolist() == sum((labels[f"data_batch_{k}"] for k in range(1, 6)), [])
    assert train.classes == names and train.name == "cifar10"
    # channel order: each row is the 1024-byte R plane, then G, then B, each row-major 32x32
    for c in range(3):
        np.testing.assert_array_equal(train.x[:, c].numpy(), train_rows[:, c * 1024:(c + 1) * 1024].reshape(-1, 32, 32))
    r = rows["test_batch"][1]
    assert test.x[1, 2, 5, 7].item() == r[2 * 1024 + 5 * 32 + 7]  # blue, row 5, column 7
    assert test.x[1, 0, 31, 0].item() == r[31 * 32]
    assert test.y.tolist() == labels["test_batch"]


def test_cifar100_uses_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    data = _cifar_images(4, seed=7)
    fine, coarse = [99, 0, 42, 17], [19, 4, 5, 6]
    _dump(folder / "train", {"data": data, "fine_labels": fine, "coarse_labels": coarse}, bytes_keys=True)
    _dump(folder / "test", {"data": data[:1], "fine_labels": fine[:1], "coarse_labels": coarse[:1]}, bytes_keys=False)
    fine_names = [f"class{i:03d}" for i in range(100)]
    _dump(folder / "meta", {"fine_label_names": fine_names, "coarse_label_names": [str(i) for i in range(20)]},
          bytes_keys=True)
    train = load_dataset("cifar100", "train", root=tmp_path, download=False)
    assert train.y.tolist() == fine
    assert torch.equal(train.x, torch.from_numpy(data.reshape(4, 3, 32, 32)))
    assert train.classes == fine_names
    test = load_dataset("cifar100", "test", root=tmp_path, download=False)
    assert test.x.shape == (1, 3, 32, 32) and test.y.tolist() == [99]


def test_cifar_malformed(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _dump(folder / "test", {"data": np.zeros((2, 3000), np.uint8), "fine_labels": [0, 1]}, bytes_keys=False)
    _dump(folder / "meta", {"fine_label_names": [str(i) for i in range(100)]}, bytes_keys=False)
    with pytest.raises(ValueError, match=r"expected uint8 \(N, 3072\)"):
        load_dataset("cifar100", "test", root=tmp_path, download=False)
    _dump(folder / "test", {"data": np.zeros((2, 3072), np.uint8), "fine_labels": [0, 100]}, bytes_keys=False)
    with pytest.raises(ValueError, match="labels outside"):
        load_dataset("cifar100", "test", root=tmp_path, download=False)
    _dump(folder / "test", {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, bytes_keys=False)
    with pytest.raises(ValueError, match="no 'fine_labels' entry"):
        load_dataset("cifar100", "test", root=tmp_path, download=False)
