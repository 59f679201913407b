"""TGeo-KD attempts 2 and 3 ("held-out teacher", and with 2,500 labels): the teacher's pool is disjoint from the student's images on the real
cpu split, its keys never equal an attempt-1 key, the dry run plans it, and the page shows it as the main result
beside attempt 1 ("not testable at this scale") once its main result is decided, on synthetic stores.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from kdutils.chapters.tgeo import campaign, claims, claims_cf, heldout, page_cf, recipe_cf as rc, verdicts
from kdutils.store.store import ResultStore
from kdutils.training import runner
from kdutils.verdicts.verdict import NOT_REPRODUCED, REPRODUCED

PROFILE = "cpu"
VANILLA = "vanilla_a0.5"
RATES = campaign.Rates(teacher=2.13e-3, mlp=2e-5, conv_student=2e-4, tgeo_ratio=3.0, source="fixed for the test")
SEED_NOISE = (0.0, 0.3, -0.2, 0.1, -0.4, 0.2, 0.0, -0.1, 0.3, -0.3, 0.1, -0.2)


# ---- the pool -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("attempt", [2, 3])
def test_pool_is_disjoint_from_the_students_labelled_and_validation_images_on_the_cpu_split(attempt):
    """On the loaded Fashion-MNIST training split: `index_sets` reproduces the student's own split (the images
    `prepare_data` gives it), and the 30,000-image pool shares no index with its labelled or validation images."""
    r = rc.cf_recipe(PROFILE, attempt)
    t = rc.teacher_config(PROFILE, 0.3, attempt)
    try:
        whole = runner.prepare_data(replace(t.data, n_train=None, val_size=0)).train
    except FileNotFoundError as err:  # pragma: no cover - the data root is part of the project's setup
        pytest.skip(f"Fashion-MNIST not found: {err}")
    sets = heldout.index_sets(t.data, len(whole), heldout.pool_size_of(t))
    assert (len(sets["val"]), len(sets["labelled"]), len(sets["pool"])) == (r.val_size, r.n_train, 30_000)
    for a, b in (("pool", "labelled"), ("pool", "val"), ("labelled", "val")):
        assert not torch.isin(sets[a], sets[b]).any(), f"{a} and {b} share images"
    assert len(torch.unique(sets["pool"])) == 30_000
    student = runner.prepare_data(t.data)  # what every student of the attempt trains and is selected on
    assert torch.equal(student.train.x, whole.x[sets["labelled"]])
    assert torch.equal(student.train.y, whole.y[sets["labelled"]])
    assert torch.equal(student.val.x, whole.x[sets["val"]])


def test_index_sets_refuse_a_pool_larger_than_what_is_left():
    t = rc.teacher_config(PROFILE, 0.3, 2)
    with pytest.raises(ValueError, match="only 45000 training images are left"):
        heldout.index_sets(t.data, 60_000, 45_001)
    assert len(heldout.index_sets(t.data, 60_000, 45_000)["pool"]) == 45_000


def test_pool_role_round_trips_and_rejects_bad_sizes():
    assert heldout.pool_size_of(rc.teacher_config(PROFILE, 0.3, 2)) == 30_000
    for profile in ("smoke", PROFILE):
        assert [rc.attempt_of(rc.teacher_config(profile, 0.3, a)) for a in (1, 2, 3)] == [1, 2, 3]
    stray = replace(rc.teacher_config(PROFILE, 0.3, 2), data=replace(rc.teacher_config(PROFILE, 0.3, 2).data, n_train=7))
    with pytest.raises(ValueError, match="matches no attempt's recipe"):
        rc.attempt_of(stray)
    with pytest.raises(ValueError, match="positive int"):
        heldout.pool_role(0)
    with pytest.raises(ValueError, match="unknown attempt 4"):
        rc.cf_recipe(PROFILE, 4)


# ---- keys and plan --------------------------------------------------------------------------------------------
def _all_keys(profile: str, attempt: int, store: ResultStore, stages=range(len(campaign.STAGES))) -> set[str]:
    return {c.key() for s in stages for it in campaign.stage_items(profile, s, store, RATES, attempt=attempt)
            for c in it.configs}


@pytest.mark.parametrize("profile", ["smoke", PROFILE])
def test_attempts_keys_never_equal_another_attempts_except_the_shared_teacher_selection(tmp_path, profile):
    store = ResultStore(tmp_path)
    keys = {a: _all_keys(profile, a, store) for a in rc.ATTEMPTS}
    shared = {c.key() for c in rc.teacher_selection(profile, 1)}
    for a in rc.ATTEMPTS:  # later attempts reuse attempt 1's recorded teacher-rate selection
        assert {c.key() for c in rc.teacher_selection(profile, a)} == shared
    for a in rc.ATTEMPTS:
        for b in rc.ATTEMPTS:
            if a < b:
                assert keys[a] & keys[b] == shared, (a, b)
    for a in (2, 3):
        t0 = rc.teacher_config(profile, 0.3, a)
        specs = {rc.student_config(profile, t0, arm, 0.1).model_kwargs["arm_spec"]["teacher_logits"]
                 for arm in rc.CF_ARMS}
        assert specs == {"heldout"}


def test_attempt_three_trains_mlp128_on_2500_labels_with_its_own_pool_teacher(tmp_path):
    r = rc.cf_recipe(PROFILE, 3)
    t2, t3 = rc.teacher_config(PROFILE, 0.3, 2), rc.teacher_config(PROFILE, 0.3, 3)
    assert t3.key() != t2.key() and t3.data.n_train == 2_500 and t3.data.val_size == t2.data.val_size
    c = rc.student_config(PROFILE, t3, "vanilla_a0.7", 0.03)
    assert c.data.n_train == 2_500 and c.model_kwargs["hidden"] == [128] and c.teacher == t3
    text = campaign.dry_run(PROFILE, 2, ResultStore(tmp_path), RATES, attempt=3)
    assert "attempt 3 (held-out teacher, 2,500 labels)" in text and "--attempt 3 --shard 2/2" in text
    assert [t for t, *_ in campaign.other_students(r)] == ["cap:8", "cap:32", "cap:512", "het:lenet5"]


def test_the_pool_teacher_fits_the_budget_and_the_dry_run_plans_attempt_two(tmp_path):
    r = rc.cf_recipe(PROFILE, 2)
    assert 2130e-6 * r.teacher_pool * r.teacher_epochs / 3600 <= 0.3  # the brief's ResNet-8 rate and budget
    store = ResultStore(tmp_path)
    (teacher,) = campaign.stage_items(PROFILE, 1, store, RATES, attempt=2)
    assert teacher.configs[0].role == "ho_teacher_pool30000"
    assert teacher.cost == pytest.approx(2.13e-3 * 30_000 * 16)
    sel = campaign.stage_items(PROFILE, 2, store, RATES, attempt=2)
    roles = {c.role for it in sel for c in it.configs}
    for tag in ("cap:8", "cap:16", "cap:128", "het:lenet5"):  # every other student: its own alone and vanilla rates
        assert {f"select:{tag}:{a}" for a in campaign.OWN_ARMS} <= roles
    text = campaign.dry_run(PROFILE, 2, store, RATES, attempt=2)
    assert "attempt 2 (held-out teacher)" in text and "stage 1 teachers: 1 items (0 recorded), 0.28 core-h" in text
    assert "--attempt 2 --shard 1/2" in text and "--attempt 2 --shard 2/2" in text
    assert "stage 1 teachers: 2 items" in campaign.dry_run(PROFILE, 2, store, RATES, attempt=1)


def test_the_command_runs_the_newest_attempt_unless_told(monkeypatch):
    calls = []
    monkeypatch.setattr(campaign, "run_campaign", lambda *a, **k: calls.append(k))
    monkeypatch.setattr(campaign, "dry_run", lambda *a, **k: calls.append(k) or "")
    campaign.main(["--profile", PROFILE, "--shard", "1/2"])
    campaign.main(["--profile", PROFILE, "--attempt", "1", "--dry-run"])
    assert calls[0]["attempt"] == rc.LATEST == 3 and calls[1]["attempt"] == 1


def test_own_selection_gives_the_conv_students_vanilla_arm_its_own_rate(tmp_path):
    """LeNet-5's vanilla arm takes the rate its own selection chose, not the rate chosen for LeNet-5 alone."""
    store, _ = _attempt_store(tmp_path, attempt=2)
    t0 = rc.teacher_config(PROFILE, 0.1, 2)
    for arm, lr in (("alone", 0.1), (VANILLA, 0.01)):
        for c in rc.selection_candidates(PROFILE, t0, arm, model="lenet5", model_kwargs={}, tag="het:lenet5:"):
            store.put(c, _ok({"val_accuracy": 0.9 if c.train.lr == lr else 0.8, "val_nll": 0.4}))
    res = campaign.resolved(PROFILE, store, 2)
    het = campaign.final_configs(PROFILE, res, t0)["hetero"]["lenet5"]
    assert het["alone"][0].train.lr == 0.1 and het[VANILLA][0].train.lr == 0.01 and het["tgeo_both"][0].train.lr == 0.01


