"""The KD-room gate of each student of the cross-fitted recipe, read from the records before the finals' expensive
arms are spent.

Why: every claim judged on this recipe except the motivation heatmap is gated on "KD has room" (vanilla KD at its
validation-chosen alpha minus the student alone, paired over the finals' seeds, 95% interval wholly above
`claims.ROOM_MARGIN` pts). Where the gate fails the claims are "not testable at this scale" and the scale has to
change, so the TGeo arms, baselines and controls of that student would be compute spent on runs no verdict reads.
The two arms the gate reads are cheap; `campaign` runs them first (stage "room gate") and the rest only for the
students whose gate passes.

The rule is `claims_cf.room_gate`'s (the same `gates.has_room` on the same paired differences, a failed run scored
at chance); `tests/test_tgeo_campaign.py` checks the two agree on the same records.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from kdutils.chapters.tgeo.claims import ROOM_MARGIN
from kdutils.chapters.tgeo.plan import CHANCE_ACCURACY
from kdutils.config import RunConfig
from kdutils.store.store import ResultStore
from kdutils.verdicts import gates as g
from kdutils.verdicts.stats import Interval, paired_difference
from kdutils.verdicts.verdict import FAILED_STATUSES

__all__ = ["ALONE", "MAIN", "ROOM_MARGIN", "StudentGate", "accuracy_pts", "gate_arms", "room_gates", "students"]

MAIN = "main"
ALONE = "alone"
ByArm = Mapping[str, Mapping[int, RunConfig]]  # arm -> seed -> config


def students(fc: Mapping[str, Any]) -> dict[str, ByArm]:
    """The students of `campaign.final_configs` by name: "main" (the recipe's MLP), each capacity width by its tag
    ("cap:8"), each convolutional student as "het:<model>"; each arm -> seed -> config."""
    return {MAIN: fc["main"], **fc["capacity"], **{f"het:{m}": arms for m, arms in fc["hetero"].items()}}


def gate_arms(arms: ByArm, vanilla: str) -> dict[str, Mapping[int, RunConfig]]:
    """The two arms the room gate reads: the student alone and vanilla KD at the alpha chosen on validation."""
    missing = [a for a in (ALONE, vanilla) if a not in arms]
    if missing:
        raise ValueError(f"the student has no arm {missing}; its arms are {sorted(arms)}")
    return {ALONE: arms[ALONE], vanilla: arms[vanilla]}


def accuracy_pts(rec: dict | None) -> float | None:
    """A record's test accuracy in pts; a failed run (diverged / at chance) scores at chance, as in every chapter;
    None when not recorded."""
    if rec is None:
        return None
    if rec.get("status") in FAILED_STATUSES:
        return 100.0 * CHANCE_ACCURACY
    return 100.0 * float(rec["metrics"]["accuracy"])


@dataclass(frozen=True)
class StudentGate:
    """One student's room gate: vanilla KD (arm `vanilla`) minus alone, paired over seeds. `gate` and `interval`
    are None until every one of the student's gate runs is recorded (`recorded` of `planned`)."""

    student: str
    vanilla: str
    recorded: int
    planned: int
    interval: Interval | None = None
    gate: g.Gate | None = None

    @property
    def decided(self) -> bool:
        return self.gate is not None

    @property
    def passed(self) -> bool:
        return self.gate is not None and self.gate.passed

    def describe(self) -> str:
        if self.interval is None or self.gate is None:
            return f"{self.student}: not recorded yet ({self.recorded} of {self.planned} gate runs)"
        return (f"{self.student}: {self.vanilla} minus alone {self.interval.describe('pts', digits=2)}; needs the "
                f"interval above +{ROOM_MARGIN:g} pts: {'passes' if self.passed else 'fails'}")


def room_gates(fc: Mapping[str, Any], vanilla: str, store: ResultStore) -> list[StudentGate]:
    """Every student's room gate from the records of its gate arms (nothing is trained)."""
    out = []
    for name, arms in students(fc).items():
        pair = gate_arms(arms, vanilla)
        got = {a: {s: accuracy_pts(store.get(c)) for s, c in by.items()} for a, by in pair.items()}
        scores = {a: {s: v for s, v in by.items() if v is not None} for a, by in got.items()}
        planned = sum(len(by) for by in got.values())
        recorded = sum(len(by) for by in scores.values())
        if recorded < planned:
            out.append(StudentGate(name, vanilla, recorded, planned))
            continue
        iv = paired_difference(scores[vanilla], scores[ALONE])
        out.append(StudentGate(name, vanilla, recorded, planned, iv, g.has_room(iv, ROOM_MARGIN)))
    return out
