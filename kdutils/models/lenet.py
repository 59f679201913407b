"""LeNet-5 as used by Stanton et al. for their near-saturated MNIST case (the poster gives no agreement number).

Why this exact layout: the paper's MNIST fidelity figure refers to the authors' LeNet-5 (gnosis), so the check
should use the same network: conv5x5(6, pad 2) -> ReLU -> avgpool2 -> conv5x5(16) -> ReLU -> avgpool2 ->
FC 120 -> ReLU -> FC 84 -> ReLU -> head. On 28x28 inputs the flattened size is 16*5*5 = 400 as in the
original; other image sizes get the size their convolutions produce (e.g. 16*6*6 on 32x32).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from kdutils.models.cnn import image_shape


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and average pooling; `features` is the 84-unit layer after its ReLU."""

    def __init__(self, in_shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        c, h, w = image_shape(in_shape, "lenet5")

        def after(size: int) -> int:  # conv5 pad2 keeps size, pool halves, conv5 -4, pool halves
            return ((size // 2) - 4) // 2

        fh, fw = after(h), after(w)
        if fh < 1 or fw < 1:
            raise ValueError(f"lenet5 needs images of at least 12x12 pixels, got in_shape {tuple(in_shape)!r}")
        self.body = nn.Sequential(
            nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(16 * fh * fw, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        )
        self.head = nn.Linear(84, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Activations of the 84-unit layer, shape (B, 84)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_lenet5(in_shape: Sequence[int], num_classes: int) -> LeNet5:
    return LeNet5(in_shape, num_classes)


#: name -> builder(in_shape, num_classes); registered by kdutils.models.
BUILDERS: dict[str, Callable[..., nn.Module]] = {"lenet5": build_lenet5}

__all__ = ["BUILDERS", "LeNet5", "build_lenet5"]