# ---- the page and the verdicts --------------------------------------------------------------------------------
def _ok(metrics: dict, **extra) -> dict:
    return {"status": "ok", "metrics": metrics, **extra}


def _attempt_store(root, attempt: int, store: ResultStore | None = None) -> tuple[ResultStore, dict]:
    """Every main selection of `attempt` recorded (vanilla KD at alpha 0.5 chosen, the teacher at lr 0.1)."""
    store = store or ResultStore(root)
    for c in rc.teacher_selection(PROFILE, attempt):
        store.put(c, _ok({"val_accuracy": 0.85 if c.train.lr == 0.1 else 0.80, "val_nll": 0.4}))
    t0 = rc.teacher_config(PROFILE, 0.1, attempt)
    for arm in rc.CF_ARMS:
        for c in rc.selection_candidates(PROFILE, t0, arm):
            store.put(c, _ok({"val_accuracy": 0.84 if arm == VANILLA and c.train.lr == 0.03 else 0.80, "val_nll": 0.5}))
    res = campaign.resolved(PROFILE, store, attempt)
    assert res.vanilla == VANILLA and res.teacher_lr == 0.1
    return store, campaign.final_configs(PROFILE, res, t0)


def _record(store: ResultStore, by_arm: dict, offsets: dict[str, float]) -> None:
    for arm, by_seed in by_arm.items():
        for s, c in by_seed.items():
            acc = 80.0 + SEED_NOISE[s % len(SEED_NOISE)] + offsets.get(arm, 0.0) + 0.05 * ((s * 7 + len(arm)) % 5)
            extra = ({"tgeo": {"heldout": {"wrong_minus_right": -0.1 - 0.01 * (s % 3), "kendall_right": 0.2}}}
                     if arm == "tgeo_both" else {})
            store.put(c, _ok({"accuracy": acc / 100}, **extra))


