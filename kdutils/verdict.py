"""Verdicts: every headline claim in the book ends in one, computed from recorded runs."""
from __future__ import annotations

from dataclasses import dataclass

LABELS = ("reproduced", "partly reproduced", "not reproduced", "not yet run")


@dataclass(frozen=True)
class Verdict:
    claim: str
    label: str
    evidence: str
    scale: str

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"unknown verdict label {self.label!r}; choose one of: {', '.join(LABELS)}")

    def to_markdown(self) -> str:
        badge = {"reproduced": "✅", "partly reproduced": "🟡", "not reproduced": "❌", "not yet run": "⏳"}[self.label]
        return (f"**Claim.** {self.claim}\n\n**Verdict: {badge} {self.label}** at scale: {self.scale}.\n\n"
                f"**Evidence.** {self.evidence}")

    def _repr_markdown_(self) -> str:
        return self.to_markdown()
