"""Grouped runs: who is trained together, and that their records are the records runner.run writes."""
import math

import pytest
import torch

from kdutils.config import DataConfig, RunConfig, TrainConfig
from kdutils.store.store import ResultStore
from kdutils.training import group_runner, runner
from kdutils.training.group_runner import group_key, partition, run_grouped

DATA = DataConfig(dataset="mnist", n_train=512, n_test=256)


pytestmark = pytest.mark.usefixtures("one_thread")


def teacher(augment="shift1"):
    return RunConfig(experiment="grouptest", role="teacher", model="mlp", model_kwargs={"hidden": [64]}, data=DATA,
                     train=TrainConfig(epochs=2, batch_size=64, lr=0.05, augment=augment))


def student(**kw):
    base = RunConfig(experiment="grouptest", role="student", model="mlp", model_kwargs={"hidden": [32]}, data=DATA,
                     train=TrainConfig(epochs=2, batch_size=64, lr=0.05, schedule="cosine"))
    if kw.get("alpha", 0) > 0:
        kw.setdefault("teacher", teacher())
        kw.setdefault("role", "distilled")
    return base.with_(**kw)


def test_partition_groups_only_configs_that_share_model_data_and_optimisation():
    t = teacher()
    a = student()                          # no teacher: joins the distilled students of the same recipe
    b = student(tau=4.0, alpha=0.9)
    c = student(tau=20.0, alpha=0.5, seed=1, label_smoothing=0.1, kd_direction="reverse")
    d = student(tau=4.0, alpha=0.9, train=TrainConfig(epochs=2, batch_size=64, lr=0.1, schedule="cosine"))
    e = student(tau=4.0, alpha=0.9, model_kwargs={"hidden": [16]})
    f = student(tau=4.0, alpha=0.9, teacher=teacher(augment="none"))
    assert group_key(a) == group_key(b) == group_key(c) == group_key(f)
    assert len({group_key(x) for x in (a, d, e)}) == 3
    groups = partition([t, a, b, c, d, e, f])
    assert [[x.key() for x in g] for g in groups] == [[t.key()], [a.key(), b.key(), c.key()], [d.key()], [e.key()],
                                                       [f.key()]]
    many = [student(tau=float(i + 1), alpha=0.5) for i in range(10)]
    assert [len(g) for g in partition(many, max_group=8)] == [5, 5]
    assert [len(g) for g in partition(many, max_group=3)] == [3, 3, 2, 2]
    with pytest.raises(ValueError, match="max_group"):
        partition(many, max_group=0)


def test_grouped_records_match_separate_runs_and_are_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path / "cache"))  # checkpoints live in the cache, not the store
    cfgs = [student(), student(tau=4.0, alpha=0.9), student(tau=20.0, alpha=0.7, seed=1), teacher(),
            student(tau=4.0, alpha=0.9)]  # a duplicate gets the same record
    groups, fits = [], []
    real_fit_students, real_fit = group_runner.fit_students, runner.fit

    def counting_fit_students(models, loader, cfg, **kw):
        groups.append(len(models))
        return real_fit_students(models, loader, cfg, **kw)

    def counting_fit(model, loader, cfg, **kw):
        fits.append(kw["desc"])
        return real_fit(model, loader, cfg, **kw)

    monkeypatch.setattr(group_runner, "fit_students", counting_fit_students)
    monkeypatch.setattr(runner, "fit", counting_fit)
    store = ResultStore(tmp_path / "grouped")
    records = run_grouped(cfgs, store, progress=False)
    assert groups == [3] and fits == ["grouptest/teacher"]  # the teacher alone first, then 3 students at once
    assert [r["key"] for r in records] == [c.key() for c in cfgs] and records[4] == records[1]
    assert [r.get("trained_together") for r in records] == [3, 3, 3, None, 3]
    assert all(store.checkpoint_path(c).exists() for c in cfgs)
    saved = {c.key(): torch.load(store.checkpoint_path(c), weights_only=True) for c in cfgs[:3]}

    monkeypatch.setattr(runner, "fit", real_fit)
    alone_store = ResultStore(tmp_path / "alone")
    for cfg, rec in zip(cfgs[:3], records[:3]):
        alone = runner.run(cfg, alone_store, progress=False)
        assert set(rec) - set(alone) == {"trained_together"} and set(alone) <= set(rec)
        assert rec["config"] == alone["config"] and rec["status"] == alone["status"] == "ok"
        assert set(rec["metrics"]) == set(alone["metrics"])
        for name, value in alone["metrics"].items():
            assert math.isclose(rec["metrics"][name], value, rel_tol=1e-4, abs_tol=1e-5), name
        for h1, h2 in zip(rec["history"], alone["history"]):
            assert math.isclose(h1["loss"], h2["loss"], rel_tol=1e-4) and h1["lr"] == h2["lr"]
        for name, value in torch.load(alone_store.checkpoint_path(cfg), weights_only=True).items():
            torch.testing.assert_close(saved[cfg.key()][name], value, rtol=1e-4, atol=1e-5)
    assert "agreement" in records[1]["metrics"] and "agreement" not in records[0]["metrics"]

    groups.clear()
    fits.clear()
    monkeypatch.setattr(runner, "fit", counting_fit)
    assert run_grouped(cfgs, store, progress=False) == records  # second call: everything loaded
    assert groups == [] and fits == []


