"""The image datasets (MNIST, Fashion-MNIST, CIFAR-10/100), each loaded once into memory as tensors (see
device_loader for batching; `registry` loads any dataset by name).

The image loaders read the official file formats directly with numpy (idx for MNIST / Fashion-MNIST, the
python-pickle batches for CIFAR), in torchvision's folder layout, so the same data root works for both. Only
downloading goes through torchvision, whose helpers check the official md5 of what they fetch.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import socket
import tempfile
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from kdutils.paths import data_root


@dataclass
class ArrayDataset:
    """A whole split held as tensors: images as uint8 (N, C, H, W), point sets as float32 (N, P, F)."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str] = field(default_factory=list)
    name: str = ""

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, idx: torch.Tensor) -> "ArrayDataset":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return ArrayDataset(self.x[idx], self.y[idx], list(self.classes), self.name)


# --------------------------------------------------------------------------------------------------------------
# Facts about the official datasets
# --------------------------------------------------------------------------------------------------------------

#: Per-channel (mean, std) of the training split, on the [0, 1] pixel scale (what DeviceLoader expects).
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}

#: Official md5 of the distributed files (the .gz files, the CIFAR tarballs and the files inside them).
OFFICIAL_MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "cifar10": {
        "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
        "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
    },
    "cifar100": {
        "cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85",
        "train": "16019d7e3df5f24257cddd939b257f8d",
        "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
        "meta": "7973b15100ade9c7d40fb424638fde48",
    },
}

#: md5 of the *uncompressed* idx content. A recompressed .gz (e.g. Debian's Fashion-MNIST) has another .gz md5
#: but the same content, so this is what local files are checked against.
IDX_CONTENT_MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}

_IDX_INFO = {
    # name: (folder under root, download mirrors, class names)
    "mnist": (
        "MNIST",
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        [str(i) for i in range(10)],
    ),
    "fashion_mnist": (
        "FashionMNIST",
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    ),
}
_IDX_SIZES = {"train": 60000, "test": 10000}

_CIFAR_INFO: dict[str, dict[str, Any]] = {
    # name: (folder, archive, url, train files, test files, meta file, label key, label-names key, classes)
    "cifar10": dict(
        folder="cifar-10-batches-py", archive="cifar-10-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        train=[f"data_batch_{i}" for i in range(1, 6)], test=["test_batch"], meta="batches.meta",
        label_key="labels", names_key="label_names", num_classes=10,
    ),
    "cifar100": dict(
        folder="cifar-100-python", archive="cifar-100-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        train=["train"], test=["test"], meta="meta",
        label_key="fine_labels", names_key="fine_label_names", num_classes=100,
    ),
}

_DOWNLOAD_TIMEOUT_S = 60.0


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------

