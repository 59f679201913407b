"""_ext/claim_anchors.py: each verdict's "**Claim.** ..." paragraph gets the id the scorecard links to."""
import sys
from pathlib import Path

from docutils.core import publish_doctree

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_ext"))
import claim_anchors  # noqa: E402

from kdutils.report import present  # noqa: E402

PAGE = """
**Claim.** Alpha beats beta at every temperature we tried.

**Verdict: reproduced** at scale: cpu.

Some prose that mentions **Claim.** in the middle is not a verdict.

**Claim.** Alpha beats beta at every temperature we tried.

**Claim.** Gamma holds.
"""


def test_each_claim_paragraph_gets_the_scorecards_anchor_once():
    doctree = publish_doctree(PAGE)
    added = claim_anchors.add_claim_anchors(doctree)
    assert added == [present.claim_anchor("Alpha beats beta at every temperature we tried."),
                     present.claim_anchor("Gamma holds.")]
    pars = [p for p in doctree.findall(lambda n: n.tagname == "paragraph") if p["ids"]]
    assert [p.astext()[:12] for p in pars] == ["Claim. Alpha", "Claim. Gamma"]  # the repeat keeps no id


def test_a_paragraph_opening_with_an_empty_text_node_counts():
    """MyST-NB's Markdown outputs start their paragraphs with an empty text node before the bold "Claim."."""
    from docutils import nodes
    par = nodes.paragraph("", "", nodes.Text(""), nodes.strong("", "Claim."), nodes.Text(" Delta holds."))
    assert claim_anchors.claim_of(par) == "Delta holds."
