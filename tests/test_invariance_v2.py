"""Invariance recipe v2 (issue 24) and the rules it adds: the tau = 1 collapse claim, claim 3's contradicted
NLL, the edge check and edge extension of the rate selection, the ModelNet40 demo's re-derived statuses, the
cost model, and v2's record keys (new, never a v1 key). Synthetic records only: nothing here trains."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from kdutils.chapters.invariance import claims, collapse, cost_v2, modelnet_demo, plan_v2, recipes, tables
from kdutils.chapters.invariance import recipe_v2 as rv
from kdutils.config import DataConfig, RunConfig, TrainConfig
from kdutils.store.store import ResultStore
from kdutils.sweeps.cost import Rate

WOBBLE = (-0.004, 0.0, 0.004, -0.002, 0.002)


def _row(role, fold, acc, *, tau=None, direction="", status="ok", nll=0.2, ece=0.02, val=None, val_agree=None):
    w = WOBBLE[fold]
    return {"pair": "resnet_mlp", "dataset": "mnist", "student": "" if role.startswith("teacher") else "mlp256",
            "role": role, "tau": tau, "direction": direction, "fold": fold, "accuracy": acc + w, "nll": nll + w,
            "ece": ece + w / 4, "agreement": 0.97 + w, "agreement_teacher": 0.85 - w, "im_l1": 0.8, "flip_rate": 0.3,
            "val_accuracy": val if val is None else val + w, "val_agreement": val_agree,
            "status": status, "failed": status in ("diverged", "chance"), "collapsed": False, "n_train": 8000,
            "n_test": 5000, "device": "cpu: x86_64, 1 threads"}


def _collapse_table(rev, fwd=(0.95, 0.95, 0.95), alone=0.95, statuses=("ok", "ok", "ok")) -> pd.DataFrame:
    rows = []
    for f in range(len(rev)):
        rows += [_row("teacher", f, 0.98), _row("student", f, alone),
                 _row("distilled", f, rev[f], tau=1.0, direction="reverse", status=statuses[f]),
                 _row("distilled", f, fwd[f], tau=1.0, direction="forward")]
    return pd.DataFrame(rows)


# ---- the tau = 1 collapse claim -------------------------------------------------------------------------------

def test_collapse_true_is_reproduced():
    v = collapse.verdict_collapse(_collapse_table((0.10, 0.11, 0.10)), "cpu")
    assert v.label == "reproduced"
    assert [p.key for p in v.parts] == ["reverse KL (the authors')", "forward KL (the book's; not scored)"]
    assert v.parts[1].label == "not reproduced" and not v.parts[1].core  # forward KL learns: shown, not counted


def test_collapse_false_is_not_reproduced():
    assert collapse.verdict_collapse(_collapse_table((0.93, 0.94, 0.95)), "cpu").label == "not reproduced"


def test_collapse_noisy_is_inconclusive():
    # one fold collapsed, two learned a little: the interval straddles twice chance (0.2)
    assert collapse.verdict_collapse(_collapse_table((0.05, 0.35, 0.15)), "cpu").label == "inconclusive at this scale"


def test_collapse_failed_runs_count_as_collapsed():
    t = _collapse_table((0.5, 0.5, 0.5), statuses=("chance", "chance", "diverged"))
    t.loc[t.status == "diverged", "accuracy"] = math.nan
    assert collapse.verdict_collapse(t, "cpu").label == "reproduced"  # scored at chance (0.1) in every fold


def test_collapse_gate_fails_when_the_mlp_alone_does_not_learn():
    v = collapse.verdict_collapse(_collapse_table((0.10, 0.10, 0.10), alone=0.10), "cpu")
    assert v.label == "not testable at this scale" and "the MLP alone learns: fails" in v.gates[0].describe()


def test_collapse_not_yet_run_without_reverse_runs():
    t = _collapse_table((0.1, 0.1, 0.1))
    assert collapse.verdict_collapse(t[t.direction != "reverse"], "cpu").label == "not yet run"


# ---- claim 3: a significantly worse NLL is a contradicted part ---------------------------------------------------

def _gen_table(acc_kd, nll_kd) -> pd.DataFrame:
    rows = []
    for f in range(3):
        rows += [_row("teacher", f, 0.98), _row("student", f, 0.95)]
        for tau in recipes.TAUS:
            rows.append(_row("distilled", f, acc_kd[f], tau=tau, direction="forward", nll=nll_kd,
                             val=0.97 if tau == 4.0 else 0.96))
    return pd.DataFrame(rows)


def test_claim3_worse_nll_contradicts_when_accuracy_is_only_noisy():
    # accuracy rise within noise (the ResNet row), NLL clearly worse: not "inconclusive", a contradiction
    v = claims.verdict_generalisation(_gen_table((0.94, 0.97, 0.955), 0.4), "cpu")
    assert v.label == "not reproduced"
    assert "NLL: not reproduced" in v.parts[0].reason and "accuracy: inconclusive" in v.parts[0].reason
    # the contradicting measure is in the part's effect (what the verdict box and the scorecard show), not only
    # accuracy's interval
    effect = v.parts[0].effect
    assert effect.startswith("accuracy ") and "; NLL +" in effect and "; ECE " in effect


def test_claim3_true_reproduced_and_false_not_reproduced():
    t = _gen_table((0.97, 0.97, 0.97), 0.15)
    t.loc[t.role == "distilled", "ece"] -= 0.01
    assert claims.verdict_generalisation(t, "cpu").label == "reproduced"
    assert claims.verdict_generalisation(_gen_table((0.90, 0.90, 0.90), 0.4), "cpu").label == "not reproduced"


def test_fidelity_tau_uses_validation_agreement_and_is_none_for_v1():
    t = _gen_table((0.97, 0.97, 0.97), 0.15)
    assert claims.fidelity_tau(t, "resnet_mlp", "mlp256") is None  # v1 records carry no val_agreement
    t["val_agreement"] = t.tau.map({1.0: 0.90, 4.0: 0.95, 8.0: 0.97, 16.0: 0.96})
    assert claims.fidelity_tau(t, "resnet_mlp", "mlp256") == 8.0
    tt = claims.transfer_table(t, "cpu").set_index("tau")
    assert tt.loc[8.0, "highest validation agreement"] == "✔" and tt.loc[4.0, "highest validation agreement"] == ""


# ---- rates inside the grid ---------------------------------------------------------------------------------------

def test_edge_of():
    g = (1e-3, 3e-3, 1e-2)
    assert plan_v2.edge_of(1e-2, g) == "top" and plan_v2.edge_of(1e-3, g) == "bottom"
    assert plan_v2.edge_of(3e-3, g) == "" and plan_v2.edge_of(1e-3, (1e-3,)) == "top"


def _candidate_store(tmp_path, _unused):
    """An empty store and the base config of one arm's selection candidates."""
    store = ResultStore(tmp_path)
    base = RunConfig(experiment="invariance_resnet_mlp", role="student", model="mlp_256x4",
                     data=DataConfig(dataset="mnist", n_train=64, n_test=32), train=TrainConfig(epochs=2))
    return store, base


