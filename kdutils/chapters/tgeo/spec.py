"""An arm's full specification inside its record key, and the check that a loaded record was trained as asked.

Why: the first recipe's keys hold the RunConfig only, so an arm's rule, feature set and f_w / RW-KD rates
(`ArmSpec`, the recipe's `fusion_lr`, `rw_lr`) are not in the key, and changing one of them would silently load
a record trained with another. New runs (the cross-fitted recipe, `campaign`) put the whole spec into the key:
`RunConfig.model_kwargs["arm_spec"]`, a dict (an existing dict field, so no old key changes; see HELPERS /
the README's "record keys"). The student is built from `model_kwargs` without that entry (`student_kwargs`).
Every load compares the record's stored "arm" with the requested spec (`check_record_spec`), old records too
(on the fields they stored), and refuses a mismatch.
"""
from __future__ import annotations

from typing import Any, Mapping

from kdutils.chapters.tgeo.arms import ArmSpec
from kdutils.config import RunConfig

__all__ = ["SPEC_KEY", "TEACHER_LOGITS", "arm_spec_of", "check_record_spec", "requested_spec", "spec_dict",
           "spec_of", "student_kwargs"]

SPEC_KEY = "arm_spec"
#: Where a student's teacher logits on its training images come from: "in_sample" (one teacher trained on
#: them, the first recipe), "crossfit" (each image's logits from the teacher of the other fold, `crossfit`) or
#: "heldout" (one teacher trained on a pool of images disjoint from the student's, `heldout`).
TEACHER_LOGITS = ("in_sample", "crossfit", "heldout")


def spec_dict(spec: ArmSpec, *, fusion_lr: float | None = None, rw_lr: float | None = None,
              teacher_logits: str = "in_sample") -> dict[str, Any]:
    """The spec as stored in the key and the record: every field that changes what the arm trains."""
    if teacher_logits not in TEACHER_LOGITS:
        raise ValueError(f"unknown teacher_logits {teacher_logits!r}; choose one of: {', '.join(TEACHER_LOGITS)}")
    tgeo = spec.rule == "tgeo"
    trains_fw = tgeo and spec.fw_train == "bilevel"
    if trains_fw and fusion_lr is None:
        raise ValueError("a TGeo arm whose f_w trains needs fusion_lr (f_w's Adam rate)")
    if spec.rule == "rw" and rw_lr is None:
        raise ValueError("the RW-KD arm needs rw_lr (the per-sample ratios' Adam rate)")
    # the `is not None` tests below only tell the type checker what the two checks above guarantee
    return {"rule": spec.rule, "alpha": None if spec.alpha is None else float(spec.alpha),
            "features": spec.features, "fw_input": spec.fw_input if tgeo else None,
            "fw_train": spec.fw_train if tgeo else None, "virtual": spec.virtual if trains_fw else None,
            "fusion_lr": float(fusion_lr) if trains_fw and fusion_lr is not None else None,
            "rw_lr": float(rw_lr) if spec.rule == "rw" and rw_lr is not None else None,
            "teacher_logits": teacher_logits}


def spec_of(cfg: RunConfig) -> dict[str, Any] | None:
    """The spec stored in the config's key, or None for a first-recipe config (spec not in the key)."""
    spec = cfg.model_kwargs.get(SPEC_KEY)
    if spec is not None and not isinstance(spec, Mapping):
        raise ValueError(f"model_kwargs[{SPEC_KEY!r}] must be a dict (see spec_dict), got {spec!r}")
    return None if spec is None else dict(spec)


def arm_spec_of(spec: Mapping[str, Any]) -> ArmSpec:
    """The ArmSpec a stored spec trains."""
    return ArmSpec(spec["rule"], alpha=spec.get("alpha"), features=spec.get("features"),
                   fw_input=spec.get("fw_input") or "geometry", fw_train=spec.get("fw_train") or "bilevel",
                   virtual=spec.get("virtual") or "sgd")


def student_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """The model builder's keyword arguments: model_kwargs without the spec."""
    return {k: v for k, v in cfg.model_kwargs.items() if k != SPEC_KEY}


def requested_spec(cfg: RunConfig, spec: ArmSpec, fusion_lr: float, rw_lr: float) -> dict[str, Any]:
    """What a record of `cfg` must say it trained: the key's spec, or for a first-recipe config the fields its
    records store (rule, alpha, features, and the f_w or RW-KD rate where the rule uses one)."""
    stored = spec_of(cfg)
    if stored is not None:
        return stored
    return {"rule": spec.rule, "alpha": spec.alpha, "features": spec.features,
            "fusion_lr": fusion_lr if spec.rule == "tgeo" else None, "rw_lr": rw_lr if spec.rule == "rw" else None}


def check_record_spec(record: Mapping[str, Any], requested: Mapping[str, Any]) -> None:
    """Raise if the record's stored "arm" differs from `requested` on any field `requested` names (a record
    without "arm" cannot show what it trained and is refused too)."""
    stored = record.get("arm")
    key = record.get("key", "?")
    if not isinstance(stored, Mapping):
        raise ValueError(f"record {key} stores no arm spec, so it cannot show it trained {dict(requested)}")
    diff = {k: (stored.get(k), v) for k, v in requested.items() if _norm(stored.get(k)) != _norm(v)}
    if diff:
        raise ValueError(f"record {key} was trained with another arm spec than requested "
                         f"(field: stored, requested): {diff}")


def _norm(v: Any) -> Any:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
