"""The scorecard: every claim of every chapter and its verdict, in one table near the front of the book.

Why here and not typed into a page: the rows come from the same `chapter_verdicts(profile, store=None)`
functions the chapters call (found through the chapter registry, `kdutils.report.chapter`), so the scorecard
cannot drift from them. A chapter whose runs are not recorded lists its claims as "not yet run"; a chapter that
has records at the profile and still shows "not yet run" is an error (`check_recorded`), so that a broken
chapter cannot hide behind the placeholder and the book build fails instead.
"""
from __future__ import annotations

import inspect
from typing import Any

import pandas as pd

from kdutils.report import present
from kdutils.report.chapter import Chapter, all_chapters
from kdutils.report.numbers import short_interval
from kdutils.verdicts.verdict import BADGES, NOT_YET_RUN


def _missing_run_errors() -> tuple[type[BaseException], ...]:
    """The load-only mode's error for a missing record (what a chapter raises when the book is built without a
    run it needs)."""
    from kdutils.training.runner import MissingRunError

    return (MissingRunError,)


COLUMNS = ["chapter", "paper", "title", "page", "claim", "label", "badge", "scale", "effect", "evidence", "parts",
           "gates", "stability", "details", "scored", "code"]


def _parts_text(v: Any) -> str:
    """"✅ accuracy · ❌ NLL": each part's badge and name (empty for a claim without parts)."""
    return " · ".join(f"{BADGES.get(p.label, '')} {p.key}" for p in getattr(v, "parts", ()) or ())


def _gates_text(v: Any) -> str:
    """"✔ teacher converged · ✘ KD has room": each gate and whether it passed (its numbers are in `details`)."""
    return " · ".join(f"{'✔' if g.passed else '✘'} {g.name}" for g in getattr(v, "gates", ()) or ())


def _stability_text(v: Any) -> str:
    s = getattr(v, "stability", None)
    return s.status if s is not None else ""


def _details(v: Any) -> str:
    """The gates with their numbers, each part with its interval, reason and power, the stability: one line each."""
    out = [g.describe() for g in getattr(v, "gates", ()) or ()]
    for p in getattr(v, "parts", ()) or ():
        power = getattr(p, "power", None)
        out.append(p.describe() + (f"; {power.describe()}" if power is not None else ""))
    s = getattr(v, "stability", None)
    if s is not None:
        out.append(f"stability: {s.describe()}")
    return "\n".join(out)


def _code_status(chapter: Chapter, profile: str, store: Any = None) -> str:
    """Whether the chapter's records at `profile` were made from committed code (`provenance.code_status_sentence`)."""
    from kdutils.store.provenance import code_status_sentence
    from kdutils.store.store import ResultStore

    store = store if hasattr(store, "records") else ResultStore()
    recs = [r for exp in chapter.experiments for r in store.records(exp)
            if r.get("config", {}).get("profile") == profile]
    return code_status_sentence(recs)


def uncommitted_sentence(card: pd.DataFrame) -> str:
    """Which verdicts still rest on records whose code is not provably in a commit (computed, never typed)."""
    judged = card[card["label"] != NOT_YET_RUN]
    bad = judged[judged["code"].str.contains("not provably", na=False)]
    if bad.empty:
        return f"Every one of the {len(judged)} verdicts rests on records made from committed code."
    per = "; ".join(f"{r.paper}: {r.code}" for r in bad.drop_duplicates("chapter").itertuples())
    return (f"{len(bad)} of {len(judged)} verdicts rest on records whose code is not provably in a commit ({per}). "
            "These records were made before the source hash was recorded; a rerun records it.")


def chapter_verdicts(chapter: Chapter, profile: str, store: Any = None) -> tuple[list[Any], str]:
    """The chapter's verdicts and a note on where they came from. Falls back to its listed claims as
    "not yet run" when a run it needs is not recorded."""
    fn = chapter.verdicts
    kwargs = {"store": store} if store is not None and "store" in inspect.signature(fn).parameters else {}
    missing = _missing_run_errors()
    try:
        return list(fn(profile, **kwargs)), ""
    except missing as err:
        return [], f"a run is not recorded ({err})"