def _record_all(store, cfgs, best):
    for c in cfgs:
        lr = c.train.lr
        store.put(c, {"status": "ok", "metrics": {"val_accuracy": 0.9 - abs(math.log(lr / best)) / 100,
                                                 "val_nll": 0.3}})


def test_select_arm_extends_an_edge_choice_until_inside(tmp_path):
    store, base = _candidate_store(tmp_path, None)
    grid = rv.LR_GRID_V2["cpu"]
    best = max(grid) * rv.EXTEND_FACTOR  # the true optimum lies one step above the grid
    for n_ext in range(rv.MAX_EXTENSIONS + 1):
        g = list(grid) + [max(grid) * rv.EXTEND_FACTOR ** (i + 1) for i in range(n_ext)]
        _record_all(store, plan_v2.candidates("cpu", "student-mlp256", base, 1, g), best)
    sel = plan_v2.select_arm("cpu", "student-mlp256", base, 1, store, train=False)
    # the first extension lands on the optimum (again the top edge), the second shows it lies inside
    assert sel.lr == pytest.approx(best) and sel.extensions == 2 and sel.edge == ""
    assert sel.grid[-1] == pytest.approx(best * rv.EXTEND_FACTOR)


def test_select_arm_keeps_flagging_an_edge_after_the_last_extension(tmp_path):
    store, base = _candidate_store(tmp_path, None)
    grid = rv.LR_GRID_V2["cpu"]
    best = max(grid) * 100  # far above anything the extensions reach
    for n_ext in range(rv.MAX_EXTENSIONS + 1):
        g = list(grid) + [max(grid) * rv.EXTEND_FACTOR ** (i + 1) for i in range(n_ext)]
        _record_all(store, plan_v2.candidates("cpu", "student-mlp256", base, 1, g), best)
    sel = plan_v2.select_arm("cpu", "student-mlp256", base, 1, store, train=False)
    assert sel.edge == "top" and sel.extensions == rv.MAX_EXTENSIONS


