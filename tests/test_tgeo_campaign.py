"""TGeo-KD's cross-fitted recipe: the arm spec in the key and its load check, the optimiser-matched lookahead,
the f_w controls, out-of-fold teacher logits, the campaign (stages, deal, dry run) at smoke, the power numbers,
and the declared claims on synthetic scores (false -> not reproduced, noisy -> inconclusive, true -> reproduced,
failed gate -> not testable)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from kdutils.chapters.tgeo import campaign, claims_cf, recipe_cf as rc
from kdutils.chapters.tgeo.arms import ArmSpec, initial_fusion_net
from kdutils.chapters.tgeo.bilevel import _trainable, optimizer_virtual_step
from kdutils.chapters.tgeo.spec import check_record_spec, spec_of, student_kwargs
from kdutils.verdicts.power import detectable_effect
from kdutils.verdicts.verdict import INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED

RESULTS = Path(__file__).resolve().parents[1] / "results"


# ---- spec in the key ------------------------------------------------------------------------------------------
def test_spec_is_in_the_key_and_a_mismatched_record_is_refused():
    t0 = rc.teacher_part0("smoke", 0.1)
    a = rc.student_config("smoke", t0, "tgeo_both", 0.05, fusion_lr=1e-2)
    b = rc.student_config("smoke", t0, "tgeo_both", 0.05, fusion_lr=1e-1)
    c = rc.student_config("smoke", t0, "tgeo_both_sgdstep", 0.05, fusion_lr=1e-2)
    assert len({a.key(), b.key(), c.key()}) == 3  # f_w's rate and the lookahead are in the key
    assert spec_of(a)["virtual"] == "optimizer" and spec_of(c)["virtual"] == "sgd"
    assert student_kwargs(a) == {"hidden": [16]}
    check_record_spec({"arm": spec_of(a)}, spec_of(a))
    with pytest.raises(ValueError, match="fusion_lr"):
        check_record_spec({"key": "k", "arm": spec_of(b)}, spec_of(a))
    with pytest.raises(ValueError, match="stores no arm spec"):
        check_record_spec({"key": "k"}, spec_of(a))


def test_first_recipe_records_pass_the_check_and_a_changed_rate_fails(tmp_path):
    """A committed first-recipe TGeo record loads as its recipe asks, and not when asked for another f_w rate."""
    from kdutils.chapters.tgeo import plan
    from kdutils.chapters.tgeo.runs import run_arm
    from kdutils.store.store import ResultStore

    store = ResultStore(RESULTS)
    p = plan.plan("cpu", store, arms=("tgeo_both",), seeds=(0,))
    if not p.finals["tgeo_both"]:
        pytest.skip("first-recipe records are not in this checkout")
    cfg = p.finals["tgeo_both"][0]
    rec = run_arm(cfg, plan.ARMS["tgeo_both"], store, fusion_lr=plan.recipe("cpu").fusion_lr)
    assert rec["arm"]["fusion_lr"] == plan.recipe("cpu").fusion_lr
    with pytest.raises(ValueError, match="another arm spec"):
        run_arm(cfg, plan.ARMS["tgeo_both"], store, fusion_lr=0.5)


# ---- the lookahead and the controls ----------------------------------------------------------------------------
@pytest.mark.parametrize("nesterov", [False, True])
def test_optimizer_virtual_step_is_the_real_sgd_step(nesterov):
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-3, nesterov=nesterov)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    for _ in range(2):  # second time round the momentum buffer exists
        loss = nn.functional.cross_entropy(model(x), y)
        virtual = {k: v.detach().clone() for k, v in optimizer_virtual_step(_trainable(model), loss, opt).items()}
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        for k, p in model.named_parameters():
            torch.testing.assert_close(virtual[k], p.detach(), rtol=1e-6, atol=1e-7)


def test_constant_input_gives_one_alpha_and_frozen_fw_does_not_move():
    from kdutils.chapters.tgeo.arms import train_arm
    from kdutils.config import TrainConfig
    from kdutils.data.device_loader import DeviceLoader

    const = initial_fusion_net(3, "both", 0, "constant")
    delta = torch.randn(7, const.in_features)
    assert torch.allclose(const(delta), const(delta)[0].expand(7))
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    x = 2 * torch.randn(3, 5, generator=g)[y] + torch.randn(60, 5, generator=g)
    teacher = 3 * nn.functional.one_hot(y, 3).float() + torch.randn(60, 3, generator=g)
    train, val = DeviceLoader(x[:45], y[:45], 15), DeviceLoader(x[45:], y[45:], 15)
    cfg = TrainConfig(epochs=2, batch_size=15, lr=0.1, momentum=0.9, weight_decay=5e-4)
    for name in ("tgeo_frozen", "tgeo_const", "tgeo_both"):
        spec = rc.CF_ARMS[name]
        res, fnet = train_arm(spec, nn.Linear(5, 3), train, cfg, teacher_logits=teacher[:45], val_loader=val,
                              fusion_lr=0.05, progress=False)
        moved = any(not torch.equal(p, q) for p, q in
                    zip(fnet.parameters(), initial_fusion_net(3, "both", 0, spec.fw_input).parameters()))
        assert moved == (name != "tgeo_frozen"), name
        assert 0.0 <= res.history[-1]["alpha_share_above_0.99"] <= 1.0
        out = fnet(torch.randn(5, fnet.in_features))
        assert torch.allclose(out, out[0].expand(5)) == (name == "tgeo_const"), name  # one alpha for all
    with pytest.raises(ValueError, match="unknown fw_input 'zeros'"):
        ArmSpec("tgeo", features="both", fw_input="zeros")


# ---- the campaign at smoke -------------------------------------------------------------------------------------
RATES = campaign.Rates(teacher=2e-3, mlp=2e-5, conv_student=1e-4, tgeo_ratio=3.0, source="fixed for the test")


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory):
    import os

    from kdutils.store.store import ResultStore

    if not (Path(os.environ.get("KDUTILS_DATA", "")) / "FashionMNIST").exists():
        pytest.skip("Fashion-MNIST is not under KDUTILS_DATA")
    store = ResultStore(tmp_path_factory.mktemp("tgeo_cf"))
    campaign.run_campaign("smoke", 0, 1, store=store, rates=RATES, poll_s=0.01, max_wait_s=0.05, log=lambda m: None)
    return store


def test_crossfit_logits_come_from_the_part_that_did_not_train_on_the_image(smoke_store):
    from kdutils.chapters.tgeo.crossfit import crossfit_logits, part_configs, part_indices
    from kdutils.metrics import predict_logits
    from kdutils.training import runner

    res = campaign.resolved("smoke", smoke_store)
    t0 = rc.teacher_part0("smoke", res.teacher_lr)
    cf = crossfit_logits(t0, smoke_store, torch.device("cpu"), progress=False)
    splits = runner.prepare_data(t0.data)
    held = [part_indices(len(splits.train), c)[1] for c in part_configs(t0)]
    assert sorted(torch.cat(held).tolist()) == list(range(len(splits.train)))  # the folds cover the split once
    for c, idx, model in zip(part_configs(t0), held, cf.teachers):
        own = predict_logits(model, splits.train.x[idx], mean=splits.mean, std=splits.std)
        torch.testing.assert_close(cf.train[idx], own)
        assert smoke_store.get(c)["crossfit"]["n_oof"] == idx.numel()


def test_campaign_records_every_run_with_its_spec_and_the_verdicts_read_them(smoke_store):
    res = campaign.resolved("smoke", smoke_store)
    assert res.vanilla in rc.VANILLA_CF
    for stage in range(len(campaign.STAGES)):
        for it in campaign.stage_items("smoke", stage, smoke_store, RATES):
            for c in it.configs:
                rec = smoke_store.get(c)
                assert rec is not None, it.name
                if spec_of(c) is not None:
                    check_record_spec(rec, {k: v for k, v in spec_of(c).items() if k != "alpha"})
    both = campaign.final_configs("smoke", res, rc.teacher_part0("smoke", res.teacher_lr))["main"]["tgeo_both"]
    rec = smoke_store.get(both[0])
    assert {"heldout", "groups"} <= set(rec["tgeo"]) and "share_above_0.99" in rec["tgeo"]["groups"]["g1"]
    assert all("alpha_share_above_0.99" in h for h in rec["history"])
    g1 = [h["alpha_groups"]["g1"] for h in rec["history"]]  # alpha by group at every epoch, for the figure
    assert len(g1) == len(rec["history"]) and all(0.0 <= v["share_above_0.99"] <= 1.0 < 1.0 + v["mean"] for v in g1)
    verdicts = claims_cf.cf_verdicts("smoke", smoke_store)
    assert [v.claim for v in verdicts] == [c.text for c in claims_cf.CLAIMS_CF]
    assert verdicts[5].label == NOT_TESTABLE  # the tabular claim, always


def test_deal_is_disjoint_balanced_and_the_dry_run_prints_both_commands(smoke_store):
    items = campaign.stage_items("smoke", 3, smoke_store, RATES)
    a, b = campaign.deal(items, 2)
    assert {i.name for i in a}.isdisjoint({i.name for i in b}) and len(a) + len(b) == len(items)
    assert abs(sum(i.cost for i in a) - sum(i.cost for i in b)) <= max(i.cost for i in items)
    text = campaign.dry_run("smoke", 2, smoke_store, RATES)
    assert "--shard 1/2" in text and "--shard 2/2" in text and "--part" not in text and "total" in text
    assert "KD room preview (validation" in text


# ---- power -----------------------------------------------------------------------------------------------------
def test_planned_seeds_detect_the_minimum_effect_at_the_known_sds():
    n = len(rc.cf_recipe("cpu").seeds)
    assert n == rc.planned_seeds()
    for sd in (rc.RECORDED_PAIRED_SD, rc.ASSUMED_MAX_SD):
        assert detectable_effect(sd, n) < rc.MIN_EFFECT
    assert detectable_effect(rc.ASSUMED_MAX_SD, n - 3) > rc.MIN_EFFECT  # three seeds fewer would not do


def test_recorded_paired_sd_is_what_the_first_recipe_records_say():
    """TGeo-KD (both) minus the vanilla arm chosen on validation, over the first recipe's 5 seeds."""
    from kdutils.chapters.tgeo import plan
    from kdutils.store.store import ResultStore

    store = ResultStore(RESULTS)
    p = plan.plan("cpu", store)
    vbest = p.vanilla_best()
    if vbest is None or len(p.finals["tgeo_both"]) < 5:
        pytest.skip("first-recipe records are not in this checkout")
    acc = lambda arm: [store.get(c)["metrics"]["accuracy"] for c in p.finals[arm]]  # noqa: E731
    d = np.subtract(acc("tgeo_both"), acc(vbest))
    assert float(np.std(d, ddof=1)) == pytest.approx(rc.RECORDED_PAIRED_SD, abs=5e-5)


