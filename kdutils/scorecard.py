"""The scorecard: every claim of every chapter and its verdict, in one table near the front of the book.

Why here and not typed into a page: the rows come from the same `chapter_verdicts(profile, store=None)`
functions the chapters call, so the scorecard cannot drift from them. A chapter whose module or function does
not exist yet (or whose runs are not recorded) lists its claims as "not yet run" instead of failing the build.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import present

NOT_YET_RUN = "not yet run"

BADGES = {"reproduced": "✅", "partly reproduced": "🟡", "not reproduced": "❌",
          "inconclusive at this scale": "❔", "not testable at this scale": "⛔", NOT_YET_RUN: "⏳"}
"""One symbol per verdict label (the intro's legend uses the same ones)."""


@dataclass(frozen=True)
class Chapter:
    """One chapter of the book: which paper, where its page is, where its verdicts come from."""

    key: str
    paper: str  # short citation shown in the table
    title: str
    page: str  # the chapter's page, relative to the book root, without suffix
    module: str | None  # module exposing chapter_verdicts(profile, store=None), or None if not written
    claims: tuple[str, ...]  # the claims the chapter tests, listed when no verdict can be computed


CHAPTERS: tuple[Chapter, ...] = (
    Chapter("hinton", "Hinton, Vinyals & Dean (2015)", "Distilling the Knowledge in a Neural Network",
            "notebooks/hinton_report", "kdutils.experiments.hinton",
            ("Distilling a large regularised MLP at a high temperature (T=20) brings a small MLP most of the way "
             "to the teacher's test error on MNIST (paper: 146 -> 74 errors, teacher 67).",)),
    Chapter("invariance", "Odagiu et al. (2024)",
            "Knowledge Distillation for Teaching Symmetry Invariances",
            "notebooks/invariance_report", "kdutils.experiments.invariance_report",
            ("KD does not transfer the teacher's invariance: the distilled student's IM is about that of a "
             "self-distilled student and far from the teacher's, at every temperature, even at high fidelity.",
             "Training the student on transformed data gives the best invariance; KD adds nothing beyond "
             "augmentation.",
             "KD still improves the student's generalisation (accuracy, NLL, ECE).")),
    Chapter("tgeo", "Hu, Wu et al. (2024)", "Less or More From Teacher: Exploiting Trilateral Geometry for "
            "Knowledge Distillation", "notebooks/tgeo_report", "kdutils.experiments.tgeo",
            ("Motivation experiment: where the teacher is right, a larger student-teacher distance favours a "
             "larger KD weight; where it is wrong, a smaller KD weight is better.",
             "TGeo-KD beats vanilla KD and every sample-wise baseline (ANL-, ADA-, WLS-, RW-KD) in student "
             "accuracy.",
             "The learned weight is lower where the teacher is wrong and rises with the student-teacher distance "
             "where it is right.")),
    Chapter("ls_kd", "Chandrasegaran et al. (2022)",
            "Revisiting Label Smoothing and Knowledge Distillation Compatibility: What was Missing?",
            "notebooks/ls_kd_report", "kdutils.experiments.ls_kd",
            ("At tau = 1, a student distilled from a label-smoothed teacher is at least as good as one distilled "
             "from a teacher trained without label smoothing.",
             "As tau grows (2, 3, 64), the label-smoothed teacher's students lose more accuracy than the plain "
             "teacher's students.",
             "Systematic diffusion: with a label-smoothed teacher at higher tau, the student's class centroids "
             "move towards semantically similar classes (negative diffusion index for the similar set, positive "
             "for the dissimilar set).",
             "The smoothness of the targets (their average entropy) does not explain the results.",
             "Practitioner rule: use a label-smoothed teacher with tau = 1.")),
    Chapter("does_kd_work", "Stanton et al. (2021)", "Does Knowledge Distillation Really Work?",
            "notebooks/does_kd_work_report", "kdutils.experiments.does_kd_work",
            ("A student can generalise better than a plain model while agreeing poorly with its teacher: "
             "fidelity stays well short of 100%, even in self-distillation.",
             "Larger teacher ensembles (1, 3, 5 members) give better teacher accuracy and fidelity, and the "
             "student matches or beats a single model.",
             "The augmentation used for distillation changes fidelity a lot, and the best policy for student "
             "accuracy is not the best for fidelity.",
             "Distilling on the teacher's own training data gives better student accuracy; new data gives better "
             "fidelity.",
             "The student cannot fit the teacher even on its distillation data: train agreement falls as the "
             "distillation set grows.",
             "Initialising the student near the teacher's weights recovers near-perfect agreement; from a random "
             "init it reaches a worse optimum of the distillation loss.")),
)


def _missing_run_errors() -> tuple[type[BaseException], ...]:
    """The load-only mode's error for a missing record, if the runner defines it (it is what a chapter raises
    when the book is built without a run it needs)."""
    try:
        from .runner import MissingRunError  # type: ignore[attr-defined]
    except ImportError:
        return ()
    return (MissingRunError,)


def chapter_verdicts(chapter: Chapter, profile: str, store: Any = None) -> tuple[list[Any], str]:
    """The chapter's verdicts and a note on where they came from. Falls back to its listed claims as
    "not yet run" when the chapter has no module or no `chapter_verdicts` yet, or a run is missing."""
    if chapter.module is None:
        return [], "chapter not yet written"
    try:
        module = importlib.import_module(chapter.module)
    except ModuleNotFoundError as err:
        if err.name and chapter.module.startswith(err.name):
            return [], "chapter module not yet written"
        raise
    fn = getattr(module, "chapter_verdicts", None)
    if fn is None:
        return [], "the chapter does not compute its verdicts yet"
    kwargs = {"store": store} if store is not None and "store" in inspect.signature(fn).parameters else {}
    missing = _missing_run_errors()
    try:
        return list(fn(profile, **kwargs)), ""
    except missing as err:  # type: ignore[misc]
        return [], f"a run is not recorded ({err})"


def scorecard(profile: str = "cpu", store: Any = None, chapters: tuple[Chapter, ...] = CHAPTERS) -> pd.DataFrame:
    """One row per claim of every chapter: paper, claim, verdict label and badge, scale, effect (with its
    interval where the chapter gives one), evidence and the chapter's page."""
    rows: list[dict[str, str]] = []
    for ch in chapters:
        verdicts, note = chapter_verdicts(ch, profile, store)
        base = {"chapter": ch.key, "paper": ch.paper, "title": ch.title, "page": ch.page}
        if verdicts:
            for v in verdicts:
                label = v.label
                rows.append({**base, "claim": v.claim, "label": label, "badge": BADGES.get(label, ""),
                             "scale": present.shorten_devices(str(v.scale).replace("`", "")),
                             "effect": str(getattr(v, "effect", "") or ""), "evidence": v.evidence})
        else:
            for claim in ch.claims:
                rows.append({**base, "claim": claim, "label": NOT_YET_RUN, "badge": BADGES[NOT_YET_RUN],
                             "scale": "—", "effect": "", "evidence": note})
    return pd.DataFrame(rows, columns=["chapter", "paper", "title", "page", "claim", "label", "badge", "scale",
                                       "effect", "evidence"])


def counts(card: pd.DataFrame) -> dict[str, int]:
    """How many claims carry each label, in the legend's order (labels with no claim left out)."""
    vc = card["label"].value_counts()
    return {label: int(vc[label]) for label in BADGES if label in vc}


def summary_sentence(card: pd.DataFrame) -> str:
    """"12 claims from 5 papers: 1 reproduced, ..." for the page's prose (computed, never typed)."""
    parts = ", ".join(f"{n} {label}" for label, n in counts(card).items())
    return f"{len(card)} claims from {card['paper'].nunique()} papers: {parts}."


def page_link(page: str, from_page: str = "notebooks/scorecard") -> str:
    """The built HTML address of `page` relative to the built `from_page` (both relative to the book root)."""
    import posixpath

    return posixpath.relpath(page + ".html", posixpath.dirname(from_page) or ".")


def scorecard_table(card: pd.DataFrame, from_page: str = "notebooks/scorecard",
                    max_rows: int = 40) -> present.Table:
    """The scorecard as the page shows it: paper and verdict (both linking to the chapter, the evidence), claim,
    effect with its interval (or why there is none yet), scale; long text wraps instead of widening the table."""
    first = ~card["chapter"].duplicated()
    no_verdict = card["label"] == NOT_YET_RUN
    shown = card.assign(verdict=card["badge"] + " " + card["label"],
                        paper=card["paper"].where(first, ""),
                        href=card["page"].map(lambda p: page_link(p, from_page)),
                        effect=card["effect"].where(~no_verdict, card["evidence"]).replace("", "—"))
    return present.results_table(shown, {"paper": "paper", "claim": "claim", "verdict": "verdict (evidence)",
                                         "effect": "effect (95% interval)", "scale": "scale"},
                                 status=None, device=None, links={"paper": "href", "verdict": "href"},
                                 wrap=("paper", "verdict", "effect", "scale"), wide=("claim",),
                                 max_rows=max_rows)

def evidence_html(card: pd.DataFrame) -> str:
    """The evidence behind each computed verdict, one collapsed <details> per claim (the chapters show it in
    full; here it stays one click away so the table above stays one screen tall)."""
    import html

    parts = []
    for _, r in card[card["label"] != NOT_YET_RUN].iterrows():
        parts.append(f"<details><summary>{html.escape(r['badge'])} <b>{html.escape(r['paper'])}</b>: "
                     f"{html.escape(r['claim'])}</summary><p>{html.escape(str(r['evidence']))}</p>"
                     f"<p><i>Scale:</i> {html.escape(r['scale'])}</p></details>")
    return "".join(parts) or "<p>No claim has a computed verdict yet.</p>"


def records_summary(profile: str, store: Any = None) -> pd.DataFrame:
    """The recorded runs of `profile`, per experiment: how many, on which devices, what status. This is what
    the book's numbers rest on, so the page says it from the records rather than in typed prose."""
    from .store import ResultStore

    store = store or ResultStore()
    rows = []
    for rec in store.records():
        cfg = rec.get("config", {})
        if cfg.get("profile") != profile:
            continue
        rows.append({"experiment": cfg.get("experiment", "?"), "status": rec.get("status", "?"),
                     "device": present.short_device(rec.get("provenance", {}).get("device"))})
    if not rows:
        return pd.DataFrame(columns=["experiment", "runs", "devices", "statuses"])
    df = pd.DataFrame(rows)
    out = []
    for exp, g in df.groupby("experiment", sort=True):
        out.append({"experiment": exp, "runs": len(g),
                    "devices": ", ".join(f"{d} ({n})" for d, n in g["device"].value_counts().items()),
                    "statuses": ", ".join(f"{s} ({n})" for s, n in g["status"].value_counts().items())})
    return pd.DataFrame(out)