def test_select_arm_is_none_while_a_candidate_is_missing(tmp_path):
    store, base = _candidate_store(tmp_path, None)
    assert plan_v2.select_arm("cpu", "student-mlp256", base, 1, store, train=False) is None


# ---- recipe v2's runs --------------------------------------------------------------------------------------------

def test_v2_keys_are_new_and_its_design_is_five_folds():
    v1 = {c.key() for c in __import__("kdutils.chapters.invariance.plan", fromlist=["configs"]).configs("cpu")}
    for pair in recipes.PAIRS:
        cfgs = [c for f in rv.FOLDS_V2["cpu"] for c in rv.fold_configs("cpu", pair, f, None)]
        assert not v1 & {c.key() for c in cfgs}
        assert {c.data.fold for c in cfgs} == {0, 1, 2, 3, 4} and all(c.seed == 100 + c.data.fold for c in cfgs)
        kd = [c for c in cfgs if c.teacher is not None]
        assert all(c.data.n_train == rv.recipe_v2(pair, "cpu").n_transfer for c in kd)
        assert {(c.tau, c.kd_direction) for c in kd if c.role == "distilled"} == \
            {(t, "forward") for t in recipes.TAUS} | {(1.0, "reverse"), (4.0, "reverse")}


def test_shards_are_disjoint_and_cover_every_pair():
    a, b = plan_v2.shard_pairs(0, 2), plan_v2.shard_pairs(1, 2)
    assert not set(a) & set(b) and set(a) | set(b) == set(recipes.PAIRS)
    with pytest.raises(ValueError, match="shard K/N"):
        plan_v2.shard_pairs(2, 2)


def test_run_seconds_against_a_hand_computed_value():
    cfg = rv.student_v2("cpu", "deepsets_mlp", "mlp", 0)
    rates = {cost_v2.model_id(cfg.model, dict(cfg.model_kwargs), cfg.data.dataset): Rate(1e-4, 3)}
    # 10 epochs x 48,000 x 1e-4 s, plus a third of (2 x 5,000 test + 12,000 validation) x 1e-4 s
    assert cost_v2.run_seconds(cfg, rates) == pytest.approx(48.0 + 22_000 * 1e-4 / 3)
    assert math.isnan(cost_v2.run_seconds(cfg, {}))


def test_dry_run_without_records_says_it_cannot_estimate(tmp_path):
    text = cost_v2.dry_run_text("cpu", 2, ResultStore(tmp_path))
    assert "NO RECORD" in text and "total: unknown" in text and "shard 1/2:" in text and "shard 2/2:" in text
    assert "shard 0/2" not in text  # shards are named as the command counts them, from 1


# ---- the ModelNet40 demo ---------------------------------------------------------------------------------------

def test_demo_status_is_rederived_under_the_current_rule():
    rec = lambda acc, status="ok": {"status": status, "metrics": {"accuracy": acc}}  # noqa: E731
    line = modelnet_demo.chance_line()
    assert line == pytest.approx(1 / 40 + 0.05 * (1 - 1 / 40))
    assert modelnet_demo.derived_status(rec(0.0)) == "chance"
    assert modelnet_demo.derived_status(rec(line + 0.01)) == "ok"
    assert modelnet_demo.derived_status(rec(0.0, "diverged")) == "diverged"


def test_the_page_keeps_v1_until_v2_is_recorded(tmp_path):
    from kdutils.chapters.invariance import tables

    store = ResultStore(tmp_path)
    assert all(tables.recipe_in_use("cpu", p, store) == "v1" for p in recipes.PAIRS)
    text = tables.recipe_sentence("cpu", store)
    assert text.count("recipe v1") == 3 and "run_v2 --dry-run" in text
    assert tables.edge_table("cpu", store).empty  # nothing selected: nothing to flag