# ---- claims on synthetic scores --------------------------------------------------------------------------------
def _scores(gain_tgeo: float, kd_room: float = 3.0, noise: float = 0.05, n: int = 10) -> dict:
    """Synthetic per-seed test accuracies in pts: alone, vanilla KD (+kd_room), the other arms about vanilla,
    TGeo-KD (both) at vanilla + gain_tgeo."""
    rng = np.random.default_rng(0)
    base = {s: 80.0 + rng.normal(0, 0.3) for s in range(n)}
    out = {"alone": base, "vanilla_a0.5": {s: v + kd_room + rng.normal(0, 0.05) for s, v in base.items()}}
    for arm in ("anl", "ada", "wls", "rw", "tgeo_intra", "tgeo_inter", "tgeo_const", "tgeo_frozen"):
        out[arm] = {s: v + rng.normal(0, 0.05) for s, v in out["vanilla_a0.5"].items()}
    out["tgeo_both"] = {s: v + gain_tgeo + rng.normal(0, noise) for s, v in out["vanilla_a0.5"].items()}
    return out


@pytest.mark.parametrize("gain, noise, room, label", [
    (1.0, 0.05, 3.0, REPRODUCED),         # +1 pt over every arm, tight
    (-1.0, 0.05, 3.0, NOT_REPRODUCED),    # TGeo-KD worse
    (0.1, 0.05, 3.0, NOT_REPRODUCED),     # better, but surely below the +0.5 pt minimum effect
    (0.3, 2.0, 3.0, INCONCLUSIVE),        # noisy
    (1.0, 0.05, 0.0, NOT_TESTABLE),       # KD has no room: no verdict on a better KD
])
def test_comparison_rule_on_synthetic_scores(gain, noise, room, label):
    j = claims_cf.judge_comparison(_scores(gain, room, noise), "vanilla_a0.5")
    assert j.label == label, j.reason


