"""Students trained together must be the students trained alone: same weights, same loss history.

Tolerance: the vmap engine runs the same float32 arithmetic as `train.fit` but through batched kernels
(a (K, B, D) x (K, D, H) batched matmul instead of K plain ones), whose summation order may differ; on CPU
the results are usually bitwise equal and always within rtol 1e-4 / atol 1e-5 after a few epochs. The loop
engine runs exactly fit()'s operations and is compared bitwise.
"""
import math
import warnings

import pytest
import torch
from torch import nn

from kdutils.config import TrainConfig
from kdutils.data.device_loader import DeviceLoader
from kdutils.losses import kd_objective
from kdutils.training.engines import capture_rng_state
from kdutils.training.multi_student import fit_students, resolve_mode
from kdutils.training.stacked import stacked_kd_objective
from kdutils.training.train import fit

RTOL, ATOL = 1e-4, 1e-5


pytestmark = pytest.mark.usefixtures("one_thread")
SPECS = [dict(tau=1.0, alpha=0.0), dict(tau=4.0, alpha=0.5, label_smoothing=0.1),
         dict(tau=2.0, alpha=1.0, kd_direction="reverse")]


def toy_data(n=384, side=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, side, side, generator=gen)
    y = (x.flatten(1).sum(1) > 0).long() + (x[:, 0, 0, 0] > 1).long()  # 3 classes
    return x, y


def mlp(seed=0, dropout=0.0, d_in=16):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d_in, 48), nn.ReLU(), nn.Dropout(dropout), nn.Linear(48, 48),
                         nn.ReLU(), nn.Linear(48, 3))


def teacher_logits(x):
    teacher = mlp(seed=9, d_in=x[0].numel())
    with torch.no_grad():
        return teacher(x) * 3


def assert_same_training(model_a, res_a, model_b, res_b, exact=False):
    assert res_a.status == res_b.status and res_a.epochs_run == res_b.epochs_run
    assert [h["epoch"] for h in res_a.history] == [h["epoch"] for h in res_b.history]
    for ha, hb in zip(res_a.history, res_b.history):
        assert ha["lr"] == hb["lr"]
        if exact:
            assert ha == hb
        else:
            assert math.isclose(ha["loss"], hb["loss"], rel_tol=RTOL, abs_tol=ATOL)
            assert abs(ha["train_acc"] - hb["train_acc"]) <= 2 / 384  # an argmax tie may flip
    for (name, p), q in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        if exact:
            assert torch.equal(p, q), name
        else:
            torch.testing.assert_close(p, q, rtol=RTOL, atol=ATOL, msg=name)