def test_a_group_of_one_is_runner_run(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(group_runner.runner, "run", lambda cfg, store, **kw: calls.append(cfg) or {"ok": 1})
    store = ResultStore(tmp_path)
    cfg = student(model_kwargs={"hidden": [8]})
    run_grouped([cfg], store, progress=False)
    assert calls == [cfg]


def _tiny_experiment(monkeypatch, tmp_path, point_configs):
    """A stand-in chapter `grouptest` and a notebook that names it."""
    import json

    from chapter_fakes import install_fake_chapter

    install_fake_chapter(monkeypatch, "grouptest", point_configs=point_configs)
    notebook = tmp_path / "grouptest_point.ipynb"
    params = {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": 'profile = "smoke"\ntau = 1.0\n',
              "outputs": [], "execution_count": None}
    notebook.write_text(json.dumps({"cells": [params], "metadata": {"kdutils": {"experiment": "grouptest"}},
                                    "nbformat": 4, "nbformat_minor": 5}))
    return notebook


def test_sweep_trains_the_grid_s_students_together_before_the_notebooks(tmp_path, monkeypatch):
    from kdutils.sweeps.sweep import run_sweep

    monkeypatch.setenv("KDUTILS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path / "cache"))

    def point_configs(profile, tau):
        return [teacher(), student(), student(tau=float(tau), alpha=0.9)]

    notebook = _tiny_experiment(monkeypatch, tmp_path, point_configs)
    groups, fits, executed = [], [], []
    real_fit_students, real_fit = group_runner.fit_students, runner.fit
    monkeypatch.setattr(group_runner, "fit_students",
                        lambda models, *a, **kw: groups.append(len(models)) or real_fit_students(models, *a, **kw))
    monkeypatch.setattr(runner, "fit", lambda *a, **kw: fits.append(kw["desc"]) or real_fit(*a, **kw))

    def notebook_executor(nb, output, params, cwd):  # what the point notebook does: run (or load) its configs
        n_fits = len(fits)
        records = [runner.run(c, progress=False) for c in point_configs(params["profile"], params["tau"])]
        assert all(r["status"] == "ok" for r in records)
        executed.append((params["tau"], len(fits) - n_fits))  # (point, runs the notebook had to train)

    report = run_sweep(notebook, {"tau": [1.0, 4.0, 20.0]}, out_dir=tmp_path / "runs", executor=notebook_executor,
                       progress=False)
    assert groups == [4] and fits == ["grouptest/teacher"]  # student alone + 3 taus in one fit_students call
    assert executed == [(1.0, 0), (4.0, 0), (20.0, 0)] and len(report.done) == 3 and report.grouped == 5
    recorded = list(ResultStore().records("grouptest"))
    assert len(recorded) == 5  # teacher + one record per student
    assert sorted(r.get("trained_together", 1) for r in recorded) == [1, 4, 4, 4, 4]
    assert "5 run(s) trained together" in report.summary()

    groups.clear()
    report = run_sweep(notebook, {"tau": [1.0, 4.0, 20.0, 8.0]}, out_dir=tmp_path / "runs",
                       executor=notebook_executor, progress=False, group=False)
    assert groups == [] and report.grouped == 0 and len(report.done) == 1
    assert executed[-1] == (8.0, 1)  # --no-group: the notebook trains its own student


def test_a_failing_grouped_pre_run_does_not_stop_the_sweep(tmp_path, monkeypatch):
    from kdutils.sweeps.sweep import run_sweep

    def point_configs(profile, tau):
        raise RuntimeError(f"no configs for tau={tau}")

    notebook = _tiny_experiment(monkeypatch, tmp_path, point_configs)
    executed = []
    report = run_sweep(notebook, {"tau": [1, 2]}, out_dir=tmp_path / "runs", progress=False,
                       executor=lambda nb, out, params, cwd: executed.append(params["tau"]))
    assert executed == [1, 2] and len(report.done) == 2
    assert "no configs for tau=1" in report.group_error and "grouped pre-run failed" in report.summary()


def test_hinton_point_configs_are_what_its_point_notebook_runs(monkeypatch, tmp_path):
    import json
    from pathlib import Path

    from kdutils.chapters.hinton import plan as hinton

    # the point's final runs (its arms' lr selection runs first, in a scratch store)
    monkeypatch.setenv("KDUTILS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path / "cache"))
    ran = hinton.run_all(profile="smoke", tau=4.0, alpha=0.5, seed=0, progress=False)
    assert [c.key() for c in hinton.point_configs("smoke", tau=4, alpha=0.5, seed=0)] == [r["key"] for r in ran]
    nb = json.loads((Path(__file__).parents[1] / "notebooks" / "hinton_kd.ipynb").read_text())
    assert nb["metadata"]["kdutils"] == {"experiment": "hinton"}
