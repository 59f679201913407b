"""kdutils.objectives: one registry of KD objectives that fit, the grouped engines and TGeo-KD's loops call."""
import pytest
import torch
from torch import nn

from kdutils import objectives
from kdutils.config import TrainConfig
from kdutils.data.device_loader import DeviceLoader
from kdutils.losses import kd_objective
from kdutils.objectives import OBJECTIVES, Objective, get_objective, per_sample_kd_terms
from kdutils.training.multi_student import fit_students
from kdutils.training.stacked import StudentSpec
from kdutils.training.train import fit


def _logits(seed, shape=(6, 4)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_unknown_objective_or_form_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown objective 'nope' for the batch form; choose one of: kd"):
        get_objective("nope")
    with pytest.raises(ValueError, match="choose one of: batch, per_sample, stacked"):
        get_objective("kd", "sideways")
    with pytest.raises(ValueError, match="already registered"):
        objectives.register_objective(Objective("kd", batch=kd_objective))


def test_the_three_forms_of_kd_agree_with_a_hand_computed_value():
    s, t, y = _logits(0), _logits(1), torch.tensor([0, 1, 2, 3, 0, 1])
    kd = get_objective()
    tau, alpha = 2.0, 0.3
    # by hand: tau^2 * KL(P_t || P_s) per sample, plain CE per sample
    p_t, log_p_s = torch.softmax(t / tau, -1), torch.log_softmax(s / tau, -1)
    kl = (p_t * (torch.log(p_t) - log_p_s)).sum(-1) * tau ** 2
    ce = -torch.log_softmax(s, -1).gather(1, y[:, None]).squeeze(1)
    expected = (alpha * kl + (1 - alpha) * ce).mean()
    assert torch.allclose(kd.batch(s, y, t, tau=tau, alpha=alpha), expected, atol=1e-6)
    kd_i, ce_i = kd.per_sample(s, y, t, tau)
    assert torch.allclose(kd_i, kl, atol=1e-6) and torch.allclose(ce_i, ce, atol=1e-6)
    stacked = kd.stacked(torch.stack([s, s]), y, t, [StudentSpec(tau=tau, alpha=alpha), StudentSpec(tau=tau, alpha=0.0)])
    assert torch.allclose(stacked[0], expected, atol=1e-6) and torch.allclose(stacked[1], ce.mean(), atol=1e-6)
    assert per_sample_kd_terms is kd.per_sample


def _toy():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 5, generator=g), torch.randint(0, 3, (64,), generator=g)
    return x, y


def test_fit_and_the_grouped_engine_train_the_objective_they_are_given(monkeypatch):
    """A registered objective is what the loops optimise: one that counts its calls and returns plain CE."""
    calls = {"batch": 0, "stacked": 0}

    def batch(s, y, t, tau, alpha, direction="forward", label_smoothing=0.0, check_finite=True):
        calls["batch"] += 1
        return nn.functional.cross_entropy(s, y)

    def stacked(logits, y, t, specs):
        calls["stacked"] += 1
        return torch.stack([nn.functional.cross_entropy(l, y) for l in logits])

    monkeypatch.setitem(OBJECTIVES, "ce_counted", Objective("ce_counted", batch=batch, stacked=stacked))
    x, y = _toy()
    res = fit(nn.Linear(5, 3), DeviceLoader(x, y, 16, seed=0), TrainConfig(epochs=1), progress=False,
              objective="ce_counted")
    assert res.status == "ok" and calls["batch"] == 4
    models = [nn.Linear(5, 3), nn.Linear(5, 3)]
    fit_students(models, DeviceLoader(x, y, 16, seed=0), TrainConfig(epochs=1), specs=[{}, {}], progress=False,
                 mode="loop", objective="ce_counted")
    assert calls["batch"] == 4 + 2 * 4
    with pytest.raises(ValueError, match="unknown objective 'nope'"):
        fit(nn.Linear(5, 3), DeviceLoader(x, y, 16, seed=0), TrainConfig(epochs=1), progress=False, objective="nope")