def _two_attempts(tmp_path, tgeo_gain: float) -> ResultStore:
    """Attempt 1: its main gate recorded and failing (vanilla KD = alone). Attempt 2: KD has room (+3 pts) and every
    main final recorded, TGeo-KD at vanilla + `tgeo_gain`."""
    store, fc1 = _attempt_store(tmp_path, 1)
    _record(store, {a: fc1["main"][a] for a in ("alone", VANILLA)}, {})
    _, fc2 = _attempt_store(tmp_path, 2, store)
    _record(store, fc2["main"], {a: 3.0 + (tgeo_gain if a == "tgeo_both" else 0.0) for a in rc.CF_ARMS if a != "alone"})
    return store


def test_attempt_one_alone_is_shown_as_not_testable_and_attempt_two_not_yet_run(tmp_path):
    store, fc1 = _attempt_store(tmp_path, 1)
    _record(store, {a: fc1["main"][a] for a in ("alone", VANILLA)}, {})
    assert claims_cf.shown_attempt(PROFILE, store) == 1
    assert claims_cf.attempt_outcome(PROFILE, store, 1) == "not testable at this scale"
    assert claims_cf.attempt_outcome(PROFILE, store, 2) == "not yet run"
    md = page_cf.attempts_markdown(PROFILE, store)
    assert "**Attempt 1 (cross-fitted teachers)**: the main result" in md and "--attempt 2 --dry-run" in md