def scorecard(profile: str = "cpu", store: Any = None, chapters: tuple[Chapter, ...] | None = None,
              check: bool = True) -> pd.DataFrame:
    """One row per claim of every chapter: paper, claim, verdict label and badge, scale, effect (with its
    interval where the chapter gives one), evidence and the chapter's page. With `check`, a chapter that has
    records at `profile` but shows a claim as "not yet run" raises (see `check_recorded`)."""
    chapters = all_chapters() if chapters is None else chapters
    rows: list[dict[str, str | bool]] = []  # text cells, and "scored" (whether the claim counts)
    for ch in chapters:
        verdicts, note = chapter_verdicts(ch, profile, store)
        base = {"chapter": ch.name, "paper": ch.paper, "title": ch.title, "page": ch.page}
        code = _code_status(ch, profile, store)
        if verdicts:
            for v in verdicts:
                label = v.label
                rows.append({**base, "claim": v.claim, "label": label, "badge": BADGES.get(label, ""),
                             "scale": present.shorten_devices(str(v.scale).replace("`", "")),
                             "effect": present.readable_text(str(getattr(v, "effect", "") or "")),
                             "evidence": present.readable_text(str(v.evidence)),
                             "parts": present.readable_text(_parts_text(v)), "gates": _gates_text(v),
                             "stability": _stability_text(v), "details": present.readable_text(_details(v)),
                             "scored": bool(getattr(v, "scored", True)),
                             "code": getattr(v, "code", "") or code})
        else:
            for claim in ch.claims:
                rows.append({**base, "claim": claim, "label": NOT_YET_RUN, "badge": BADGES[NOT_YET_RUN],
                             "scale": "—", "effect": "", "evidence": note, "parts": "", "gates": "",
                             "stability": "", "details": "", "scored": True, "code": code})
    card = pd.DataFrame(rows, columns=COLUMNS)
    if check:
        check_recorded(card, profile, chapters, store)
    return card


def recorded_chapters(profile: str, chapters: tuple[Chapter, ...], store: Any = None) -> set[str]:
    """The chapters with at least one run record of `profile` in one of their experiments."""
    from kdutils.store.store import ResultStore

    store = store or ResultStore()
    out = set()
    for ch in chapters:
        for exp in ch.experiments:
            if any(rec.get("config", {}).get("profile") == profile for rec in store.records(exp)):
                out.add(ch.name)
                break
    return out


def check_recorded(card: pd.DataFrame, profile: str, chapters: tuple[Chapter, ...], store: Any = None) -> None:
    """RuntimeError when a chapter that has records at `profile` shows every one of its claims as "not yet run":
    its verdict function lost its runs (a moved module, a changed key, a record it cannot find), which the page
    must not hide behind the placeholder. A chapter whose other claims have verdicts may honestly wait on a new
    claim's runs (a claim added before its recipe has run), so one waiting claim alone is no error. The smoke
    profile is exempt: it is the tests' scratch store, which tests fill with partial runs by design."""
    if profile == "smoke":
        return
    waiting = {c for c, labels in card.groupby("chapter")["label"] if set(labels) == {NOT_YET_RUN}}
    if not waiting:
        return
    bad = sorted(waiting & recorded_chapters(profile, chapters, store))
    if bad:
        notes = "; ".join(f"{c}: {card.loc[(card.chapter == c) & (card.label == NOT_YET_RUN), 'evidence'].iloc[0]}"
                          for c in bad)
        raise RuntimeError(f"chapter(s) {', '.join(bad)} have records at profile {profile!r} but show every claim "
                           f"as 'not yet run' ({notes})")


def _scored(card: pd.DataFrame) -> pd.DataFrame:
    return card[card["scored"].astype(bool)] if "scored" in card else card


def counts(card: pd.DataFrame) -> dict[str, int]:
    """How many of the papers' claims carry each label, in the legend's order (labels with no claim left out);
    a chapter's own checks (`scored` False) are not counted."""
    vc = _scored(card)["label"].value_counts()
    return {label: int(vc[label]) for label in BADGES if label in vc}


