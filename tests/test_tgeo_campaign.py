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
    # force: two smoke seeds of two epochs give no room-gate interval worth the name; the tests below read every arm
    campaign.run_campaign("smoke", 0, 1, store=store, rates=RATES, poll_s=0.01, max_wait_s=0.05, log=lambda m: None,
                          force=True)
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
    items = campaign.stage_items("smoke", campaign.FINALS, smoke_store, RATES)
    a, b = campaign.deal(items, 2)
    assert {i.name for i in a}.isdisjoint({i.name for i in b}) and len(a) + len(b) == len(items)
    assert abs(sum(i.cost for i in a) - sum(i.cost for i in b)) <= max(i.cost for i in items)
    text = campaign.dry_run("smoke", 2, smoke_store, RATES)
    assert "--shard 1/2" in text and "--shard 2/2" in text and "--part" not in text and "total" in text
    assert "KD room preview (validation" in text and "stage 3 room gate" in text
    assert "main: vanilla_a" in text and "minus alone" in text and "--gate-only" in text  # the gate, recorded


def test_command_passes_force_and_gate_only_to_the_campaign(monkeypatch):
    calls = []
    monkeypatch.setattr(campaign, "run_campaign", lambda *a, **kw: calls.append((a, kw)))
    campaign.main(["--profile", "cpu", "--shard", "2/2"])
    campaign.main(["--profile", "cpu", "--force", "--gate-only"])
    assert calls[0][1]["force"] is False and calls[0][1]["last_stage"] == campaign.FINALS and calls[0][0][1:] == (1, 2)
    assert calls[1][1]["force"] is True and calls[1][1]["last_stage"] == campaign.GATE


# ---- the room gate before the finals (synthetic cpu records: no training) --------------------------------------
GATE_VANILLA = "vanilla_a0.3"


def _ok(metrics: dict) -> dict:
    return {"status": "ok", "metrics": metrics, "wall_time_s": 1.0}


def _selected(root) -> tuple:
    """A store with every cpu selection run recorded (hand-made validation numbers that choose the teacher's lr 0.3
    and vanilla KD at alpha 0.3); returns (store, resolved, finals' configs)."""
    from kdutils.store.store import ResultStore

    store = ResultStore(root)
    for c in rc.teacher_selection("cpu"):
        store.put(c, _ok({"val_accuracy": 0.87 if c.train.lr == 0.3 else 0.85, "val_nll": 0.4}))
    from kdutils.chapters.tgeo.crossfit import part_configs

    t0 = rc.teacher_part0("cpu", campaign.resolved("cpu", store).teacher_lr)
    for p in part_configs(t0):
        store.put(p, _ok({"accuracy": 0.87}))
    r = rc.cf_recipe("cpu")
    cands = [c for a in rc.CF_ARMS for c in rc.selection_candidates("cpu", t0, a)]
    for model, kw in r.hetero:
        cands += rc.selection_candidates("cpu", t0, "alone", model=model, model_kwargs=kw, tag=f"het:{model}:")
    for c in cands:
        best = c.role.endswith(":" + GATE_VANILLA) and c.train.lr == 0.03
        store.put(c, _ok({"val_accuracy": 0.86 if best else 0.85 - c.train.lr / 10, "val_nll": 0.5}))
    res = campaign.resolved("cpu", store)
    assert res.teacher_lr == 0.3 and res.vanilla == GATE_VANILLA
    return store, res, campaign.final_configs("cpu", res, t0)


def _record_gate(store, fc: dict, kd_minus_alone: dict[str, list[float]]) -> None:
    """Gate runs: alone at 85% + a seed term, vanilla at alone + the student's per-seed difference (pts)."""
    from kdutils.chapters.tgeo import gate

    for name, arms in gate.students(fc).items():
        for s, c in arms["alone"].items():
            alone = 85.0 + 0.3 * ((s * 7) % 5 - 2)
            store.put(c, _ok({"accuracy": alone / 100}))
            store.put(arms[GATE_VANILLA][s], _ok({"accuracy": (alone + kd_minus_alone[name][s]) / 100}))


PASS = [1.6, 1.8, 1.5, 1.7, 1.9, 1.6, 1.4, 1.8, 1.7, 1.5]  # mean 1.65, SD 0.158: 95% interval [1.54, 1.76]
NEAR = [0.5, 0.7, 0.6, 0.4, 0.8, 0.6, 0.5, 0.7, 0.6, 0.4]  # mean 0.58 (the validation preview's size): fails
WIDE = [2.9, -0.4, 3.1, 0.2, 2.6, -0.1, 3.0, 0.4, 2.8, 0.0]  # mean 1.45, above +1, but interval [0.36, 2.54]: fails


