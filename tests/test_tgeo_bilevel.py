"""The one-step unrolled hypergradient of TGeo-KD: exact against finite differences, and it trains f_w."""
import math

import pytest
import torch
from torch import nn

from kdutils.chapters.tgeo.bilevel import bilevel_step, hypergradient, unrolled_validation_loss
from kdutils.chapters.tgeo.fusion_net import FusionRatioNet
from kdutils.chapters.tgeo.geometry import teacher_class_means
from kdutils.chapters.tgeo.training import fit_tgeo, predict_alphas
from kdutils.config import TrainConfig
from kdutils.data.device_loader import DeviceLoader

C = 3


def _tiny_problem(dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    student = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, C)).to(dtype)
    fnet = FusionRatioNet.for_classes(C, "both", hidden=(4,)).to(dtype)
    x, y = torch.randn(8, 4, generator=g, dtype=dtype), torch.arange(8) % C
    teacher = 2 * torch.randn(8, C, generator=g, dtype=dtype)
    vx, vy = torch.randn(6, 4, generator=g, dtype=dtype), torch.randint(0, C, (6,), generator=g)
    kw = dict(class_means=teacher_class_means(teacher, y), features="both", inner_lr=0.5, tau=2.0)
    return student, fnet, (x, y, teacher, vx, vy), kw


def test_hypergradient_matches_central_finite_differences(one_thread):
    torch.manual_seed(0)
    student, fnet, data, kw = _tiny_problem()
    names = [k for k, _ in fnet.named_parameters()]
    w0 = [p.detach().clone() for p in fnet.parameters()]

    def val_loss(ws):
        return unrolled_validation_loss(student, fnet, *data, fusion_params=dict(zip(names, ws)), **kw).item()

    analytic = hypergradient(student, fnet, *data, **kw)
    h = 1e-6
    for i, g in enumerate(analytic):
        fd = torch.zeros_like(g)
        for j in range(g.numel()):
            plus, minus = [w.clone() for w in w0], [w.clone() for w in w0]
            plus[i].view(-1)[j] += h
            minus[i].view(-1)[j] -= h
            fd.view(-1)[j] = (val_loss(plus) - val_loss(minus)) / (2 * h)
        torch.testing.assert_close(g, fd, rtol=1e-6, atol=1e-9, msg=f"hypergradient of {names[i]}")
    assert all(g.abs().max() > 1e-4 for g in analytic)  # a path to every parameter of f_w exists


def test_hypergradient_passes_gradcheck(one_thread):
    torch.manual_seed(1)
    student, fnet, data, kw = _tiny_problem(seed=1)
    names = [k for k, _ in fnet.named_parameters()]

    def f(*ws):
        return unrolled_validation_loss(student, fnet, *data, fusion_params=dict(zip(names, ws)), **kw)

    w = tuple(p.detach().clone().requires_grad_() for p in fnet.parameters())
    assert torch.autograd.gradcheck(f, w, eps=1e-6, atol=1e-8, rtol=1e-6)


def test_training_step_uses_the_checked_hypergradient(one_thread):
    """bilevel_step (what fit_tgeo runs) hands f_w's optimizer exactly the finite-difference-checked gradient."""
    student, fnet, (x, y, teacher, vx, vy), kw = _tiny_problem(seed=5)
    expected = hypergradient(student, fnet, x, y, teacher, vx, vy, **kw)
    frozen = torch.optim.SGD(fnet.parameters(), lr=0.0)  # keeps w, so p.grad can be read after the step
    out = bilevel_step(student, fnet, torch.optim.SGD(student.parameters(), lr=kw["inner_lr"]), frozen,
                       x, y, teacher, vx, vy, **kw)
    for p, g in zip(fnet.parameters(), expected):
        torch.testing.assert_close(p.grad, g, rtol=1e-10, atol=1e-14)
    assert out.hypergrad_norm.item() == pytest.approx(torch.cat([g.flatten() for g in expected]).norm().item())


