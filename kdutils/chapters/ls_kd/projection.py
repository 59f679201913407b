"""Penultimate-layer projections of three classes: the authors' variant (Chandrasegaran et al. 2022, Supplementary F)
and, beside it, the plane of Müller, Kornblith & Hinton (2019) that it is derived from.

The two differ. Müller et al. project onto the 2-D plane *through the three class templates* (the last layer's
weight rows ``w_k``): an orthonormal basis of ``span(w_b - w_a, w_c - w_a)``, no PCA (``mueller_plane_basis``,
``project_mueller``). The authors' variant (the chapter's figures, ``project_classes``) is Supplementary F's
recipe, for three classes (two semantically similar, one not):

1. take the three classes' last-layer templates with the bias appended, ``[w_k, b_k]`` (shape (3, D+1));
2. an orthonormal basis ``Q`` (shape (D+1, 3)) of their span, from the QR decomposition of their transpose;
3. project the features with a 1 appended, ``[x, 1] @ Q`` (3-D). Because ``[w_k, b_k]`` lie in the span of
   ``Q``, the three logits are a fixed linear map of the projection: nothing the head sees about these classes
   is lost;
4. reduce 3-D to 2-D with a PCA fitted on the training projections plus the class centroids (the authors'
   script does this), then map validation features with the *same* PCA.

The authors' script takes the weight rows of the three classes but the bias entries ``[0, 1, 2]`` (the first
three classes of ImageNet, not 266, 267, 833); here the biases come from the same class indices as the weights,
and :func:`projection_basis` is tested to reproduce the head's logits exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Any, Sequence

import torch
from torch import nn

from kdutils.progress import tqdm

__all__ = [
    "head_parameters",
    "mueller_plane_basis",
    "project_mueller",
    "penultimate_features",
    "projection_basis",
    "project",
    "PCA2D",
    "ProjectionView",
    "project_classes",
    "project_model",
    "plot_projection",
    "plot_projection_grid",
]


def head_parameters(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (C, D), bias (C,)) of ``model.head``, the final ``nn.Linear`` every kdutils model exposes."""
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        raise ValueError(f"model {type(model).__name__} has no nn.Linear `head` (got {type(head).__name__}); "
                         f"kdutils models expose their final layer as `head`")
    if head.bias is None:
        raise ValueError("model.head has no bias; the projection appends the bias to each class template")
    return head.weight.detach().cpu(), head.bias.detach().cpu()


