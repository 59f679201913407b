"""kdutils.report.scorecard: every chapter's claims in one table, computed from the chapters' verdict functions."""
import json
import re
import types

import pytest

from kdutils.report import scorecard
from kdutils.report.chapter import Chapter, all_chapters
from kdutils.store.store import ResultStore
from kdutils.training.runner import MissingRunError
from kdutils.verdicts.verdict import Verdict


def _chapter(verdicts, claims=("claim A", "claim B"), experiments=("x_exp",)):
    """A chapter as the registry would give it, with a verdict function of the test's choosing."""
    return Chapter(name="x", order=1, paper="Someone et al. (2020)", title="A title", page="notebooks/x_report",
                   pages=("notebooks/x_report",), experiments=tuple(experiments), claims=tuple(claims),
                   recipe=lambda profile: None, run_all=lambda profile="cpu": [], verdicts=verdicts)


def _not_recorded(profile, store=None):
    raise MissingRunError("hinton_mnist/abc: no record")


def test_a_missing_run_lists_the_claims_as_not_yet_run():
    card = scorecard.scorecard("cpu", chapters=(_chapter(_not_recorded),))
    assert list(card["claim"]) == ["claim A", "claim B"]
    assert set(card["label"]) == {"not yet run"}
    assert set(card["badge"]) == {"⏳"}
    assert "a run is not recorded" in card.iloc[0].evidence


def test_a_chapter_with_records_that_shows_not_yet_run_fails(tmp_path):
    """The book build must not hide a chapter that lost its runs behind the placeholder."""
    (tmp_path / "x_exp").mkdir()
    (tmp_path / "x_exp" / "k.json").write_text(json.dumps({"status": "ok", "key": "k",
                                                           "config": {"profile": "cpu", "experiment": "x_exp"}}))
    store = ResultStore(tmp_path)
    with pytest.raises(RuntimeError, match="x have records at profile 'cpu'"):
        scorecard.scorecard("cpu", store=store, chapters=(_chapter(_not_recorded),))
    assert set(scorecard.scorecard("full", store=store, chapters=(_chapter(_not_recorded),))["label"]) == {
        "not yet run"}  # no record at that profile: the placeholder is right


def test_a_new_claim_waiting_for_its_runs_beside_judged_ones_is_no_error(tmp_path):
    """A claim added before its recipe has run may say "not yet run" while the chapter's other claims have
    verdicts; only a chapter whose every claim lost its runs fails the build."""
    (tmp_path / "x_exp").mkdir()
    (tmp_path / "x_exp" / "k.json").write_text(json.dumps({"status": "ok", "key": "k",
                                                           "config": {"profile": "cpu", "experiment": "x_exp"}}))
    store = ResultStore(tmp_path)

    def one_judged(profile, store=None):
        return [Verdict("claim A", "inconclusive at this scale", "ev", "scale"),
                Verdict("claim B", "not yet run", "its recipe has not run", "scale")]

    card = scorecard.scorecard("cpu", store=store, chapters=(_chapter(one_judged),))
    assert list(card["label"]) == ["inconclusive at this scale", "not yet run"]


def test_the_smoke_scratch_store_may_hold_partial_runs(tmp_path):
    """Tests fill the smoke store with partial runs (a unit test's teacher without its students), so a smoke
    scorecard shows them as waiting instead of failing the notebook that draws it."""
    (tmp_path / "x_exp").mkdir()
    (tmp_path / "x_exp" / "k.json").write_text(json.dumps({"status": "ok", "key": "k",
                                                           "config": {"profile": "smoke", "experiment": "x_exp"}}))
    store = ResultStore(tmp_path)
    card = scorecard.scorecard("smoke", store=store, chapters=(_chapter(_not_recorded),))
    assert set(card["label"]) == {"not yet run"}


