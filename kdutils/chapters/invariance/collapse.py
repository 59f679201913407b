"""Odagiu et al., Figure 1's caption: "For the ResNet distillation, setting the temperature to 1 resulted in the
MLP not learning at all." Declared as a claim (issue 24) and judged by the shared rules from the records.

The authors' code computes the reverse KL(P_s||P_t) (the teacher's log-probabilities are the *input* of
`nn.KLDivLoss`), so the claim is judged on the teacher -> student arm at tau = 1 with the reverse KL: the student
"does not learn" when its test accuracy lies below twice chance (`recipes.COLLAPSE_FACTOR`, the chapter's rule
for "collapsed", fixed before the v2 runs), the whole paired 95% interval over folds below that line.
Failed runs (diverged, at chance) are scored at chance accuracy, i.e. as collapsed: that is what they show.
Gate: the MLP trained alone learns (its accuracy interval wholly above twice chance), else a collapse under KD
could be the MLP's own failure. The forward KL(P_t||P_s) at tau = 1 (the book's direction) is shown beside it
as the book's own check, not scored: it says whether the collapse belongs to the direction or to tau = 1.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from kdutils.chapters.invariance import claims as c
from kdutils.chapters.invariance.recipes import COLLAPSE_FACTOR, DATASETS
from kdutils.chapters.invariance.tables import figure_rows, results_table, scale_text
if TYPE_CHECKING:  # the type checker reads pandas' own names; at run time pandas is imported on first use
    import pandas as pd
else:
    from kdutils.lazy import pandas as pd
from kdutils.store.store import ResultStore
from kdutils.verdicts import gates, stats
from kdutils.verdicts.rules import Claim, Finding, Judgement, find, judge, to_verdict
from kdutils.verdicts.verdict import NOT_YET_RUN, Verdict

PAIR = "resnet_mlp"
TAU = 1.0
TEXT = ("At tau = 1 the ResNet -> MLP student distilled with the authors' KL direction (reverse, KL(P_s||P_t)) "
        "does not learn at all (Figure 1's caption).")
LINE = COLLAPSE_FACTOR / DATASETS["mnist"].num_classes  # twice chance: 0.2 on MNIST
C4 = Claim(TEXT, parts=(Claim("reverse KL at tau 1: test accuracy below twice chance", "less", threshold=LINE,
                              key="reverse KL (the authors')"),),
           core=("reverse KL (the authors')",), gates=("the MLP alone learns",),
           source=f"'not learning' = accuracy below {COLLAPSE_FACTOR:g}x chance ({LINE:g}), the chapter's collapse rule")
FORWARD = Claim("forward KL at tau 1: test accuracy below twice chance", "less", threshold=LINE,
                key="forward KL (the book's; not scored)")


def _accuracies(table: pd.DataFrame, student: str, role: str, direction: str | None = None) -> list[float]:
    s = c.arm_scores(table, PAIR, student, role, "accuracy", TAU if role == "distilled" else None, direction)
    return [s.values[k] for k in sorted(s.values)]


def judge_collapse(table: pd.DataFrame, profile: str) -> Judgement | None:
    """The claim on the MNIST row's records (None while no tau-1 reverse-KL run is recorded)."""
    student = next((s for p, s in figure_rows(profile) if p == PAIR), None)
    if student is None or table.empty:
        return None
    rev = _accuracies(table, student, "distilled", "reverse")
    if not rev:
        return None
    alone = stats.t_interval(_accuracies(table, student, "student"))
    gate = gates.premise("the MLP alone learns", alone, LINE, "greater")
    fmt = lambda iv: iv.describe("%", digits=1, scale=100, signed=False)  # noqa: E731  (a level, not a difference)
    iv = stats.t_interval(rev)
    reverse = find(C4.parts[0], iv, effect=f"accuracy {fmt(iv)}", core=True)
    j = judge(C4, [reverse], [gate])
    fwd = _accuracies(table, student, "distilled", "forward")
    if not fwd:
        return j
    fiv = stats.t_interval(fwd)
    f = find(FORWARD, fiv, effect=f"accuracy {fmt(fiv)}")
    f = Finding(f.key, f.label, f.reason + " (the book's own check, not counted)", f.interval, f.power, False, f.effect)
    return Judgement(j.claim, j.label, j.reason, j.gates, j.parts + (f,))


def verdict_collapse(table: pd.DataFrame, profile: str, code: str = "") -> Verdict:
    j = judge_collapse(table, profile)
    if j is None:
        return Verdict(TEXT, NOT_YET_RUN, "no recorded tau = 1 reverse-KL ResNet -> MLP run of the current recipe",
                       f"profile `{profile}`")
    folds = sorted(int(f) for f in set(table[table.pair == PAIR]["fold"].dropna()))
    evidence = (f"The teacher -> MLP arm at tau = 1 with the reverse KL (as the authors' code computes it), its "
                f"test accuracy over folds {folds} against twice chance ({LINE:g}); failed runs at chance. "
                "Beside it, the same arm with the forward KL (not scored).")
    effect = "; ".join(f"{p.key}: {p.effect}" for p in j.parts if p.effect)
    return to_verdict(j, evidence, scale_text(table[table.pair == PAIR], profile), effect, None, code)  # its pair's


def chapter_verdicts(profile: str, store: ResultStore | None = None) -> list[Verdict]:
    """The chapter's three claims (`claims.chapter_verdicts`) and this one, from the records only."""
    out = c.chapter_verdicts(profile, store)
    return out + [verdict_collapse(results_table(profile, store=store), profile, out[0].code if out else "")]


__all__ = ["C4", "TEXT", "chapter_verdicts", "judge_collapse", "verdict_collapse"]
