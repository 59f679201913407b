"""TGeo-KD's chapter verdicts switch to the cross-fitted recipe once its records exist, on a synthetic store.

The store holds hand-made records (no training): every selection candidate of the cpu recipe with validation
numbers that make vanilla KD at alpha 0.5 the chosen vanilla arm, then each main final with a test accuracy set
per arm and seed, so the verdicts' inputs are known exactly.
"""
from __future__ import annotations

import pytest

from kdutils.chapters.tgeo import campaign, claims, claims_cf, page_cf, recipe_cf as rc, verdicts
from kdutils.report import scorecard
from kdutils.report.chapter import load
from kdutils.store.store import ResultStore
from kdutils.verdicts.verdict import NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN, REPRODUCED

PROFILE = "cpu"
VANILLA = "vanilla_a0.5"
SEED_NOISE = (0.0, 0.3, -0.2, 0.1, -0.4, 0.2, 0.0, -0.1, 0.3, -0.3, 0.1, -0.2)  # pts, alone's seed-to-seed spread


def _ok(metrics: dict, **extra) -> dict:
    return {"status": "ok", "metrics": metrics, **extra}


def _selected_store(root) -> tuple[ResultStore, dict]:
    """Every selection run recorded; returns the store and the finals' configs (`campaign.final_configs`)."""
    store = ResultStore(root)
    for c in rc.teacher_selection(PROFILE):
        store.put(c, _ok({"val_accuracy": 0.85 if c.train.lr == 0.1 else 0.80, "val_nll": 0.4}))
    res = campaign.resolved(PROFILE, store)
    assert res.teacher_lr == 0.1
    t0 = rc.teacher_part0(PROFILE, res.teacher_lr)
    for arm in rc.CF_ARMS:
        for c in rc.selection_candidates(PROFILE, t0, arm):
            best = arm == VANILLA and c.train.lr == 0.03
            store.put(c, _ok({"val_accuracy": 0.84 if best else 0.80, "val_nll": 0.5}))
    res = campaign.resolved(PROFILE, store)
    assert res.vanilla == VANILLA
    return store, campaign.final_configs(PROFILE, res, t0)


def _acc(arm: str, seed: int, offsets: dict[str, float]) -> float:
    """Test accuracy in pts: 80 + the seed's noise + the arm's offset + a small arm-by-seed term (so that no
    paired difference is exactly constant)."""
    return 80.0 + SEED_NOISE[seed % len(SEED_NOISE)] + offsets.get(arm, 0.0) + 0.05 * ((seed * 7 + sum(map(ord, arm))) % 5)


def _record_main(store: ResultStore, fc: dict, offsets: dict[str, float], skip: tuple = ()) -> None:
    """Main finals at `_acc`; TGeo-KD (both) also carries held-out premise statistics."""
    for arm, by_seed in fc["main"].items():
        for s, c in by_seed.items():
            if (arm, s) in skip:
                continue
            acc = _acc(arm, s, offsets)
            extra = {}
            if arm == "tgeo_both":
                extra["tgeo"] = {"heldout": {"wrong_minus_right": -0.10 - 0.01 * (s % 3),
                                             "kendall_right": 0.20 + 0.01 * (s % 2)}}
            store.put(c, _ok({"accuracy": acc / 100}, **extra))


def _offsets(tgeo_gain: float) -> dict[str, float]:
    """KD has room (+3 pts over alone); every other arm about vanilla; TGeo-KD at vanilla + tgeo_gain."""
    arms = {a: 3.0 for a in rc.CF_ARMS if a != "alone"}
    arms["tgeo_both"] = 3.0 + tgeo_gain
    return arms


def _by_claim(vs) -> dict:
    return {v.claim: v for v in vs}