@pytest.fixture()
def fake_training(monkeypatch):
    """Replaces the arms' training by a record of what would have been trained (already recorded ones are loaded,
    as the real `run_arm` does); a teacher run that is not recorded fails the test."""
    from kdutils.chapters.tgeo import crossfit, runs
    from kdutils.training import runner

    trained: list = []

    def loaded(cfg, store, **kw):
        assert (rec := store.get(cfg)) is not None, f"would train {cfg.role}"
        return rec

    def run_arm(cfg, spec, store, progress=True):
        if (rec := store.get(cfg)) is not None:
            return rec
        trained.append(cfg)
        return store.put(cfg, _ok({"accuracy": 0.5}))

    def run_motivation(pre, cont, store, progress=True):
        return [run_arm(c, None, store) for c in [pre, *cont.values()]]

    monkeypatch.setattr(runs, "run_arm", run_arm)
    monkeypatch.setattr(runs, "run_motivation", run_motivation)
    monkeypatch.setattr(runner, "run", loaded)
    monkeypatch.setattr(crossfit, "run_part", loaded)
    return trained


def _keys(cfgs) -> set[str]:
    return {c.key() for c in cfgs}


def test_gate_stage_is_alone_and_the_chosen_vanilla_of_every_student_and_finals_are_the_rest(tmp_path):
    from kdutils.chapters.tgeo import gate

    store, res, fc = _selected(tmp_path)
    seeds = rc.cf_recipe("cpu").seeds
    gate_items = campaign.stage_items("cpu", campaign.GATE, store, RATES)
    rest = campaign.stage_items("cpu", campaign.FINALS, store, RATES)
    studs = gate.students(fc)
    assert list(studs) == ["main", "cap:8", "cap:16", "cap:128", "het:lenet5"]
    want = [c for arms in studs.values() for a in ("alone", GATE_VANILLA) for c in arms[a].values()]
    assert _keys(c for it in gate_items for c in it.configs) == _keys(want)
    assert len(gate_items) == len(studs) * 2 * len(seeds) and all(len(it.configs) == 1 for it in gate_items)
    finals = {c.key() for c in claims_cf._configs(fc)}
    rest_keys = _keys(c for it in rest for c in it.configs)
    assert rest_keys.isdisjoint(_keys(want)) and rest_keys | _keys(want) == finals  # a split of the same configs
    assert not any(c.role.endswith(("alone", GATE_VANILLA)) for it in rest for c in it.configs
                   if not c.role.startswith("motivation"))
    only_main = campaign.stage_items("cpu", campaign.FINALS, store, RATES, ["main"])
    assert {c.role for it in only_main for c in it.configs} == (
        {a for a in rc.CF_ARMS if a not in ("alone", GATE_VANILLA)} | {c.role for s in fc["motivation"].values()
                                                                     for c in [s[0], *s[1].values()]})
    assert campaign.stage_items("cpu", campaign.FINALS, store, RATES, []) == []
    with pytest.raises(ValueError, match="unknown students \\['cap:9'\\]"):
        campaign.stage_items("cpu", campaign.FINALS, store, RATES, ["cap:9"])


#: sha256 of the sorted keys of every config the finals stage planned on the committed records before the room gate
#: had a stage of its own (commit cd204d1, `stage_items("cpu", 3, ...)`: 290 items, 340 configs).
PREVIOUS_FINALS_DIGEST = "39947c706e3359ef8ebc73c6b786656dcef7816bbec20f9efe8e0328f1fcc5cd"


def test_gate_and_finals_stages_plan_exactly_the_previous_finals_keys_on_the_committed_records():
    import hashlib

    store = campaign.repo_results()
    res = campaign.resolved("cpu", store)
    if res.vanilla is None or res.vanilla != "vanilla_a0.3":
        pytest.skip("the cross-fitted selections of cd204d1 are not in this checkout")
    gate_keys = _keys(c for it in campaign.stage_items("cpu", campaign.GATE, store, RATES) for c in it.configs)
    rest = campaign.stage_items("cpu", campaign.FINALS, store, RATES)
    rest_keys = _keys(c for it in rest for c in it.configs)
    both = sorted(gate_keys | rest_keys)
    assert len(gate_keys) == 100 and len(rest_keys) == 240 and len(both) == 340
    assert hashlib.sha256("\n".join(both).encode()).hexdigest() == PREVIOUS_FINALS_DIGEST
    # the two finals recorded by the old finals stage (the conv student's TGeo-KD, seeds 0 and 1) are found
    assert sum(store.get(c) is not None for it in rest for c in it.configs) >= 2


