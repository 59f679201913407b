"""Model registry: every architecture in the book is built by name, so configs and sweeps stay plain data.

A builder is any callable ``builder(in_shape, num_classes, **kwargs) -> nn.Module`` whose model follows the
contract: ``forward(x)`` gives logits, ``features(x)`` gives (B, D) penultimate features and
``head`` is the final ``nn.Linear`` with ``forward(x) == head(features(x))``.

To add models, write a module with builders and add ``register_model("name", builder)`` lines at the bottom
of this file (see the built-in registrations there).
"""
from __future__ import annotations

import operator
from typing import Callable, Sequence

from torch import nn

Builder = Callable[..., nn.Module]

_REGISTRY: dict[str, Builder] = {}

#: Registered names in registration order. Kept up to date in place by `register_model`; do not mutate.
MODEL_NAMES: list[str] = []


def register_model(name: str, builder: Builder, *, overwrite: bool = False) -> None:
    """Make ``build_model(name, in_shape, num_classes, **kw)`` call ``builder(in_shape, num_classes, **kw)``.

    Registering a taken name is refused unless ``overwrite=True``, so two modules cannot silently shadow
    each other's models.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    if not callable(builder):
        raise TypeError(f"builder for model {name!r} must be callable, got {type(builder).__name__}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"model {name!r} is already registered; pass overwrite=True to replace it")
    if name not in _REGISTRY:
        MODEL_NAMES.append(name)
    _REGISTRY[name] = builder


def model_names() -> list[str]:
    """Sorted names accepted by `build_model`."""
    return sorted(_REGISTRY)


def _check_in_shape(in_shape: Sequence[int]) -> tuple[int, ...]:
    """Normalise to a tuple of Python ints (numpy ints and torch.Size are fine), refusing anything else."""
    try:
        shape = tuple(operator.index(s) for s in in_shape)
    except TypeError:
        raise ValueError(f"in_shape must be a sequence of positive ints, got {in_shape!r}") from None
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"in_shape must be a non-empty sequence of positive ints, got {in_shape!r}")
    return shape


def build_model(name: str, in_shape: Sequence[int], num_classes: int, **kwargs) -> nn.Module:
    """Build registered model `name` for per-sample inputs of shape `in_shape`, e.g. (1, 28, 28) or (3, 32, 32).

    Extra keyword arguments go to the builder (e.g. ``hidden=[512]`` for "mlp", ``shortcut="A"`` for ResNets).
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(model_names())}")
    try:
        n_cls = operator.index(num_classes)  # accepts numpy ints, refuses floats
    except TypeError:
        n_cls = 0
    if isinstance(num_classes, bool) or n_cls < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return _REGISTRY[name](_check_in_shape(in_shape), n_cls, **kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (buffers such as BatchNorm running stats are not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ---- built-in registrations (add new modules' lines below) -------------------------------------------
from kdutils.models import aps_resnet, cnn, deepsets, dgcnn, lenet, mlp, preact_resnet, resnet_cifar  # noqa: E402

for _module in (mlp, cnn, resnet_cifar, aps_resnet, dgcnn, deepsets, preact_resnet, lenet):
    for _name, _builder in _module.BUILDERS.items():
        register_model(_name, _builder)

__all__ = ["MODEL_NAMES", "build_model", "count_parameters", "model_names", "register_model"]
