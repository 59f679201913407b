"""TGeo-KD (Hu, Wu et al., ICLR 2024): a sample-wise knowledge fusion ratio alpha_i = f_w(Delta_i) learned
from the trilateral geometry of student, teacher and ground truth, with the fusion-ratio baselines.

Modules: `geometry` (Delta_i, T-bar), `fusion_net` (f_w), `objective` (the alpha_i-fused loss), `bilevel`
(one-step unrolled hypergradient), `training` (fit loops), `baselines` (vanilla, ANL, ADA, WLS, RW),
`motivation` (the poster's ST-group experiment), `arms` (one entry point per chapter arm), `bench` (bilevel vs plain KD step cost),
`chapter` (the chapter's own run function: one arm of a RunConfig trained with its own loss, evaluated and recorded).
"""
from .arms import ArmSpec, train_arm
from .baselines import (BASELINES, AlphaContext, RWKDWeights, ada_alpha, anl_alpha, make_baseline_rule,
                        vanilla_alpha, wls_alpha)
from .bilevel import bilevel_step, hypergradient, unrolled_validation_loss, virtual_step
from .fusion_net import FusionRatioNet
from .geometry import FEATURE_SETS, feature_dim, geometry_features, teacher_class_means, trilateral_geometry
from .motivation import group_accuracy, motivation_groups, student_teacher_distance, summarise_by_group
from .objective import samplewise_kd_objective
from .training import fit_samplewise, fit_tgeo, predict_alphas

__all__ = [
    "ArmSpec", "train_arm",
    "BASELINES", "AlphaContext", "RWKDWeights", "ada_alpha", "anl_alpha", "make_baseline_rule", "vanilla_alpha",
    "wls_alpha", "bilevel_step", "hypergradient", "unrolled_validation_loss", "virtual_step", "FusionRatioNet",
    "FEATURE_SETS", "feature_dim", "geometry_features", "teacher_class_means", "trilateral_geometry",
    "group_accuracy", "motivation_groups", "student_teacher_distance", "summarise_by_group",
    "samplewise_kd_objective", "fit_samplewise", "fit_tgeo", "predict_alphas",
]
