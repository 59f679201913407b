"""Stanton et al.: one distilled student (or one baseline evaluation) as plain data whose hash names its record.

Why a module of its own: every part of the chapter (plan, run, tables, schedule) names runs by this spec, and
its key must never change for the records already written (`LATE_FIELDS`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from kdutils.chapters.does_kd_work.interpolation import check_ratio
from kdutils.chapters.does_kd_work.policies import parse_policy
from kdutils.chapters.does_kd_work.recipes import ALPHA, EXPERIMENT, POLICIES
from kdutils.config import RunConfig, config_hash

#: Fields added after the first records: they enter a spec's key only when set, so older keys stay valid.
LATE_FIELDS = {"n_unlabelled": 0, "evaluate": "", "plain_member": None}
EVALUATIONS = ("", "init", "plain")


@dataclass(frozen=True)
class DistillSpec:
    """One distilled student (or one baseline evaluation): plain data whose hash names its record.

    ``lr`` is the rate it trains at (chosen on validation data for its family, see `family_of`); a student
    started near the teacher (``r`` set) trains at ``r * lr``, as the authors scale it. ``n_unlabelled`` extra
    training images the teacher never saw are appended, unlabelled (the poster's alpha = 0 arm). ``evaluate``
    records a baseline instead of training: "init" the student at its initialisation (r = 0: the teacher with
    BatchNorm recomputed, the ceiling), "plain" plain model ``plain_member`` against the teacher."""

    profile: str
    dataset: str
    claim: int
    student_model: str
    teachers: tuple[RunConfig, ...]
    policy: str
    augment: str
    tau: float
    alpha: float = ALPHA
    ood_dataset: str | None = None
    n_ood: int = 0
    distill_fraction: float = 1.0
    distill_data: str = "recycled"  # "recycled" (the teachers' data) or "new" (the other half, claim 4)
    r: float | None = None  # None: random init; else interpolate_init at this r (claim 6)
    epochs: int = 1
    batch_size: int = 128
    lr_candidates: tuple[float, ...] = ()
    weight_decay: float = 0.0
    widths: tuple[int, ...] | None = None
    seed: int = 0
    lr: float = 0.05
    experiment: str = EXPERIMENT
    role: str = "distilled"
    n_unlabelled: int = 0
    evaluate: str = ""
    plain_member: int | None = None

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose one of: {', '.join(POLICIES)}")
        parse_policy(self.augment)  # fails loudly on a bad augmentation string
        if not self.teachers:
            raise ValueError("a distilled student needs at least one teacher")
        if self.distill_data not in ("recycled", "new"):
            raise ValueError(f"distill_data must be 'recycled' or 'new', got {self.distill_data!r}")
        if not 0.0 < self.distill_fraction <= 1.0:
            raise ValueError(f"distill_fraction must be in (0, 1], got {self.distill_fraction!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be a number > 0, got {self.lr!r}")
        if isinstance(self.n_unlabelled, bool) or not isinstance(self.n_unlabelled, int) or self.n_unlabelled < 0:
            raise ValueError(f"n_unlabelled must be an integer >= 0, got {self.n_unlabelled!r}")
        if self.evaluate not in EVALUATIONS:
            raise ValueError(f"evaluate must be one of {EVALUATIONS}, got {self.evaluate!r}")
        if self.evaluate == "plain" and (self.plain_member is None or self.plain_member < 1):
            raise ValueError(f"a plain baseline needs plain_member >= 1 (member 0 is the teacher), "
                             f"got {self.plain_member!r}")
        if self.evaluate == "init" and self.r is None:
            raise ValueError("an 'init' baseline needs r (0 = the teacher with BatchNorm recomputed)")
        if self.r is not None:
            object.__setattr__(self, "r", check_ratio(self.r))
            if self.r == 0.0 and self.evaluate != "init":
                raise ValueError("r = 0 is the teacher itself (lr scaled to 0): evaluate it, do not train it")
            if len(self.teachers) != 1:
                raise ValueError("a near-teacher init needs exactly one teacher")

    @property
    def ensemble_size(self) -> int:
        return len(self.teachers)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> str:
        """The record's name: a hash of every field but ``claim`` (claims share arms), ``lr_candidates`` (the
        grid does not change the run: a candidate keeps its record when the grid is widened) and the
        `LATE_FIELDS` left at their defaults (so the records written before they existed keep their names)."""
        cached = self.__dict__.get("_key")
        if cached is None:
            d = {k: v for k, v in self.to_dict().items() if k not in ("claim", "lr_candidates")}
            d = {k: v for k, v in d.items() if not (k in LATE_FIELDS and v == LATE_FIELDS[k])}
            cached = config_hash(d)
            object.__setattr__(self, "_key", cached)
        return cached


__all__ = ["DistillSpec", "EVALUATIONS", "LATE_FIELDS"]
