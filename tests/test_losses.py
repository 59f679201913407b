"""Tests for kdutils.losses: values against hand-written formulas, gradients against closed forms/autograd."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kdutils.losses import (
    check_alpha,
    check_tau,
    ensemble_logits,
    kd_loss,
    kd_objective,
    label_smoothing_ce,
)


def _logits(b: int = 6, c: int = 5, seed: int = 0, scale: float = 2.0, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(b, c, generator=g)).to(dtype)


def _manual_kl(p_logits: torch.Tensor, q_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Per-sample tau^2 * KL(P || Q) with P = softmax(p/tau), written out by hand from softmax + log."""
    p = torch.softmax(p_logits / tau, dim=1)
    q = torch.softmax(q_logits / tau, dim=1)
    return tau**2 * (p * (torch.log(p) - torch.log(q))).sum(dim=1)


# ----------------------------------------------------------------------------------------------- kd_loss values
@pytest.mark.parametrize("tau", [1.0, 2.0, 4.5])
def test_kd_loss_forward_matches_hand_formula(tau):
    s, t = _logits(seed=1), _logits(seed=2)
    per = _manual_kl(t, s, tau)  # forward: KL(P_t || P_s)
    assert torch.allclose(kd_loss(s, t, tau), per.mean(), atol=1e-12)
    assert torch.allclose(kd_loss(s, t, tau, reduction="none"), per, atol=1e-12)
    assert torch.allclose(kd_loss(s, t, tau, reduction="sum"), per.sum(), atol=1e-12)
    assert kd_loss(s, t, tau, reduction="none").shape == (s.shape[0],)


def test_reverse_differs_from_forward_and_equals_swapped_formula():
    s, t = _logits(seed=3), _logits(seed=4, scale=4.0)
    tau = 2.0
    fwd = kd_loss(s, t, tau, direction="forward")
    rev = kd_loss(s, t, tau, direction="reverse")
    assert not torch.allclose(fwd, rev, atol=1e-3)
    # reverse = KL(P_s || P_t) = the forward formula with the arguments swapped
    assert torch.allclose(rev, _manual_kl(s, t, tau).mean(), atol=1e-12)
    assert torch.allclose(rev, kd_loss(t, s, tau, direction="forward"), atol=1e-12)


def test_tau_one_is_plain_kl():
    s, t = _logits(seed=5), _logits(seed=6)
    ref = torch.distributions.kl_divergence(
        torch.distributions.Categorical(logits=t), torch.distributions.Categorical(logits=s)
    ).mean()
    assert torch.allclose(kd_loss(s, t, 1.0), ref, atol=1e-12)
    assert torch.allclose(kd_loss(s, t, 1.0), F.kl_div(F.log_softmax(s, 1), F.softmax(t, 1), reduction="batchmean"))


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_zero_loss_when_student_equals_teacher(direction):
    x = _logits(seed=7, scale=50.0)  # very confident: log(softmax) would hit log(0) here
    loss = kd_loss(x.clone(), x.clone(), 3.0, direction=direction, reduction="none")
    assert torch.all(loss.abs() < 1e-10)


def test_kd_loss_is_stable_for_extreme_logits():
    s = torch.tensor([[1000.0, -1000.0, 0.0]])
    t = torch.tensor([[-1000.0, 1000.0, 0.0]])
    for direction in ("forward", "reverse"):
        v = kd_loss(s, t, 1.0, direction=direction)
        assert torch.isfinite(v)
        assert v.item() == pytest.approx(2000.0, rel=1e-5)  # KL of two near one-hot distributions = 2000 nats


# ----------------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("tau", [1.0, 3.0])
def test_forward_gradient_matches_closed_form(tau):
    s = _logits(b=8, seed=8).requires_grad_(True)
    t = _logits(b=8, seed=9)
    kd_loss(s, t, tau).backward()
    p_s, p_t = torch.softmax(s.detach() / tau, 1), torch.softmax(t / tau, 1)
    expected = tau * (p_s - p_t) / s.shape[0]
    assert torch.allclose(s.grad, expected, atol=1e-12)


