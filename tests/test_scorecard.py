"""kdutils.scorecard: every chapter's claims in one table, computed from the chapters' verdict functions."""
import re
import sys
import types

import pandas as pd
import pytest

from kdutils import scorecard
from kdutils.verdict import Verdict


def _chapter(module, claims=("claim A", "claim B")):
    return scorecard.Chapter("x", "Someone et al. (2020)", "A title", "notebooks/x_report", module, tuple(claims))


@pytest.fixture
def fake_module(monkeypatch):
    def make(name, fn=None):
        mod = types.ModuleType(name)
        if fn is not None:
            mod.chapter_verdicts = fn
        monkeypatch.setitem(sys.modules, name, mod)
        return mod
    return make


def test_missing_function_lists_claims_as_not_yet_run(fake_module):
    fake_module("fake_chapter_nofn")
    card = scorecard.scorecard("cpu", chapters=(_chapter("fake_chapter_nofn"),))
    assert list(card["claim"]) == ["claim A", "claim B"]
    assert set(card["label"]) == {"not yet run"}
    assert set(card["badge"]) == {"⏳"}


def test_unwritten_chapter_and_missing_module_do_not_crash():
    card = scorecard.scorecard("cpu", chapters=(_chapter(None, ["c"]), _chapter("kdutils.experiments.nope", ["d"])))
    assert list(card["label"]) == ["not yet run", "not yet run"]


def test_verdicts_come_from_the_chapter_function(fake_module):
    seen = {}

    def chapter_verdicts(profile, store=None):
        seen["args"] = (profile, store)
        return [Verdict("the claim", "reproduced", "the evidence", "profile `cpu` on cpu: x86_64, 1 threads")]

    fake_module("fake_chapter_ok", chapter_verdicts)
    store = object()
    card = scorecard.scorecard("cpu", store=store, chapters=(_chapter("fake_chapter_ok"),))
    assert seen["args"] == ("cpu", store)
    row = card.iloc[0]
    assert (row.claim, row.label, row.badge) == ("the claim", "reproduced", "✅")
    assert row.scale == "profile cpu on CPU (1 thread)"  # device shortened, backticks dropped
    assert row.effect == ""  # Verdict without an effect field


def test_effect_is_shown_when_the_verdict_has_one(fake_module):
    V = types.SimpleNamespace
    fake_module("fake_chapter_eff", lambda profile: [V(claim="c", label="inconclusive at this scale", evidence="e",
                                                       scale="s", effect="-17 errors [-25, -9], paired t, n=3")])
    card = scorecard.scorecard("cpu", chapters=(_chapter("fake_chapter_eff"),))
    assert card.iloc[0].effect == "-17 errors [-25, -9], paired t, n=3"
    html = scorecard.scorecard_table(card).to_html()
    assert "-17 errors [-25, -9]" in html and "❔ inconclusive at this scale" in html


def test_every_planned_chapter_is_listed_with_its_claims():
    card = scorecard.scorecard("cpu")
    assert set(card["chapter"]) == {c.key for c in scorecard.CHAPTERS}
    for key in ("tgeo",):
        rows = card[card.chapter == key]
        assert len(rows) >= 3 and set(rows["label"]) == {"not yet run"}
    assert len(card[card.chapter == "ls_kd"]) == 5  # one verdict per claim (recorded or not yet run)
    assert len(card[card.chapter == "does_kd_work"]) == 6  # one verdict per claim (recorded or not yet run)


def test_table_links_each_paper_to_its_page_and_has_no_nan():
    card = scorecard.scorecard("cpu")
    html = scorecard.scorecard_table(card).to_html()
    assert 'href="hinton_report.html"' in html and 'href="tgeo_report.html"' in html
    assert 'href="ls_kd_report.html"' in html
    assert not re.search(r">\s*(NaN|nan|None)\s*<", html)
    assert scorecard.summary_sentence(card).startswith(f"{len(card)} claims from {card['paper'].nunique()} papers")


def test_records_summary_counts_runs_and_devices(tmp_path):
    import json
    d = tmp_path / "exp"
    d.mkdir()
    for i, (status, dev) in enumerate([("ok", "cpu: x86_64, 1 threads"), ("diverged", "cpu: x86_64, 1 threads"),
                                       ("ok", "cpu: x86_64, 2 threads")]):
        (d / f"{i}.json").write_text(json.dumps({"status": status, "key": str(i), "provenance": {"device": dev},
                                                 "config": {"profile": "cpu", "experiment": "exp"}}))
    from kdutils.store import ResultStore
    s = scorecard.records_summary("cpu", ResultStore(tmp_path))
    assert s.iloc[0].runs == 3
    assert s.iloc[0].devices == "CPU (1 thread) (2), CPU (2 threads) (1)"
    assert "diverged (1)" in s.iloc[0].statuses
    assert scorecard.records_summary("full", ResultStore(tmp_path)).empty
    assert isinstance(s, pd.DataFrame)


def test_a_claim_without_verdict_says_why_in_the_effect_column():
    card = scorecard.scorecard("cpu", chapters=(_chapter(None, ["c"]),))
    t = scorecard.scorecard_table(card)
    assert t.frame.iloc[0]["effect (95% interval)"] == "chapter not yet written"
    assert t.frame.iloc[0]["verdict (evidence)"] == "⏳ not yet run"
    assert 'href="x_report.html">⏳ not yet run</a>' in t.to_html()