def test_stacked_objective_matches_kd_objective_values_and_gradients():
    gen = torch.Generator().manual_seed(0)
    specs = SPECS + [dict(tau=8.0, alpha=0.9, kd_direction="forward", label_smoothing=0.2)]
    logits = (torch.randn(4, 32, 5, generator=gen) * 3).requires_grad_()
    teacher = torch.randn(32, 5, generator=gen) * 4
    y = torch.randint(0, 5, (32,), generator=gen)
    losses = stacked_kd_objective(logits, y, teacher, specs)
    (grad,) = torch.autograd.grad(losses.sum(), logits)
    for k, spec in enumerate(specs):
        lk = logits[k].detach().clone().requires_grad_()
        ref = kd_objective(lk, y, teacher, tau=spec["tau"], alpha=spec["alpha"],
                           direction=spec.get("kd_direction", "forward"),
                           label_smoothing=spec.get("label_smoothing", 0.0))
        ref.backward()
        torch.testing.assert_close(losses[k], ref, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(grad[k], lk.grad, rtol=1e-6, atol=1e-7)
    # per-student teacher logits (K, B, C) and targets (K, B) are used per student
    teachers = torch.randn(4, 32, 5, generator=gen)
    ys = torch.randint(0, 5, (4, 32), generator=gen)
    losses = stacked_kd_objective(logits.detach(), ys, teachers, specs)
    ref = kd_objective(logits[2].detach(), ys[2], teachers[2], tau=2.0, alpha=1.0, direction="reverse")
    torch.testing.assert_close(losses[2], ref)
    with pytest.raises(ValueError, match="teacher_logits is None"):
        stacked_kd_objective(logits.detach(), y, None, specs)


@pytest.mark.parametrize("mode", ["vmap", "loop", "sequence"])
def test_students_trained_together_match_separate_fits(mode):
    x, y = toy_data()
    tl = teacher_logits(x)
    cfg = TrainConfig(epochs=3, lr=0.1, schedule="cosine")
    separate = []
    for spec in SPECS:
        model = mlp(seed=1)
        separate.append((model, fit(model, DeviceLoader(x, y, 32, seed=3), cfg, teacher_logits=tl, progress=False,
                                    **spec)))
    together = [mlp(seed=1) for _ in SPECS]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no silent fall back from vmap to the loop
        results = fit_students(together, DeviceLoader(x, y, 32, seed=3), cfg, specs=SPECS, teacher_logits=tl,
                               progress=False, mode=mode)
    assert [r.status for r in results] == ["ok"] * 3
    assert results[0].history[-1]["train_acc"] > 0.6
    for (model, res), m2, r2 in zip(separate, together, results):
        assert_same_training(model, res, m2, r2, exact=(mode != "vmap"))
    # the students really are different runs
    assert not torch.equal(together[0][1].weight, together[1][1].weight)


def test_different_seeds_get_their_own_batches_and_one_teacher_forward_per_step():
    """Augmented inputs, live teacher: each student sees its own seed's order and augmentation draws; the
    teacher runs once per step on the distinct batches concatenated."""
    x, y = toy_data(n=256, side=6)
    teacher = mlp(seed=9, d_in=36)
    cfg = TrainConfig(epochs=2, lr=0.05, optimizer="adam")
    seeds, specs = [0, 1, 1], [dict(tau=2.0, alpha=0.5), dict(tau=4.0, alpha=0.9), dict(tau=1.0, alpha=0.0)]

    def loader(seed):
        return DeviceLoader(x, y, 32, seed=seed, augment="shift1")

    separate = []
    for seed, spec in zip(seeds, specs):
        model = mlp(seed=seed, d_in=36)
        separate.append((model, fit(model, loader(seed), cfg, teacher=teacher, progress=False, **spec)))
    calls = []
    hook = teacher.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[0]))
    by_seed = {s: loader(s) for s in set(seeds)}
    together = [mlp(seed=s, d_in=36) for s in seeds]
    results = fit_students(together, [by_seed[s] for s in seeds], cfg, specs=specs, teacher=teacher,
                           progress=False, mode="vmap")
    hook.remove()
    assert calls == [64] * (2 * len(by_seed[0]))  # once per step, on the two distinct seeds' batches
    for (model, res), m2, r2 in zip(separate, together, results):
        assert_same_training(model, res, m2, r2)


@pytest.mark.parametrize("mode", ["vmap", "loop"])
def test_cached_teacher_logits_train_the_students_as_a_live_teacher_does(mode):
    """No augmentation: logits computed once for the whole set are the teacher's outputs batch by batch."""
    x, y = toy_data()
    teacher = mlp(seed=9)
    with torch.no_grad():
        cached = teacher(x)
    cfg = TrainConfig(epochs=2, lr=0.1)
    specs = [dict(tau=2.0, alpha=0.5), dict(tau=8.0, alpha=1.0)]
    live_models, cached_models = [mlp(seed=1), mlp(seed=1)], [mlp(seed=1), mlp(seed=1)]
    live = fit_students(live_models, DeviceLoader(x, y, 32, seed=4), cfg, specs=specs, teacher=teacher,
                        progress=False, mode=mode)
    from_cache = fit_students(cached_models, DeviceLoader(x, y, 32, seed=4), cfg, specs=specs, teacher_logits=cached,
                              progress=False, mode=mode)
    for m1, r1, m2, r2 in zip(live_models, live, cached_models, from_cache):
        assert_same_training(m1, r1, m2, r2)  # equal up to the matmul's batch-size-dependent rounding


