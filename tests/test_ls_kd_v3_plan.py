"""LS-KD recipe v3: configs, the plan from records, shards, the cost estimate, and the measures it adds."""
import math

import pytest
import torch

from kdutils.chapters.ls_kd import cost_v3, plan_v3, recipe_v3 as rv3, recipes
from kdutils.chapters.ls_kd.projection import mueller_plane_basis, project_mueller
from kdutils.chapters.ls_kd.run_v3 import main
from kdutils.chapters.ls_kd.separation import class_spreads, mean_separation, pair_separation, pairs_of
from kdutils.store.store import ResultStore


def test_attempt_1_teachers_were_v2_runs_and_attempt_2_ends_at_its_final_rate():
    """Attempt 1 at `cpu` reused v2's teacher recipe (same record keys); attempt 2 trains longer, with the rate's
    last drop at least 5 epochs before the end, so the convergence gate reads epochs at one rate."""
    first = rv3.EARLIER_V3["cpu"][0]
    for ls in (0.0, 0.1):
        assert rv3.teacher_config("cpu", ls, 0.1, 0, first).key() == recipes.teacher_config("cpu", ls, 0.1).key()
    assert 0 not in first.teacher_seeds  # v2's seed-0 teachers (no checkpoint left) are not reused
    current = rv3.recipe_v3("cpu")
    assert current.attempt == first.attempt + 1
    t = rv3.teacher_config("cpu", 0.0, 0.1, 1).train
    assert t.epochs - max(t.milestones) >= 5 and t.epochs > first.teacher_epochs
    assert max(current.student_lrs) > max(first.student_lrs)  # attempt 1 chose the top of its grid


def test_recipe_has_three_or_more_teachers_and_a_conv_student():
    r = rv3.recipe_v3("cpu")
    assert len(r.teacher_seeds) >= 3 and r.student_model == "resnet8" and len(r.student_seeds) >= 2
    assert 0.2 in r.not_run  # Supplementary J: listed as not run, with the reason
    with pytest.raises(ValueError, match="choose one of"):
        rv3.recipe_v3("full")


def _select_record(cfg, acc):
    return {"status": "ok", "metrics": {"val_accuracy": acc, "val_nll": 1.0 - acc, "accuracy": 0.5},
            "wall_time_s": 1.0, "n_train": 600}


def _store_with_selections(tmp_path, matched=None):
    store = ResultStore(tmp_path)
    for ls in (0.0, 0.1):
        for c in rv3.teacher_selection("smoke", ls):
            store.put(c, _select_record(c, 0.5))
    t0 = rv3.teacher_config("smoke", 0.0, 0.1, rv3.recipe_v3("smoke").teacher_seeds[0])
    for c in rv3.rate_selection("smoke", t0):
        store.put(c, _select_record(c, 0.9 if c.train.lr == 0.05 else 0.4))
    if matched is not None:
        for i in rv3.recipe_v3("smoke").teacher_seeds:
            ls_t = rv3.teacher_config("smoke", 0.1, 0.1, i)
            store.put(recipes.analysis_config(ls_t), {"status": "ok", "analysis": {"matched": matched}})
    return store


def test_plan_from_records_and_shards(tmp_path):
    empty = plan_v3.build("smoke", ResultStore(tmp_path / "empty"))
    assert not empty.units and "teacher rate of LS 0" in empty.missing
    store = _store_with_selections(tmp_path, matched={"1": 1.77})
    p = plan_v3.build("smoke", store)
    r = rv3.recipe_v3("smoke")
    assert p.common_lr == 0.05 and not p.missing
    students = p.finals("student")
    n_pairs = len(r.teacher_seeds)
    assert len(students) == n_pairs * (len(r.ls_values) * len(r.taus) + 1) * len(r.student_seeds)
    assert {u.cfg.train.lr for u in students + p.finals("alone")} == {0.05}  # one rate for every student
    assert {u.tau for u in students if u.matched == 1.0} == {1.77}
    # shards: each pair's teachers and students in one shard; the alone arm in shard 0
    shards = {k: [u for u in p.units if plan_v3.unit_shard(u, 2, r) == k] for k in (0, 1)}
    assert len(shards[0]) + len(shards[1]) == len(p.units) and shards[0] and shards[1]
    for k, us in shards.items():
        pairs = {u.pair for u in us if u.pair is not None}
        assert pairs == {i for x, i in enumerate(r.teacher_seeds) if x % 2 == k}
        assert {u.seed for u in us if u.kind == "alone"} == {s for x, s in enumerate(r.alone_seeds) if x % 2 == k}
    for u in p.units:
        if u.kind == "student":
            assert u.cfg.teacher.seed == u.pair
    with pytest.raises(ValueError, match="shard"):
        plan_v3.check_shard(2, 2)


