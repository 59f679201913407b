"""CIFAR-style ResNets (He et al. 2016, sec. 4.2) with the widths and names used by RepDistiller / CRD.

Layout: 3x3 stem conv -> 3 stages of n basic blocks (stride 1, 2, 2) -> global average pool -> head,
depth = 6n + 2. Widths are ``(stem, stage1, stage2, stage3)``: (16, 16, 32, 64) for resnet8..110 and
(32, 64, 128, 256) for the "x4" variants.

Shortcuts, where a block changes shape (stride 2, or channel count differs):
  * "B" (default): 1x1 conv (stride s, no bias) + BatchNorm -- what RepDistiller trains, so published KD
    numbers (e.g. resnet32x4 -> resnet8x4) refer to this. resnet20 has 272,474 parameters with 10 classes.
  * "A": parameter-free identity: subsample by the stride, zero-pad the new channels -- He et al.'s CIFAR
    choice, which gives their quoted 0.27M / 0.46M / 0.85M / 1.7M (resnet20 = 269,722 with 10 classes).
Identity shortcuts are used wherever the shape is unchanged, under both options.

Global *adaptive* average pooling replaces RepDistiller's fixed AvgPool2d(8), so 28x28 inputs also work
(spatial sizes 28 -> 14 -> 7); on 32x32 inputs the two are identical.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kdutils.models.cnn import image_shape, init_conv_bn

SHORTCUTS = ("A", "B")


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class PadShortcut(nn.Module):
    """Option-A shortcut: keep every `stride`-th pixel and append zero channels up to `cout`."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        if cout < cin:
            raise ValueError(f"option-A shortcut cannot shrink channels ({cin} -> {cout})")
        self.extra, self.stride = cout - cin, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra))  # pads dim 1 (channels) at the end
        return x


class BasicBlock(nn.Module):
    """relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x))."""

    def __init__(self, cin: int, cout: int, stride: int = 1, shortcut: str = "B") -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride == 1 and cin == cout:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "B":
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )
        else:
            self.shortcut = PadShortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for small images; `features` is the globally pooled output of the last stage."""

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        depth: int = 20,
        widths: Sequence[int] = (16, 16, 32, 64),
        shortcut: str = "B",
    ) -> None:
        super().__init__()
        in_channels, _, _ = image_shape(in_shape, f"resnet{depth}")
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...), got {depth!r}")
        if len(widths) != 4 or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths must be 4 positive ints (stem, stage1, stage2, stage3), got {widths!r}")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"unknown shortcut {shortcut!r}; choose one of: {', '.join(SHORTCUTS)}")
        n = (depth - 2) // 6
        w0, w1, w2, w3 = (int(w) for w in widths)
        self.depth, self.widths, self.shortcut = depth, (w0, w1, w2, w3), shortcut

        self.conv1 = _conv3x3(in_channels, w0)
        self.bn1 = nn.BatchNorm2d(w0)
        self.layer1 = self._stage(w0, w1, n, 1)
        self.layer2 = self._stage(w1, w2, n, 2)
        self.layer3 = self._stage(w2, w3, n, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(w3, num_classes)
        init_conv_bn(self)

    def _stage(self, cin: int, cout: int, n: int, stride: int) -> nn.Sequential:
        blocks = [BasicBlock(cin, cout, stride, self.shortcut)]
        blocks += [BasicBlock(cout, cout, 1, self.shortcut) for _ in range(n - 1)]
        return nn.Sequential(*blocks)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled last-stage activations, shape (B, widths[3])."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_resnet(
    in_shape: Sequence[int], num_classes: int, depth: int, widths: Sequence[int] = (16, 16, 32, 64), **kwargs
) -> CifarResNet:
    return CifarResNet(in_shape, num_classes, depth=depth, widths=widths, **kwargs)


_NARROW = (16, 16, 32, 64)
_X4 = (32, 64, 128, 256)

#: name -> builder(in_shape, num_classes, **kwargs); registered by kdutils.models. kwargs: shortcut="A"|"B".
BUILDERS: dict[str, Callable[..., nn.Module]] = {
    **{f"resnet{d}": partial(build_resnet, depth=d, widths=_NARROW) for d in (8, 14, 20, 32, 44, 56, 110)},
    "resnet8x4": partial(build_resnet, depth=8, widths=_X4),
    "resnet32x4": partial(build_resnet, depth=32, widths=_X4),
}

__all__ = ["BUILDERS", "BasicBlock", "CifarResNet", "PadShortcut", "SHORTCUTS", "build_resnet"]
