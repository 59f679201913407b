"""Pre-activation ResNets (He et al. 2016, "Identity mappings") laid out as in Stanton et al.'s code (gnosis).

Why a second ResNet family: "Does knowledge distillation really work?" trains PreResNet-20/56 teachers and
students, and fidelity numbers depend on the exact architecture, so the book uses theirs rather than the
post-activation `resnet_cifar` models.

Layout (gnosis, itself ported from bearpaw/pytorch-classification):
  3x3 stem conv (no BN after it) -> 3 stages (stride 1, 2, 2) -> BN -> ReLU -> global average pool -> head.
  * depth < 44: basic blocks, depth = 6n + 2, block = x + conv(relu(bn(conv(relu(bn(x)))))).
  * depth >= 44: bottleneck blocks (expansion 4), depth = 9n + 2 (so PreResNet-56 has n = 6 bottlenecks per
    stage and 256 final channels), block = x + conv1x1(relu(bn(conv3x3(relu(bn(conv1x1(relu(bn(x))))))))).
  * The shortcut is the identity unless the shape changes; then it is a single 1x1 conv (stride s, no bias,
    and, unlike the post-activation ResNets, no BatchNorm).
  * Convs get He-normal fan-out init, BN weight 1 / bias 0, the head PyTorch's default Linear init.

Width: ``widths = (stem, stage1, stage2, stage3)`` in *planes* (bottleneck stages output 4x planes);
(16, 16, 32, 64) is the authors' model. A global *adaptive* pool replaces their AvgPool2d(8), so 28x28
inputs work (28 -> 14 -> 7); on 32x32 inputs the two are identical.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kdutils.models.cnn import image_shape, init_conv_bn

BLOCKS = ("auto", "basic", "bottleneck")
DEFAULT_WIDTHS = (16, 16, 32, 64)


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _projection(cin: int, cout: int, stride: int) -> nn.Module | None:
    """1x1 conv shortcut where the shape changes (gnosis: no BN on it), else None for the identity."""
    if stride == 1 and cin == cout:
        return None
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class PreActBasicBlock(nn.Module):
    """x + conv2(relu(bn2(conv1(relu(bn1(x)))))); the shortcut sees the raw x, as in the authors' code."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = _conv3x3(cin, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.shortcut = _projection(cin, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return out + (x if self.shortcut is None else self.shortcut(x))


class PreActBottleneck(nn.Module):
    """x + conv1x1(relu(bn3(conv3x3(relu(bn2(conv1x1(relu(bn1(x))))))))), output 4 * planes channels."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, planes, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.shortcut = _projection(cin, planes * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return out + (x if self.shortcut is None else self.shortcut(x))


PreActBlock = type[PreActBasicBlock] | type[PreActBottleneck]


def resolve_block(depth: int, block: str = "auto") -> tuple[PreActBlock, int]:
    """(block class, blocks per stage) for `depth`; "auto" follows the authors (bottleneck from depth 44)."""
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise ValueError(f"depth must be an int, got {depth!r}")
    if block not in BLOCKS:
        raise ValueError(f"unknown block {block!r}; choose one of: {', '.join(BLOCKS)}")
    if block == "auto":
        block = "bottleneck" if depth >= 44 else "basic"
    if block == "basic":
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"basic-block depth must be 6n+2 with n >= 1 (8, 14, 20, 26, 32, 38, ...), got {depth!r}")
        return PreActBasicBlock, (depth - 2) // 6
    if depth < 11 or (depth - 2) % 9:
        raise ValueError(f"bottleneck depth must be 9n+2 with n >= 1 (11, 20, ..., 56, 110, ...), got {depth!r}")
    return PreActBottleneck, (depth - 2) // 9


class PreActResNet(nn.Module):
    """PreResNet-`depth` for small images; `features` is the pooled output of the final BN-ReLU."""

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        depth: int = 20,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        block: str = "auto",
    ) -> None:
        super().__init__()
        in_channels, _, _ = image_shape(in_shape, f"preresnet{depth}")
        block_cls, n = resolve_block(depth, block)
        if len(widths) != 4 or any(isinstance(w, bool) or int(w) != w or int(w) < 1 for w in widths):
            raise ValueError(f"widths must be 4 positive ints (stem, stage1, stage2, stage3), got {widths!r}")
        w0, w1, w2, w3 = (int(w) for w in widths)
        self.depth, self.widths, self.block = depth, (w0, w1, w2, w3), block_cls.__name__
        self.conv1 = _conv3x3(in_channels, w0)
        cin = w0
        stages = []
        for planes, stride in ((w1, 1), (w2, 2), (w3, 2)):
            blocks = [block_cls(cin, planes, stride)]
            cin = planes * block_cls.expansion
            blocks += [block_cls(cin, planes, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.bn = nn.BatchNorm2d(cin)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(cin, num_classes)
        init_conv_bn(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled relu(bn(last stage)), shape (B, widths[3] * expansion)."""
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return torch.flatten(self.pool(F.relu(self.bn(x))), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_preact_resnet(in_shape: Sequence[int], num_classes: int, depth: int, **kwargs) -> PreActResNet:
    return PreActResNet(in_shape, num_classes, depth=depth, **kwargs)


#: name -> builder(in_shape, num_classes, **kwargs); registered by kdutils.models. kwargs: widths, block.
BUILDERS: dict[str, Callable[..., nn.Module]] = {
    f"preresnet{d}": partial(build_preact_resnet, depth=d) for d in (8, 14, 20, 32, 56, 110)
}

__all__ = ["BLOCKS", "BUILDERS", "DEFAULT_WIDTHS", "PreActBasicBlock", "PreActBottleneck", "PreActResNet",
           "build_preact_resnet", "resolve_block"]
