"""DGCNN (Wang et al., "Dynamic Graph CNN for Learning on Point Clouds", 2019), made exactly invariant to
translations of the coordinates, in plain torch (no torch_geometric).

Input: point sets (B, P, F). Each EdgeConv layer does three things:
1. it rebuilds a k-nearest-neighbour graph in the *current* feature space ("dynamic"; layer 1 uses the
   input features);
2. it computes an edge feature h(x_j - x_i) for every neighbour j of point i, where h = Linear (no bias)
   -> BatchNorm -> LeakyReLU(0.2);
3. it takes the max over the k neighbours.

Where we depart from Wang et al. Their edge function is h(x_i, x_j - x_i). We use **only x_j - x_i**, the
change the invariance-KD authors patched into torch_geometric ("message = nn(x_j - x_i)"). Adding the same
vector t to every point's coordinates leaves every difference, every distance, and so every kNN graph
unchanged. Layer 1's output is therefore translation invariant, and so is everything after it. The network
is also permutation invariant: kNN, the edge function and max/mean pooling are all equivariant or invariant
to reordering the points.

The exactness has one limit: ties in the kNN distances at the k-th neighbour. topk breaks them by index
order (which is not permutation invariant), and float rounding under a translation can flip near-ties. For
continuous coordinates (ModelNet) this has probability ~0. For grid-valued inputs (set-MNIST pixel
coordinates) equal distances are common, so there the invariance holds only up to tie-breaking.

After the EdgeConv layers (default widths 64, 64, 128, 256; `n_layers` keeps the first n), the layer outputs
are concatenated, embedded per point (Linear -> BN -> LeakyReLU to `emb_dims`), and pooled globally: max
and mean concatenated, as in Wang et al.'s code (pool="max" is what the invariance-KD authors' PyG code
does). Then comes an MLP (Linear -> BN -> LeakyReLU -> Dropout, widths 512, 256) whose output is
`features(x)`, and `head` = Linear(256 -> classes).

k counts the point itself (its self-edge carries x_i - x_i = 0), as in the reference implementations. It
is clamped to P. Set include_self=False to use k other points (then clamped to P - 1).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

DEFAULT_WIDTHS = (64, 64, 128, 256)


def knn_indices(x: torch.Tensor, k: int, include_self: bool = True) -> torch.Tensor:
    """Indices (B, P, k) of the k nearest points (squared Euclidean distance over all F features) of
    each point. The matmul form |a|^2 + |b|^2 - 2ab costs B*P*P memory. Centring each set first
    changes no distance but avoids cancellation for sets far from the origin."""
    xc = x - x.mean(dim=1, keepdim=True)
    sq = xc.pow(2).sum(dim=-1)
    dist = sq[:, :, None] + sq[:, None, :] - 2.0 * torch.bmm(xc, xc.transpose(1, 2))
    if not include_self:
        dist.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    return dist.topk(k, dim=-1, largest=False).indices


class EdgeConv(nn.Module):
    """max_j h(x_j - x_i) over the kNN graph of x, h = Linear(no bias) -> BN -> LeakyReLU.
    Because h starts linear, W(x_j - x_i) = Wx_j - Wx_i: we apply W per point and difference after
    the gather, which never materialises the (B, P, k, F_in) input differences."""

    def __init__(self, in_features: int, out_features: int, k: int, include_self: bool = True,
                 negative_slope: float = 0.2):
        super().__init__()
        self.k = k
        self.include_self = include_self
        self.lin = nn.Linear(in_features, out_features, bias=False)
        self.bn = nn.BatchNorm1d(out_features)
        self.act = nn.LeakyReLU(negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, p, _ = x.shape
        k = min(self.k, p if self.include_self else p - 1)
        if k < 1:
            raise ValueError(f"EdgeConv needs at least one neighbour; got a set of {p} point(s)")
        idx = knn_indices(x, k, self.include_self)  # (B, P, k)
        y = self.lin(x)  # (B, P, C)
        c = y.shape[-1]
        nbr = torch.gather(y, 1, idx.reshape(b, p * k, 1).expand(b, p * k, c)).view(b, p, k, c)
        edge = nbr - y[:, :, None, :]
        edge = self.act(self.bn(edge.reshape(-1, c))).view(b, p, k, c)
        return edge.amax(dim=2)


class DGCNN(nn.Module):
    """Translation- and permutation-invariant DGCNN classifier for (B, P, F) point sets (see module doc)."""

    def __init__(self, in_features: int, num_classes: int, widths: Sequence[int] = DEFAULT_WIDTHS,
                 k: int = 20, emb_dims: int = 1024, mlp_widths: Sequence[int] = (512, 256),
                 dropout: float = 0.5, pool: str = "max+mean", include_self: bool = True,
                 negative_slope: float = 0.2):
        super().__init__()
        if not widths:
            raise ValueError("DGCNN needs at least one EdgeConv layer; got widths=[]")
        if k < 1:
            raise ValueError(f"k must be >= 1; got {k}")
        if pool not in ("max+mean", "max", "mean"):
            raise ValueError(f"unknown pool {pool!r}; choose 'max+mean', 'max' or 'mean'")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        self.k, self.pool = k, pool
        convs, cin = [], in_features
        for w in widths:
            convs.append(EdgeConv(cin, w, k, include_self, negative_slope))
            cin = w
        self.convs = nn.ModuleList(convs)
        self.emb = nn.Linear(sum(widths), emb_dims, bias=False)
        self.emb_bn = nn.BatchNorm1d(emb_dims)
        self.act = nn.LeakyReLU(negative_slope)
        layers: list[nn.Module] = []
        cin = emb_dims * (2 if pool == "max+mean" else 1)
        for w in mlp_widths:
            layers += [nn.Linear(cin, w, bias=False), nn.BatchNorm1d(w), nn.LeakyReLU(negative_slope),
                       nn.Dropout(dropout)]
            cin = w
        self.mlp = nn.Sequential(*layers)
        self.feature_dim = cin
        self.head = nn.Linear(cin, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"DGCNN expects point sets (B, P, F); got shape {tuple(x.shape)}")
        outs = []
        h = x
        for conv in self.convs:
            h = conv(h)
            outs.append(h)
        h = torch.cat(outs, dim=-1)
        b, p, c = h.shape
        h = self.act(self.emb_bn(self.emb(h).reshape(b * p, -1))).view(b, p, -1)
        if self.pool == "max+mean":
            g = torch.cat([h.amax(dim=1), h.mean(dim=1)], dim=-1)
        elif self.pool == "max":
            g = h.amax(dim=1)
        else:
            g = h.mean(dim=1)
        return self.mlp(g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_dgcnn(in_shape: Sequence[int], num_classes: int, n_layers: int = 4,
                widths: Sequence[int] | None = None, **kw) -> DGCNN:
    """DGCNN for in_shape (P, F). n_layers keeps the first n of the widths 64, 64, 128, 256 (Wang et al.:
    4); pass widths= for others. Other keywords: k, emb_dims, mlp_widths, dropout, pool, include_self."""
    if len(in_shape) != 2:
        raise ValueError(f"dgcnn needs a point-set in_shape (P, F); got {tuple(in_shape)}")
    if widths is None:
        if not 1 <= n_layers <= len(DEFAULT_WIDTHS):
            raise ValueError(f"n_layers must be in 1..{len(DEFAULT_WIDTHS)} (or pass widths=); got {n_layers}")
        widths = DEFAULT_WIDTHS[:n_layers]
    return DGCNN(in_shape[-1], num_classes, widths=widths, **kw)


def build_dgcnn2(in_shape: Sequence[int], num_classes: int, **kw) -> DGCNN:
    """DGN' of the paper: the same DGCNN with only two EdgeConv layers (64, 64)."""
    kw.setdefault("n_layers", 2)
    return build_dgcnn(in_shape, num_classes, **kw)


BUILDERS = {"dgcnn": build_dgcnn, "dgcnn2": build_dgcnn2}