def test_verdicts_come_from_the_chapter_function():
    seen = {}

    def chapter_verdicts(profile, store=None):
        seen["args"] = (profile, store)
        return [Verdict("the claim", "reproduced", "the evidence", "profile `cpu` on cpu: x86_64, 1 threads")]

    store = object()
    card = scorecard.scorecard("cpu", store=store, chapters=(_chapter(chapter_verdicts),), check=False)
    assert seen["args"] == ("cpu", store)
    row = card.iloc[0]
    assert (row.claim, row.label, row.badge) == ("the claim", "reproduced", "✅")
    assert row.scale == "profile cpu on CPU (1 thread)"  # device shortened, backticks dropped
    assert row.effect == ""  # Verdict without an effect field


def test_effect_is_shown_when_the_verdict_has_one():
    V = types.SimpleNamespace
    card = scorecard.scorecard("cpu", chapters=(_chapter(lambda profile: [V(
        claim="c", label="inconclusive at this scale", evidence="e", scale="s",
        effect="-17 errors [-25, -9], paired t, n=3")]),))
    assert card.iloc[0].effect == "-17 errors [-25, -9], paired t, n=3"
    html = scorecard.scorecard_table(card).to_html()
    assert "-17 errors [-25, -9]" in html and "❔ inconclusive at this scale" in html
    # the table keeps each interval and its n and leaves the method to the claim's evidence
    card = scorecard.scorecard("cpu", chapters=(_chapter(lambda profile: [V(
        claim="c", label="inconclusive at this scale", evidence="e", scale="s",
        effect="tau 1: +0.56 pts [0.20, 0.91], two-level t over outer-unit means 95%, n=6 (6 outer x 2 inner; sd "
               "between 0.00, within 0.82); tau 2: -1.0 pts [-2.0, 0.1], paired t 95%, n=5 (paper -72)")]),))
    cell = scorecard.scorecard_table(card).frame.iloc[0]["effect (95% interval)"]
    assert cell == "tau 1: +0.56 pts [0.20, 0.91], n=6; tau 2: -1.0 pts [-2.0, 0.1], n=5 (paper -72)"


def test_every_planned_chapter_is_listed_with_its_claims():
    card = scorecard.scorecard("cpu")
    assert list(dict.fromkeys(card["chapter"])) == [c.name for c in all_chapters()]
    for key in ("tgeo",):
        rows = card[card.chapter == key]
        assert len(rows) >= 3 and set(rows["label"]) == {"not yet run"}
    assert len(card[card.chapter == "ls_kd"]) == 7  # recipe v3: six claims of the paper and one unscored extra
    assert len(card[card.chapter == "does_kd_work"]) == 8  # one verdict per claim (recorded or not yet run)


def test_table_links_each_paper_to_its_page_and_has_no_nan():
    card = scorecard.scorecard("cpu")
    html = scorecard.scorecard_table(card).to_html()
    assert 'href="hinton_report.html"' in html and 'href="tgeo_report.html"' in html
    assert 'href="ls_kd_report.html"' in html
    assert not re.search(r">\s*(NaN|nan|None)\s*<", html)
    scored = card[card.scored]
    assert scorecard.summary_sentence(card).startswith(f"{len(scored)} claims from {scored['paper'].nunique()} papers")


