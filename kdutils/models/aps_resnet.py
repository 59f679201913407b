"""ResNet18 with adaptive polyphase sampling (APS; Chaman & Dokmanic, CVPR 2021): exactly invariant to
circular shifts of the input. It is the translation-invariant teacher of the MNIST invariance-KD experiment.

Why it is exact. Every layer is either shift-equivariant (stride-1 convolutions with *circular* padding,
BatchNorm, ReLU, residual sums) or an APS downsampling. APS splits a (C, H, W) map into its four polyphase
components x[:, i::2, j::2] and keeps the one with the largest L2 norm. A circular shift of the input only
permutes the components and circularly shifts each of them, and it leaves their norms unchanged, so APS
picks "the same" component and its output is a circularly shifted copy of the unshifted output. A final
global average pool removes the remaining shift. What this needs:

* Every APS input has even H and W. Otherwise the polyphase components have different sizes, a shift does
  not just permute them, and exactness is lost. The downsampling stages are therefore chosen from the input
  size. A stage downsamples only if the map reaching it has even height and width.
  **28x28 (MNIST): 28 -> 14 -> 7, and the last stage runs at 7x7 with stride 1** (two APS stages).
  32x32 (CIFAR): 32 -> 16 -> 8 -> 4 (three APS stages, the usual ResNet18 layout). Pass `downsample`
  to override the choice. An APS on an odd size raises ValueError instead of silently breaking exactness.
* The residual shortcut of a downsampling block (1x1 conv) is downsampled with the *same* polyphase index
  as the main path. The index is chosen from the norm of the main path's stride-1 conv1 output. Two
  independent argmax choices could pick components that are shifted by different amounts, and then the
  sum would not be a shifted copy of anything.
* No ties among the four norms. argmax breaks ties by position, which is not shift-consistent. Real
  inputs almost never tie (measure zero), but a constant image does, for example.

Layout (CIFAR-style ResNet18): a 3x3 stem with stride 1 and no max-pool, then 4 stages of BasicBlocks
(default [2, 2, 2, 2]) with widths width * (1, 2, 4, 8). Every strided convolution of the usual design is
replaced by "stride-1 conv, then APS down by 2", in shortcuts too. An optional circular binomial
low-pass filter before APS (`filter_size` 2 or 3, the paper's "APS + LPF") keeps exactness. The default is
no filter (filter_size=1).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

_BINOMIAL = {1: [1.0], 2: [1.0, 1.0], 3: [1.0, 2.0, 1.0]}


def _check_even(x: torch.Tensor) -> None:
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(
            f"APS downsampling needs even height and width to stay exactly shift invariant; got {h}x{w}. "
            "Build the model with in_shape so the stages are chosen from the input size, or pass downsample=")


def polyphase_norms(x: torch.Tensor) -> torch.Tensor:
    """Squared L2 norm of each of the 4 polyphase components, (B, 4), component c = (i, j) = divmod(c, 2)
    meaning x[..., i::2, j::2]."""
    _check_even(x)
    b, c, h, w = x.shape
    v = x.reshape(b, c, h // 2, 2, w // 2, 2)
    return v.pow(2).sum(dim=(1, 2, 4)).reshape(b, 4)


def polyphase_select(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Per-sample polyphase component x[b, :, i::2, j::2] with (i, j) = divmod(index[b], 2)."""
    _check_even(x)
    b, c, h, w = x.shape
    v = x.reshape(b, c, h // 2, 2, w // 2, 2)
    batch = torch.arange(b, device=x.device)
    return v[batch, :, :, index // 2, :, index % 2]  # advanced indices first -> (B, C, H/2, W/2)


class APSDown(nn.Module):
    """Adaptive polyphase downsampling by 2, with an optional circular binomial blur first.
    forward(x, index=None) -> (y, index): with index=None the component of largest norm is chosen,
    otherwise the given per-sample index is reused (for the residual shortcut)."""

    kernel: torch.Tensor  # the blur's 2-D binomial kernel, a non-persistent buffer

    def __init__(self, filter_size: int = 1):
        super().__init__()
        if filter_size not in _BINOMIAL:
            raise ValueError(f"filter_size must be one of {sorted(_BINOMIAL)}; got {filter_size}")
        self.filter_size = filter_size
        k = torch.tensor(_BINOMIAL[filter_size])
        self.register_buffer("kernel", (k[:, None] * k[None, :]) / k.sum() ** 2, persistent=False)

    def blur(self, x: torch.Tensor) -> torch.Tensor:
        if self.filter_size == 1:
            return x
        f = self.filter_size
        # Circular padding keeps the blur exactly shift-equivariant; size 2 pads on one side only.
        pad = (0, 1, 0, 1) if f == 2 else (1, 1, 1, 1)
        c = x.shape[1]
        weight = self.kernel.to(x.dtype).expand(c, 1, f, f)
        return F.conv2d(F.pad(x, pad, mode="circular"), weight, groups=c)

    def forward(self, x: torch.Tensor, index: torch.Tensor | None = None):
        x = self.blur(x)
        if index is None:
            index = polyphase_norms(x).argmax(dim=1)
        return polyphase_select(x, index), index


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=1, padding=1, padding_mode="circular", bias=False)


class APSBasicBlock(nn.Module):
    """BasicBlock whose stride-2 conv is "conv (stride 1) -> APS"; the shortcut reuses the APS index."""

    def __init__(self, cin: int, cout: int, downsample: bool, filter_size: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(cin, cout)
        self.aps = APSDown(filter_size) if downsample else None
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Sequential | None = None
        if downsample or cin != cout:
            # 1x1 conv commutes with polyphase selection, so select first (4x cheaper).
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        index = None
        if self.aps is not None:
            out, index = self.aps(out)
        out = F.relu(self.bn1(out))
        out = self.bn2(self.conv2(out))
        sc = x
        if self.aps is not None:
            sc, _ = self.aps(x, index)
        if self.shortcut is not None:
            sc = self.shortcut(sc)
        return F.relu(out + sc)


def auto_downsample(input_hw: tuple[int, int] | None, n_stages: int = 4) -> list[bool]:
    """Which stages downsample: never the first; a later one only while the map is even-sized
    (28 -> [F, T, T, F]; 32 -> [F, T, T, T]). Unknown size: the standard [F, T, T, T]."""
    if input_hw is None:
        return [False] + [True] * (n_stages - 1)
    h, w = input_hw
    plan = [False]
    for _ in range(n_stages - 1):
        ok = h % 2 == 0 and w % 2 == 0
        plan.append(ok)
        if ok:
            h, w = h // 2, w // 2
    return plan


class APSResNet(nn.Module):
    """CIFAR-style ResNet with circular padding and APS downsampling (see module docstring).
    forward(x) == head(features(x)); features are the globally average-pooled last-stage maps."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 64,
                 blocks: Sequence[int] = (2, 2, 2, 2), input_hw: tuple[int, int] | None = None,
                 downsample: Sequence[bool] | None = None, filter_size: int = 1):
        super().__init__()
        if width < 1 or any(b < 1 for b in blocks):
            raise ValueError(f"width and blocks must be positive; got width={width}, blocks={list(blocks)}")
        plan = list(downsample) if downsample is not None else auto_downsample(input_hw, len(blocks))
        if len(plan) != len(blocks):
            raise ValueError(f"downsample needs one flag per stage ({len(blocks)}); got {plan}")
        self.downsample_plan = plan
        self.stem = nn.Sequential(_conv3x3(in_channels, width), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        cin = width
        for s, (n, down) in enumerate(zip(blocks, plan)):
            cout = width * 2 ** s
            for b in range(n):
                layers.append(APSBasicBlock(cin, cout, down and b == 0, filter_size))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.feature_dim = cin
        self.head = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_aps_resnet18(in_shape: Sequence[int], num_classes: int, width: int = 64,
                       blocks: Sequence[int] = (2, 2, 2, 2), downsample: Sequence[bool] | None = None,
                       filter_size: int = 1) -> APSResNet:
    """APS-ResNet18 for (C, H, W) inputs; the APS stages are chosen from (H, W) (see module docstring)."""
    if len(in_shape) != 3:
        raise ValueError(f"aps_resnet18 needs an image in_shape (C, H, W); got {tuple(in_shape)}")
    c, h, w = in_shape
    return APSResNet(c, num_classes, width=width, blocks=blocks, input_hw=(h, w),
                     downsample=downsample, filter_size=filter_size)


BUILDERS = {"aps_resnet18": build_aps_resnet18}
