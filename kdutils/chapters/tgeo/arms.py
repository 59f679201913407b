"""One entry point per chapter arm: an `ArmSpec` says how alpha is set, `train_arm` calls the right loop.

rule "vanilla" / "anl" / "ada" / "wls" / "rw" -> `fit_samplewise` with that baseline's rule;
rule "tgeo" -> `fit_tgeo` with a fresh f_w for the spec's feature set (returned, so that its learned alpha_i
can be read off afterwards with `predict_alphas`).

Two controls of the tgeo rule (the cross-fitted recipe's arms): `fw_input="constant"` feeds f_w a constant
vector instead of Delta_i (one alpha for every sample, learned by the same hypergradient: what a global ratio
gets from the bilevel step alone), `fw_train="frozen"` never steps f_w (alpha_i from its random
initialisation, what the authors' released code amounts to). `virtual` is the lookahead's update rule
(`bilevel.VIRTUAL_STEPS`). The defaults are the first recipe's behaviour.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from kdutils.chapters.tgeo.baselines import BASELINES, make_baseline_rule
from kdutils.chapters.tgeo.bilevel import check_virtual
from kdutils.chapters.tgeo.fusion_net import FusionRatioNet
from kdutils.chapters.tgeo.geometry import check_feature_set
from kdutils.chapters.tgeo.training import fit_samplewise, fit_tgeo
from kdutils.config import TrainConfig
from kdutils.training.train import FitResult

__all__ = ["FW_INPUTS", "FW_TRAINING", "RULES", "ArmSpec", "ConstantInput", "initial_fusion_net", "train_arm"]

RULES = BASELINES + ("tgeo",)
FW_INPUTS = ("geometry", "constant")
FW_TRAINING = ("bilevel", "frozen")


@dataclass(frozen=True)
class ArmSpec:
    """How one arm sets alpha: a baseline name (vanilla needs `alpha`) or "tgeo" (needs `features`)."""

    rule: str
    alpha: float | None = None
    features: str | None = None
    fw_input: str = "geometry"
    fw_train: str = "bilevel"
    virtual: str = "sgd"

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; choose one of: {', '.join(RULES)}")
        if self.fw_input not in FW_INPUTS:
            raise ValueError(f"unknown fw_input {self.fw_input!r}; choose one of: {', '.join(FW_INPUTS)}")
        if self.fw_train not in FW_TRAINING:
            raise ValueError(f"unknown fw_train {self.fw_train!r}; choose one of: {', '.join(FW_TRAINING)}")
        check_virtual(self.virtual)
        if self.rule == "vanilla" and self.alpha is None:
            raise ValueError("the vanilla rule needs a fixed alpha")
        if self.rule == "tgeo":
            check_feature_set(self.features)


class ConstantInput(nn.Module):
    """f_w fed a vector of ones instead of Delta_i: the same alpha for every sample, still a function of w."""

    def __init__(self, net: FusionRatioNet) -> None:
        super().__init__()
        self.net = net
        self.in_features = net.in_features

    def forward(self, delta: torch.Tensor) -> torch.Tensor:
        return self.net(torch.ones_like(delta))


def initial_fusion_net(num_classes: int, features: str, seed: int = 0, fw_input: str = "geometry") -> nn.Module:
    """The f_w a TGeo arm starts from (seeded by `seed` without touching the global random stream), so a run's
    record can say how far training moved it from this initialisation."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # f_w's init must not shift the student's random stream
        net = FusionRatioNet.for_classes(int(num_classes), features)
    return ConstantInput(net) if fw_input == "constant" else net


def train_arm(spec: ArmSpec, student: nn.Module, loader, cfg: TrainConfig, *, teacher_logits: torch.Tensor,
              val_loader=None, tau: float = 4.0, fusion_lr: float = 1e-3, rw_lr: float = 1e-3,
              device: torch.device | str = "cpu", progress: bool = True, seed: int = 0, **kwargs
              ) -> tuple[FitResult, nn.Module | None]:
    """Train `student` as arm `spec`; returns the FitResult and the trained f_w (None for the baselines).

    TGeo arms need `val_loader` (the held-out validation split). Extra keyword arguments go to the loop.
    """
    if spec.rule != "tgeo":
        kwargs.pop("epoch_hook", None)  # the baselines' loop has no f_w to report on
        rule = make_baseline_rule(spec.rule, alpha=0.5 if spec.alpha is None else spec.alpha,
                                  num_samples=loader.num_samples, rw_lr=rw_lr)
        result = fit_samplewise(student, loader, cfg, teacher_logits=teacher_logits, rule=rule, tau=tau,
                                device=device, progress=progress, desc=spec.rule, **kwargs)
        return result, None
    if val_loader is None:
        raise ValueError("a TGeo-KD arm needs val_loader: f_w is trained on the validation split's loss")
    assert spec.features is not None  # ArmSpec refuses a "tgeo" rule without a feature set (check_feature_set)
    fnet = initial_fusion_net(int(teacher_logits.shape[1]), spec.features, seed, spec.fw_input)
    result = fit_tgeo(student, fnet, loader, val_loader, cfg, teacher_logits=teacher_logits,
                      features=spec.features, tau=tau, fusion_lr=fusion_lr, device=device, progress=progress,
                      desc=f"tgeo_{spec.features}", virtual=spec.virtual, train_fusion=spec.fw_train == "bilevel",
                      **kwargs)
    return result, fnet