def test_parts_gates_stability_and_unscored_checks_are_shown():
    from kdutils.verdicts import gates, rules, stats

    claim = rules.Claim("A and B", parts=(rules.Claim("a", "greater", key="a"), rules.Claim("b", "greater", key="b")))
    parts = [rules.find(claim.parts[0], stats.t_interval([1.0, 1.1, 1.2])),
             rules.find(claim.parts[1], stats.t_interval([-1.0, -1.1, -1.2]))]
    ok = gates.premise("room", stats.t_interval([2.0, 2.1, 2.2]), 1.0)
    j = rules.judge(claim, parts, [ok])
    stab = rules.Stability(j.label, j.label, "inconclusive at this scale", (0, 2), (1,))
    own = rules.Claim("own check", scored=False)
    verdicts = [rules.to_verdict(j, "e", "s", stability_=stab, code="3 of 3 records: code not provably in a commit"),
                rules.to_verdict(rules.judge(own, parts[0]), "e", "s")]
    card = scorecard.scorecard("cpu", chapters=(_chapter(lambda profile: verdicts),), check=False)
    row = card.iloc[0]
    assert row.label == "mixed" and row.parts == "✅ a · ❌ b" and row.gates == "✔ room" and row.stability == "weaker"
    assert "room: passes" in row.details and "smallest detectable effect" in row.details
    assert scorecard.counts(card) == {"mixed": 1}  # the chapter's own check is listed, not counted
    assert scorecard.summary_sentence(card).endswith("(plus 1 of the chapters' own checks, not counted).")
    html = scorecard.scorecard_table(card).to_html()
    assert "✅ a · ❌ b" in html and "own check (the chapter" in html
    assert scorecard.uncommitted_sentence(card).startswith("1 of 2 verdicts rest on records whose code is not")


def test_records_summary_counts_runs_and_devices(tmp_path):
    d = tmp_path / "exp"
    d.mkdir()
    for i, (status, dev) in enumerate([("ok", "cpu: x86_64, 1 threads"), ("diverged", "cpu: x86_64, 1 threads"),
                                       ("ok", "cpu: x86_64, 2 threads")]):
        (d / f"{i}.json").write_text(json.dumps({"status": status, "key": str(i), "provenance": {"device": dev},
                                                 "config": {"profile": "cpu", "experiment": "exp"}}))
    s = scorecard.records_summary("cpu", ResultStore(tmp_path))
    assert s.iloc[0].runs == 3
    assert s.iloc[0].devices == "CPU (1 thread) (2), CPU (2 threads) (1)"
    assert "diverged (1)" in s.iloc[0].statuses
    assert scorecard.records_summary("full", ResultStore(tmp_path)).empty


def test_a_claim_without_verdict_says_why_in_the_effect_column():
    card = scorecard.scorecard("cpu", chapters=(_chapter(_not_recorded, ["c"]),))
    t = scorecard.scorecard_table(card)
    assert t.frame.iloc[0]["effect (95% interval)"].startswith("a run is not recorded")
    assert t.frame.iloc[0]["verdict (evidence)"] == "⏳ not yet run"
    assert 'href="x_report.html#claim-c">⏳ not yet run</a>' in t.to_html()


def test_every_row_names_its_paper_and_links_the_verdict_to_its_claim():
    card = scorecard.scorecard("cpu", chapters=(_chapter(_not_recorded, ["First claim here.", "Second claim, other words."]),))
    html = scorecard.scorecard_table(card).to_html()
    assert html.count(">Someone et al. (2020)</a>") == 2  # no row with an empty link
    assert 'class="kd-table kd-scorecard"' in html and html.count('kd-repeat') == 1  # the repeat is marked
    assert 'href="x_report.html#claim-first-claim-here">' in html
    assert 'href="x_report.html#claim-second-claim-other-words">' in html
    assert 'data-label="claim"' in html and 'kd-claim' in html and 'kd-verdict' in html
    assert 'kd-empty" data-label="parts">—<' in html  # an empty field a phone's card leaves out


def test_claim_anchors_are_unique_on_each_chapter_page():
    from kdutils.report import present
    for ch in all_chapters():
        anchors = [present.claim_anchor(c) for c in ch.claims]
        assert len(set(anchors)) == len(anchors), f"{ch.name}: two claims share an anchor: {anchors}"
    assert present.claim_anchor("At tau = 1, a student is at least as good") == "claim-at-tau-1-a-student-is-at"  # 8 words, "=" among them
    assert present.claim_anchor("At τ = 1, a student is") == present.claim_anchor("At tau = 1, a student is")
    with pytest.raises(ValueError, match="needs words"):
        present.claim_anchor("  ")