def test_chapter_verdicts_switch_to_the_cross_fitted_recipe_once_its_main_finals_are_recorded(tmp_path):
    store, fc = _selected_store(tmp_path)
    first = [v.claim for v in claims.first_recipe_verdicts(PROFILE, store)]
    assert [v.claim for v in verdicts.chapter_verdicts(PROFILE, store)] == first  # selections alone: first recipe
    _record_main(store, fc, _offsets(1.0), skip=(("tgeo_frozen", 3),))
    assert not claims_cf.cf_recorded(PROFILE, store)
    assert [v.claim for v in verdicts.chapter_verdicts(PROFILE, store)] == first  # one final missing: still first
    _record_main(store, fc, _offsets(1.0))
    assert claims_cf.cf_recorded(PROFILE, store)
    vs = verdicts.chapter_verdicts(PROFILE, store)
    assert [v.claim for v in vs] == [c.text for c in claims_cf.CLAIMS_CF]
    got = _by_claim(vs)
    assert got[claims.COMPARISON.text].label == REPRODUCED
    assert [g.passed for g in got[claims.COMPARISON.text].gates] == [True]  # the KD-room gate
    assert got[claims.COMPARISON.text].stability is not None  # 12 seeds: recomputed on halves
    assert got[claims.ALPHA.text].label == REPRODUCED  # held-out alpha lower where wrong, rising with ST
    assert got[claims.TABULAR.text].label == NOT_TESTABLE and "not on this machine" in got[claims.TABULAR.text].reason
    for c in (claims.MOTIVATION, claims.GAP, claims.HETERO):  # their runs are not in this store
        assert got[c.text].label == NOT_YET_RUN and "of the" in got[c.text].evidence
    # the same claims judged on what is recorded, when asked for a preliminary look
    prelim = _by_claim(claims_cf.cf_verdicts(PROFILE, store, partial=True))
    assert prelim[claims.GAP.text].label != NOT_YET_RUN and "Preliminary" in prelim[claims.GAP.text].evidence


def test_premise_and_controls_are_shown_and_not_scored_on_the_scorecard(tmp_path):
    store, fc = _selected_store(tmp_path)
    _record_main(store, fc, _offsets(1.0))
    card = scorecard.scorecard(PROFILE, store=store, chapters=(load("tgeo"),))
    own = card[~card.scored.astype(bool)]
    assert set(own.claim) == {claims.ALPHA.text, claims.CONTROLS.text}
    assert set(card.claim) == {c.text for c in claims_cf.CLAIMS_CF}
    counted = sum(scorecard.counts(card).values())
    assert counted == len(claims_cf.CLAIMS_CF) - 2
    assert "plus 2 of the chapters' own checks, not counted" in scorecard.summary_sentence(card)


def test_tgeo_worse_than_vanilla_comes_out_not_reproduced(tmp_path):
    store, fc = _selected_store(tmp_path)
    _record_main(store, fc, _offsets(-1.0))
    got = _by_claim(verdicts.chapter_verdicts(PROFILE, store))
    v = got[claims.COMPARISON.text]
    assert v.label == NOT_REPRODUCED and "core part contradicted" in v.reason
    assert got[claims.CONTROLS.text].label == NOT_REPRODUCED  # worse than one learned alpha for all samples


def test_no_room_makes_the_comparison_not_testable(tmp_path):
    store, fc = _selected_store(tmp_path)
    offsets = {a: o - 3.0 for a, o in _offsets(1.0).items()}  # vanilla KD = alone: KD adds nothing
    _record_main(store, fc, offsets)
    v = _by_claim(verdicts.chapter_verdicts(PROFILE, store))[claims.COMPARISON.text]
    assert v.label == NOT_TESTABLE and "KD has room" in v.reason


def test_page_section_says_not_yet_run_without_records_and_formats_numbers_from_them(tmp_path):
    empty = ResultStore(tmp_path / "empty")
    assert "**Not yet run**" in page_cf.status_markdown(PROFILE, empty)
    assert "not yet run" in page_cf.verdicts_markdown(PROFILE, empty)
    assert "Claim." not in page_cf.verdicts_markdown(PROFILE, empty)  # no anchor may land on an absent verdict
    store, fc = _selected_store(tmp_path / "cf")
    assert "not yet run" in page_cf.room_view(PROFILE, store).data  # selections only: no gate row without runs
    assert "**Not yet complete**" in page_cf.status_markdown(PROFILE, store)
    _record_main(store, fc, _offsets(1.0))
    assert "main result" in page_cf.status_markdown(PROFILE, store)
    assert "✔ passes" in page_cf.room_view(PROFILE, store).to_html()
    md = page_cf.verdicts_markdown(PROFILE, store)
    assert md.count("**Claim.**") == len(claims_cf.CLAIMS_CF)
    # the finals' paired SD of TGeo-KD minus vanilla KD, recomputed by hand from the same records
    import numpy as np

    offsets = _offsets(1.0)
    d = [_acc("tgeo_both", s, offsets) - _acc(VANILLA, s, offsets) for s in rc.cf_recipe(PROFILE).seeds]
    assert np.std(d, ddof=1) > 0.01
    assert f"observed paired SD, {float(np.std(d, ddof=1)):.2f} pts over {len(d)} seeds" in page_cf.power_markdown(PROFILE, store)


