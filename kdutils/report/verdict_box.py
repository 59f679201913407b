"""The verdict box: what a chapter found, at the top of its page, before any table.

Why: a reader in a hurry wants the verdict first. Each box shows one claim, its verdict, the rule's one-line
reason, its gates and parts when the rule has them, the effect with its interval, the scale it holds at, and a
link down (or across, from a chapter's landing page) to the claim's evidence, where the chapter displays the
verdict in full under the claim's anchor (`present.claim_anchor`). A box is kept short: passing gates by name,
each part with its interval but not the interval's method, and the effect line only where the parts do not
already show its intervals. Everything in a box comes from the chapter's `Verdict` objects; nothing is typed.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any, Iterable

from kdutils.report import present
from kdutils.report.numbers import short_interval
from kdutils.verdicts import verdict as _v

_CSS = ("<style>.kd-vboxes{display:grid;grid-template-columns:repeat(auto-fill,minmax(20em,1fr));gap:0.6em;"
        "margin:0.6em 0 1em}.kd-vbox{border:1px solid #ccc;border-left:5px solid #888;border-radius:6px;"
        "padding:0.45em 0.75em;font-size:0.92em;line-height:1.4}.kd-vbox p{margin:0.25em 0}"
        ".kd-vbox .kd-vb-head{font-weight:600;font-size:1.05em}.kd-vbox .kd-vb-n{color:#666;font-weight:400}"
        ".kd-vbox .kd-vb-k{color:#666;font-size:0.85em;text-transform:uppercase;letter-spacing:0.02em}"
        ".kd-vbox ul{margin:0.1em 0 0.2em 1.1em;padding:0}.kd-vb-reproduced{border-left-color:#2e7d32}"
        ".kd-vb-partly{border-left-color:#f9a825}.kd-vb-mixed{border-left-color:#8e24aa}"
        ".kd-vb-not{border-left-color:#c62828}.kd-vb-open{border-left-color:#78909c}</style>")


def _tone(label: str) -> str:
    """A CSS class per family of labels (the box's coloured edge); any other label is "open"."""
    tones = {_v.REPRODUCED: "kd-vb-reproduced", _v.PARTLY: "kd-vb-partly",
             getattr(_v, "MIXED", None): "kd-vb-mixed", _v.NOT_REPRODUCED: "kd-vb-not"}
    return tones.get(label, "kd-vb-open")


def _describe(item: Any) -> str:
    """A gate's or a part's own sentence (`describe()` when it has one)."""
    fn = getattr(item, "describe", None)
    return str(fn()) if callable(fn) else str(item)


_INTERVAL = re.compile(r"\[[^\[\]]+\]")


def _part_line(p: Any) -> str:
    """A part in a box: badge, key, label and its effect, short. A part without an effect keeps its reason
    (often why it is not testable). The part's full sentence stays in the evidence under the claim."""
    badge = _v.BADGES.get(getattr(p, "label", ""), "")
    key, effect = getattr(p, "key", None), str(getattr(p, "effect", "") or "")
    if key is None:
        text = _describe(p)
    elif effect:
        text = f"{key}: {p.label}, {short_interval(effect)}"
    else:
        reason = short_interval(str(getattr(p, "reason", "") or ""))
        text = f"{key}: {p.label} ({reason})" if reason else f"{key}: {p.label}"
    return f"<li>{html.escape(badge)} {_plain(text)}</li>"


def _gates_html(gates: tuple[Any, ...]) -> str:
    """Passing gates by name on one line (their measurements are in the evidence); failed ones in full."""
    passed = [g for g in gates if getattr(g, "passed", None) is True]
    failed = [g for g in gates if getattr(g, "passed", None) is not True]
    items = [f"<li>✗ {_plain(_describe(g))}</li>" if getattr(g, "passed", None) is False
             else f"<li>{_plain(_describe(g))}</li>" for g in failed]
    if passed:
        items.append("<li>" + " · ".join(f"✓ {_plain(getattr(g, 'name', g))}" for g in passed) + "</li>")
    return '<p><span class="kd-vb-k">gates</span></p><ul>' + "".join(items) + "</ul>"


def _plain(text: Any) -> str:
    """Verdict text for HTML: backticks dropped, devices shortened, escaped."""
    return html.escape(present.readable_text(present.shorten_devices(str(text).replace("`", ""))))


def box_html(v: Any, n: int | None = None, href: str | None = None, scale: bool = True) -> str:
    """One claim's box. `href` is where its evidence is (default: the claim's anchor on this page); `scale`
    False leaves the scale out (the boxes above it name one scale for all)."""
    label = str(v.label)
    badge = getattr(v, "badge", "")
    href = href or "#" + present.claim_anchor(v.claim)
    num = f'<span class="kd-vb-n">Claim {n} · </span>' if n is not None else ""
    out = [f'<div class="kd-vbox {_tone(label)}">',
           f'<p class="kd-vb-head">{num}{html.escape(str(badge))} {html.escape(label)}</p>',
           f"<p>{html.escape(str(v.claim))}</p>"]
    reason = str(getattr(v, "reason", "") or "")
    gates = tuple(getattr(v, "gates", ()) or ())
    failed = [g for g in gates if getattr(g, "passed", True) is False]
    if failed and all(_describe(g) in reason for g in failed):  # the reason is the gates' own text: name them only
        reason = ("failed gate" + ("s" if len(failed) > 1 else "") + ": "
                  + "; ".join(str(getattr(g, "name", g)) for g in failed) + " (measured under gates)")
    if reason:
        out.append(f'<p><span class="kd-vb-k">why</span> {_plain(reason)}</p>')
    if gates:
        out.append(_gates_html(gates))
    parts = tuple(getattr(v, "parts", ()) or ())
    shown = ""
    if parts:
        shown = "".join(_part_line(p) for p in parts)
        out.append('<p><span class="kd-vb-k">parts</span></p><ul>' + shown + "</ul>")
    effect = str(getattr(v, "effect", "") or "")
    intervals = [html.escape(i) for i in _INTERVAL.findall(effect)]
    if effect and not (intervals and all(i in shown for i in intervals)):  # not when the parts show them all
        out.append(f'<p><span class="kd-vb-k">effect</span> {_plain(effect)}</p>')
    if scale:
        out.append(f'<p><span class="kd-vb-k">scale</span> {_plain(v.scale)}</p>')
    out.append(f'<p><a href="{html.escape(href, quote=True)}">The evidence and the rule →</a></p></div>')
    return "".join(out)


@dataclass
class VerdictBoxes:
    """The boxes of a chapter's claims; displays as HTML in a notebook (`_repr_html_`)."""

    html: str

    def _repr_html_(self) -> str:
        return self.html


def verdict_boxes(verdicts: Iterable[Any], evidence_page: str | None = None,
                  from_page: str | None = None) -> VerdictBoxes:
    """One box per verdict, numbered in order. Evidence links go to each claim's anchor on this page, or, with
    `evidence_page` (e.g. "notebooks/tgeo_report") and `from_page` (the page showing the boxes), on that page."""
    from kdutils.report.scorecard import page_link

    verdicts = list(verdicts)
    scales = {str(v.scale) for v in verdicts}
    shared = len(scales) == 1 and len(verdicts) > 1
    items = []
    for n, v in enumerate(verdicts, start=1):
        href = None
        if evidence_page is not None:
            href = page_link(evidence_page, from_page or evidence_page) + "#" + present.claim_anchor(v.claim)
        items.append(box_html(v, n, href, scale=not shared))
    foot = f'<p class="kd-vb-scale"><b>Scale of every verdict above:</b> {_plain(scales.pop())}.</p>' if shared else ""
    return VerdictBoxes(_CSS + '<div class="kd-vboxes">' + "".join(items) + "</div>" + foot)





def chapter_boxes(name: str, profile: str, from_page: str | None = None) -> VerdictBoxes:
    """The boxes of chapter `name` at `profile`, from the same verdicts the scorecard shows. On the chapter's
    own report page leave `from_page` None (links stay on the page); elsewhere give the page showing them."""
    from kdutils.report import scorecard
    from kdutils.report.chapter import load

    chapter = load(name)  # a one-line error naming the chapters there are
    verdicts, note = scorecard.chapter_verdicts(chapter, profile)
    if not verdicts:
        return VerdictBoxes(f"<p>{html.escape(_v.NOT_YET_RUN.capitalize())}: {html.escape(note)}.</p>")
    page = None if from_page is None else chapter.page
    return verdict_boxes(verdicts, evidence_page=page, from_page=from_page)

__all__ = ["VerdictBoxes", "box_html", "chapter_boxes", "verdict_boxes"]