@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gradcheck_float64(direction, reduction):
    s = _logits(b=4, c=3, seed=10).requires_grad_(True)
    t = _logits(b=4, c=3, seed=11)
    assert torch.autograd.gradcheck(lambda x: kd_loss(x, t, 2.5, direction=direction, reduction=reduction), (s,))


def test_teacher_is_not_trained():
    s = _logits(seed=12).requires_grad_(True)
    t = _logits(seed=13).requires_grad_(True)
    for direction in ("forward", "reverse"):
        kd_loss(s, t, 2.0, direction=direction).backward()
    assert t.grad is None
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_low_precision_inputs_are_computed_in_float32():
    s, t = _logits(seed=14).to(torch.bfloat16), _logits(seed=15).to(torch.bfloat16)
    out = kd_loss(s, t, 2.0)
    assert out.dtype == torch.float32
    ref = _manual_kl(t.double(), s.double(), 2.0).mean()
    assert out.item() == pytest.approx(ref.item(), rel=1e-5)


# ----------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("bad", [0, 0.0, -1, float("nan"), float("inf")])
def test_bad_tau_raises_with_value(bad):
    with pytest.raises(ValueError) as e:
        check_tau(bad)
    assert f"got {bad!r}" in str(e.value) and "> 0" in str(e.value)
    with pytest.raises(ValueError, match="tau"):
        kd_loss(_logits(), _logits(seed=1), bad)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_bad_alpha_raises_with_value(bad):
    with pytest.raises(ValueError) as e:
        check_alpha(bad)
    assert f"got {bad!r}" in str(e.value) and "[0, 1]" in str(e.value)
    s = _logits()
    with pytest.raises(ValueError, match="alpha"):
        kd_objective(s, torch.zeros(s.shape[0], dtype=torch.long), _logits(seed=1), 2.0, bad)


def test_good_tau_alpha_pass_through():
    assert check_tau(2) == 2.0 and check_tau(torch.tensor(0.5)) == 0.5
    assert check_alpha(0) == 0.0 and check_alpha(1) == 1.0 and check_alpha(0.3) == 0.3
    with pytest.raises(ValueError):
        check_tau(True)
    with pytest.raises(ValueError):
        check_tau("2")


def test_unknown_direction_and_reduction():
    s, t = _logits(), _logits(seed=1)
    with pytest.raises(ValueError, match="forward, reverse"):
        kd_loss(s, t, 1.0, direction="backward")
    with pytest.raises(ValueError, match="mean, sum, none"):
        kd_loss(s, t, 1.0, reduction="batchmean")
    with pytest.raises(ValueError, match="same shape"):
        kd_loss(s, t[:, :3], 1.0)


# ----------------------------------------------------------------------------------------------- kd_objective
def test_kd_objective_endpoints_and_linearity():
    s, t = _logits(b=10, seed=16), _logits(b=10, seed=17)
    y = torch.randint(0, s.shape[1], (s.shape[0],), generator=torch.Generator().manual_seed(0))
    tau = 3.0
    ce = F.cross_entropy(s, y)
    kd = kd_loss(s, t, tau)
    assert torch.allclose(kd_objective(s, y, t, tau, 0.0), ce, atol=1e-12)
    assert torch.allclose(kd_objective(s, y, None, tau, 0.0), ce, atol=1e-12)
    assert torch.allclose(kd_objective(s, y, t, tau, 1.0), kd, atol=1e-12)
    for a in (0.1, 0.5, 0.9):
        assert torch.allclose(kd_objective(s, y, t, tau, a), a * kd + (1 - a) * ce, atol=1e-12)
    rev = kd_loss(s, t, tau, direction="reverse")
    assert torch.allclose(kd_objective(s, y, t, tau, 0.25, direction="reverse"), 0.25 * rev + 0.75 * ce, atol=1e-12)


def test_kd_objective_label_smoothing():
    s, t = _logits(b=10, seed=18), _logits(b=10, seed=19)
    y = torch.arange(10) % s.shape[1]
    ce_ls = F.cross_entropy(s, y, label_smoothing=0.1)
    assert torch.allclose(kd_objective(s, y, None, 2.0, 0.0, label_smoothing=0.1), ce_ls, atol=1e-12)
    expected = 0.4 * kd_loss(s, t, 2.0) + 0.6 * ce_ls
    assert torch.allclose(kd_objective(s, y, t, 2.0, 0.4, label_smoothing=0.1), expected, atol=1e-12)