def test_an_attempt_with_its_first_records_is_in_progress_not_yet_run(tmp_path):
    store, fc1 = _attempt_store(tmp_path, 1)
    _record(store, {a: fc1["main"][a] for a in ("alone", VANILLA)}, {})
    assert claims_cf.attempt_outcome(PROFILE, store, 2) == "not yet run"  # the shared teacher-rate runs only
    store.put(rc.teacher_config(PROFILE, 0.1, 2), _ok({"accuracy": 0.9}))
    assert claims_cf.attempt_outcome(PROFILE, store, 2).startswith("in progress (its selection runs")
    _attempt_store(tmp_path, 2, store)
    assert claims_cf.attempt_outcome(PROFILE, store, 2).startswith("in progress (its KD-room gate")
    assert claims_cf.shown_attempt(PROFILE, store) == 1


def test_attempt_two_is_the_main_result_once_decided_with_attempt_one_beside_it(tmp_path):
    store = _two_attempts(tmp_path, tgeo_gain=1.0)
    assert claims_cf.shown_attempt(PROFILE, store) == 2
    vs = {v.claim: v for v in verdicts.chapter_verdicts(PROFILE, store)}
    comp = vs[claims.COMPARISON.text]
    assert comp.label == REPRODUCED and [g.passed for g in comp.gates] == [True]
    assert "attempt 2 (held-out teacher)" in comp.scale
    assert "attempt 1 (cross-fitted teachers): not testable at this scale" in comp.scale
    md = page_cf.attempts_markdown(PROFILE, store)
    assert "**Attempt 2 (held-out teacher)**: the main result" in md
    assert "**Attempt 1 (cross-fitted teachers)**: not testable at this scale (its KD-room gate below)" in md
    others = {a: (head, view) for a, head, view in page_cf.other_attempts(PROFILE, store)}
    assert sorted(others) == [1, 3] and "not yet run" in others[3][0]
    head, view = others[1]
    assert "not testable at this scale" in head and "✘ fails" in view.to_html()
    assert "✔ passes" in page_cf.room_view(PROFILE, store).to_html()  # the shown attempt's gate
    assert "attempt 2: held-out teacher" in page_cf.protocol_markdown(PROFILE, store)
    assert "main result** (attempt 2" in page_cf.status_markdown(PROFILE, store)


def test_tgeo_worse_than_vanilla_in_attempt_two_comes_out_not_reproduced(tmp_path):
    store = _two_attempts(tmp_path, tgeo_gain=-1.0)
    v = {v.claim: v for v in verdicts.chapter_verdicts(PROFILE, store)}[claims.COMPARISON.text]
    assert v.label == NOT_REPRODUCED and "attempt 2" in v.scale