def test_batchnorm_running_statistics_are_kept_per_student():
    x, y = toy_data(n=256, side=6)
    tl = teacher_logits(x)

    def cnn(seed):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))

    cfg = TrainConfig(epochs=2, lr=0.05)
    specs = [dict(tau=2.0, alpha=0.5), dict(tau=8.0, alpha=0.9)]
    separate = []
    for seed, spec in zip([0, 1], specs):
        model = cnn(seed)
        separate.append((model, fit(model, DeviceLoader(x, y, 32, seed=5), cfg, teacher_logits=tl,
                                    progress=False, **spec)))
    together = [cnn(0), cnn(1)]
    results = fit_students(together, DeviceLoader(x, y, 32, seed=5), cfg, specs=specs, teacher_logits=tl,
                           progress=False, mode="vmap")
    for (model, res), m2, r2 in zip(separate, together, results):
        assert_same_training(model, res, m2, r2)  # state_dict: running_mean/var and num_batches_tracked too
    assert int(together[0][1].num_batches_tracked) == 2 * 8


def test_dropout_students_use_the_loop_engine_and_replay_each_run_s_random_stream():
    x, y = toy_data()
    cfg = TrainConfig(epochs=2, lr=0.1)
    seeds = [3, 4]
    separate = []
    for seed in seeds:
        model = mlp(seed=seed, dropout=0.3)
        separate.append((model, fit(model, DeviceLoader(x, y, 32, seed=seed), cfg, progress=False)))
    together, states = [], []
    for seed in seeds:
        together.append(mlp(seed=seed, dropout=0.3))
        states.append(capture_rng_state())
    results = fit_students(together, [DeviceLoader(x, y, 32, seed=s) for s in seeds], cfg,
                           specs=[{}, {}], progress=False, rng_states=states)  # auto -> loop (dropout)
    for (model, res), m2, r2 in zip(separate, together, results):
        assert_same_training(model, res, m2, r2, exact=True)


def test_a_diverging_student_is_stopped_and_the_others_continue():
    x, y = toy_data()
    tl = teacher_logits(x) * 1e5
    cfg = TrainConfig(epochs=3, lr=0.1)
    # tau=1000: tau^2 * KL is about 1e6 > max_loss (1e4) at the first check
    specs = [dict(tau=1.0, alpha=0.0), dict(tau=1000.0, alpha=1.0), dict(tau=2.0, alpha=0.3)]
    separate = []
    for spec in specs:
        model = mlp(seed=2)
        separate.append((model, fit(model, DeviceLoader(x, y, 32, seed=1), cfg, teacher_logits=tl, progress=False,
                                    check_every=4, **spec)))
    assert [r.status for _, r in separate] == ["ok", "diverged", "ok"]
    together = [mlp(seed=2) for _ in specs]
    results = fit_students(together, DeviceLoader(x, y, 32, seed=1), cfg, specs=specs, teacher_logits=tl,
                           progress=False, check_every=4, mode="vmap")
    assert [r.message for r in results] == [r.message for _, r in separate]
    assert "diverged in epoch 1" in results[1].message and results[1].history == []
    for (model, res), m2, r2 in zip(separate, together, results):
        assert_same_training(model, res, m2, r2)  # the diverged one keeps its weights from when it stopped