def test_kd_objective_skips_zero_weight_terms():
    s = _logits(b=4, c=3, seed=20)
    y = torch.tensor([0, 1, 2, 0])
    nan_teacher = torch.full_like(s, float("nan"))
    assert torch.isfinite(kd_objective(s, y, nan_teacher, 2.0, 0.0))  # KD term not computed
    bad_targets = torch.full((4,), 99)  # would make cross-entropy fail
    t = _logits(b=4, c=3, seed=21)
    assert torch.allclose(kd_objective(s, bad_targets, t, 2.0, 1.0), kd_loss(s, t, 2.0))


def test_kd_objective_requires_teacher_when_alpha_positive():
    s = _logits()
    y = torch.zeros(s.shape[0], dtype=torch.long)
    with pytest.raises(ValueError, match="alpha=0.5"):
        kd_objective(s, y, None, 2.0, 0.5)


# ----------------------------------------------------------------------------------------------- label smoothing
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_label_smoothing_ce_matches_torch(eps, reduction):
    s = _logits(b=7, c=4, seed=22)
    y = torch.tensor([0, 1, 2, 3, 3, 2, 1])
    ours = label_smoothing_ce(s, y, eps, reduction=reduction)
    ref = F.cross_entropy(s, y, label_smoothing=eps, reduction=reduction)
    assert torch.allclose(ours, ref, atol=1e-12)


def test_label_smoothing_ce_hand_value():
    # uniform logits over 4 classes: -log p_k = log 4 for every k, whatever eps is
    s = torch.zeros(2, 4)
    y = torch.tensor([0, 3])
    assert label_smoothing_ce(s, y, 0.3).item() == pytest.approx(math.log(4))
    # p = (0.5, 0.25, 0.25), y = 0, eps = 0.2: 0.8 * log 2 + 0.2 * mean(log 2, log 4, log 4)
    s = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    expected = 0.8 * math.log(2) + 0.2 * (math.log(2) + 2 * math.log(4)) / 3
    assert label_smoothing_ce(s, torch.tensor([0]), 0.2).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5])
def test_label_smoothing_bad_eps(bad):
    with pytest.raises(ValueError, match=f"got {bad!r}"):
        label_smoothing_ce(_logits(), torch.zeros(6, dtype=torch.long), bad)


# ----------------------------------------------------------------------------------------------- ensembles
def test_ensemble_of_identical_members_is_log_softmax():
    x = _logits(seed=23)
    for m in (1, 3):
        assert torch.allclose(ensemble_logits([x] * m), F.log_softmax(x, dim=1), atol=1e-12)


def test_ensemble_is_log_mean_probability():
    members = [_logits(seed=s) for s in (24, 25, 26)]
    ens = ensemble_logits(members)
    mean_p = torch.stack([torch.softmax(m, 1) for m in members]).mean(0)
    assert torch.allclose(ens, torch.log(mean_p), atol=1e-12)
    assert torch.allclose(torch.softmax(ens, 1), mean_p, atol=1e-12)
    assert torch.allclose(ensemble_logits(torch.stack(members)), ens)  # stacked (M, N, C) input
    # tempering acts on the mean distribution: softmax(ens / tau) ∝ mean_p ** (1 / tau)
    tempered = mean_p**0.5
    assert torch.allclose(torch.softmax(ens / 2.0, 1), tempered / tempered.sum(1, keepdim=True), atol=1e-12)


def test_ensemble_is_stable_for_extreme_logits():
    a = torch.tensor([[2000.0, 0.0, -2000.0]])
    b = torch.tensor([[-2000.0, 0.0, 2000.0]])
    ens = ensemble_logits([a, b])
    assert torch.isfinite(ens[:, [0, 2]]).all()
    assert torch.allclose(ens[:, [0, 2]], torch.full((1, 2), math.log(0.5)))


def test_ensemble_bad_inputs():
    with pytest.raises(ValueError, match="at least one"):
        ensemble_logits([])
    with pytest.raises(ValueError, match="member 1"):
        ensemble_logits([_logits(c=5), _logits(c=4)])