@torch.no_grad()
def penultimate_features(
    model: nn.Module, x: torch.Tensor, batch_size: int = 1024, device: str | torch.device | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """``model.features(x)`` for all of ``x`` in eval mode, float32 on the CPU (train/eval modes restored).

    Inputs are used as given: pass them preprocessed the way training saw them (uint8 images are scaled to
    [0, 1] like :func:`kdutils.metrics.predict_logits` does).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if not callable(getattr(model, "features", None)):
        raise ValueError(f"model {type(model).__name__} has no `features` method (penultimate features)")
    if device is None:
        p = next(iter(model.parameters()), None)
        device = p.device if p is not None else torch.device("cpu")
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        out = []
        starts = range(0, x.shape[0], batch_size)
        for s in tqdm(starts, desc="features", disable=not progress):
            xb = x[s : s + batch_size].to(device)
            if xb.dtype == torch.uint8:
                xb = xb.to(torch.float32).mul_(1.0 / 255.0)
            out.append(model.features(xb).float().cpu())
        return torch.cat(out)
    finally:
        for m, mode in modes:
            m.training = mode


def _check_classes(classes: Sequence[int], num_classes: int) -> list[int]:
    out = list(classes)
    if len(out) != 3 or len(set(out)) != 3:
        raise ValueError(f"classes must be 3 distinct class indices (two similar, one not), got {classes!r}")
    for c in out:
        if isinstance(c, bool) or not isinstance(c, Integral) or not 0 <= c < num_classes:
            raise ValueError(f"class {c!r} is not an index in 0..{num_classes - 1}")
    return [int(c) for c in out]


def projection_basis(weight: torch.Tensor, bias: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """Orthonormal basis (D+1, 3), float64, of the span of ``[weight[k], bias[k]]`` for the three ``classes``.

    The sign of each basis vector follows Gram-Schmidt (positive diagonal of R), so the basis is the one a
    hand computation gives and does not flip between LAPACK builds.
    """
    if weight.ndim != 2 or bias.shape != weight.shape[:1]:
        raise ValueError(f"weight must be (classes, dims) and bias (classes,), got {tuple(weight.shape)} "
                         f"and {tuple(bias.shape)}")
    idx = _check_classes(classes, weight.shape[0])
    rows = torch.cat([weight[idx], bias[idx, None]], dim=1).detach().cpu().to(torch.float64)  # (3, D+1)
    q, r = torch.linalg.qr(rows.T)  # reduced: q (D+1, 3), r (3, 3)
    diag = torch.diagonal(r)
    if diag.abs().min() <= 1e-10 * diag.abs().max().clamp_min(1e-300):
        raise ValueError(f"the templates [w_k, b_k] of classes {idx} are linearly dependent; no 3-D basis")
    return q * torch.sign(diag)[None, :]


def project(features: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``[x, 1] @ basis``: (N, D) features to (N, 3) coordinates in the templates' span, float64."""
    if features.ndim != 2 or basis.ndim != 2 or features.shape[1] + 1 != basis.shape[0]:
        raise ValueError(f"features (N, D) need a basis of shape (D+1, k), got {tuple(features.shape)} and "
                         f"{tuple(basis.shape)}")
    x = features.detach().cpu().to(torch.float64)
    return torch.cat([x, torch.ones(x.shape[0], 1, dtype=torch.float64)], dim=1) @ basis.to(torch.float64)


def mueller_plane_basis(weight: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """Müller et al.'s plane: an orthonormal basis (D, 2), float64, of the plane through the three templates
    ``weight[k]`` (spanned by ``w_b - w_a`` and ``w_c - w_a``; Gram-Schmidt signs, as ``projection_basis``)."""
    if weight.ndim != 2:
        raise ValueError(f"weight must be (classes, dims), got {tuple(weight.shape)}")
    a, b, c = _check_classes(classes, weight.shape[0])
    w = weight.detach().cpu().to(torch.float64)
    q, r = torch.linalg.qr(torch.stack([w[b] - w[a], w[c] - w[a]], dim=1))  # (D, 2)
    diag = torch.diagonal(r)
    if diag.abs().min() <= 1e-10 * diag.abs().max().clamp_min(1e-300):
        raise ValueError(f"the templates of classes {[a, b, c]} are collinear; they span no plane")
    return q * torch.sign(diag)[None, :]


def project_mueller(features: torch.Tensor, weight: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """(N, D) features to 2-D coordinates in Müller et al.'s template plane (origin at the first template)."""
    basis = mueller_plane_basis(weight, classes)
    if features.ndim != 2 or features.shape[1] != basis.shape[0]:
        raise ValueError(f"features must be (N, {basis.shape[0]}), got {tuple(features.shape)}")
    origin = weight.detach().cpu().to(torch.float64)[int(list(classes)[0])]
    return (features.detach().cpu().to(torch.float64) - origin) @ basis


@dataclass(frozen=True)
class PCA2D:
    """A 2-component PCA (centre, then the top two right singular vectors). Signs made deterministic: the
    largest-magnitude loading of each component is positive."""

    mean: torch.Tensor  # (k,)
    components: torch.Tensor  # (2, k), orthonormal rows

    @classmethod
    def fit(cls, points: torch.Tensor) -> "PCA2D":
        if points.ndim != 2 or points.shape[0] < 2 or points.shape[1] < 2:
            raise ValueError(f"PCA needs >= 2 points of >= 2 dims, got shape {tuple(points.shape)}")
        p = points.detach().cpu().to(torch.float64)
        mean = p.mean(dim=0)
        _, _, vh = torch.linalg.svd(p - mean, full_matrices=False)
        comps = vh[:2]
        pivot = comps.abs().argmax(dim=1)
        signs = torch.sign(comps[torch.arange(2), pivot])
        return cls(mean, comps * signs[:, None])

    def transform(self, points: torch.Tensor) -> torch.Tensor:
        if points.ndim != 2 or points.shape[1] != self.mean.shape[0]:
            raise ValueError(f"points must be (N, {self.mean.shape[0]}), got {tuple(points.shape)}")
        return (points.detach().cpu().to(torch.float64) - self.mean) @ self.components.T


@dataclass(frozen=True)
class ProjectionView:
    """What one scatter panel shows: 2-D points, their labels, and the three class centroids in 2-D."""

    points: torch.Tensor  # (N, 2)
    labels: torch.Tensor  # (N,)
    centroids: torch.Tensor  # (3, 2), in `classes` order
    classes: tuple[int, int, int]
    class_names: tuple[str, str, str]
    pca: PCA2D


def project_classes(
    features: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    classes: Sequence[int],
    class_names: Sequence[str] | None = None,
    per_class: int | None = None,
    pca: PCA2D | None = None,
) -> ProjectionView:
    """The three classes' features projected (steps 1-4 of the module docstring) into 2-D.

    ``per_class`` keeps the first n samples of each class (the authors use 150 training / 50 validation
    images). ``pca=None`` fits the PCA on these projections plus the three centroids (training set);
    pass the training view's ``pca`` to map a validation set into the same plane.
    """
    idx = _check_classes(classes, weight.shape[0])
    if labels.shape != features.shape[:1]:
        raise ValueError(f"labels {tuple(labels.shape)} must match features {tuple(features.shape)} in length")
    keep = []
    for c in idx:
        where = (labels == c).nonzero().flatten()
        if where.numel() == 0:
            raise ValueError(f"class {c} has no samples among the features")
        keep.append(where if per_class is None else where[:per_class])
    sel = torch.cat(keep)
    basis = projection_basis(weight, bias, idx)
    pts3 = project(features[sel], basis)
    lab = labels[sel].cpu()
    cents3 = torch.stack([pts3[lab == c].mean(dim=0) for c in idx])  # == projection of the full-space centroid
    if pca is None:
        pca = PCA2D.fit(torch.cat([pts3, cents3]))
    names = tuple(class_names) if class_names is not None else tuple(str(c) for c in idx)
    if len(names) != 3:
        raise ValueError(f"class_names must name the 3 classes, got {class_names!r}")
    return ProjectionView(pca.transform(pts3), lab, pca.transform(cents3), (idx[0], idx[1], idx[2]), names, pca)


def project_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    classes: Sequence[int],
    class_names: Sequence[str] | None = None,
    per_class: int | None = None,
    pca: PCA2D | None = None,
    batch_size: int = 1024,
) -> ProjectionView:
    """:func:`project_classes` on a kdutils model: its penultimate features of the three classes' samples in
    ``x`` (preprocessed as in training) and its own head's weights and biases."""
    if y.shape != x.shape[:1]:
        raise ValueError(f"y {tuple(y.shape)} must have one label per input of x {tuple(x.shape)}")
    weight, bias = head_parameters(model)
    idx = _check_classes(classes, weight.shape[0])
    mask = torch.isin(y.cpu(), torch.tensor(idx))
    feats = penultimate_features(model, x[mask], batch_size=batch_size)
    return project_classes(feats, y.cpu()[mask], weight, bias, idx, class_names, per_class, pca)


def plot_projection(view: ProjectionView, ax: Any = None, title: str | None = None,
                    colors: Sequence[str] = ("tab:red", "tab:green", "tab:blue")) -> Any:
    """Scatter of one view in the paper's style: one colour per class, a large star at each centroid."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    for j, (c, name) in enumerate(zip(view.classes, view.class_names)):
        pts = view.points[view.labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=8, alpha=0.5, color=colors[j], label=name)
    for j in range(3):
        ax.scatter(view.centroids[j, 0], view.centroids[j, 1], s=250, marker="*", color=colors[j],
                   edgecolors="black", linewidths=0.8, zorder=3)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best", markerscale=1.5)
    return ax


def plot_projection_grid(views: Sequence[ProjectionView], titles: Sequence[str], ncols: int = 4) -> Any:
    """Several views side by side (e.g. teacher without/with LS, students at tau 1 and a high tau)."""
    import matplotlib.pyplot as plt

    if len(views) != len(titles) or not views:
        raise ValueError(f"need one title per view and at least one view, got {len(views)} views, "
                         f"{len(titles)} titles")
    ncols = min(ncols, len(views))
    nrows = -(-len(views) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, view, title in zip(axes.flat, views, titles):
        plot_projection(view, ax=ax, title=title)
    for ax in list(axes.flat)[len(views):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