def _md5_bytes(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def md5_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """md5 hex digest of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


# (resolved path, size, mtime_ns) of files whose content md5 was already checked in this process, so repeated
# loads do not pay for hashing 47 MB again.
_VERIFIED: set[tuple[str, int, int]] = set()


def _file_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _download_mode(download: bool | None) -> bool:
    if download is None:
        return True
    if not isinstance(download, bool):
        raise ValueError(f"download must be True, False or None (= try if missing), got {download!r}")
    return download


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """torchvision's download helpers open URLs without a timeout; an offline machine must fail, not hang."""
    old = socket.getdefaulttimeout()
    if old is None:
        socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        if old is None:
            socket.setdefaulttimeout(None)


def _tv_download_utils():
    from kdutils.data.tv import import_torchvision

    import_torchvision()
    import torchvision.datasets.utils as tv_utils

    return tv_utils


def _missing_error(name: str, root: Path, missing: list[Path], source: str, reason: str) -> FileNotFoundError:
    listing = "\n".join(f"  {p}" for p in missing)
    return FileNotFoundError(
        f"dataset {name!r}: files not found under data root {root}:\n{listing}\n"
        f"{reason}\nTo fix: point the data root at a folder that holds them (set the environment variable "
        f"KDUTILS_DATA=<folder> or pass root=<folder>), or download them from {source} "
        f"(load_dataset(..., download=True) does this on a machine with internet access)."
    )


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")


# --------------------------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST (idx files)
# --------------------------------------------------------------------------------------------------------------

_IDX_MAGIC = {1: 2049, 3: 2051}  # labels (1-d), images (3-d), both unsigned byte


def parse_idx(data: bytes, ndim: int, source: str = "<bytes>") -> np.ndarray:
    """Parse an uncompressed idx file of unsigned bytes with `ndim` dimensions, checking magic and length."""
    if len(data) < 4:
        raise ValueError(f"{source}: too short ({len(data)} bytes) for an idx file")
    magic = int.from_bytes(data[:4], "big")
    if magic != _IDX_MAGIC[ndim]:
        raise ValueError(
            f"{source}: idx magic number {magic} (0x{magic:08x}); expected {_IDX_MAGIC[ndim]} "
            f"(unsigned bytes, {ndim} dimensions)"
        )
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{source}: too short ({len(data)} bytes) for an idx file with {ndim} dimensions")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims, dtype=np.int64))
    if len(data) - offset != expected:
        raise ValueError(f"{source}: header says shape {dims} ({expected} bytes) but {len(data) - offset} bytes follow")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def _idx_candidates(raw: Path, base: str) -> list[Path]:
    # uncompressed first: it is faster to read and is what torchvision's MNIST leaves after extracting
    return [raw / base, raw / f"{base}.gz"]


def _damaged_data_file(path: Path, name: str, err: Exception) -> ValueError:
    return ValueError(f"{path}: damaged {name} file ({type(err).__name__}: {err}). Delete it and download it "
                      f"again (load_dataset({name!r}, download=True) does so), or copy a good one there.")


def _read_idx_file(path: Path, ndim: int, name: str) -> np.ndarray:
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as fh:
            data = fh.read()
    except (OSError, EOFError, zlib.error) as err:  # truncated or not gzip: name the file, not just "EOFError"
        raise _damaged_data_file(path, name, err) from err
    arr = parse_idx(data, ndim, source=str(path))
    base = path.name[:-3] if path.suffix == ".gz" else path.name
    official = IDX_CONTENT_MD5.get(name, {}).get(base)
    key = _file_key(path)
    if official is not None and key not in _VERIFIED:
        got = _md5_bytes(data)
        if got != official:
            warnings.warn(
                f"{path}: md5 of the idx content is {got}, not the official {official}; the structure is valid, "
                f"so loading continues, but this is not the official {name} file",
                stacklevel=3,
            )
        _VERIFIED.add(key)
    return arr


def load_idx_dataset(name: str, split: str, root=None, download: bool | None = None) -> ArrayDataset:
    _check_split(split)
    folder, mirrors, classes = _IDX_INFO[name]
    base_root = data_root(root)
    raw = base_root / folder / "raw"
    prefix = "train" if split == "train" else "t10k"
    bases = {"images": f"{prefix}-images-idx3-ubyte", "labels": f"{prefix}-labels-idx1-ubyte"}

    def find() -> dict[str, Path | None]:
        return {k: next((p for p in _idx_candidates(raw, b) if p.is_file()), None) for k, b in bases.items()}

    found = find()
    if any(p is None for p in found.values()):
        missing_bases = [bases[k] for k, p in found.items() if p is None]
        expected = [raw / f"{b}.gz" for b in missing_bases]
        reason = "download=False, so nothing was downloaded."
        if _download_mode(download):
            reason = _download_idx(name, raw, [f"{b}.gz" for b in missing_bases], mirrors)
            found = find()
        if any(p is None for p in found.values()):
            reason += "\n(uncompressed idx files, the same names without .gz, are accepted too.)"
            raise _missing_error(name, base_root, expected, " or ".join(mirrors), reason)

    paths = {k: p for k, p in found.items() if p is not None}  # all of them: a missing file raised above
    images = _read_idx_file(paths["images"], 3, name)
    labels = _read_idx_file(paths["labels"], 1, name)
    n = _IDX_SIZES[split]
    if images.shape != (n, 28, 28):
        raise ValueError(f"{found['images']}: images have shape {images.shape}; expected ({n}, 28, 28) for {split}")
    if labels.shape != (n,):
        raise ValueError(f"{found['labels']}: labels have shape {labels.shape}; expected ({n},) for {split}")
    if labels.max() >= len(classes):
        raise ValueError(f"{found['labels']}: label {int(labels.max())} out of range 0..{len(classes) - 1}")
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return ArrayDataset(x, y, list(classes), name)


def _download_idx(name: str, raw: Path, files: list[str], mirrors: tuple[str, ...]) -> str:
    """Fetch the missing .gz files (md5 checked by torchvision); return a note on what failed, for the error.

    Files are fetched into a temporary folder and moved under `raw` only once complete, so a wrong data root
    (or an offline machine) leaves no empty `<root>/MNIST/raw` behind."""
    try:
        tv_utils = _tv_download_utils()
    except Exception as err:  # noqa: BLE001 - any failure here becomes the FileNotFoundError's reason
        return f"download was attempted but failed: {type(err).__name__}: {err}"
    errors = []
    with tempfile.TemporaryDirectory(prefix="kdutils-download-") as tmp:
        for fname in files:
            ok = False
            for mirror in mirrors:
                try:
                    with _socket_timeout(_DOWNLOAD_TIMEOUT_S):
                        tv_utils.download_url(mirror + fname, root=tmp, filename=fname,
                                              md5=OFFICIAL_MD5[name][fname])
                    ok = (Path(tmp) / fname).is_file()
                    if ok:
                        raw.mkdir(parents=True, exist_ok=True)
                        shutil.move(str(Path(tmp) / fname), str(raw / fname))
                except Exception as err:  # noqa: BLE001
                    errors.append(f"{mirror + fname}: {type(err).__name__}: {err}")
                if ok:
                    break
    return "download was attempted but failed:\n  " + "\n  ".join(errors) if errors else "download found no files."


# --------------------------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 (python pickles)
# --------------------------------------------------------------------------------------------------------------

def _str_keys(obj: dict) -> dict:
    """The official pickles come from Python 2 (bytes keys under encoding='bytes'); accept str and bytes keys."""
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _load_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="latin1")
    except (EOFError, pickle.UnpicklingError, ValueError, OSError) as err:
        raise _damaged_data_file(path, path.parent.name, err) from err
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return _str_keys(obj)


