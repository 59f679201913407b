"""kdutils.report.verdict_box: the verdict boxes at the top of a chapter, built from its Verdict objects."""
import types

from kdutils.report import verdict_box
from kdutils.verdicts import verdict as v


def _verdict(claim="Alpha beats beta.", label=v.REPRODUCED, **kw):
    base = dict(claim=claim, label=label, evidence="e", scale="profile `cpu` on cpu: x86_64, 1 threads",
                effect="+2.0 pts [1.0, 3.0], paired t 95%, n=5", badge=v.BADGES.get(label, ""))
    return types.SimpleNamespace(**{**base, **kw})


def test_a_box_shows_claim_verdict_effect_scale_and_links_to_the_evidence():
    html = verdict_box.verdict_boxes([_verdict(), _verdict("Gamma < delta & more.", v.NOT_REPRODUCED)]).html
    assert html.count('class="kd-vbox ') == 2
    assert "Claim 1 · " in html and "Claim 2 · " in html
    assert "✅ reproduced" in html and "Alpha beats beta." in html
    assert "+2.0 pts [1.0, 3.0], paired t 95%, n=5" in html
    assert "profile cpu on CPU (1 thread)" in html  # backticks dropped, device shortened
    assert html.count("profile cpu on CPU") == 1 and "Scale of every verdict above" in html  # said once for all
    assert 'href="#claim-alpha-beats-beta"' in html and "kd-vb-reproduced" in html and "kd-vb-not" in html
    assert "Gamma &lt; delta &amp; more." in html  # escaped


def test_from_a_landing_page_the_link_goes_to_the_report_page():
    html = verdict_box.verdict_boxes([_verdict()], evidence_page="notebooks/x_report", from_page="book/x").html
    assert 'href="../notebooks/x_report.html#claim-alpha-beats-beta"' in html


def test_gates_parts_and_reason_are_shown_when_the_verdict_has_them():
    part = types.SimpleNamespace(label=v.NOT_REPRODUCED, describe=lambda: "part (b): NLL worse")
    gate = types.SimpleNamespace(describe=lambda: "teacher clearly better: passes")
    html = verdict_box.box_html(_verdict(label=v.PARTLY, parts=(part,), gates=(gate,), reason="one part held"))
    assert "❌ part (b): NLL worse" in html and "teacher clearly better: passes" in html
    assert "one part held" in html and "kd-vb-partly" in html
    assert "parts" in html and "gates" in html
    plain = verdict_box.box_html(_verdict(label=v.INCONCLUSIVE, effect=""))
    assert "gates" not in plain and "effect" not in plain and "kd-vb-open" in plain


def test_different_scales_stay_in_their_boxes():
    html = verdict_box.verdict_boxes([_verdict(), _verdict("Other claim.", scale="profile full on H100")]).html
    assert "Scale of every verdict" not in html and "profile full on H100" in html and "profile cpu on CPU" in html


def test_a_failed_gates_text_is_shown_once_under_gates_and_only_named_under_why():
    from kdutils.verdicts.gates import Gate

    room = Gate("KD has room (main student)", False, "vanilla KD minus alone does not lie wholly above 1",
                {"mean": 0.325, "low": 0.149})
    teacher = Gate("teacher converged", True, "curve flat")
    html = verdict_box.box_html(_verdict(label=v.NOT_TESTABLE, gates=(teacher, room), reason=room.describe()))
    assert html.count("does not lie wholly above 1") == 1
    assert "failed gate: KD has room (main student) (measured under gates)" in html
    own = verdict_box.box_html(_verdict(label=v.NOT_TESTABLE, gates=(room,), reason="the teacher is too weak"))
    assert "the teacher is too weak" in own and "failed gate:" not in own  # a reason of its own stays


def test_a_box_shows_parts_with_their_intervals_short_and_passing_gates_by_name():
    from kdutils.verdicts.gates import Gate
    from kdutils.verdicts.rules import Finding

    long_tail = ", two-level t over outer-unit means 95%, n=6 (6 outer x 2 inner; sd between 0.51, within 0.95)"
    parts = (Finding("tau 1", v.REPRODUCED, "the interval lies wholly above 0 pts",
                     effect="+0.56 pts [0.20, 0.91]" + long_tail),
             Finding("tau 2", v.NOT_REPRODUCED, "the other side",
                     effect="+1.68 pts [0.80, 2.57], paired t 95%, n=6 (paper -72)"),
             Finding("row c", v.NOT_TESTABLE, "no temperature passes the fidelity gate"))
    gates = (Gate("teachers converged", True, "all 12 converged", {"lowest": 0.972}),
             Gate("one learning rate", True, "every arm at 0.3"), Gate("KD has room", False, "below the margin"))
    effect = "tau 1: +0.56 pts [0.20, 0.91]" + long_tail + "; tau 2: +1.68 pts [0.80, 2.57], paired t 95%, n=6"
    html = verdict_box.box_html(_verdict(label=v.NOT_REPRODUCED, parts=parts, gates=gates, effect=effect))
    assert "✅ tau 1: reproduced, +0.56 pts [0.20, 0.91], n=6</li>" in html  # method and variance split cut
    assert "tau 2: not reproduced, +1.68 pts [0.80, 2.57], n=6 (paper -72)" in html  # the paper's figure stays
    assert "row c: not testable at this scale (no temperature passes the fidelity gate)" in html  # no effect: why
    assert "two-level t" not in html and "lies wholly above" not in html
    assert "✓ teachers converged · ✓ one learning rate" in html and "all 12 converged" not in html
    assert "✗ KD has room: fails (below the margin)" in html  # a failed gate stays in full
    assert "kd-vb-k\">effect" not in html  # every interval of the effect is in the parts: not said twice
    extra = verdict_box.box_html(_verdict(parts=parts[:1], effect=effect))
    assert "kd-vb-k\">effect" in extra and "[0.80, 2.57]" in extra  # an interval the parts lack keeps the line
