"""Tools for "Does knowledge distillation really work?" (Stanton et al., NeurIPS 2021): fidelity metrics,
ensemble teachers, distillation-data policies and straight lines between a student and its teacher.

Modules: `interpolation` (near-teacher init, BN recomputation, loss along a line), `ensemble` (mean of member
probabilities), `policies` (MixUp, Gaussian noise, out-of-distribution data), `evaluate` (agreement, KL).
"""
from .ensemble import EnsembleTeacher, ensemble_probs
from .evaluate import fidelity_metrics, fidelity_of_models, fidelity_on_loader
from .interpolation import (blend_state, check_ratio, distillation_loss_fn, init_lr, interpolate_init,
                            loss_along_line, recompute_bn)
from .policies import OOD_LABEL, POLICY_GRAMMAR, GaussianNoise, MixUp, ood_distillation_set, parse_policy

__all__ = [
    "EnsembleTeacher", "ensemble_probs",
    "fidelity_metrics", "fidelity_of_models", "fidelity_on_loader",
    "blend_state", "check_ratio", "distillation_loss_fn", "init_lr", "interpolate_init", "loss_along_line",
    "recompute_bn",
    "OOD_LABEL", "POLICY_GRAMMAR", "GaussianNoise", "MixUp", "ood_distillation_set", "parse_policy",
]