def _load_cifar_dataset(name: str, split: str, root=None, download: bool | None = None) -> ArrayDataset:
    _check_split(split)
    info = _CIFAR_INFO[name]
    base_root = data_root(root)
    folder = base_root / info["folder"]
    files = [folder / f for f in info[split]] + [folder / info["meta"]]
    missing = [p for p in files if not p.is_file()]
    if missing:
        reason = "download=False, so nothing was downloaded."
        if _download_mode(download):
            reason = _download_cifar(name, base_root)
            missing = [p for p in files if not p.is_file()]
        if missing:
            raise _missing_error(name, base_root, missing, info["url"], reason)

    xs, ys = [], []
    for path in files[:-1]:
        batch = _load_pickle(path)
        for key in ("data", info["label_key"]):
            if key not in batch:
                raise ValueError(f"{path}: no {key!r} entry (found {sorted(batch)}); is this a {name} file?")
        data = np.asarray(batch["data"])
        labels = np.asarray(batch[info["label_key"]], dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise ValueError(f"{path}: data is {data.dtype} {data.shape}; expected uint8 (N, 3072)")
        if labels.shape != (data.shape[0],):
            raise ValueError(f"{path}: {labels.shape[0] if labels.ndim else 0} labels for {data.shape[0]} images")
        if labels.size and (labels.min() < 0 or labels.max() >= info["num_classes"]):
            raise ValueError(f"{path}: labels outside 0..{info['num_classes'] - 1}")
        # each row is 1024 red, then 1024 green, then 1024 blue bytes, each plane row-major 32x32
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    meta = _load_pickle(files[-1])
    names = meta.get(info["names_key"])
    if names is None or len(names) != info["num_classes"]:
        raise ValueError(f"{files[-1]}: expected {info['num_classes']} names under {info['names_key']!r}")
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    x = torch.from_numpy(np.ascontiguousarray(np.concatenate(xs)))
    y = torch.from_numpy(np.concatenate(ys))
    return ArrayDataset(x, y, classes, name)


def _download_cifar(name: str, base_root: Path) -> str:
    info = _CIFAR_INFO[name]
    try:
        tv_utils = _tv_download_utils()
        # the archive goes to a temporary folder; only a complete, checked download is extracted into the root
        with _socket_timeout(_DOWNLOAD_TIMEOUT_S), tempfile.TemporaryDirectory(prefix="kdutils-download-") as tmp:
            tv_utils.download_and_extract_archive(info["url"], download_root=tmp, extract_root=str(base_root),
                                                  filename=info["archive"], md5=OFFICIAL_MD5[name][info["archive"]])
    except Exception as err:  # noqa: BLE001
        return f"download was attempted but failed: {type(err).__name__}: {err}"
    return "download finished but the expected files are still missing."


# --------------------------------------------------------------------------------------------------------------
# Checksum report and registration
# --------------------------------------------------------------------------------------------------------------

def verify_checksums(name: str, root=None) -> dict[Path, bool]:
    """md5 of each present local file of `name` against the official table (True = matches).

    Not called while loading: Fashion-MNIST copies are often recompressed (other .gz md5, same content) and test
    fixtures are small; loading checks structure and, for idx files, the md5 of the uncompressed content.
    """
    if name not in OFFICIAL_MD5:
        raise ValueError(f"no checksums known for {name!r}; choose one of: {', '.join(sorted(OFFICIAL_MD5))}")
    base_root = data_root(root)
    if name in _IDX_INFO:
        folder = base_root / _IDX_INFO[name][0] / "raw"
    else:
        folder = base_root / _CIFAR_INFO[name]["folder"]
    out = {}
    for fname, md5 in OFFICIAL_MD5[name].items():
        path = (base_root / fname) if fname.endswith(".tar.gz") else (folder / fname)
        if path.is_file():
            out[path] = md5_file(path) == md5
    return out
