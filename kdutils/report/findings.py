"""The "What we found" page: per paper, what held, what did not, at what scale, and what is left open.

Why generated: the page is the synthesis a reader comes for, so it must never disagree with the scorecard or
the chapters. It is written from the scorecard's rows (the chapters' own verdicts), grouping each paper's
claims by their label; every label, effect and scale on it comes from a verdict, none is typed. A label this
module does not know yet (the rules may grow new ones) gets its own group under its own name, never dropped.
"""
from __future__ import annotations

import html
from typing import Any

import pandas as pd

from kdutils.report.chapter import all_chapters, load
from kdutils.report.scorecard import NOT_YET_RUN, claim_href, counts
from kdutils.verdicts import verdict as _v

# Label groups in the page's order: (heading, labels). Labels are the verdict module's constants, looked up
# by name so that a label the rules drop does not break the page.
_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Held", ("REPRODUCED",)),
    ("Held in part", ("PARTLY",)),
    ("Held and contradicted", ("MIXED",)),
    ("Did not hold", ("NOT_REPRODUCED",)),
    ("Open at this scale", ("INCONCLUSIVE", "NOT_TESTABLE", "NOT_YET_RUN")),
)

# What settles an open claim, per label (the label's meaning, not a result).
_OPEN_WHY = {
    "INCONCLUSIVE": "the interval allows either side: more seeds or a longer recipe can settle it",
    "NOT_TESTABLE": "a gate failed, so the claim could not be judged: it needs a scale where the gate passes",
    "NOT_YET_RUN": "its runs are not recorded at this scale",
}


def label_groups() -> list[tuple[str, list[str]]]:
    """[(heading, [labels])] in the page's order, with the labels the verdict module defines."""
    out = []
    for heading, names in _GROUPS:
        labels = [getattr(_v, n) for n in names if hasattr(_v, n)]
        if labels:
            out.append((heading, labels))
    return out


def _open_reason(label: str) -> str:
    for name, why in _OPEN_WHY.items():
        if getattr(_v, name, None) == label:
            return why
    return ""


def _esc(text: Any) -> str:
    """Plain text made safe inside Markdown (no accidental emphasis, tables or maths)."""
    s = str(text)
    for ch in ("\\", "*", "|", "$", "[", "]", "<", ">"):
        s = s.replace(ch, "\\" + ch)
    return s


def overview_table(card: pd.DataFrame) -> pd.DataFrame:
    """One row per paper, in the scorecard's order: its claims and their verdicts as badge counts
    ("✅ 2 · 🟡 3"), in the label order of the legend; narrow enough for a phone."""
    rows = []
    for paper, g in card.groupby("paper", sort=False):
        vc = g["label"].value_counts()
        order = [lab for lab in _v.LABELS if lab in vc] + [lab for lab in vc.index if lab not in _v.LABELS]
        verdicts = " · ".join(f"{_v.BADGES.get(lab, lab)} {int(vc[lab])}" for lab in order)
        rows.append({"paper": paper, "claims": len(g), "verdicts": verdicts})
    return pd.DataFrame(rows, columns=["paper", "claims", "verdicts"])


def _claim_line(r: pd.Series, from_page: str, with_reason: bool) -> str:
    # A raw <a> (MyST would try to resolve a Markdown link to an .html page as a document and warn).
    link = html.escape(claim_href(r["page"], r["claim"], from_page), quote=True)
    line = f'- {r["badge"]} <a href="{link}">{html.escape(str(r["claim"]))}</a>'
    if r["label"] != NOT_YET_RUN and str(r.get("effect", "")).strip():
        line += f" Effect: {_esc(r['effect'])}."
    if with_reason:
        why = _open_reason(r["label"])
        line += f" *{r['label'].capitalize()}*" + (f": {why}." if why else ".")
    return line


