"""Which recipe's verdicts the chapter shows (its page's boxes and the scorecard, through `CHAPTER.verdicts`).

Why a module of its own: the cross-fitted recipe's judge (`claims_cf`) builds on the first recipe's declarations
(`claims`), so the choice between them sits above both.
"""
from __future__ import annotations

from kdutils.chapters.tgeo import claims, claims_cf
from kdutils.store.profiles import check_profile
from kdutils.store.store import ResultStore
from kdutils.verdicts.verdict import Verdict

__all__ = ["chapter_verdicts"]


def chapter_verdicts(profile: str, store: ResultStore | None = None) -> list[Verdict]:
    """The cross-fitted recipe's verdicts (`claims_cf.cf_verdicts`, every claim of `claims.DECLARED_CF`) of the
    newest attempt whose main student's result is decided at `profile` (`claims_cf.shown_attempt`: its KD-room
    gate failed, or every main final recorded; the other attempts' outcomes named in its scale line), else the first
    recipe's (`claims.first_recipe_verdicts`). The premise check (`claims.ALPHA`) and the f_w controls are the
    chapter's own checks: `scored` False, so the scorecard shows them and does not count them. Nothing is
    trained."""
    profile = check_profile(profile)
    store = store or ResultStore()
    attempt = claims_cf.shown_attempt(profile, store)
    if attempt is not None:
        return claims_cf.cf_verdicts(profile, store, attempt=attempt)
    return claims.first_recipe_verdicts(profile, store)