def test_gap_inter_hetero_controls_and_premise_rules():
    room = claims_cf.room_gate(_scores(1.0), "vanilla_a0.5")
    assert room.passed
    small, large = _scores(2.0), _scores(0.2)
    assert claims_cf.judge_gap(small, large, "vanilla_a0.5", room).label == REPRODUCED
    assert claims_cf.judge_gap(large, small, "vanilla_a0.5", room).label == NOT_REPRODUCED
    assert claims_cf.judge_gap(small, large, "vanilla_a0.5", claims_cf.room_gate(_scores(1.0, 0.0), "vanilla_a0.5")
                               ).label == NOT_TESTABLE
    s = _scores(1.0)
    assert claims_cf.judge_inter(s, room).label == "mixed"  # both beats intra; inter alone surely does not
    s["tgeo_inter"] = dict(s["tgeo_both"])
    assert claims_cf.judge_inter(s, room).label == REPRODUCED
    assert claims_cf.judge_controls(s, room).label == REPRODUCED
    assert claims_cf.judge_hetero(s, _scores(-1.0), "vanilla_a0.5", room).label == NOT_REPRODUCED  # a core part fails
    assert claims_cf.judge_hetero(s, _scores(1.0), "vanilla_a0.5", room).label == REPRODUCED
    assert claims_cf.judge_premise([-0.1, -0.12, -0.09], [0.2, 0.25, 0.22]).label == REPRODUCED
    assert claims_cf.judge_premise([0.1, 0.12, 0.09], [-0.2, -0.25, -0.22]).label == NOT_REPRODUCED
    assert claims_cf.judge_premise([0.1, -0.12, 0.01], [0.2, -0.25, 0.02]).label == INCONCLUSIVE
    assert claims_cf.tabular_verdict().label == NOT_TESTABLE