def paper_markdown(rows: pd.DataFrame, from_page: str = "notebooks/findings", larger: str = "full") -> str:
    """One paper's section: its scale, then its claims grouped by label, each with its effect and a link to the
    claim in its chapter; open claims say what would settle them and the command that runs the larger scale."""
    first = rows.iloc[0]
    key = str(first["chapter"])
    lines = [f"## {_esc(first['paper'])}: *{_esc(first['title'])}*", ""]
    scales = [s for s in dict.fromkeys(rows["scale"]) if s and s != "—"]
    lines += [f"**Scale.** {_esc('; '.join(scales)) if scales else 'no run recorded at this profile'}.", ""]
    groups = label_groups()
    known = {lab for _, labs in groups for lab in labs}
    sections = [(h, rows[rows["label"].isin(labs)]) for h, labs in groups]
    sections += [(lab.capitalize(), rows[rows["label"] == lab]) for lab in dict.fromkeys(rows["label"])
                 if lab not in known]
    for heading, sub in sections:
        if sub.empty:
            continue
        is_open = heading == "Open at this scale"
        lines += [f"**{heading}** ({len(sub)} of {len(rows)}):", ""]
        lines += [_claim_line(r, from_page, is_open) for _, r in sub.iterrows()]
        lines.append("")
        if is_open:
            lines += [f"The larger scale: `python -m kdutils run {key} --profile {larger}` (a GPU recipe; the "
                      f"chapter says what it changes).", ""]
    return "\n".join(lines)


def findings_markdown(card: pd.DataFrame, from_page: str = "notebooks/findings", larger: str = "full") -> str:
    """The whole page body: one section per paper, in the scorecard's order."""
    order = {c.name: i for i, c in enumerate(all_chapters())}
    parts = []
    for _, rows in sorted(card.groupby("chapter", sort=False), key=lambda kv: order.get(kv[0], len(order))):
        parts.append(paper_markdown(rows, from_page, larger))
    return "\n\n".join(parts) if parts else "No chapter has a claim yet."


def cannot_show_markdown(rows: pd.DataFrame, larger: str = "full") -> str:
    """A chapter's "what this scale cannot show", from its scorecard rows: the one scale its verdicts hold at,
    the claims this scale leaves open (and why, by label), the claims held only in part, and the command that
    runs the larger scale. Generated, so it follows the verdicts."""
    if rows.empty:
        return "No claim of this chapter has a verdict yet."
    key = str(rows.iloc[0]["chapter"])
    groups = dict(label_groups())
    scales = [s for s in dict.fromkeys(rows["scale"]) if s and s != "—"]
    out = [f"Every verdict of this chapter holds at one scale: {_esc('; '.join(scales)) or 'none recorded'}. "
           "A claim reproduced here can still fail at the paper's scale, and one left open here may be decided "
           "there."]
    open_ = rows[rows["label"].isin(groups.get("Open at this scale", []))]
    if len(open_):
        out += ["", f"**Left open at this scale** ({len(open_)} of {len(rows)}):", ""]
        out += [f"- {r['badge']} {_esc(r['claim'])} *{r['label'].capitalize()}*: {_open_reason(r['label'])}."
                for _, r in open_.iterrows()]
    part = rows[rows["label"].isin(groups.get("Held in part", []) + groups.get("Held and contradicted", []))]
    if len(part):
        out += ["", f"**Held only in part** ({len(part)} of {len(rows)}); the evidence of each names the parts "
                "this scale did not settle:", ""]
        out += [f"- {r['badge']} {_esc(r['claim'])}" for _, r in part.iterrows()]
    out += ["", f"The larger scale: `python -m kdutils run {key} --profile {larger}` (a GPU recipe)."]
    return "\n".join(out)


def chapter_cannot_show(name: str, profile: str, larger: str = "full") -> str:
    """`cannot_show_markdown` for chapter `name` at `profile`, read through the scorecard."""
    from kdutils.report.scorecard import scorecard

    # check=False: the scorecard page is where a chapter that lost its runs fails the build
    return cannot_show_markdown(scorecard(profile, chapters=(load(name),), check=False), larger)


__all__ = ["cannot_show_markdown", "chapter_cannot_show", "counts", "findings_markdown", "label_groups",
           "overview_table", "paper_markdown"]
