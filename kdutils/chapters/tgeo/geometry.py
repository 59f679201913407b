"""Trilateral geometry Delta_i of TGeo-KD: how the student S_i, the teacher T_i and the ground truth G_i sit
relative to each other in probability space, the input from which f_w predicts the sample's fusion ratio.

* intra-sample, Delta^{STG} = [e_sg, e_tg, e_st, S, T, G] with e_sg = G - S, e_tg = G - T, e_st = T - S;
* inter-sample, Delta^{S T-bar G}: the same with T replaced by T-bar_{c_i}, the teacher's mean probability
  vector over the training samples of the sample's class c_i. It says how typical the sample is of its class
  in the teacher's eyes, so f_w can spot outliers on which the teacher itself is unreliable.

The poster writes the edges as plain differences (the released HIL code squares them, the old CIFAR code takes
absolute values); we follow the poster. Features are detached: alpha_i = f_w(Delta_i) is a function of w only,
so the hypergradient flows to w through alpha, never through the student's probabilities inside Delta.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["FEATURE_SETS", "feature_dim", "teacher_class_means", "trilateral_geometry", "geometry_features"]

#: "intra" = Delta^{STG}, "inter" = Delta^{S T-bar G}, "both" = their concatenation (the paper's method).
FEATURE_SETS = ("intra", "inter", "both")


def _fp(x: torch.Tensor) -> torch.Tensor:
    """At least float32 (bf16 logits lose the small differences); float64 stays float64 (for gradchecks)."""
    return x.detach().to(torch.promote_types(x.dtype, torch.float32))


def check_feature_set(features: str | None) -> str:  # None too: an ArmSpec's unset features are refused here
    if features not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {features!r}; choose one of: {', '.join(FEATURE_SETS)}")
    return features


def feature_dim(num_classes: int, features: str = "both") -> int:
    """Length of Delta_i: six C-vectors per triangle, two triangles for "both"."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    return 6 * num_classes * (2 if check_feature_set(features) == "both" else 1)


def _check_labels(targets: torch.Tensor, n: int, num_classes: int) -> None:
    if targets.ndim != 1 or targets.shape[0] != n or targets.dtype.is_floating_point:
        raise ValueError(f"targets must be {n} integer class labels, got dtype {targets.dtype} "
                         f"shape {tuple(targets.shape)}")
    if n and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise ValueError(f"targets must lie in [0, {num_classes - 1}], got range "
                         f"[{int(targets.min())}, {int(targets.max())}]")


def teacher_class_means(teacher_logits: torch.Tensor, targets: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """T-bar: row c is the teacher's mean probability vector over the samples labelled c, shape (C, C).

    Compute it once from the teacher's outputs on the whole training split (not per batch): the point of
    the inter-sample triangle is a class-level reference that a single batch would make noisy.
    """
    if teacher_logits.ndim != 2:
        raise ValueError(f"teacher_logits must be (N, C), got shape {tuple(teacher_logits.shape)}")
    n, c = teacher_logits.shape
    _check_labels(targets, n, c)
    probs = F.softmax(_fp(teacher_logits) / tau, dim=1)
    sums = torch.zeros(c, c, dtype=probs.dtype, device=probs.device).index_add_(0, targets, probs)
    counts = torch.bincount(targets, minlength=c)
    missing = torch.nonzero(counts == 0).flatten().tolist()
    if missing:
        raise ValueError(f"classes {missing} have no training sample, so their teacher mean is undefined")
    return sums / counts[:, None].to(sums.dtype)


def _triangle(s: torch.Tensor, t: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return torch.cat([g - s, g - t, t - s, s, t, g], dim=1)


def trilateral_geometry(student_probs: torch.Tensor, teacher_probs: torch.Tensor, targets: torch.Tensor,
                        class_means: torch.Tensor | None = None, features: str = "both") -> torch.Tensor:
    """Delta_i from probability vectors S (B, C), T (B, C), labels (B,) and T-bar (C, C); shape (B, D).

    Column order: [e_sg, e_tg, e_st, S, T, G] for "intra", [e_sg, e_t-bar g, e_s t-bar, S, T-bar, G] for
    "inter", intra then inter for "both" (see `feature_dim`).
    """
    check_feature_set(features)
    if student_probs.ndim != 2 or student_probs.shape != teacher_probs.shape:
        raise ValueError(f"student and teacher probabilities must both be (B, C), got "
                         f"{tuple(student_probs.shape)} and {tuple(teacher_probs.shape)}")
    n, c = student_probs.shape
    _check_labels(targets, n, c)
    s = student_probs.detach()
    g = F.one_hot(targets.long(), c).to(s.dtype)
    parts = []
    if features in ("intra", "both"):
        parts.append(_triangle(s, teacher_probs.detach().to(s.dtype), g))
    if features in ("inter", "both"):
        if class_means is None:
            raise ValueError(f"features={features!r} needs class_means (T-bar, see teacher_class_means)")
        if class_means.shape != (c, c):
            raise ValueError(f"class_means must be ({c}, {c}), got {tuple(class_means.shape)}")
        t_bar = class_means.detach().to(s.dtype).index_select(0, targets.long())
        parts.append(_triangle(s, t_bar, g))
    return torch.cat(parts, dim=1)


def geometry_features(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                      class_means: torch.Tensor | None = None, features: str = "both") -> torch.Tensor:
    """Delta_i from logits: vertices are the plain (tau = 1) predicted class probabilities, as in the paper."""
    s = F.softmax(_fp(student_logits), dim=1)
    t = F.softmax(_fp(teacher_logits), dim=1)
    return trilateral_geometry(s, t, targets, class_means, features)
