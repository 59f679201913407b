"""The fusion-ratio baselines TGeo-KD is compared with, each as the alpha it puts on the KD term.

Formulas follow the research notes (A2), which read them off the TGeo-KD code (and, for WLS-KD, the
official WLS code):

* vanilla KD: one fixed alpha for every sample and epoch (swept 0.1 .. 0.9 by the chapter);
* ANL-KD (annealed): alpha = (E - e) / (E - 1) at epoch e = 1 .. E, from 1 (pure KD) down to 0 (pure CE);
  the CIFAR code's (200 - epoch) / 199 with E = 200;
* ADA-KD: alpha_i = max(0, p_t(y_i) - (1 - p_t(y_i)) / (K - 1)), fixed per sample: trust the teacher as much
  as its probability on the true class exceeds that of an average wrong class;
* WLS-KD: alpha_i = 1 - exp(-CE_s,i / CE_t,i), cross-entropies at tau = 1 and detached: samples the student
  finds hard relative to the teacher lean on the teacher. (WLS's own loss keeps CE unweighted and adds
  2.5 * tau^2 * w_i * KD; like TGeo-KD's comparison we use w_i as a convex fusion ratio instead);
* RW-KD: a free learnable alpha_i per training sample, initialised to 0.5 and trained by Adam on the
  *training* loss (no validation signal). Its gradient is (L_KD,i - L_GT,i) / B, so each alpha_i runs to
  whichever end makes its sample's loss smaller; the released code has no clamp, so alpha_i leaves [0, 1] and
  the loss is unbounded below. We clamp to [0, 1] by default and offer clamp=False to reproduce the code.

Every rule is a callable `rule(ctx: AlphaContext) -> alpha` (a float or a (B,) tensor) for
`kdutils.chapters.tgeo.training.fit_samplewise`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from kdutils.losses import check_alpha

__all__ = ["AlphaContext", "AlphaRule", "vanilla_alpha", "anl_alpha", "ada_alpha", "wls_alpha", "RWKDWeights",
           "VanillaRule", "ANLRule", "ADARule", "WLSRule", "BASELINES", "make_baseline_rule"]


def _fp(x: torch.Tensor) -> torch.Tensor:
    return x.detach().to(torch.promote_types(x.dtype, torch.float32))


def _target_log_prob(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if logits.ndim != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"need (B, C) logits and (B,) targets, got {tuple(logits.shape)} and {tuple(targets.shape)}")
    return F.log_softmax(_fp(logits), dim=1).gather(1, targets.long()[:, None]).squeeze(1)


# ------------------------------------------------------------------------------------------------- formulas
def vanilla_alpha(alpha: float, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The same alpha for every sample, as a (batch_size,) tensor."""
    return torch.full((batch_size,), check_alpha(alpha), device=device)


def anl_alpha(epoch: int, epochs: int) -> float:
    """Annealed ratio (E - e) / (E - 1) at 1-based epoch e of E: 1 at the first epoch, 0 at the last."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 2:
        raise ValueError(f"epochs must be an int >= 2 for an annealing schedule, got {epochs!r}")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 1 <= epoch <= epochs:
        raise ValueError(f"epoch must be an int in [1, {epochs}] (1-based), got {epoch!r}")
    return (epochs - epoch) / (epochs - 1)


def ada_alpha(teacher_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """max(0, p_t(y) - (1 - p_t(y)) / (K - 1)) per sample, with the teacher's tau = 1 probabilities."""
    k = teacher_logits.shape[1]
    if k < 2:
        raise ValueError(f"ADA-KD needs at least 2 classes, got {k}")
    p = _target_log_prob(teacher_logits, targets).exp()
    return (p - (1.0 - p) / (k - 1)).clamp_min(0.0)


def wls_alpha(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
              eps: float = 1e-12) -> torch.Tensor:
    """1 - exp(-CE_s / CE_t) per sample (tau = 1, detached); CE_t is floored at eps against a perfect teacher."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student {tuple(student_logits.shape)} and teacher {tuple(teacher_logits.shape)} "
                         "logits must have the same shape")
    ce_s = -_target_log_prob(student_logits, targets)
    ce_t = (-_target_log_prob(teacher_logits, targets)).clamp_min(eps)
    return 1.0 - torch.exp(-(ce_s / ce_t).clamp_min(0.0))


class RWKDWeights(nn.Module):
    """RW-KD's free per-sample ratios: one parameter per training sample, looked up by dataset index."""

    def __init__(self, num_samples: int, init: float = 0.5, clamp: bool = True) -> None:
        super().__init__()
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")
        self.raw = nn.Parameter(torch.full((num_samples,), check_alpha(init)))
        self.clamp = bool(clamp)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        a = self.raw.index_select(0, idx)
        return a.clamp(0.0, 1.0) if self.clamp else a


# ------------------------------------------------------------------------------------------------ the rules
@dataclass
class AlphaContext:
    """What a rule may look at for one batch: dataset indices, labels, the student's logits (detached),
    the teacher's logits, and the 1-based epoch of `epochs`."""

    idx: torch.Tensor
    targets: torch.Tensor
    student_logits: torch.Tensor
    teacher_logits: torch.Tensor
    epoch: int
    epochs: int


class AlphaRule(Protocol):
    def __call__(self, ctx: AlphaContext) -> torch.Tensor | float: ...


@dataclass(frozen=True)
class VanillaRule:
    alpha: float

    def __call__(self, ctx: AlphaContext) -> float:
        return check_alpha(self.alpha)


class ANLRule:
    def __call__(self, ctx: AlphaContext) -> float:
        return anl_alpha(ctx.epoch, ctx.epochs)


class ADARule:
    def __call__(self, ctx: AlphaContext) -> torch.Tensor:
        return ada_alpha(ctx.teacher_logits, ctx.targets)


class WLSRule:
    def __call__(self, ctx: AlphaContext) -> torch.Tensor:
        return wls_alpha(ctx.student_logits, ctx.teacher_logits, ctx.targets)


class RWRule(RWKDWeights):
    """RW-KD as a rule: its alphas carry gradients; `fit_samplewise` steps them with Adam(lr)."""

    def __init__(self, num_samples: int, lr: float = 1e-3, init: float = 0.5, clamp: bool = True) -> None:
        super().__init__(num_samples, init, clamp)
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"RW-KD's lr must be a finite number > 0, got {lr!r}")
        self.lr = float(lr)

    def __call__(self, ctx: AlphaContext) -> torch.Tensor:
        return self.forward(ctx.idx)


BASELINES = ("vanilla", "anl", "ada", "wls", "rw")


def make_baseline_rule(name: str, *, alpha: float = 0.5, num_samples: int | None = None,
                       rw_lr: float = 1e-3, rw_clamp: bool = True) -> AlphaRule:
    """Rule by name: "vanilla" (needs alpha), "anl", "ada", "wls", "rw" (needs num_samples)."""
    if name == "vanilla":
        return VanillaRule(check_alpha(alpha))
    if name == "anl":
        return ANLRule()
    if name == "ada":
        return ADARule()
    if name == "wls":
        return WLSRule()
    if name == "rw":
        if num_samples is None:
            raise ValueError("the RW-KD rule needs num_samples (the training split's size)")
        return RWRule(num_samples, lr=rw_lr, clamp=rw_clamp)
    raise ValueError(f"unknown baseline {name!r}; choose one of: {', '.join(BASELINES)}")