def test_cost_estimate_uses_recorded_rates(tmp_path):
    store = _store_with_selections(tmp_path)
    t = rv3.teacher_config("smoke", 0.0, 0.1, 1)
    # a recorded final teacher: 2 s for 1 epoch on 600 images -> 1/300 s per image-epoch
    store.put(t, {"status": "ok", "metrics": {"accuracy": 0.5}, "wall_time_s": 2.0, "n_train": 600})
    rates = cost_v3.measured_rates(store)
    key = 'resnet8{"widths": [4, 4, 8, 8]}'
    assert rates[key].seconds == pytest.approx(2.0 / 600) and rates[key].runs == 1
    item = cost_v3.Item("x", key, 3, 2, 600, True, 0)
    per_run = 2 * 600 * (2.0 / 600) + (600 + cost_v3.FASHION_TEST) * (2.0 / 600) / 3
    assert item.seconds(rates) == pytest.approx(3 * per_run)
    assert math.isnan(cost_v3.Item("y", "unknown", 1, 1, 1, False, 0).seconds(rates))
    text = cost_v3.dry_run_text("smoke", 2, store)
    assert "shard 1/2:" in text and "shard 2/2:" in text and "shard 0/2" not in text and "core-hours" in text


def test_cli_refuses_a_bad_shard(capsys):
    with pytest.raises(SystemExit):
        main(["--shard", "3/2", "--dry-run"])
    assert "'3/2'" in capsys.readouterr().err  # names the bad value; the parser's own messages: test_shards_and_cost


def test_separation_against_a_hand_computation():
    x = torch.tensor([[0.0, 1.0], [0.0, -1.0], [3.0, 5.0], [3.0, 3.0]])
    y = torch.tensor([0, 0, 1, 1])
    s = class_spreads(x, y, 2)
    assert s.tolist() == pytest.approx([1.0, 1.0])
    cents = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert pair_separation(cents, s, 0, 1) == pytest.approx(5.0)
    sim, dis = pairs_of({0: ((1,), (2,)), 1: ((0,), (2,))})
    assert sim == [(0, 1)] and dis == [(0, 2), (1, 2)]
    sep = mean_separation(torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]]), torch.tensor([1.0, 1.0, 2.0]),
                          {0: ((1,), (2,)), 1: ((0,), (2,))})
    assert sep["similar"] == pytest.approx(5.0)
    assert sep["dissimilar"] == pytest.approx((10.0 / math.sqrt(2.5) + 5.0 / math.sqrt(2.5)) / 2)


def test_mueller_plane_passes_through_the_three_templates():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(10, 6, generator=g)
    basis = mueller_plane_basis(w, (0, 6, 7))
    assert torch.allclose(basis.T @ basis, torch.eye(2, dtype=torch.float64), atol=1e-12)
    pts = project_mueller(w[[0, 6, 7]], w, (0, 6, 7))
    d2 = torch.cdist(pts, pts)
    d_full = torch.cdist(w[[0, 6, 7]].double(), w[[0, 6, 7]].double())
    assert torch.allclose(d2, d_full, atol=1e-9)  # the templates lie in the plane: distances kept exactly
    with pytest.raises(ValueError, match="collinear"):
        mueller_plane_basis(torch.stack([torch.zeros(6), torch.ones(6), 2 * torch.ones(6)]), (0, 1, 2))


def test_report_before_the_run_says_not_yet_run(tmp_path):
    from kdutils.chapters.ls_kd import report_v3
    from kdutils.verdicts.verdict import NOT_YET_RUN

    vs = report_v3.verdicts("cpu", ResultStore(tmp_path))
    assert len(vs) == 7 and all(v.label == NOT_YET_RUN for v in vs) and not vs[-1].scored
    (title, text), = report_v3.page_sections("cpu", ResultStore(tmp_path))
    assert "not recorded yet" in text and "--shard 1/2" in text and "--shard 2/2" in text
    assert "LS 0.2" in report_v3.not_run_markdown("cpu") and "Table B.5" in report_v3.not_run_markdown("cpu")


def test_the_recorded_attempt_gives_each_judged_claim_its_effect_for_the_scorecard():
    """The scorecard's effect column reads `Verdict.effect`: from the committed records, every claim judged on
    recorded students carries each part's interval there."""
    from pathlib import Path

    from kdutils.chapters.ls_kd import report_v3
    from kdutils.verdicts.verdict import NOT_YET_RUN

    store = ResultStore(Path(__file__).resolve().parents[1] / "results")
    vs = report_v3.verdicts("cpu", store)
    judged = [v for v in vs if v.parts and v.label != NOT_YET_RUN]
    if not judged:
        pytest.skip("no recorded v3 students at profile cpu")
    for v in judged:
        assert v.effect and all(f.key in v.effect for f in v.parts if f.effect), v.claim
