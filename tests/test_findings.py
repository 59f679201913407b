"""kdutils.report.findings: the "What we found" page, written from the scorecard's rows (never typed)."""
import pandas as pd

from kdutils.report import findings, scorecard
from kdutils.verdicts import verdict as v


def _card(rows):
    """A scorecard frame for one made-up paper: rows of (claim, label, effect)."""
    return pd.DataFrame([{"chapter": "x", "paper": "Someone et al. (2020)", "title": "A title",
                          "page": "notebooks/x_report", "claim": c, "label": lab,
                          "badge": v.BADGES.get(lab, ""), "scale": "profile cpu, CPU (1 thread)",
                          "effect": eff, "evidence": "e"} for c, lab, eff in rows])


def test_claims_are_grouped_by_their_label_with_effect_and_link():
    card = _card([("Alpha holds.", v.REPRODUCED, "+2.0 pts [1.0, 3.0], n=5"),
                  ("Beta fails.", v.NOT_REPRODUCED, "-1.0 pts [-2.0, -0.5], n=5"),
                  ("Gamma unclear.", v.INCONCLUSIVE, "+0.1 pts [-1.0, 1.2], n=5"),
                  ("Delta unrun.", v.NOT_YET_RUN, "")])
    md = findings.findings_markdown(card)
    held, did_not, open_ = md.index("**Held** (1 of 4)"), md.index("**Did not hold** (1 of 4)"), \
        md.index("**Open at this scale** (2 of 4)")
    assert held < md.index("Alpha holds.") < did_not < md.index("Beta fails.") < open_ < md.index("Gamma unclear.")
    assert '<a href="x_report.html#claim-alpha-holds">Alpha holds.</a> Effect: +2.0 pts \\[1.0, 3.0\\], n=5.' in md
    assert "more seeds or a longer recipe" in md.split("Gamma unclear.")[1].split("\n")[0]
    assert "Delta unrun.</a> *Not yet run*" in md  # no effect line for a claim without runs
    assert "`python -m kdutils run x --profile full`" in md
    assert "**Scale.** profile cpu, CPU (1 thread)." in md


def test_a_label_the_page_does_not_know_gets_its_own_group():
    card = _card([("Alpha holds.", v.REPRODUCED, ""), ("Odd one.", "somewhat reproduced", "")])
    md = findings.findings_markdown(card)
    assert "**Somewhat reproduced** (1 of 2)" in md and "Odd one." in md
    table = findings.overview_table(card)
    assert table.iloc[0]["claims"] == 2 and table.iloc[0]["verdicts"] == "✅ 1 · somewhat reproduced 1"


def test_no_section_for_an_empty_group_and_counts_add_up():
    card = _card([("A one.", v.REPRODUCED, ""), ("B two.", v.REPRODUCED, ""), ("C three.", v.INCONCLUSIVE, "")])
    md = findings.findings_markdown(card)
    assert "Did not hold" not in md and "Held in part" not in md
    row = findings.overview_table(card).iloc[0]
    assert row["claims"] == 3 and row["verdicts"] == "✅ 2 · ❔ 1"  # the legend's order, empty labels left out


def test_every_verdict_label_has_a_group_and_a_glossary_entry():
    """A label the rules add must be placed on the page and defined in the glossary (the page links terms)."""
    grouped = {lab for _, labs in findings.label_groups() for lab in labs}
    missing = [lab for lab in v.LABELS if lab not in grouped]
    assert not missing, f"labels with no group on the findings page: {missing}"
    from pathlib import Path
    glossary = (Path(__file__).resolve().parents[1] / "book" / "glossary.md").read_text()
    terms = {line.strip() for line in glossary.splitlines() if line and not line.startswith((" ", "#", "`"))}
    undefined = [lab for lab in v.LABELS if lab not in terms]
    assert not undefined, f"verdict labels missing from book/glossary.md: {undefined}"


def test_the_page_reads_the_real_scorecard():
    from kdutils.report.chapter import load
    card = scorecard.scorecard("cpu", chapters=(load("hinton"),))
    md = findings.findings_markdown(card)
    assert md.startswith("## Hinton, Vinyals & Dean (2015)")
    assert all(c[:30] in md.replace("&#x27;", "'") for c in card["claim"])


def test_what_this_scale_cannot_show_lists_the_open_and_the_partial_claims():
    card = _card([("Alpha holds.", v.REPRODUCED, ""), ("Gamma unclear.", v.INCONCLUSIVE, "+0.1 [-1, 1]"),
                  ("Theta gated.", v.NOT_TESTABLE, ""), ("Beta half.", v.PARTLY, "")])
    md = findings.cannot_show_markdown(card)
    assert "one scale: profile cpu, CPU (1 thread)." in md
    assert "**Left open at this scale** (2 of 4)" in md and "Gamma unclear." in md and "Theta gated." in md
    assert "a gate failed" in md.split("Theta gated.")[1]
    assert "**Held only in part** (1 of 4)" in md and "Beta half." in md
    assert "Alpha holds." not in md
    assert "`python -m kdutils run x --profile full`" in md
