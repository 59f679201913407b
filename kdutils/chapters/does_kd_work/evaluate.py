"""Fidelity numbers (Stanton et al.): top-1 agreement and KL(P_t || P_s) next to both models' accuracies.

Why a separate module: the paper's point is that accuracy and fidelity disagree, so every table row reports
both from the *same* logits. "Train" fidelity is measured on the distillation data; with a random policy
(MixUp, noise, crops) that data is the augmented inputs the student actually saw, so `fidelity_on_loader`
draws them from the training loader itself. KL is at temperature 1 over whole sets (kdutils.metrics), not the
authors' mean of batch means.
"""
from __future__ import annotations

from numbers import Integral

import torch
from torch import nn

from kdutils.metrics import accuracy, agreement, predict_logits, predictive_kl

__all__ = ["fidelity_metrics", "fidelity_of_models", "fidelity_on_loader"]


def fidelity_metrics(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     y: torch.Tensor | None = None) -> dict[str, float]:
    """``agreement`` and ``kl`` (= KL(P_t || P_s)); with labels also ``student_acc`` and ``teacher_acc``.

    Samples labelled < 0 (out-of-distribution inputs, see `policies.OOD_LABEL`) count for fidelity but not
    for accuracy.
    """
    out = {"agreement": agreement(student_logits, teacher_logits),
           "kl": predictive_kl(teacher_logits, student_logits)}
    if y is not None:
        keep = y >= 0
        if bool(keep.any()):
            out["student_acc"] = accuracy(student_logits[keep], y[keep])
            out["teacher_acc"] = accuracy(teacher_logits[keep], y[keep])
    return out


def fidelity_of_models(student: nn.Module, teacher: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None,
                       *, batch_size: int = 1024, mean=None, std=None) -> dict[str, float]:
    """`fidelity_metrics` of two models on fixed inputs ``x`` (raw as stored; preprocessing as in training)."""
    s = predict_logits(student, x, batch_size=batch_size, mean=mean, std=std)
    t = predict_logits(teacher, x, batch_size=batch_size, mean=mean, std=std)
    return fidelity_metrics(s, t, y)


@torch.no_grad()
def fidelity_on_loader(student: nn.Module, teacher: nn.Module, loader, epochs: int = 1) -> dict[str, float]:
    """Agreement and KL on the inputs a `DeviceLoader` yields (augmentation included), both models in eval mode.

    ``epochs`` passes are drawn (each with its own augmentation draws), then the loader's epoch counter is put
    back so that evaluating does not change what training would see next. Labels are not used: after MixUp
    they no longer describe the inputs.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, Integral) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    modes = [(m, m.training) for m in (*student.modules(), *teacher.modules())]
    student.eval()
    teacher.eval()
    start_epoch = loader.epoch
    s_all, t_all = [], []
    try:
        for _ in range(int(epochs)):
            for batch in loader:
                s_all.append(student(batch.x).float().cpu())
                t_all.append(teacher(batch.x).float().cpu())
    finally:
        loader.set_epoch(start_epoch)
        for m, was_training in modes:
            m.training = was_training
    if not s_all:
        raise ValueError("the loader yielded no batches")
    return fidelity_metrics(torch.cat(s_all), torch.cat(t_all))
