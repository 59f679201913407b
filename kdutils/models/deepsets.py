"""DeepSets (Zaheer et al., 2017) classifiers for point sets (B, P, F).

* Invariant ("dsinv"): phi, an MLP applied to every element separately (Linear -> act per width), then a
  pooling over the set (sum | mean | max), then rho (Dropout -> Linear -> act per width).
* Equivariant ("dsequiv"): phi is a stack of permutation-equivariant layers
  x -> act(Lambda x - Gamma pool(x)) (Lambda with bias, Gamma without). The invariant pooling and rho come
  after it, as in Zaheer et al.'s point-cloud classifier. Both the equivariant layers' `equiv_pool` and
  the final pool can be chosen. The invariance-KD authors' code uses mean inside the layers and max at
  the end.

Both are exactly permutation invariant. Neither is translation invariant when coordinates are among the
element features (phi sees absolute positions). That is the point of the DGCNN -> DeepSets distillation
experiment: the student lacks the teacher's translation invariance.

Dropout goes before every Linear after the pooling, the classifier included (as in Zaheer et al.'s code).
We place the last one at the end of `features`, so forward(x) == head(features(x)) holds with
`head` = nn.Linear.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

POOLS = ("sum", "mean", "max")
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _check_pool(name: str, what: str = "pool") -> str:
    if name not in POOLS:
        raise ValueError(f"unknown {what} {name!r}; choose one of: {', '.join(POOLS)}")
    return name


def set_pool(x: torch.Tensor, how: str, keepdim: bool = False) -> torch.Tensor:
    """Pool (B, P, C) over the set dimension P."""
    if how == "sum":
        return x.sum(dim=1, keepdim=keepdim)
    if how == "mean":
        return x.mean(dim=1, keepdim=keepdim)
    if how == "max":
        return x.amax(dim=1, keepdim=keepdim)
    raise ValueError(f"unknown pool {how!r}; choose one of: {', '.join(POOLS)}")


class PermEquivariant(nn.Module):
    """y_i = Lambda x_i - Gamma pool_j(x_j): permuting the elements of x permutes the rows of y."""

    def __init__(self, in_features: int, out_features: int, pool: str = "mean"):
        super().__init__()
        self.pool = _check_pool(pool, "equiv_pool")
        self.Lambda = nn.Linear(in_features, out_features)
        self.Gamma = nn.Linear(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.Lambda(x) - self.Gamma(set_pool(x, self.pool, keepdim=True))


class DeepSets(nn.Module):
    """phi (per element, or equivariant) -> pool -> rho; features = rho output (after dropout)."""

    def __init__(self, in_features: int, num_classes: int, phi: Sequence[int] = (32, 32, 32),
                 rho: Sequence[int] = (32,), pool: str = "mean", activation: str = "relu",
                 dropout: float = 0.0, equivariant: bool = False, equiv_pool: str = "mean"):
        super().__init__()
        if not phi:
            raise ValueError("phi needs at least one layer; got phi=[]")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        self.pool = _check_pool(pool)
        self.equivariant = equivariant
        layers: list[nn.Module] = []
        cin = in_features
        for w in phi:
            layers += [PermEquivariant(cin, w, equiv_pool) if equivariant else nn.Linear(cin, w),
                       _activation(activation)]
            cin = w
        self.phi = nn.Sequential(*layers)
        layers = []
        for w in rho:
            layers += [nn.Dropout(dropout), nn.Linear(cin, w), _activation(activation)]
            cin = w
        layers.append(nn.Dropout(dropout))
        self.rho = nn.Sequential(*layers)
        self.feature_dim = cin
        self.head = nn.Linear(cin, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"DeepSets expects sets (B, P, F); got shape {tuple(x.shape)}")
        return self.rho(set_pool(self.phi(x), self.pool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _in_features(in_shape: Sequence[int], name: str) -> int:
    if len(in_shape) != 2:
        raise ValueError(f"{name} needs a set in_shape (P, F); got {tuple(in_shape)}")
    return int(in_shape[-1])


def build_deepsets_inv(in_shape: Sequence[int], num_classes: int, phi: Sequence[int] = (32, 32, 32),
                       rho: Sequence[int] = (32,), pool: str = "mean", activation: str = "relu",
                       dropout: float = 0.0) -> DeepSets:
    """dsinv. Defaults: the jets teacher (phi [32,32,32], rho [32], mean pool, ReLU).
    ModelNet student: phi=[256]*3, rho=[256], pool="max", activation="tanh", dropout=0.5."""
    return DeepSets(_in_features(in_shape, "deepsets_inv"), num_classes, phi, rho, pool, activation, dropout)


def build_deepsets_inv_small(in_shape: Sequence[int], num_classes: int, phi: Sequence[int] = (32, 32, 32),
                             **kw) -> DeepSets:
    """dsinv': dsinv with one phi layer fewer than the phi given (default [32, 32])."""
    if len(phi) < 2:
        raise ValueError(f"deepsets_inv_small drops the last phi layer, so phi needs >= 2 layers; got {list(phi)}")
    return build_deepsets_inv(in_shape, num_classes, phi=tuple(phi)[:-1], **kw)


def build_deepsets_equiv(in_shape: Sequence[int], num_classes: int, phi: Sequence[int] = (256, 256, 256),
                         rho: Sequence[int] = (256,), pool: str = "max", activation: str = "tanh",
                         dropout: float = 0.5, equiv_pool: str = "mean") -> DeepSets:
    """dsequiv. Defaults: the ModelNet student of the paper (3 equivariant layers of 256 with mean inside,
    tanh, max pool, rho [256], dropout 0.5)."""
    return DeepSets(_in_features(in_shape, "deepsets_equiv"), num_classes, phi, rho, pool, activation,
                    dropout, equivariant=True, equiv_pool=equiv_pool)


BUILDERS = {
    "deepsets_inv": build_deepsets_inv,
    "deepsets_inv_small": build_deepsets_inv_small,
    "deepsets_equiv": build_deepsets_equiv,
}