@pytest.mark.parametrize("diffs, passes", [(PASS, True), (NEAR, False), (WIDE, False)])
def test_room_gate_reads_the_paired_interval_and_agrees_with_the_claims_rule(tmp_path, diffs, passes):
    from scipy import stats

    from kdutils.chapters.tgeo import gate

    store, res, fc = _selected(tmp_path)
    _record_gate(store, fc, {name: diffs for name in gate.students(fc)})
    gates = campaign.room_gates("cpu", store)
    assert [x.passed for x in gates] == [passes] * 5
    iv = gates[0].interval
    half = stats.t.ppf(0.975, 9) * np.std(diffs, ddof=1) / np.sqrt(10)
    assert iv.mean == pytest.approx(np.mean(diffs), abs=1e-9) and iv.n == 10
    assert (iv.low, iv.high) == pytest.approx((np.mean(diffs) - half, np.mean(diffs) + half), abs=1e-9)
    scores = claims_cf._scores({a: fc["main"][a] for a in ("alone", GATE_VANILLA)}, store)
    assert claims_cf.room_gate(scores, GATE_VANILLA).passed == passes  # the verdicts' rule, same records
    assert ("passes" if passes else "fails") in gates[0].describe()


def test_campaign_stops_before_the_finals_when_no_gate_passes_and_force_overrides(tmp_path, fake_training):
    from kdutils.chapters.tgeo import gate

    store, res, fc = _selected(tmp_path)
    _record_gate(store, fc, {name: NEAR for name in gate.students(fc)})
    logs: list[str] = []
    gates = campaign.run_campaign("cpu", 0, 1, store=store, rates=RATES, poll_s=0.0, max_wait_s=0.0, log=logs.append)
    assert fake_training == [] and not any(x.passed for x in gates)
    assert "no student's gate passes" in logs[-1] and "main: vanilla_a0.3 minus alone +0.58 pts" in logs[-1]
    assert "stage 4 finals (for no student: the room gate): 0 items" in campaign.dry_run("cpu", 2, store, RATES)
    campaign.run_campaign("cpu", 0, 1, store=store, rates=RATES, poll_s=0.0, max_wait_s=0.0, log=logs.append,
                          force=True)
    finals = _keys(c for it in campaign.stage_items("cpu", campaign.FINALS, store, RATES) for c in it.configs)
    assert _keys(fake_training) == finals and len(finals) == 240


def test_campaign_runs_the_finals_of_the_students_whose_gate_passes_only(tmp_path, fake_training):
    from kdutils.chapters.tgeo import gate

    store, res, fc = _selected(tmp_path)
    _record_gate(store, fc, {name: PASS if name in ("main", "cap:8") else NEAR for name in gate.students(fc)})
    logs: list[str] = []
    gates = campaign.run_campaign("cpu", 0, 1, store=store, rates=RATES, poll_s=0.0, max_wait_s=0.0, log=logs.append)
    assert [x.student for x in gates if x.passed] == ["main", "cap:8"]
    want = campaign.stage_items("cpu", campaign.FINALS, store, RATES, ["main", "cap:8"])
    assert _keys(fake_training) == _keys(c for it in want for c in it.configs)
    assert {c.role.split(":")[0] for c in fake_training} >= {"tgeo_both", "anl", "motivation_pre", "cap"}
    assert not any(c.role.startswith(("cap:16", "cap:128", "het:")) for c in fake_training)
    assert "finals for: main, cap:8" in logs[-1]


def test_gate_only_stops_after_the_gate_stage_and_the_shards_split_it(tmp_path, fake_training):
    store, res, fc = _selected(tmp_path)
    logs: list[str] = []
    gate_keys = _keys(c for it in campaign.stage_items("cpu", campaign.GATE, store, RATES) for c in it.configs)
    campaign.run_campaign("cpu", 1, 2, store=store, rates=RATES, log=logs.append, last_stage=campaign.GATE)
    second = _keys(fake_training)
    assert second < gate_keys and "not recorded yet" in logs[-1] and "the finals wait" in logs[-1]
    gates = campaign.run_campaign("cpu", 0, 2, store=store, rates=RATES, log=logs.append, last_stage=campaign.GATE)
    assert _keys(fake_training) == gate_keys and len(fake_training) == len(gate_keys)  # disjoint halves, no finals
    assert all(x.decided for x in gates)
    with pytest.raises(ValueError, match="last_stage must be 0..4"):
        campaign.run_campaign("cpu", 0, 1, store=store, rates=RATES, last_stage=5)


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