@pytest.mark.parametrize("profile", ["smoke", "cpu"])
def test_status_names_the_campaign_command(tmp_path, profile):
    md = page_cf.status_markdown(profile, ResultStore(tmp_path))
    assert f"--profile {profile} --shard 1/2" in md and "--shard 2/2" in md


def test_a_failed_room_gate_is_the_recipe_s_result_and_makes_the_unrun_claims_not_testable(tmp_path):
    """The campaign trains a student's other arms only where its gate passes: with the gate arms alone recorded
    and no room, the chapter shows this recipe, and every claim whose arms were not run is 'not testable'."""
    store, fc = _selected_store(tmp_path)
    no_room = {"alone": 0.0, VANILLA: 0.2}
    for arm in ("alone", VANILLA):
        for s, c in fc["main"][arm].items():
            store.put(c, _ok({"accuracy": _acc(arm, s, no_room) / 100}))
    pr = claims_cf.progress(PROFILE, store)
    assert pr.gates["main"].decided and not pr.gates["main"].passed and pr.complete
    got = _by_claim(verdicts.chapter_verdicts(PROFILE, store))
    assert list(got) == [c.text for c in claims_cf.CLAIMS_CF]
    for c in (claims.MOTIVATION, claims.COMPARISON, claims.INTER, claims.CONTROLS, claims.ALPHA):
        v = got[c.text]
        assert v.label == NOT_TESTABLE and "KD has room (main student)" in v.reason, (c.text, v.reason)
    assert got[claims.GAP.text].label == NOT_TESTABLE and got[claims.HETERO.text].label == NOT_TESTABLE
    assert not got[claims.ALPHA.text].scored and got[claims.COMPARISON.text].scored
    assert "KD has no room for the main student" in page_cf.status_markdown(PROFILE, store)
    assert "not run at this scale" in page_cf.alpha_missing_markdown(PROFILE, store)
    assert "not measured" in page_cf.power_markdown(PROFILE, store)
    # the same gate arms with room, the other arms not yet run: the first recipe stays the chapter's
    store2, fc2 = _selected_store(tmp_path / "room")
    for arm in ("alone", VANILLA):
        for s, c in fc2["main"][arm].items():
            store2.put(c, _ok({"accuracy": _acc(arm, s, _offsets(1.0)) / 100}))
    assert claims_cf.progress(PROFILE, store2).gates["main"].passed and not claims_cf.cf_recorded(PROFILE, store2)


def test_room_diagnosis_names_the_teachers_and_the_narrower_widths(monkeypatch):
    """The 'why no room' paragraph is built from the records: teachers' test accuracy against each student alone,
    and the narrower-width sentence only when every narrower width has less room than the main width."""
    import pandas as pd

    from kdutils.chapters.tgeo import page_cf, report_cf

    monkeypatch.setattr(page_cf, "_no_room", lambda profile, store, attempt=1: True)
    monkeypatch.setattr(report_cf, "teachers_table", lambda profile, store=None, attempt=1: pd.DataFrame(
        {"test acc. (%)": [87.5, 87.0], "acc. out of fold (%)": [88.0, 88.2]}))
    monkeypatch.setattr(report_cf, "arms_table", lambda profile, store=None, attempt=1: pd.DataFrame(
        {"student": ["main", "lenet5"], "arm": ["alone", "alone"], "mean": [85.0, 88.0]}))
    room = {"student": ["main", "cap:8", "cap:16"], "vanilla minus alone (pts)": [0.05, -0.5, -0.2]}
    monkeypatch.setattr(report_cf, "room_table", lambda profile, store=None, attempt=1: pd.DataFrame(room))
    text = page_cf.room_diagnosis_markdown("cpu", store=object(), attempt=1)
    assert "87.50% and 87.00% on the test set" in text and "2.50 pts above the main student alone (85.00%" in text
    assert "lenet5 alone 88.00% is at or above the best teacher" in text
    assert "width 8 -0.50 pts, width 16 -0.20 pts, against +0.05 pts at width 32" in text
    room["vanilla minus alone (pts)"] = [0.05, 0.9, -0.2]  # a narrower width with more room: no such sentence
    assert "narrower student does not help" not in page_cf.room_diagnosis_markdown("cpu", store=object(), attempt=1)
    monkeypatch.setattr(page_cf, "_no_room", lambda profile, store, attempt=1: False)
    assert page_cf.room_diagnosis_markdown("cpu", store=object(), attempt=1) == ""
