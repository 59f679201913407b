"""f_w: the small network that maps a sample's trilateral geometry Delta_i to its fusion ratio alpha_i.

Same shape as the authors' `Controller` (Linear -> LeakyReLU -> Linear(32 -> 16) -> LeakyReLU -> Linear -> 1,
then a sigmoid), so alpha_i lies strictly inside (0, 1). The last bias starts at logit(init_alpha), so a fresh
f_w starts near a chosen uniform ratio (0.5 by default) while its random weights already make alpha_i vary a
little across samples; where it goes from there is what the bilevel optimisation learns.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from kdutils.chapters.tgeo.geometry import feature_dim

__all__ = ["FusionRatioNet"]


class FusionRatioNet(nn.Module):
    """alpha = sigmoid(MLP(Delta)), shape (B,): the weight of sample i's KD term."""

    def __init__(self, in_features: int, hidden: Sequence[int] = (32, 16), init_alpha: float = 0.5,
                 negative_slope: float = 0.01) -> None:
        super().__init__()
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"in_features must be a positive int, got {in_features!r}")
        hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden widths must be positive ints, got {hidden!r}")
        if not 0.0 < float(init_alpha) < 1.0:
            raise ValueError(f"init_alpha must be in the open interval (0, 1) (a sigmoid output), got {init_alpha!r}")
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(negative_slope)]
            width = h
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(width, 1)
        with torch.no_grad():
            self.out.bias.fill_(math.log(init_alpha / (1.0 - init_alpha)))
        self.in_features = in_features

    @classmethod
    def for_classes(cls, num_classes: int, features: str = "both", **kwargs) -> "FusionRatioNet":
        """An f_w sized for the Delta_i of `num_classes` classes and the chosen feature set."""
        return cls(feature_dim(num_classes, features), **kwargs)

    def forward(self, delta: torch.Tensor) -> torch.Tensor:
        if delta.ndim != 2 or delta.shape[1] != self.in_features:
            raise ValueError(f"f_w expects Delta of shape (B, {self.in_features}), got {tuple(delta.shape)}")
        return torch.sigmoid(self.out(self.body(delta.to(self.out.weight.dtype)))).squeeze(1)
