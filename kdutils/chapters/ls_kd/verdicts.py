"""Which of the chapter's recipes the verdicts come from: recipe v3 (every comparison at one rate, four teachers
per LS value, a convolutional student) at the profiles it defines, recipe v2 at the others (`gpu`, `full`).

Why: v3 replaces v2's verdicts where it exists (issue 22); v2's per-arm tuned runs stay on the page as the
robustness row, not on the scorecard, so no claim is counted twice."""
from __future__ import annotations

from kdutils.chapters.ls_kd import claims_v3 as cv3
from kdutils.chapters.ls_kd.recipe_v3 import RECIPES_V3
from kdutils.store.store import ResultStore
from kdutils.verdicts.verdict import Verdict

#: The claims the scorecard lists for the chapter (v3's texts, in the page's order).
CLAIMS_V3 = (cv3.SAME_TAU.text, cv3.DIFFUSION.text, cv3.CAUSAL.text, cv3.INHERIT.text, cv3.matched_claim().text,
             cv3.practitioner_claim([]).text, cv3.DROP.text)


def uses_v3(profile: str) -> bool:
    """True where recipe v3 defines ``profile`` (then its verdicts are the chapter's)."""
    return profile in RECIPES_V3


def chapter_verdicts(profile: str, store: ResultStore | None = None) -> list[Verdict]:
    """The chapter's verdicts at ``profile``: v3's where v3 defines the profile, else v2's."""
    if uses_v3(profile):  # imported here: the chapter's package must import without pandas (the GPU machine)
        from kdutils.chapters.ls_kd import report_v3

        return report_v3.verdicts(profile, store)
    from kdutils.chapters.ls_kd import claims

    return claims.chapter_verdicts(profile, store)


__all__ = ["CLAIMS_V3", "chapter_verdicts", "uses_v3"]
