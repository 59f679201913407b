"""The sample-wise fused objective: mean_i [alpha_i * L_KD,i + (1 - alpha_i) * L_GT,i].

The per-sample terms are the registered objective's per-sample form (`kdutils.objectives`; "kd": tau^2 * KL,
forward by default, and the optionally label-smoothed cross-entropy), so alpha_i = const reproduces
`losses.kd_objective` exactly.
"""
from __future__ import annotations

import torch

from kdutils.losses import check_alpha
from kdutils.objectives import DEFAULT, get_objective

__all__ = ["check_sample_alpha", "per_sample_terms", "samplewise_kd_objective", "fuse"]


def check_sample_alpha(alpha: torch.Tensor | float, batch_size: int, check_range: bool = True) -> torch.Tensor | float:
    """A scalar in [0, 1] or a (batch_size,) tensor of finite values in [0, 1] (range check costs a sync)."""
    if not isinstance(alpha, torch.Tensor):
        return check_alpha(alpha)
    if alpha.ndim == 0:
        alpha = alpha.expand(batch_size)
    if alpha.shape != (batch_size,):
        raise ValueError(f"alpha must be a scalar or have shape ({batch_size},) (one per sample), "
                         f"got {tuple(alpha.shape)}")
    if check_range:
        a = alpha.detach()
        bad = ~((a >= 0) & (a <= 1))  # catches nan too
        if bool(bad.any()):
            raise ValueError(f"alpha must lie in [0, 1] (weight on the KD term); sample {int(bad.nonzero()[0])} "
                             f"has {float(a[bad][0])!r}")
    return alpha


def per_sample_terms(student_logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor,
                     tau: float, direction: str = "forward", label_smoothing: float = 0.0,
                     objective: str = DEFAULT) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_KD, L_GT) per sample, each of shape (B,): the per-sample form of the registered `objective`."""
    terms = get_objective(objective, "per_sample").per_sample
    assert terms is not None  # get_objective checked that the objective has this form
    return terms(student_logits, targets, teacher_logits, tau, direction, label_smoothing)


def fuse(kd: torch.Tensor, ce: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """mean_i [alpha_i kd_i + (1 - alpha_i) ce_i]; alpha is not range-checked here (see check_sample_alpha)."""
    return (alpha * kd + (1.0 - alpha) * ce).mean()


def samplewise_kd_objective(student_logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor,
                            alpha: torch.Tensor | float, tau: float, direction: str = "forward",
                            label_smoothing: float = 0.0, check_range: bool = True,
                            objective: str = DEFAULT) -> torch.Tensor:
    """Batch mean of alpha_i * L_KD,i + (1 - alpha_i) * L_GT,i. Gradients flow to alpha if it requires them.

    check_range=False accepts alpha outside [0, 1] (RW-KD's unclamped weights, as the authors' code has them).
    """
    alpha = check_sample_alpha(alpha, student_logits.shape[0], check_range)
    kd, ce = per_sample_terms(student_logits, targets, teacher_logits, tau, direction, label_smoothing, objective)
    return fuse(kd, ce, alpha)