# ---- the smoke campaign of attempt 2, as far as the room gate ----------------------------------------------------
def test_smoke_campaign_of_attempt_two_trains_the_pool_teacher_and_students_that_learn_from_its_logits(tmp_path):
    """Stages 0-3 at smoke (seconds): the teacher is trained on its pool only (overlap 0, n_train = the pool), every
    student record says it learned from held-out logits, and those logits are the pool teacher's own predictions."""
    import os
    from pathlib import Path

    from kdutils.chapters.tgeo.runs import _setup
    from kdutils.metrics import predict_logits

    if not (Path(os.environ.get("KDUTILS_DATA", "")) / "FashionMNIST").exists():
        pytest.skip("Fashion-MNIST is not under KDUTILS_DATA")
    store = ResultStore(tmp_path)
    gates = campaign.run_campaign("smoke", 0, 1, store=store, rates=RATES, poll_s=0.01, max_wait_s=0.05,
                                  log=lambda m: None, last_stage=campaign.GATE, attempt=2)
    assert gates and all(g.decided for g in gates)
    res = campaign.resolved("smoke", store, 2)
    t0 = rc.teacher_config("smoke", res.teacher_lr, 2)
    rec = store.get(t0)
    assert rec["n_train"] == 300 and rec["heldout"]["pool"] == 300 and rec["heldout"]["overlap"] == 0
    students = [store.get(c) for it in campaign.stage_items("smoke", campaign.GATE, store, RATES, attempt=2)
                for c in it.configs]
    assert students and all(r["config"]["model_kwargs"]["arm_spec"]["teacher_logits"] == "heldout" for r in students)
    cfg = campaign.final_configs("smoke", res, t0)["main"][res.vanilla][0]
    splits, teacher, t_train, _ = _setup(cfg, store, torch.device("cpu"), False, [])
    want = predict_logits(heldout.load_pool_teacher(t0, store, torch.device("cpu")), splits.train.x,
                          device=torch.device("cpu"), mean=splits.mean, std=splits.std)
    assert torch.allclose(t_train.cpu(), want, atol=1e-5)


def test_a_failed_heldout_gate_is_explained_from_its_records_and_names_the_next_attempt(tmp_path):
    store, fc2 = _attempt_store(tmp_path, 2)
    _record(store, {a: fc2["main"][a] for a in ("alone", VANILLA)}, {VANILLA: 0.2})
    store.put(rc.teacher_config(PROFILE, 0.1, 2), _ok({"accuracy": 0.9012, "val_accuracy": 0.91},
                                                     heldout={"pool": 30_000, "overlap": 0, "pool_accuracy": 0.99,
                                                              "student_train_accuracy": 0.9345}))
    assert claims_cf.attempt_outcome(PROFILE, store, 2) == "not testable at this scale"
    text = page_cf.room_diagnosis_markdown(PROFILE, store, attempt=2)
    assert "90.12% on the test set and 93.45% on the student's 10,000 labelled images" in text
    assert "MLP-32 (main) +0.20" in text and "Attempt 3 (held-out teacher, 2,500 labels)" in text
    assert "MLP-128 the main student" in text
    assert page_cf.room_diagnosis_markdown(PROFILE, store, attempt=3) == ""  # nothing recorded, nothing to explain


def test_the_learned_alpha_table_reads_every_fw_arms_records(tmp_path):
    from kdutils.chapters.tgeo import report_cf

    store, fc = _attempt_store(tmp_path, 2)
    for arm, (mean, share) in {"tgeo_const": (0.9998, 1.0), "tgeo_frozen": (0.5, 0.0),
                               "tgeo_both": (0.9, 0.4)}.items():
        for s, c in fc["main"][arm].items():
            store.put(c, _ok({"accuracy": 0.84 + 0.001 * s},
                             tgeo={"alpha_mean": mean, "alpha_share_above_0.99": share if s else 0.9}))
    t = report_cf.alpha_by_arm(PROFILE, store, 2).set_index("arm")
    assert list(t.index) == ["tgeo_both", "tgeo_const", "tgeo_frozen"]  # the others are not recorded
    assert t.loc["tgeo_const", "mean α"] == pytest.approx(0.9998) and t.loc["tgeo_const", "seeds mostly saturated"] == 10
    assert t.loc["tgeo_both", "seeds mostly saturated"] == 1  # only seed 0 has more than half above 0.99
    assert t.loc["tgeo_both", "share α > 0.99"] == pytest.approx((9 * 0.4 + 0.9) / 10)
    assert t.loc["tgeo_frozen", "f_w rate"] is None or t.loc["tgeo_frozen", "f_w rate"] != t.loc["tgeo_frozen", "f_w rate"]
    html = page_cf.alpha_by_arm_view(PROFILE, store, 2)._repr_html_()
    assert "constant-input f_w (one learned alpha)" in html and "99.0%" in html and "—" in html