def test_the_scale_names_each_pairs_folds_and_sizes():
    # a page mid-way from v1 to v2: one pair on five folds with a larger student transfer set, one on three
    cpu = "cpu: x86_64, 1 threads"
    rows = [{"pair": "resnet_mlp", "dataset": "mnist", "role": r, "fold": f, "n_train": n, "n_test": 5000,
             "device": cpu} for f in range(5) for r, n in (("teacher", 8000), ("student", 16000), ("distilled", 16000))]
    rows += [{"pair": "deepsets_mlp", "dataset": "set_mnist_jitter", "role": r, "fold": f, "n_train": 48000,
              "n_test": 5000, "device": None} for f in range(3) for r in ("teacher", "student")]
    table = pd.DataFrame(rows)
    scale = tables.scale_text(table, "cpu")
    assert scale.startswith("profile `cpu`, MNIST and set-MNIST (ResNet -> MLP")
    assert tables.scale_text(table[table.pair == "resnet_mlp"], "cpu").startswith("profile `cpu`, MNIST (ResNet")
    assert "ResNet -> MLP: folds 0-4 of 5, 8,000 training examples for teachers, 16,000 for students" in scale
    assert "DeepSets -> MLP: folds 0-2 of 5, 48,000 training examples" in scale and "DGCNN" not in scale
    assert scale.endswith("5,000 test examples per run, on CPU (1 thread)")
    assert tables._folds_text([0, 2]) == "folds 0, 2" and tables._folds_text([3]) == "fold 3"


def test_a_disagreeing_rank_check_reruns_the_checked_arm_at_the_full_length_best_rate(monkeypatch):
    import types

    pair, student, tau = rv.RANK_CHECK
    arms = {**{a: 1e-3 for a in ("teacher", "teacher_prime")},
            recipes.arm_key("student", student): 2e-3, recipes.arm_key("distilled", student, tau): 4.5e-3}
    sel = {a: types.SimpleNamespace(lr=lr) for a, lr in arms.items()}
    monkeypatch.setattr(plan_v2, "select_v2", lambda profile, p, store=None: sel)
    check = {"lrs": [1.5e-3, 4.5e-3, 1.35e-2], "short": [0.5, 0.7, 0.6], "full": [0.5, 0.6, 0.7], "best_short": 1,
             "best_full": 2, "same_choice": False}
    monkeypatch.setattr(plan_v2, "rank_check", lambda profile, store=None: check)
    cfgs = plan_v2.rank_check_rerun_configs("cpu")
    assert [c.data.fold for c in cfgs] == list(rv.FOLDS_V2["cpu"])
    assert {(c.role, c.tau, c.kd_direction, c.train.lr) for c in cfgs} == {("distilled", tau, "forward", 1.35e-2)}
    # the same arm at its selected rate is a final run; the rerun differs only in its rate
    final = rv.kd_v2("cpu", pair, student, tau, "distilled", 0, "forward", arms)
    assert final.train.lr == 4.5e-3 and cfgs[0].with_(train=final.train).key() == final.key()
    monkeypatch.setattr(plan_v2, "rank_check", lambda profile, store=None: {**check, "same_choice": True})
    assert plan_v2.rank_check_rerun_configs("cpu") is None  # agreeing lengths: nothing to rerun


def test_the_rank_check_table_marks_each_lengths_best_rate_and_the_text_says_whether_they_agree(monkeypatch):
    from kdutils.chapters.invariance import report

    check = {"arm": "select:distilled-dsinv-tau4", "lrs": [1.5e-3, 4.5e-3, 1.35e-2], "short": [0.5, 0.7, 0.6],
             "full": [0.5, 0.6, 0.7], "kendall_tau": 1 / 3, "best_short": 1, "best_full": 2, "same_choice": False,
             "short_epochs": 3, "full_epochs": 6}
    monkeypatch.setattr(plan_v2, "rank_check", lambda profile, store=None: check)
    monkeypatch.setattr(report, "rank_check_rerun_table", lambda profile, store=None: pd.DataFrame())
    t = report.rank_check_table("cpu")
    assert list(t["best at"]) == ["", "selection", "final length"]
    text = report.rank_check_markdown("cpu")
    assert "DISAGREE on the best rate" in text and "not yet recorded" in text  # the rerun is still to run
    monkeypatch.setattr(plan_v2, "rank_check", lambda profile, store=None: {**check, "full": [0.5, 0.7, 0.6],
                                                                           "best_full": 1, "same_choice": True})
    assert list(report.rank_check_table("cpu")["best at"]) == ["", "selection and final length", ""]
    assert "they agree on the best rate" in report.rank_check_markdown("cpu")
