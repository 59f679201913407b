"""The fidelity chapter's run schedule and new arms: shards split every phase disjointly and the same way in
every process, costs come from recorded wall times, the dry run prints the two commands and trains nothing,
the unlabelled pool is disjoint from the teacher's images, and the baseline evaluations and the unlabelled arm
run at smoke."""
from __future__ import annotations

import pytest
import torch

from kdutils.chapters.does_kd_work import plan as dkw, run as frun, schedule
from kdutils.store.store import ResultStore
from kdutils.training.runner import prepare_data

pytest.importorskip("kdutils.data.datasets")


def test_assign_is_disjoint_covering_balanced_and_deterministic():
    jobs = dkw.phase_jobs(3, "cpu", ("fashion_mnist", "mnist"), dkw.RUN_ORDER, "v2", ResultStore(),
                               planned=True)
    cost = {j.key(): float(i % 7 + 1) for i, j in enumerate(jobs)}
    shares = schedule.assign(jobs, 2, lambda j: cost[j.key()])
    keys = [j.key() for share in shares for j in share]
    assert sorted(keys) == sorted(cost) and len(set(keys)) == len(keys)  # disjoint and covering
    loads = [sum(cost[j.key()] for j in share) for share in shares]
    assert abs(loads[0] - loads[1]) <= max(cost.values())  # longest-first keeps the shares within one job
    again = schedule.assign(list(reversed(jobs)), 2, lambda j: cost[j.key()])
    assert [[j.key() for j in s] for s in again] == [[j.key() for j in s] for s in shares]  # order-independent


def test_costs_from_recorded_wall_times(tmp_path):
    store = ResultStore(tmp_path)
    teacher = dkw.teacher_config("cpu", version="v1")
    store.put(teacher, {"status": "ok", "metrics": {}, "n_train": 4000, "wall_time_s": 40.0})  # 1 ms/image-epoch
    rates = schedule.measured_rates(store, "cpu")
    assert rates[("teacher", "preresnet8")] == pytest.approx(40.0 / (10 * 4000))
    v2 = dkw.teacher_config("cpu")
    assert schedule.job_cost(v2, rates) == pytest.approx(1e-3 * (4000 * 120 + schedule.EVAL_IMAGE_EPOCHS))
    student = dkw.claim_specs(1, "cpu")[0]
    assert schedule.job_cost(student, rates) is None  # no student measured: no estimate, never a guess


def test_dry_run_prints_the_plan_and_trains_nothing(tmp_path, capsys):
    store = ResultStore(tmp_path)
    assert schedule.run_all("cpu", store=store, dry_run=True, shard="1/2") == []
    out = capsys.readouterr().out
    assert "recipe v3" in out and "phase 3:" in out and "--shard 2/2" in out and "--set shard" not in out
    assert not any(store.records(dkw.EXPERIMENT))


def test_unlabelled_pool_is_disjoint_from_the_teachers_images():
    data = dkw.teacher_config("smoke", dataset="mnist").data
    pool = frun.unused_images(data)
    splits = prepare_data(data)
    assert len(pool) == 60000 - data.val_size - data.n_train

    def rows(ds):
        return {bytes(x.numpy().tobytes()) for x in ds.x}
    assert not rows(pool) & rows(splits.train)
    assert not rows(pool) & rows(splits.val)


def test_baselines_and_the_unlabelled_arm_run_at_smoke(dkw_scratch):
    base = dkw.baseline_specs("smoke", teacher_lr=0.1, lrs={"crop_flip": 0.05, "none": 0.05})
    ceiling = next(b for b in base if b.evaluate == "init" and b.r == 0.0)
    rec = frun.run_spec(ceiling, dkw_scratch, progress=False)
    assert rec["status"] == "ok" and 0.0 <= rec["metrics"]["agreement"] <= 1.0 and "train_distill_loss" in rec["metrics"]
    plain = next(b for b in base if b.evaluate == "plain")
    rec = frun.run_spec(plain, dkw_scratch, progress=False)
    other = dkw_scratch.get(dkw.teacher_config("smoke", plain.plain_member, lr=0.1))
    assert other is not None  # the plain model was trained (teacher recipe, another seed) and compared
    assert rec["metrics"]["accuracy"] == pytest.approx(other["metrics"]["accuracy"])
    arm = next(s for s in dkw.claim_specs(7, "smoke", "mnist", teacher_lr=0.1, lrs={"crop_flip": 0.05})
               if s.n_unlabelled)
    rec = frun.run_spec(arm, dkw_scratch, progress=False)
    assert rec["n_distill"] == dkw.recipe("smoke", "mnist").n_train + arm.n_unlabelled
    assert torch.isfinite(torch.tensor(rec["metrics"]["agreement"]))