class ItemInForward(nn.Module):
    """`.item()` in forward: vmap cannot batch it, so fit_students must fall back to the loop engine."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.net = mlp(seed)

    def forward(self, x):
        out = self.net(x)
        return out if out.abs().max().item() < 1e6 else out.clamp(-1e6, 1e6)


def test_falls_back_to_the_loop_when_vmap_cannot_batch_the_model():
    x, y = toy_data(n=128)
    cfg = TrainConfig(epochs=1, lr=0.1)
    ref = ItemInForward(0)
    res = fit(ref, DeviceLoader(x, y, 32), cfg, progress=False)
    models = [ItemInForward(0), ItemInForward(0)]
    with pytest.warns(RuntimeWarning, match="falling back"):
        results = fit_students(models, DeviceLoader(x, y, 32), cfg, specs=[{}, {}], progress=False, mode="vmap")
    assert_same_training(ref, res, models[1], results[1], exact=True)


def test_auto_mode_batches_on_cuda_and_loops_on_cpu_only_for_a_shared_live_teacher():
    plain, dropping = [mlp(), mlp()], [mlp(dropout=0.1), mlp(dropout=0.1)]
    assert resolve_mode("auto", plain, "cuda") == "vmap"
    assert resolve_mode("auto", plain, "cpu") == "sequence"  # the loop engine lost to K runs in sequence
    assert resolve_mode("auto", plain, "cpu", live_teacher=True) == "loop"  # one teacher forward for all K
    assert resolve_mode("auto", plain[:1], "cpu", live_teacher=True) == "sequence"
    assert resolve_mode("auto", dropping, "cuda:0") == "loop"  # vmap cannot replay each run's dropout masks
    assert resolve_mode("auto", plain[:1], "cuda") == "loop"
    assert resolve_mode("vmap", dropping, "cpu") == "vmap"


def test_the_sequence_engine_replays_each_seed_s_loader_and_dropout_stream_like_separate_runs():
    """Two seeds (two loaders, one shared by two students), dropout, a live teacher: each student in sequence
    is exactly its separate run, and the loaders end where the grouped call leaves them."""
    x, y = toy_data()
    teacher = mlp(seed=9)
    cfg = TrainConfig(epochs=2, lr=0.1)
    specs = [dict(tau=2.0, alpha=0.5), dict(), dict(tau=4.0, alpha=0.9)]
    seeds = [3, 3, 4]
    separate = []
    for k, (spec, seed) in enumerate(zip(specs, seeds)):
        model = mlp(seed=k, dropout=0.2)
        separate.append((model, fit(model, DeviceLoader(x, y, 32, seed=seed, augment="shift1"), cfg,
                                    teacher=teacher, progress=False, **spec)))
    loaders = {s: DeviceLoader(x, y, 32, seed=s, augment="shift1") for s in set(seeds)}
    models, states = [], []
    for k in range(3):
        models.append(mlp(seed=k, dropout=0.2))
        states.append(capture_rng_state())
    results = fit_students(models, [loaders[s] for s in seeds], cfg, specs=specs, teacher=teacher, progress=False,
                           mode="sequence", rng_states=states)
    for (model, res), m2, r2 in zip(separate, models, results):
        assert_same_training(model, res, m2, r2, exact=True)
    assert {ld.epoch for ld in loaders.values()} == {2}


def test_bad_arguments_fail_clearly():
    x, y = toy_data(n=64)
    loader = DeviceLoader(x, y, 32)
    cfg = TrainConfig()
    with pytest.raises(ValueError, match="2 specs for 3 models"):
        fit_students([mlp(), mlp(), mlp()], loader, cfg, specs=[{}, {}], progress=False)
    with pytest.raises(ValueError, match="mode 'fast'"):
        fit_students([mlp()], loader, cfg, specs=[{}], mode="fast", progress=False)
    with pytest.raises(ValueError, match="need a teacher"):
        fit_students([mlp(), mlp()], loader, cfg, specs=[{}, {"alpha": 0.5}], progress=False)
    with pytest.raises(ValueError, match="architecture"):
        fit_students([mlp(), nn.Sequential(nn.Flatten(), nn.Linear(16, 3))], loader, cfg, specs=[{}, {}],
                     progress=False)
    with pytest.raises(ValueError, match="'tau_'"):
        fit_students([mlp()], loader, cfg, specs=[{"tau_": 2.0}], progress=False)
    with pytest.raises(ValueError, match="same number of batches"):
        fit_students([mlp(), mlp()], [loader, DeviceLoader(x, y, 16)], cfg, specs=[{}, {}], progress=False)
