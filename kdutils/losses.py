"""Knowledge-distillation losses.

Conventions used across kdutils (the book's methods page, `book/methods.md`, states them for readers):

* ``alpha`` is the weight on the **KD term**: ``alpha * KD + (1 - alpha) * CE``. ``alpha = 0`` is plain
  supervised training, ``alpha = 1`` is pure distillation (as in the "does KD really work?" experiments).
* ``tau`` is the softmax temperature, ``tau > 0``. The KD term is multiplied by ``tau**2`` so that its gradient
  magnitude stays comparable across temperatures (Hinton et al., 2015).
* ``direction="forward"`` is KL(P_t || P_s), the formula written in the papers; ``"reverse"`` is
  KL(P_s || P_t), what the invariance paper's released code actually computes. Both are offered so that the
  difference can be measured rather than argued about.

All losses work on log-probabilities from ``log_softmax`` (never ``log(softmax)``) so that very confident logits
do not produce ``log(0)``, and are computed in at least float32 so bf16/fp16 logits do not lose the small
differences between teacher and student.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "DIRECTIONS",
    "REDUCTIONS",
    "check_tau",
    "check_alpha",
    "check_direction",
    "check_smoothing",
    "check_logits_finite",
    "kd_loss",
    "kd_objective",
    "kl_terms",
    "label_smoothing_ce",
    "ensemble_logits",
]

DIRECTIONS = ("forward", "reverse")
REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------------------------- validation
def _as_float(value: object, name: str) -> float:
    """Turn a Python/NumPy number or a one-element tensor into a float; reject anything else (incl. bool)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a single number, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    return float(value)


def check_tau(tau: object) -> float:
    """Validate a temperature: a finite number > 0. Returns it as a float."""
    t = _as_float(tau, "tau")
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"tau must be a finite number > 0 (allowed range: (0, inf)), got {tau!r}")
    return t


def check_alpha(alpha: object) -> float:
    """Validate the KD weight: a number in [0, 1]. Returns it as a float."""
    a = _as_float(alpha, "alpha")
    if not (0.0 <= a <= 1.0):  # also rejects nan
        raise ValueError(f"alpha must be in [0, 1] (weight on the KD term), got {alpha!r}")
    return a


def check_direction(direction: str) -> str:
    """Validate the KL direction: "forward" = KL(P_t || P_s), "reverse" = KL(P_s || P_t)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; choose one of: {', '.join(DIRECTIONS)}")
    return direction


def check_smoothing(smoothing: object) -> float:
    """Validate a label-smoothing epsilon: a number in [0, 1). Returns it as a float."""
    eps = _as_float(smoothing, "label_smoothing")
    if not (0.0 <= eps < 1.0):
        raise ValueError(f"label_smoothing must be in [0, 1), got {smoothing!r}")
    return eps


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose one of: {', '.join(REDUCTIONS)}")


def _check_logits(logits: torch.Tensor, name: str) -> None:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{name} must be a 2-D tensor (batch, classes), got {shape}")


def check_logits_finite(logits: torch.Tensor, name: str) -> None:
    """Logits may be finite or -inf (a masked class), never NaN or +inf, and keep one class per row."""
    bad = torch.isnan(logits) | torch.isposinf(logits)
    if bool(bad.any()):
        pos = tuple(bad.nonzero()[0].tolist())
        raise ValueError(f"{name} holds {logits[pos].item()} at (row, class) {pos}: logits must be finite "
                         "numbers, or -inf to mask a class")
    empty = torch.isneginf(logits).all(dim=1)
    if bool(empty.any()):
        raise ValueError(f"{name} row {int(empty.nonzero()[0])} is -inf for every class: no class is left")


def kl_terms(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Elementwise p * (log p - log q), the terms of KL(P || Q), with 0 where p = 0 (0 log 0 = 0).

    `F.kl_div(log_q, log_p, log_target=True)` computes the same for finite inputs but gives NaN for a masked
    class (log p = -inf); the inner `where` also keeps the gradient finite there (no 0 * inf in backward)."""
    p = log_p.exp()
    return p * torch.where(p > 0, log_p - log_q, torch.zeros_like(log_p))


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Upcast half/bfloat16 to float32; keep float32/float64 as they are (float64 matters for gradcheck)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


# ----------------------------------------------------------------------------------------------- losses
def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    tau: float,
    direction: str = "forward",
    reduction: str = "mean",
    check_finite: bool = True,
) -> torch.Tensor:
    """Temperature-scaled distillation loss ``tau**2 * KL`` between softened teacher and student.

    forward: ``KL(P_t || P_s) = sum_k p_t,k (log p_t,k - log p_s,k)`` (Hinton; the papers' formula).
    reverse: ``KL(P_s || P_t)`` (what the invariance paper's code computes).
    ``P = softmax(logits / tau)``. The teacher is detached: this loss never trains the teacher.
    reduction: "mean" = sum over classes, mean over samples (the true per-sample KL, not torch's
    element-wise "mean"); "sum" = sum over everything; "none" = per-sample vector of shape (batch,).

    A teacher logit of -inf masks its class (p_t = 0): its forward-KL term is 0 (0 log 0 = 0), and in reverse
    KL the student pays +inf unless it masks the class too (KL(P_s || P_t) is infinite where P_t = 0 < P_s).
    NaN or +inf logits raise a ValueError naming the tensor and the position (`check_finite=False` skips that
    check, which reads the tensors back: the training loops do so and stop at the first non-finite loss).
    """
    tau = check_tau(tau)
    check_direction(direction)
    _check_reduction(reduction)
    _check_logits(student_logits, "student_logits")
    _check_logits(teacher_logits, "teacher_logits")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits {tuple(student_logits.shape)} and teacher_logits "
            f"{tuple(teacher_logits.shape)} must have the same shape"
        )
    if check_finite:
        check_logits_finite(student_logits, "student_logits")
        check_logits_finite(teacher_logits, "teacher_logits")
    log_s = F.log_softmax(_at_least_fp32(student_logits) / tau, dim=1)
    log_t = F.log_softmax(_at_least_fp32(teacher_logits.detach()) / tau, dim=1)
    log_t = log_t.to(log_s.dtype)
    pointwise = kl_terms(log_t, log_s) if direction == "forward" else kl_terms(log_s, log_t)
    per_sample = pointwise.sum(dim=1) * (tau * tau)
    return _reduce(per_sample, reduction)


