"""One entry point per chapter arm: an `ArmSpec` says how alpha is set, `train_arm` calls the right loop.

rule "vanilla" / "anl" / "ada" / "wls" / "rw" -> `fit_samplewise` with that baseline's rule;
rule "tgeo" -> `fit_tgeo` with a fresh f_w for the spec's feature set (returned, so that its learned alpha_i
can be read off afterwards with `predict_alphas`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from kdutils.chapters.tgeo.baselines import BASELINES, make_baseline_rule
from kdutils.chapters.tgeo.fusion_net import FusionRatioNet
from kdutils.chapters.tgeo.geometry import check_feature_set
from kdutils.chapters.tgeo.training import fit_samplewise, fit_tgeo
from kdutils.config import TrainConfig
from kdutils.training.train import FitResult

__all__ = ["RULES", "ArmSpec", "initial_fusion_net", "train_arm"]

RULES = BASELINES + ("tgeo",)


@dataclass(frozen=True)
class ArmSpec:
    """How one arm sets alpha: a baseline name (vanilla needs `alpha`) or "tgeo" (needs `features`)."""

    rule: str
    alpha: float | None = None
    features: str | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; choose one of: {', '.join(RULES)}")
        if self.rule == "vanilla" and self.alpha is None:
            raise ValueError("the vanilla rule needs a fixed alpha")
        if self.rule == "tgeo":
            check_feature_set(self.features)


def initial_fusion_net(num_classes: int, features: str, seed: int = 0) -> FusionRatioNet:
    """The f_w a TGeo arm starts from (seeded by `seed` without touching the global random stream), so a run's
    record can say how far training moved it from this initialisation."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # f_w's init must not shift the student's random stream
        return FusionRatioNet.for_classes(int(num_classes), features)


def train_arm(spec: ArmSpec, student: nn.Module, loader, cfg: TrainConfig, *, teacher_logits: torch.Tensor,
              val_loader=None, tau: float = 4.0, fusion_lr: float = 1e-3, rw_lr: float = 1e-3,
              device: torch.device | str = "cpu", progress: bool = True, seed: int = 0, **kwargs
              ) -> tuple[FitResult, nn.Module | None]:
    """Train `student` as arm `spec`; returns the FitResult and the trained f_w (None for the baselines).

    TGeo arms need `val_loader` (the held-out validation split). Extra keyword arguments go to the loop.
    """
    if spec.rule != "tgeo":
        rule = make_baseline_rule(spec.rule, alpha=0.5 if spec.alpha is None else spec.alpha,
                                  num_samples=loader.num_samples, rw_lr=rw_lr)
        result = fit_samplewise(student, loader, cfg, teacher_logits=teacher_logits, rule=rule, tau=tau,
                                device=device, progress=progress, desc=spec.rule, **kwargs)
        return result, None
    if val_loader is None:
        raise ValueError("a TGeo-KD arm needs val_loader: f_w is trained on the validation split's loss")
    fnet = initial_fusion_net(int(teacher_logits.shape[1]), spec.features, seed)
    result = fit_tgeo(student, fnet, loader, val_loader, cfg, teacher_logits=teacher_logits,
                      features=spec.features, tau=tau, fusion_lr=fusion_lr, device=device, progress=progress,
                      desc=f"tgeo_{spec.features}", **kwargs)
    return result, fnet