def test_motivation_rule_reads_slopes_by_group():
    alphas = (0.1, 0.3, 0.5, 0.7, 0.9)
    def cells(sign_right: float, sign_wrong: float):
        c = {f"g{k}": {a: 80 + sign_right * k * a for a in alphas} for k in range(1, 6)}
        c.update({f"g'{k}": {a: 30 + sign_wrong * 10 * a for a in alphas} for k in range(1, 6)})
        return c
    st = claims_cf.motivation_seed_stats(cells(1.0, -1.0))
    assert st[0] == pytest.approx(1.0) and st[1] == pytest.approx(-10.0)
    true = [claims_cf.motivation_seed_stats(cells(1.0 + e, -1.0 - e)) for e in (0.0, 0.1, 0.2)]
    false = [claims_cf.motivation_seed_stats(cells(-1.0 - e, 1.0 + e)) for e in (0.0, 0.1, 0.2)]
    noisy = [claims_cf.motivation_seed_stats(cells(e, -e)) for e in (-1.0, 0.2, 1.0)]
    assert claims_cf.judge_motivation(true).label == REPRODUCED
    assert claims_cf.judge_motivation(false).label == NOT_REPRODUCED
    assert claims_cf.judge_motivation(noisy).label == INCONCLUSIVE


def test_report_tables_and_alpha_figure_read_the_smoke_records(smoke_store):
    import matplotlib

    matplotlib.use("Agg")
    from kdutils.chapters.tgeo import report_cf

    teachers = report_cf.teachers_table("smoke", smoke_store)
    assert list(teachers.part) == [0, 1] and (teachers["images fitted"] == teachers["images predicted out of fold"]).all()
    arms = report_cf.arms_table("smoke", smoke_store)
    main = arms[arms.group == "main"]
    assert set(main.arm) == set(rc.CF_ARMS) and (main.runs == len(rc.cf_recipe("smoke").seeds)).all()
    assert main["chosen on validation"].sum() == 1
    df = report_cf.alpha_epochs("smoke", smoke_store)
    epochs = rc.cf_recipe("smoke").student_epochs
    per = df[(df.group == "all") & (df.arm == "tgeo_both")].groupby("seed").epoch.apply(list)
    assert all(v == list(range(1, epochs + 1)) for v in per)
    assert {"g1", "g'5"} <= set(df.group) and df["share_above_0.99"].between(0, 1).all()
    assert report_cf.alpha_epochs_figure("smoke", smoke_store) is not None
    room = report_cf.room_table("smoke", smoke_store)
    assert list(room.student) == ["main", "cap:8", "het:cnn"] and (room.n == 2).all()
    assert (room.room == (room.low > room.margin)).all()
