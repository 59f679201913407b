"""Sphinx extension: an anchor on every claim's verdict, so the scorecard and the synthesis page land on it.

A chapter displays each verdict as Markdown that opens with "**Claim.** <the claim>" (`Verdict.to_markdown`).
When a page is resolved for writing, the first paragraph of each such verdict gets the id `present.claim_anchor(<claim>)`
("claim-" and the claim's first words as a slug), the same function the scorecard's links are built with. A
claim shown twice on one page (its verdict at another profile, further down) keeps the id on its first showing.
Doing it here, on the page, keeps the anchors out of the verdict objects and out of every chapter's code.
"""
from __future__ import annotations

from docutils import nodes
from sphinx.application import Sphinx

LEAD = "Claim."


def _claim_anchor(text: str) -> str:
    from kdutils.report.present import claim_anchor  # the scorecard's own slug (one implementation)

    return claim_anchor(text)


def claim_of(par: nodes.paragraph) -> str | None:
    """The claim's text when `par` opens with a bold "Claim.", else None."""
    children = list(par.children)
    while children and isinstance(children[0], nodes.Text) and not children[0].astext().strip():
        children.pop(0)  # MyST-NB's Markdown outputs open a paragraph with an empty text node
    if not children or not isinstance(children[0], nodes.strong) or children[0].astext().strip() != LEAD:
        return None
    text = "".join(child.astext() for child in children[1:]).strip()
    return text or None


def add_claim_anchors(doctree: nodes.document) -> list[str]:
    """Give each "**Claim.** ..." paragraph of the page its claim's id; returns the ids added."""
    added = []
    for par in doctree.findall(nodes.paragraph):
        claim = claim_of(par)
        if claim is None:
            continue
        anchor = _claim_anchor(claim)
        if anchor in doctree.ids or anchor in added or any(anchor in n["ids"] for n in doctree.findall(nodes.Element)):
            continue  # the same claim again on this page: the first showing keeps the anchor
        par["ids"].append(anchor)
        doctree.ids[anchor] = par
        added.append(anchor)
    return added


def _doctree_resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    add_claim_anchors(doctree)


def setup(app: Sphinx) -> dict:
    # After the post-transforms: MyST-NB turns a cell's Markdown output into paragraphs only then.
    app.connect("doctree-resolved", _doctree_resolved)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
