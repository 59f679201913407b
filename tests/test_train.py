"""The training loop and the runner: determinism, divergence, frozen teachers, reuse of recorded work."""
import math

import pytest
import torch
from torch import nn

from kdutils.chapters.hinton import plan as hinton
from kdutils.config import DataConfig, RunConfig, TrainConfig, run_config_from_dict
from kdutils.data.device_loader import DeviceLoader
from kdutils.store.store import ResultStore
from kdutils.training import runner
from kdutils.training.train import fit


def toy_data(n=256, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 4, 4, generator=gen)
    y = (x.flatten(1).sum(1) > 0).long()
    return x, y


def mlp(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, 2))


def test_fit_learns_and_is_deterministic():
    x, y = toy_data()
    results = []
    for _ in range(2):
        model = mlp()
        res = fit(model, DeviceLoader(x, y, 32, seed=1), TrainConfig(epochs=5, lr=0.1), progress=False)
        results.append((res, [p.detach().clone() for p in model.parameters()]))
    (a, pa), (b, pb) = results
    assert a.status == "ok" and a.history[-1]["train_acc"] > 0.85
    assert a.history[-1]["loss"] < a.history[0]["loss"]
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert all(torch.equal(u, v) for u, v in zip(pa, pb))


def test_divergence_stops_the_run_with_a_status():
    x, y = toy_data()
    x = x * 1e6  # a step of lr=10 on these inputs blows the loss up
    res = fit(mlp(), DeviceLoader(x, y, 32, seed=1), TrainConfig(epochs=20, lr=10.0), progress=False,
              check_every=1)
    assert res.status == "diverged" and res.epochs_run < 20
    assert "diverged" in res.message


def test_teacher_is_frozen_in_eval_mode_and_cached_logits_match_recomputing():
    x, y = toy_data()
    teacher = mlp(seed=5, dropout=0.5)
    fit(teacher, DeviceLoader(x, y, 32, seed=2), TrainConfig(epochs=2), progress=False)
    before = [p.detach().clone() for p in teacher.parameters()]
    teacher.train()
    live = mlp(seed=1)
    res_live = fit(live, DeviceLoader(x, y, 32, seed=3), TrainConfig(epochs=3), teacher=teacher, tau=4.0, alpha=0.7,
                   progress=False)
    assert not teacher.training  # dropout off: the teacher's targets are deterministic
    assert all(torch.equal(p, q) for p, q in zip(before, teacher.parameters()))
    with torch.no_grad():
        cached_logits = teacher(x)
    cached = mlp(seed=1)
    res_cached = fit(cached, DeviceLoader(x, y, 32, seed=3), TrainConfig(epochs=3), teacher_logits=cached_logits,
                     tau=4.0, alpha=0.7, progress=False)
    for h1, h2 in zip(res_live.history, res_cached.history):
        assert math.isclose(h1["loss"], h2["loss"], rel_tol=1e-5)
    for p, q in zip(live.parameters(), cached.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_distillation_needs_a_teacher():
    x, y = toy_data()
    with pytest.raises(ValueError, match="alpha=0.5"):
        fit(mlp(), DeviceLoader(x, y, 32), TrainConfig(), alpha=0.5, progress=False)


def test_hinton_smoke_runs_are_recorded_reused_and_deterministic(tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "results")
    trained = []
    real_fit = runner.fit

    def counting_fit(model, loader, cfg, **kw):
        trained.append(kw["desc"])
        return real_fit(model, loader, cfg, **kw)

    monkeypatch.setattr(runner, "fit", counting_fit)
    records = hinton.run_all("smoke", taus=(4.0, 20.0), store=store, progress=False)
    # smoke: the student alone and T=20 at seeds 0 and 1, the rest of the sweep at seed 0 (lr selection aside)
    assert [r["config"]["role"] for r in records] == ["teacher"] + ["student"] * 2 + ["distilled"] * 3
    assert trained.count("hinton_mnist/teacher") == 1  # one teacher serves every student
    assert all(r["status"] == "ok" for r in records)
    distilled = records[-1]
    assert distilled["config"]["teacher"] == records[0]["config"]
    assert 0.0 <= distilled["metrics"]["agreement"] <= 1.0 and distilled["metrics"]["kl"] >= 0.0
    prov = distilled["provenance"]
    assert prov["device"].startswith("cpu") and len(prov["commit"]) >= 7 and prov["torch"] == torch.__version__

    trained.clear()
    again = hinton.run_all("smoke", taus=(4.0, 20.0), store=store, progress=False)
    assert trained == [] and again == records  # loaded from the store, not retrained

    t4 = next(r for r in records if r["config"]["tau"] == 4.0 and r["config"]["role"] == "distilled")
    rerun = runner.run(run_config_from_dict(t4["config"]), ResultStore(tmp_path / "other"), progress=False)
    assert rerun["metrics"] == t4["metrics"]  # same seed, same CPU: identical metrics


def test_unknown_names_fail_clearly():
    with pytest.raises(ValueError, match="imagenet"):
        runner.prepare_data(DataConfig(dataset="imagenet"))
    with pytest.raises(ValueError, match="'tiny'"):
        hinton.teacher_config("tiny", 0.1)
