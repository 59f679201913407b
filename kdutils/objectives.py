"""One registry of KD training objectives, in the three forms the training loops need.

Why one place: `train.fit` (one student), the grouped engines of `training.multi_student` (K students at once)
and TGeo-KD's sample-wise loops all optimise `alpha * KD + (1 - alpha) * CE`, and all look it up here by name.
A new loss is one `Objective` (its batch form, plus the per-sample and stacked forms where it has them) and one
`register_objective` line; every loop can then train it (`fit(..., objective=name)`). A RunConfig has no field
naming the objective yet (adding one changes every record key), so recorded runs all use "kd".

Forms (all take logits before temperature scaling; `tau`, `alpha`, `direction`, `label_smoothing` as in
`kdutils.losses`):
- `batch(student_logits, targets, teacher_logits, tau, alpha, direction, label_smoothing, check_finite)`: the
  batch-mean objective of one student (a scalar);
- `per_sample(student_logits, targets, teacher_logits, tau, direction, label_smoothing)`: the (KD_i, GT_i) terms
  of every sample, for loops that weight each sample with its own alpha_i;
- `stacked(logits, targets, teacher_logits, specs)`: K students' objectives at once, logits (K, B, C) -> (K,).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from kdutils.losses import check_smoothing, check_tau, kd_loss, kd_objective, label_smoothing_ce
from kdutils.training.stacked import stacked_kd_objective

DEFAULT = "kd"


def per_sample_kd_terms(student_logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor,
                        tau: float, direction: str = "forward", label_smoothing: float = 0.0
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_KD, L_GT) per sample, each (B,): tau^2 KL between the tempered distributions (direction as in
    `losses.kd_loss`) and the (optionally label-smoothed) cross-entropy. With alpha_i = alpha for every sample,
    mean_i [alpha L_KD,i + (1 - alpha) L_GT,i] is `losses.kd_objective` (the loops check the loss, so the
    logits' finiteness is not read back here)."""
    kd = kd_loss(student_logits, teacher_logits, check_tau(tau), direction=direction, reduction="none",
                 check_finite=False)
    ce = label_smoothing_ce(student_logits, targets, check_smoothing(label_smoothing), reduction="none",
                            check_finite=False)
    return kd, ce


@dataclass(frozen=True)
class Objective:
    """A training objective in the forms the loops call; a form a loss does not have is None."""

    name: str
    batch: Callable[..., torch.Tensor]
    per_sample: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None
    stacked: Callable[..., torch.Tensor] | None = None


OBJECTIVES: dict[str, Objective] = {}


def register_objective(objective: Objective) -> Objective:
    """Add `objective` under its name (a name is registered once: ValueError on a second one)."""
    if objective.name in OBJECTIVES:
        raise ValueError(f"objective {objective.name!r} is already registered")
    OBJECTIVES[objective.name] = objective
    return objective


def get_objective(name: str = DEFAULT, form: str = "batch") -> Objective:
    """The registered objective `name` that has `form` ("batch", "per_sample" or "stacked"); ValueError naming
    the objectives (that have the form) otherwise."""
    if form not in ("batch", "per_sample", "stacked"):
        raise ValueError(f"unknown objective form {form!r}; choose one of: batch, per_sample, stacked")
    having = sorted(n for n, o in OBJECTIVES.items() if getattr(o, form) is not None)
    if name not in having:
        raise ValueError(f"unknown objective {name!r} for the {form} form; choose one of: {', '.join(having)}")
    return OBJECTIVES[name]


register_objective(Objective(DEFAULT, batch=kd_objective, per_sample=per_sample_kd_terms, stacked=stacked_kd_objective))

__all__ = ["DEFAULT", "OBJECTIVES", "Objective", "get_objective", "per_sample_kd_terms", "register_objective"]