def test_hypergradient_vanishes_linearly_with_the_virtual_step():
    """dL_val/dw = -eta * (d theta'/d alpha term) + O(eta^2): without the virtual step there is no path to w
    (the released code's bug), and the path we add is first order in eta."""
    student, fnet, data, kw = _tiny_problem()
    small = hypergradient(student, fnet, *data, **{**kw, "inner_lr": 1e-5})
    double = hypergradient(student, fnet, *data, **{**kw, "inner_lr": 2e-5})
    for a, b in zip(small, double):
        assert a.abs().max() > 0
        torch.testing.assert_close(b, 2 * a, rtol=1e-3, atol=1e-12)
    with pytest.raises(ValueError, match="inner_lr"):
        unrolled_validation_loss(student, fnet, *data, **{**kw, "inner_lr": 0.0})


def test_bilevel_steps_train_f_w_and_alpha_varies(one_thread):
    torch.manual_seed(2)
    student, fnet, (x, y, teacher, vx, vy), kw = _tiny_problem(dtype=torch.float32, seed=2)
    del kw["inner_lr"]
    before = [p.detach().clone() for p in fnet.parameters()]
    s_before = [p.detach().clone() for p in student.parameters()]
    s_opt = torch.optim.SGD(student.parameters(), lr=0.5)
    f_opt = torch.optim.Adam(fnet.parameters(), lr=1e-2)
    norms = []
    for _ in range(5):
        out = bilevel_step(student, fnet, s_opt, f_opt, x, y, teacher, vx, vy, **kw)
        norms.append(out.hypergrad_norm.item())
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fnet.parameters())
    assert min(norms) > 0 and math.isfinite(out.val_loss.item())
    assert all((p - b).abs().max() > 1e-4 for p, b in zip(fnet.parameters(), before))
    assert all((p - b).abs().max() > 1e-4 for p, b in zip(student.parameters(), s_before))
    assert out.alpha.shape == (8,) and out.alpha.std() > 1e-4 and len(set(out.alpha.tolist())) == 8
    assert not out.alpha.requires_grad


def test_bilevel_step_updates_batchnorm_statistics_once(one_thread):
    torch.manual_seed(3)
    student = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, C))
    reference = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, C))
    reference.load_state_dict(student.state_dict())
    fnet = FusionRatioNet.for_classes(C, "intra")
    x, y, teacher = torch.randn(8, 4), torch.arange(8) % C, torch.randn(8, C)
    vx, vy = 5 + torch.randn(8, 4), torch.arange(8) % C  # shifted: stats from it would show
    bilevel_step(student, fnet, torch.optim.SGD(student.parameters(), lr=0.1),
                 torch.optim.Adam(fnet.parameters()), x, y, teacher, vx, vy, class_means=None,
                 features="intra", tau=1.0)
    reference(x)  # one training-mode forward on the training batch
    torch.testing.assert_close(student[1].running_mean, reference[1].running_mean)
    torch.testing.assert_close(student[1].running_var, reference[1].running_var)
    assert student[1].num_batches_tracked.item() == 1


@pytest.mark.parametrize("features", ["intra", "inter", "both"])
def test_fit_tgeo_learns_sample_wise_alphas(features, one_thread):
    torch.manual_seed(4)
    g = torch.Generator().manual_seed(4)
    centers = torch.randn(C, 6, generator=g) * 2
    y = torch.arange(150) % C
    x = centers[y] + torch.randn(150, 6, generator=g)
    teacher = 3 * nn.functional.one_hot(y, C).float() + torch.randn(150, C, generator=g)
    train, val = DeviceLoader(x[:120], y[:120], 30, seed=0), DeviceLoader(x[120:], y[120:], 15, seed=1)
    student = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, C))
    fnet = FusionRatioNet.for_classes(C, features)
    before = [p.detach().clone() for p in fnet.parameters()]
    res = fit_tgeo(student, fnet, train, val, TrainConfig(epochs=2, batch_size=30, lr=0.1), features=features,
                   teacher_logits=teacher[:120], tau=2.0, fusion_lr=1e-2, progress=False)
    assert res.status == "ok" and [h["epoch"] for h in res.history] == [1, 2]
    last = res.history[-1]
    assert last["hypergrad_norm"] > 0 and math.isfinite(last["val_loss"])
    assert 0 < last["alpha_min"] < last["alpha_max"] < 1 and last["alpha_std"] > 0
    assert all((p - b).abs().max() > 1e-4 for p, b in zip(fnet.parameters(), before))
    cm = None if features == "intra" else teacher_class_means(teacher[:120], y[:120])
    alphas = predict_alphas(student, fnet, x[:120], y[:120], teacher[:120], cm, features)
    assert alphas.shape == (120,) and alphas.std() > 0 and student.training


