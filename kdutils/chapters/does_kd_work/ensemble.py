"""Ensemble teachers: the student fits the mean of the members' probabilities (Stanton et al., as in their code).

Why a module and not a loss option: the training loop calls ``teacher(x)`` on every (augmented) batch and
treats the result as logits, so an ensemble that *is* a module returning ``log(mean_m softmax(z_m))`` plugs
into `train.fit`, `multi_student.fit_students` and `metrics.predict_logits` unchanged. The reduction itself is
`kdutils.losses.ensemble_logits` (logsumexp, stable). Tempering at tau > 1 then applies to the mean
distribution, as in the authors' code (reduce first, then divide by the temperature).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from kdutils.losses import ensemble_logits

__all__ = ["EnsembleTeacher", "ensemble_probs"]


class EnsembleTeacher(nn.Module):
    """``forward(x) = log(mean_m softmax(member_m(x)))``: log-probabilities usable wherever logits are."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one member, got none")
        for i, m in enumerate(members):
            if not isinstance(m, nn.Module):
                raise TypeError(f"ensemble member {i} must be an nn.Module, got {type(m).__name__}")
        self.members = nn.ModuleList(members)

    def __len__(self) -> int:
        return len(self.members)

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Stacked member logits, shape (members, batch, classes)."""
        return torch.stack([m(x) for m in self.members], dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ensemble_logits(self.member_logits(x))


def ensemble_probs(member_logits: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """Mean of the members' softmax probabilities, shape (batch, classes)."""
    return ensemble_logits(member_logits).exp()