def summary_sentence(card: pd.DataFrame) -> str:
    """"12 claims from 5 papers: 1 reproduced, ..." for the page's prose (computed, never typed)."""
    scored = _scored(card)
    parts = ", ".join(f"{n} {label}" for label, n in counts(card).items())
    own = len(card) - len(scored)
    extra = f" (plus {own} of the chapters' own checks, not counted)" if own else ""
    return f"{len(scored)} claims from {scored['paper'].nunique()} papers: {parts}{extra}."


def page_link(page: str, from_page: str = "notebooks/scorecard") -> str:
    """The built HTML address of `page` relative to the built `from_page` (both relative to the book root)."""
    import posixpath

    return posixpath.relpath(page + ".html", posixpath.dirname(from_page) or ".")


def claim_href(page: str, claim: str, from_page: str = "notebooks/scorecard") -> str:
    """The address of a claim's verdict on its chapter page (`present.claim_anchor`), relative to `from_page`."""
    return f"{page_link(page, from_page)}#{present.claim_anchor(claim)}"


def scorecard_table(card: pd.DataFrame, from_page: str = "notebooks/scorecard",
                    max_rows: int = 40) -> present.Table:
    """The scorecard as the page shows it: paper (linking to the chapter), claim, verdict (linking to the claim's
    verdict and evidence in the chapter), effect with its interval (or why there is none yet), scale. Every row
    names its paper (a claim read alone, or as a card on a phone, needs it); the repeats are set in grey."""
    first = ~card["chapter"].duplicated()
    no_verdict = card["label"] == NOT_YET_RUN
    own = ~card["scored"].astype(bool) if "scored" in card else pd.Series(False, index=card.index)
    extra = {c: card[c] if c in card else pd.Series("", index=card.index) for c in ("parts", "gates", "stability")}
    shown = card.assign(verdict=card["badge"] + " " + card["label"],
                        claim=card["claim"].where(~own, card["claim"] + " (the chapter's own check, not counted)"),
                        href=card["page"].map(lambda p: page_link(p, from_page)),
                        claim_href=[claim_href(p, c, from_page) for p, c in zip(card["page"], card["claim"])],
                        effect=card["effect"].map(short_interval)  # method names are in each claim's evidence
                        .where(~no_verdict, card["evidence"]).replace("", "—"),
                        **{k: v.replace("", "—") for k, v in extra.items()})
    table = present.results_table(shown, {"paper": "paper", "claim": "claim", "verdict": "verdict (evidence)",
                                          "parts": "parts", "gates": "gates", "effect": "effect (95% interval)",
                                          "stability": "on seed halves", "scale": "scale"},
                                  status=None, device=None, links={"paper": "href", "verdict": "claim_href"},
                                  wrap=("paper", "verdict", "parts", "gates", "effect", "scale"), wide=("claim",),
                                  max_rows=max_rows, css_class="kd-scorecard",
                                  column_classes={"claim": "kd-claim", "verdict": "kd-verdict"})
    table.cell_classes.update({(i, "paper"): "kd-repeat" for i, f in enumerate(first) if not f})
    return table


def evidence_html(card: pd.DataFrame) -> str:
    """The evidence behind each computed verdict, one collapsed <details> per claim (the chapters show it in
    full; here it stays one click away so the table above stays one screen tall)."""
    import html

    parts = []
    for _, r in card[card["label"] != NOT_YET_RUN].iterrows():
        details = str(r.get("details", "") or "")
        lines = "".join(f"<li>{html.escape(x)}</li>" for x in details.split("\n") if x)
        code = str(r.get("code", "") or "")
        parts.append(f"<details><summary>{html.escape(r['badge'])} <b>{html.escape(r['paper'])}</b>: "
                     f"{html.escape(r['claim'])}</summary><p>{html.escape(str(r['evidence']))}</p>"
                     + (f"<ul>{lines}</ul>" if lines else "")
                     + f"<p><i>Scale:</i> {html.escape(r['scale'])}</p>"
                     + (f"<p><i>Code:</i> {html.escape(code)}</p>" if code else "") + "</details>")
    return "".join(parts) or "<p>No claim has a computed verdict yet.</p>"


def records_summary(profile: str, store: Any = None) -> pd.DataFrame:
    """The recorded runs of `profile`, per experiment: how many, on which devices, what status. This is what
    the book's numbers rest on, so the page says it from the records rather than in typed prose."""
    from kdutils.store.store import ResultStore

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
