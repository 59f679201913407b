"""The dataset registry: every dataset the book uses is loaded by name (`load_dataset`), so a config names its data
as plain text and is checked against the names known here (`check_dataset_name`).

All datasets are registered when this module is imported, from the modules that load them (`datasets` for
MNIST, Fashion-MNIST and CIFAR, `pointsets`, `modelnet` and `jets` for point sets); no chapter registers
anything, so a config can be checked without importing a chapter.
"""
from __future__ import annotations

from typing import Callable

from kdutils.data import datasets, jets, modelnet, pointsets
from kdutils.data.datasets import ArrayDataset

Loader = Callable[..., ArrayDataset]
_REGISTRY: dict[str, Loader] = {}


def register_dataset(name: str, loader: Loader) -> None:
    """Make `load_dataset(name, ...)` call `loader(split=..., root=..., download=...)`."""
    _REGISTRY[name] = loader


def dataset_names() -> list[str]:
    """The datasets `load_dataset` knows (all registered when this module is imported)."""
    return sorted(_REGISTRY)


def check_dataset_name(name: object) -> str:
    """A registered dataset name, else ValueError listing the names allowed."""
    if not isinstance(name, str) or name not in _REGISTRY:
        known = sorted(_REGISTRY)
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(known)}")
    return name


def load_dataset(name: str, split: str = "train", root=None, download: bool | None = None,
                 **options) -> ArrayDataset:
    """Load a registered dataset split; `options` go to loaders that take them (e.g. set_mnist's n_points)."""
    check_dataset_name(name)
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")
    return _REGISTRY[name](split=split, root=root, download=download, **options)


def _make_loader(fn: Callable[..., ArrayDataset], name: str) -> Loader:
    def loader(split: str = "train", root=None, download: bool | None = None) -> ArrayDataset:
        return fn(name, split, root=root, download=download)

    loader.__name__ = f"load_{name}"
    loader.__doc__ = f"Load the {name} split as an ArrayDataset (see kdutils.data.datasets)."
    return loader


for _name in datasets._IDX_INFO:
    register_dataset(_name, _make_loader(datasets.load_idx_dataset, _name))
for _name in datasets._CIFAR_INFO:
    register_dataset(_name, _make_loader(datasets._load_cifar_dataset, _name))
del _name


def _register_pointsets() -> None:
    """Point-set datasets: set-MNIST with and without jitter, ModelNet40 in two layouts, hls4ml jets."""
    loaders: dict[str, Loader] = {
        "set_mnist": pointsets.load_set_mnist, "set_mnist_jitter": pointsets.load_set_mnist_jitter,
        "modelnet40": modelnet.load_modelnet40, "modelnet40_h5": modelnet.load_modelnet40_h5,
        "hls4ml_jets": jets.load_hls4ml_jets}
    for name, loader in loaders.items():
        register_dataset(name, loader)


_register_pointsets()