def test_fit_tgeo_rejects_bad_arguments():
    loader = DeviceLoader(torch.randn(10, 6), torch.arange(10) % C, 5)
    student, fnet = nn.Linear(6, C), FusionRatioNet.for_classes(C)
    cfg = TrainConfig(epochs=1, batch_size=5)
    with pytest.raises(ValueError, match=r"for the loader's N=10 samples"):
        fit_tgeo(student, fnet, loader, loader, cfg, teacher_logits=torch.randn(9, C), progress=False)
    with pytest.raises(ValueError, match="outer_every"):
        fit_tgeo(student, fnet, loader, loader, cfg, teacher_logits=torch.randn(10, C), outer_every=0)


def _noisy_label_problem(seed: int = 2):
    """4 blobs; 30% of the training labels are wrong (the teacher is right there), on 15% of the others the
    teacher is wrong; validation labels are clean. The best ratio is high on the mislabelled samples."""
    g = torch.Generator().manual_seed(seed)
    n, n_train, classes = 800, 600, 4
    true = torch.arange(n) % classes
    x = torch.randn(classes, 10, generator=g)[true] + torch.randn(n, 10, generator=g)
    mislabelled = torch.rand(n, generator=g) < 0.3
    y = torch.where(mislabelled, (true + 1 + torch.randint(0, classes - 1, (n,), generator=g)) % classes, true)
    teacher_wrong = (torch.rand(n, generator=g) < 0.15) & ~mislabelled
    teacher = 3 * nn.functional.one_hot(torch.where(teacher_wrong, (true + 1) % classes, true), classes).float()
    teacher += 0.5 * torch.randn(n, classes, generator=g)
    train = DeviceLoader(x[:n_train], y[:n_train], 32, seed=seed)
    val = DeviceLoader(x[n_train:], true[n_train:], 100, seed=seed + 1)
    groups = {"both right": ~mislabelled[:n_train] & ~teacher_wrong[:n_train],
              "label wrong": mislabelled[:n_train], "teacher wrong": teacher_wrong[:n_train]}
    return train, val, x[:n_train], y[:n_train], teacher[:n_train], groups


@pytest.mark.parametrize("fusion_lr", [3e-3, 1e-9])
def test_f_w_learns_where_the_teacher_helps(fusion_lr, one_thread):
    """End to end on a toy: the hypergradient raises alpha where the teacher corrects a wrong label and not
    where the teacher is wrong; with f_w frozen (fusion_lr ~ 0, the released code's situation) it does not."""
    train, val, x, y, teacher, groups = _noisy_label_problem()
    torch.manual_seed(2)
    student = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 4))
    fnet = FusionRatioNet.for_classes(4, "both")
    fit_tgeo(student, fnet, train, val, TrainConfig(epochs=5, batch_size=32, lr=0.05), teacher_logits=teacher,
             tau=2.0, fusion_lr=fusion_lr, progress=False)
    alphas = predict_alphas(student, fnet, x, y, teacher, teacher_class_means(teacher, y), "both")
    mean = {name: alphas[mask].mean().item() for name, mask in groups.items()}
    if fusion_lr > 1e-6:
        assert mean["label wrong"] > mean["teacher wrong"] + 0.3, mean
        assert mean["label wrong"] > mean["both right"] + 0.3, mean
    else:
        assert max(mean.values()) - min(mean.values()) < 0.05, mean
