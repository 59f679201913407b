"""The TGeo-KD chapter end to end: the dispatch trains each arm's own loss, run_all at smoke into a throw-away
store (records, motivation cells, alpha evidence, resume and load-only), and the verdict rules on empty and
synthetic records."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from kdutils.chapters.tgeo import plan as tgeo, claims, verdicts
from kdutils.config import TrainConfig
from kdutils.data.device_loader import DeviceLoader
from kdutils.store.store import ResultStore
from kdutils.sweeps.tuning import ROLE_PREFIX
from kdutils.training.runner import MissingRunError
from kdutils.verdicts.verdict import MIXED, NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN, PARTLY, REPRODUCED


def test_dispatch_hands_each_arm_its_own_rule(monkeypatch, tmp_path):
    import kdutils.chapters.tgeo.runs as chapter

    seen = []
    monkeypatch.setattr(chapter, "run_arm", lambda cfg, spec, store, **kw: seen.append((cfg.role, spec, kw)) or {})
    teacher = tgeo.teacher_config("smoke")
    for arm in tgeo.ARMS:
        cfg = tgeo.arm_config("smoke", teacher, arm, 0.05)
        tgeo.run_config(cfg, ResultStore(tmp_path))
        tgeo.run_config(cfg.with_(role=ROLE_PREFIX + arm), ResultStore(tmp_path))
    assert [s for _, s, _ in seen] == [tgeo.ARMS[a] for a in tgeo.ARMS for _ in range(2)]
    assert all(kw["fusion_lr"] == tgeo.recipe("smoke").fusion_lr for _, _, kw in seen)
    with pytest.raises(ValueError, match="does not match arm"):
        tgeo.run_config(tgeo.arm_config("smoke", teacher, "vanilla_a0.3", 0.05).with_(alpha=0.9))
    with pytest.raises(ValueError, match="student arms"):
        tgeo.run_config(teacher)


def test_fit_tgeo_stops_before_the_student_update_that_diverges(one_thread):
    from kdutils.chapters.tgeo.fusion_net import FusionRatioNet
    from kdutils.chapters.tgeo.training import fit_tgeo

    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 4
    x = torch.randn(40, 6, generator=g)
    teacher = torch.randn(40, 4, generator=g)
    student = nn.Linear(6, 4)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    res = fit_tgeo(student, FusionRatioNet.for_classes(4, "both"), DeviceLoader(x, y, 20),
                   DeviceLoader(x, y, 20, seed=1), TrainConfig(epochs=1, batch_size=20, lr=0.1),
                   teacher_logits=teacher, max_loss=1e-6, progress=False)
    assert res.status == "diverged" and "weights kept from before that update" in res.message
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())  # the update was skipped


def test_chapter_verdicts_on_an_empty_store(tmp_path):
    vs = verdicts.chapter_verdicts("cpu", ResultStore(tmp_path))
    assert [v.claim for v in vs] == list(claims.CLAIMS) and {v.label for v in vs} == {NOT_YET_RUN}
    from kdutils.report.chapter import load

    ch = load("tgeo")
    assert ch.claims == tuple(claims.CLAIMS) and ch.verdicts is verdicts.chapter_verdicts


def test_run_all_at_smoke(tmp_path, monkeypatch, one_thread):
    store = ResultStore(tmp_path)
    recs = tgeo.run_all("smoke", store=store, progress=False)
    r = tgeo.recipe("smoke")
    assert recs[0]["config"]["role"] == "teacher"
    assert len(recs) == 1 + len(tgeo.ARMS) * len(r.seeds)
    for rec in recs[1:]:
        arm = rec["config"]["role"]
        assert rec["status"] in ("ok", "diverged", "chance") and rec["arm"]["rule"] == tgeo.ARMS[arm].rule
        assert "val_accuracy" in rec["metrics"] and "agreement" in rec["metrics"]
        assert rec["provenance"]["device"] and rec["wall_time_s"] > 0
        assert len(rec["provenance"]["kdutils_sha256"]) == 64 and "kdutils_dirty" in rec["provenance"]
        if tgeo.ARMS[arm].rule == "vanilla" and rec["status"] == "ok":
            assert rec["history"][0]["alpha_mean"] == pytest.approx(tgeo.ARMS[arm].alpha)
        if tgeo.ARMS[arm].rule == "tgeo" and rec["status"] == "ok":
            t = rec["tgeo"]
            assert t["fw_relative_change"] > 0 and t["alpha_std"] > 0 and t["alpha_max"] > t["alpha_min"]
            assert set(t["groups"]) == {f"g{k}" for k in range(1, 6)} | {f"g'{k}" for k in range(1, 6)}
            assert sum(sum(d["hist"]) for d in t["groups"].values()) == t["n"]
        if arm == "ada" and rec["status"] == "ok":
            assert rec["history"][0]["alpha_std"] > 0  # a per-sample rule
    cells = tgeo.motivation_cells("smoke", store)
    assert len(cells) == 10 * len(tgeo.MOTIVATION_ALPHAS) * len(r.seeds)
    assert store.get(tgeo.bench_config("smoke"))["metrics"]["ratio_bilevel_over_plain"] > 0
    vs = verdicts.chapter_verdicts("smoke", store)
    assert len(vs) == 3 and all(v.label != NOT_YET_RUN for v in vs)
    assert tgeo.selection_table("smoke", store).chosen.sum() == 1 + len(tgeo.ARMS)
    # resume and load-only: everything is loaded, nothing trains
    monkeypatch.setenv("KDUTILS_LOAD_ONLY", "1")
    again = tgeo.run_all("smoke", store=store, progress=False)
    assert [x["key"] for x in again] == [x["key"] for x in recs]
    with pytest.raises(MissingRunError):
        tgeo.run_all("smoke", store=ResultStore(tmp_path / "empty"), progress=False)


# ---- verdict rules on synthetic records -------------------------------------------------------------------------

def _put(store, cfg, acc, val_acc=None, status="ok", **extra):
    metrics = {"accuracy": acc, "val_accuracy": acc if val_acc is None else val_acc, "val_nll": 1.0 - acc,
               "nll": 0.3, "ece": 0.02, "agreement": 0.9}
    store.put(cfg, {"status": status, "message": "", "metrics": metrics if status == "ok" else {}, "history": [],
                    "n_train": 1000, "n_test": 10_000, "wall_time_s": 1.0,
                    "provenance": {"device": "cpu: x86_64, 1 threads"}, **extra})


def _synthetic(store, acc_of, seeds=(0, 1, 2), tgeo_evidence=None, motivation=None):
    profile = "smoke"
    for c in tgeo.teacher_selection(profile):
        _put(store, c, 0.95)
    teacher = tgeo.teacher_config(profile, tgeo.teacher_selection(profile)[0].train.lr)
    _put(store, teacher, 0.95)
    for arm in tgeo.ARMS:
        for c in tgeo.arm_selection(profile, teacher, arm):
            _put(store, c, acc_of(arm, 0))
        for s in seeds:
            extra = {"tgeo": tgeo_evidence(s)} if tgeo_evidence and arm == tgeo.METHOD_ARM else {}
            _put(store, tgeo.arm_config(profile, teacher, arm, c.train.lr, s), acc_of(arm, s), **extra)
    if motivation:
        lr = tgeo.arm_selection(profile, teacher, "vanilla_a0.5")[0].train.lr
        for s in seeds:
            for role, c in tgeo.motivation_configs(profile, teacher, lr, s).items():
                if role == "motivation_pre":
                    _put(store, c, 0.8)
                    continue
                cells = {g: motivation(g, c.alpha, s) for g in [f"g{k}" for k in range(1, 6)] +
                         [f"g'{k}" for k in range(1, 6)]}
                _put(store, c, 0.8, motivation={"alpha": c.alpha, "train": cells, "val": cells})


@pytest.fixture
def three_seeds(monkeypatch):
    from dataclasses import replace

    monkeypatch.setitem(tgeo.RECIPES, "smoke", replace(tgeo.RECIPES["smoke"], seeds=(0, 1, 2)))


def test_comparison_verdict_on_synthetic_records(tmp_path, three_seeds):
    noise = {0: 0.001, 1: -0.002, 2: 0.0015}
    good = ResultStore(tmp_path / "good")  # TGeo-KD +5 pts over every arm, KD has room (+5 pts over alone)
    _synthetic(good, lambda arm, s: (0.90 if arm == tgeo.METHOD_ARM else 0.80 if arm == "alone" else 0.85) + noise[s])
    v = claims.comparison_verdict("smoke", good)
    assert v.label == REPRODUCED, v.reason
    assert [g.passed for g in v.gates] == [True, True] and len(v.parts) == 5 and v.stability is not None
    bad = ResultStore(tmp_path / "bad")  # worse than every baseline: a contradicted core part
    _synthetic(bad, lambda arm, s: (0.82 if arm == tgeo.METHOD_ARM else 0.80 if arm == "alone" else 0.85)
               + noise[s] * (2 if arm == "ada" else 1))
    assert claims.comparison_verdict("smoke", bad).label == NOT_REPRODUCED
    no_room = ResultStore(tmp_path / "no_room")  # vanilla KD no better than alone: not testable, whatever TGeo does
    _synthetic(no_room, lambda arm, s: (0.88 if arm == tgeo.METHOD_ARM else 0.80 if arm.startswith(("vanilla", "alone"))
                                        else 0.85) + noise[s])
    v = claims.comparison_verdict("smoke", no_room)
    assert v.label == NOT_TESTABLE and "KD has room: fails" in v.reason
    partly = ResultStore(tmp_path / "partly")  # beats vanilla KD, ties the baselines within noise
    _synthetic(partly, lambda arm, s: (0.88 if arm == tgeo.METHOD_ARM else 0.78 if arm == "alone"
                                       else 0.80 if arm.startswith("vanilla") else 0.88 + 2 * noise[s]))
    assert claims.comparison_verdict("smoke", partly).label == PARTLY


def _alpha_evidence(rises: bool):
    rng = np.random.default_rng(0)

    def evidence(seed):
        st = rng.uniform(0, 1, 300)
        alpha = np.clip((st if rises else -st) + 0.1 * rng.normal(size=300), 0, 1)
        return {"wrong_minus_right": -0.2 - 0.01 * seed, "spearman_right": 0.3, "fw_relative_change": 0.5,
                "alpha_std": 0.1, "alpha_q05": 0.3, "alpha_q95": 0.8, "alpha_mean": 0.6, "n_teacher_wrong": 50,
                "groups": {}, "scatter": {"st": st.tolist(), "alpha": alpha.tolist(), "teacher_right": [True] * 300}}
    return evidence


def test_motivation_and_alpha_verdicts_on_synthetic_records(tmp_path, three_seeds):
    def cells(sign):  # teacher right: the slope on alpha rises (sign 1) or falls (-1) with the group
        def cell(g, alpha, seed):
            k = int(g[-1])
            slope = sign * (k - 3) * 10.0 + seed if "'" not in g else -20.0
            return 70.0 + slope * alpha + 0.5 * seed
        return cell

    store = ResultStore(tmp_path / "true")
    _synthetic(store, lambda arm, s: 0.85 + 0.001 * s, tgeo_evidence=_alpha_evidence(True), motivation=cells(1))
    st = claims.motivation_statistics(tgeo.motivation_cells("smoke", store))
    assert st.trend_right.tolist() == pytest.approx([10.0] * 3)
    assert st.slope_wrong.tolist() == pytest.approx([-20.0] * 3)
    assert claims.motivation_verdict("smoke", store).label == REPRODUCED
    a = claims.alpha_verdict("smoke", store)
    assert a.label == REPRODUCED and not a.scored  # the chapter's own check, not counted as a paper claim
    false = ResultStore(tmp_path / "false")
    _synthetic(false, lambda arm, s: 0.85, tgeo_evidence=_alpha_evidence(False), motivation=cells(-1))
    v = claims.motivation_verdict("smoke", false)
    assert v.label == NOT_REPRODUCED and "core part contradicted" in v.reason
    assert claims.alpha_verdict("smoke", false).label == MIXED  # lower where wrong, but falls with ST


def test_slope_and_rank_correlation_by_hand():
    from kdutils.chapters.tgeo.runs import alpha_by_group, rank_corr
    from kdutils.chapters.tgeo.motivation import motivation_groups

    assert claims._slope([0.1, 0.3, 0.5], [1.0, 2.0, 3.0]) == pytest.approx(5.0)
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert rank_corr(a, a ** 3) == pytest.approx(1.0) and rank_corr(a, -a) == pytest.approx(-1.0)
    assert math.isnan(rank_corr(a[:2], a[:2]))
    # saturated alphas tie: average ranks (1.5, 1.5, 3, 4) against (1, 2, 3, 4) give rho = 4.5 / sqrt(4.5 * 5);
    # the ordinal ranks the hand-written version used would have said 1.0
    tied = torch.tensor([0.999, 0.999, 1.0, 1.0 + 1e-3])
    assert rank_corr(tied, a) == pytest.approx(4.5 / math.sqrt(4.5 * 5.0))
    t = torch.eye(10)[torch.arange(20) % 10] * 5
    y = torch.arange(20) % 10
    y[:10] = (y[:10] + 1) % 10  # the teacher is wrong on the first ten
    groups = motivation_groups(torch.randn(20, 10, generator=torch.Generator().manual_seed(0)), t, y)
    out = alpha_by_group(torch.linspace(0, 1, 20), groups, bins=4)
    assert sum(d["n"] for d in out.values()) == 20 and all(sum(d["hist"]) == d["n"] for d in out.values())
