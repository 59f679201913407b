"""A small CNN: cheap enough for CPU sweeps, strong enough to beat an MLP on MNIST-like data."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn


def image_shape(in_shape: Sequence[int], model: str) -> tuple[int, int, int]:
    """Check that `in_shape` is a (C, H, W) image shape; conv models cannot take anything else."""
    shape = tuple(int(s) for s in in_shape)
    if len(shape) != 3:
        raise ValueError(f"model {model!r} needs an image in_shape (C, H, W), got {tuple(in_shape)!r}")
    channels, height, width = shape
    return channels, height, width


def init_conv_bn(module: nn.Module) -> None:
    """He (Kaiming) normal init for convs (fan_out, ReLU) and identity-like BatchNorm, as in He et al. 2016."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SmallCNN(nn.Module):
    """(conv3x3 -> ReLU -> maxpool2) per channel width -> adaptive avg-pool to pool_size^2 -> FC -> ReLU -> head.

    The adaptive pool makes the FC input size independent of the image size, so 28x28 and 32x32 both work
    (after two max-pools they are 7x7 and 8x8; both become pool_size x pool_size).
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        pool_size: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c, _, _ = image_shape(in_shape, "cnn")
        if not channels or any(int(ch) < 1 for ch in channels):
            raise ValueError(f"channels must be a non-empty sequence of positive ints, got {channels!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        layers: list[nn.Module] = []
        for ch in channels:
            layers += [nn.Conv2d(c, int(ch), kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c = int(ch)
        layers += [nn.AdaptiveAvgPool2d(pool_size), nn.Flatten(), nn.Linear(c * pool_size**2, hidden), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, num_classes)
        init_conv_bn(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Activations of the hidden FC layer, shape (B, hidden)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_cnn(in_shape: Sequence[int], num_classes: int, **kwargs) -> SmallCNN:
    return SmallCNN(in_shape, num_classes, **kwargs)


#: name -> builder(in_shape, num_classes, **kwargs); registered by kdutils.models.
BUILDERS: dict[str, Callable[..., nn.Module]] = {"cnn": build_cnn}

__all__ = ["SmallCNN", "BUILDERS", "build_cnn", "image_shape", "init_conv_bn"]