def label_smoothing_ce(
    logits: torch.Tensor, targets: torch.Tensor, smoothing: float, reduction: str = "mean",
    check_finite: bool = True,
) -> torch.Tensor:
    """Cross-entropy against label-smoothed targets: ``(1 - eps) * NLL + eps * mean_k(-log p_k)``.

    Identical to ``F.cross_entropy(..., label_smoothing=eps)``; written out so the formula is visible and the
    smoothing value is validated (eps in [0, 1)). NaN or +inf logits raise a ValueError naming the position,
    as in `kd_loss` (`check_finite=False` skips that check and its read-back, as the training loops do).
    """
    eps = check_smoothing(smoothing)
    _check_reduction(reduction)
    _check_logits(logits, "logits")
    if targets.shape != logits.shape[:1]:
        raise ValueError(
            f"targets must have shape ({logits.shape[0]},) to match logits {tuple(logits.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    if check_finite:
        check_logits_finite(logits, "logits")
    log_p = F.log_softmax(_at_least_fp32(logits), dim=1)
    nll = -log_p.gather(1, targets.long().unsqueeze(1)).squeeze(1)
    per_sample = (1.0 - eps) * nll + eps * (-log_p.mean(dim=1)) if eps > 0 else nll
    return _reduce(per_sample, reduction)


def kd_objective(
    student_logits: torch.Tensor,
    targets: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    tau: float,
    alpha: float,
    direction: str = "forward",
    label_smoothing: float = 0.0,
    check_finite: bool = True,
) -> torch.Tensor:
    """Training objective ``alpha * kd_loss + (1 - alpha) * CE`` (batch means).

    ``alpha`` is the weight on the **KD term** (alpha=0: plain supervised CE, alpha=1: pure distillation).
    CE is label-smoothed when ``label_smoothing > 0``. ``teacher_logits`` may be None only when alpha == 0.
    Terms with zero weight are not computed at all (no teacher needed, no wasted work, no 0 * nan).
    check_finite: NaN/+inf logits raise, in the CE term too (alpha=0 used to return NaN); the training loops
    pass False and check the loss of every step instead.
    """
    tau = check_tau(tau)
    alpha = check_alpha(alpha)
    eps = check_smoothing(label_smoothing)
    check_direction(direction)
    total: torch.Tensor | None = None
    if alpha != 0.0:
        if teacher_logits is None:
            raise ValueError(f"teacher_logits is None but alpha={alpha!r}; a teacher is required unless alpha == 0")
        total = alpha * kd_loss(student_logits, teacher_logits, tau, direction=direction, reduction="mean",
                                check_finite=check_finite)
    if alpha != 1.0:
        ce = label_smoothing_ce(student_logits, targets, eps, reduction="mean", check_finite=check_finite)
        ce_term = (1.0 - alpha) * ce
        total = ce_term if total is None else total + ce_term
    assert total is not None
    return total


def ensemble_logits(logits_list: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """Logits of an ensemble: ``log(mean_m softmax(logits_m))``, computed with logsumexp for stability.

    The result is a log-probability vector, so ``softmax(result) == mean_m softmax(logits_m)`` and it can be
    used anywhere teacher logits are expected. Note that ``softmax(result / tau)`` tempers the ensemble's
    *mean distribution* (p_mean ** (1/tau), renormalised), which is not the same as averaging the members'
    tempered distributions. Accepts a sequence of (N, C) tensors or one (M, N, C) tensor.
    """
    if isinstance(logits_list, torch.Tensor):
        if logits_list.ndim != 3:
            raise ValueError(
                f"a stacked ensemble must have shape (members, batch, classes), got {tuple(logits_list.shape)}"
            )
        stacked = logits_list
    else:
        members = list(logits_list)
        if not members:
            raise ValueError("ensemble_logits needs at least one member, got an empty list")
        for i, m in enumerate(members):
            _check_logits(m, f"ensemble member {i}")
            if m.shape != members[0].shape:
                raise ValueError(
                    f"ensemble member {i} has shape {tuple(m.shape)}, expected {tuple(members[0].shape)}"
                )
        stacked = torch.stack(members, dim=0)
    if stacked.shape[0] == 0:
        raise ValueError("ensemble_logits needs at least one member, got 0")
    log_p = F.log_softmax(_at_least_fp32(stacked), dim=2)
    return torch.logsumexp(log_p, dim=0) - math.log(stacked.shape[0])
