"""Tests for kdutils.metrics: hand-worked examples, torch / torchmetrics references, predict_logits behaviour."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from kdutils.metrics import (
    accuracy,
    agreement,
    classification_metrics,
    ece,
    error_count,
    invariance_metric,
    nll,
    predict_logits,
    predictive_kl,
)


def _logits(n: int = 50, c: int = 7, seed: int = 0, scale: float = 2.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, c, generator=g)


def _labels(n: int = 50, c: int = 7, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(seed + 1000))


# Five samples, four classes, probabilities chosen by hand (logits = log p).
HAND_P = torch.tensor(
    [
        [0.40, 0.30, 0.20, 0.10],  # pred 0, conf .40, y 0: correct
        [0.45, 0.35, 0.10, 0.10],  # pred 0, conf .45, y 1: wrong
        [0.90, 0.05, 0.03, 0.02],  # pred 0, conf .90, y 0: correct
        [0.10, 0.80, 0.05, 0.05],  # pred 1, conf .80, y 1: correct
        [0.05, 0.05, 0.20, 0.70],  # pred 3, conf .70, y 2: wrong
    ],
    dtype=torch.float64,
)
HAND_Y = torch.tensor([0, 1, 0, 1, 2])


# ----------------------------------------------------------------------------------------------- accuracy & co
def test_accuracy_and_error_count_hand_example():
    logits = torch.log(HAND_P)
    assert accuracy(logits, HAND_Y) == pytest.approx(3 / 5)
    errors = error_count(logits, HAND_Y)
    assert errors == 2 and isinstance(errors, int)


def test_nll_hand_example_and_against_cross_entropy():
    # -log p_y: -log .4, -log .35, -log .9, -log .8, -log .2
    expected = -(math.log(0.4) + math.log(0.35) + math.log(0.9) + math.log(0.8) + math.log(0.2)) / 5
    assert nll(torch.log(HAND_P), HAND_Y) == pytest.approx(expected, rel=1e-12)
    logits, y = _logits(seed=1), _labels(seed=1)
    assert nll(logits, y) == pytest.approx(F.cross_entropy(logits.double(), y).item(), rel=1e-10)
    # numerically stable: a confident wrong prediction gives a large finite NLL, not inf
    assert nll(torch.tensor([[500.0, -500.0]]), torch.tensor([1])) == pytest.approx(1000.0)


def test_label_shape_mismatch_raises():
    with pytest.raises(ValueError, match="labels must have shape"):
        accuracy(_logits(n=5), torch.zeros(4, dtype=torch.long))


# ----------------------------------------------------------------------------------------------- ECE
def test_ece_hand_example_two_bins():
    # bins (0, .5] and (.5, 1]
    # bin 0: samples 1, 2 -> acc 1/2, conf (.40 + .45) / 2 = .425 -> 2/5 * .075 = .03
    # bin 1: samples 3, 4, 5 -> acc 2/3, conf (.9 + .8 + .7) / 3 = .8 -> 3/5 * (.8 - 2/3) = .08
    assert ece(torch.log(HAND_P), HAND_Y, n_bins=2) == pytest.approx(0.11, abs=1e-12)


def test_ece_hand_example_one_and_three_bins():
    # one bin: |acc - mean conf| = |3/5 - 3.25/5| = .05
    assert ece(torch.log(HAND_P), HAND_Y, n_bins=1) == pytest.approx(0.05, abs=1e-12)
    # three bins (0, 1/3], (1/3, 2/3], (2/3, 1]: same grouping as two bins here
    assert ece(torch.log(HAND_P), HAND_Y, n_bins=3) == pytest.approx(0.11, abs=1e-12)
    # seven bins (edges k/7, far from every confidence): each sample alone -> sum_i |correct_i - conf_i| / N
    per = [0.6, 0.45, 0.1, 0.2, 0.7]
    assert ece(torch.log(HAND_P), HAND_Y, n_bins=7) == pytest.approx(sum(per) / 5, abs=1e-12)


def test_ece_zero_for_confident_correct_predictions():
    logits = torch.tensor([[100.0, 0.0], [0.0, 100.0], [100.0, 0.0]])
    assert ece(logits, torch.tensor([0, 1, 0])) == pytest.approx(0.0, abs=1e-12)
    assert ece(logits, torch.tensor([1, 0, 1])) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("n_bins", [5, 15])
def test_ece_matches_torchmetrics(n_bins):
    from kdutils.data.tv import import_torchvision

    import_torchvision()  # torchmetrics imports torchvision, which needs the shim next to CPU torch
    from torchmetrics.classification import MulticlassCalibrationError

    c = 10
    logits, y = _logits(n=600, c=c, seed=2, scale=3.0), _labels(n=600, c=c, seed=2)
    ref = MulticlassCalibrationError(num_classes=c, n_bins=n_bins, norm="l1")(torch.softmax(logits, 1), y)
    assert ece(logits, y, n_bins=n_bins) == pytest.approx(ref.item(), abs=1e-5)


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_ece_bad_bins(bad):
    with pytest.raises(ValueError, match=f"got {bad!r}"):
        ece(_logits(), _labels(), n_bins=bad)


# ----------------------------------------------------------------------------------------------- teacher metrics
def test_agreement_hand_example():
    s = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])
    t = torch.tensor([[9.0, 1.0, 0.0], [0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [0.0, 4.0, 0.0]])
    assert agreement(s, t) == pytest.approx(2 / 4)
    assert agreement(s, s) == 1.0
    with pytest.raises(ValueError, match="same shape"):
        agreement(s, t[:, :2])


def test_predictive_kl_against_torch_distributions():
    t, s = _logits(seed=3), _logits(seed=4)
    ref = torch.distributions.kl_divergence(
        torch.distributions.Categorical(logits=t.double()), torch.distributions.Categorical(logits=s.double())
    ).mean()
    assert predictive_kl(t, s) == pytest.approx(ref.item(), rel=1e-10)
    assert predictive_kl(s, t) != pytest.approx(ref.item(), rel=1e-3)  # argument order matters (KL(P_t||P_s))
    assert predictive_kl(t, t.clone()) == pytest.approx(0.0, abs=1e-12)


def test_predictive_kl_hand_example():
    # P_t = (1/2, 1/2), P_s = (1/4, 3/4): KL = 1/2 log 2 + 1/2 log(2/3)
    t = torch.log(torch.tensor([[0.5, 0.5]]))
    s = torch.log(torch.tensor([[0.25, 0.75]]))
    assert predictive_kl(t, s) == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), rel=1e-6)


# ----------------------------------------------------------------------------------------------- invariance metric
P1 = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
P2 = torch.tensor([[0.25, 0.25, 0.5], [0.0, 1.0, 0.0]])


@pytest.mark.parametrize(
    "norm, expected",
    [
        ("l1", (1.0 + 2.0) / 2),  # rows: |.25|+|.25|+|.5| = 1, 1 + 1 = 2
        ("l2", (math.sqrt(0.375) + math.sqrt(2.0)) / 2),
        ("linf", (0.5 + 1.0) / 2),
    ],
)
def test_invariance_metric_hand_values(norm, expected):
    assert invariance_metric(P1, P2, norm=norm) == pytest.approx(expected, rel=1e-6)
    assert invariance_metric(P2, P1, norm=norm) == pytest.approx(expected, rel=1e-6)
    assert invariance_metric(P1, P1.clone(), norm=norm) == 0.0


def test_invariance_metric_errors():
    with pytest.raises(ValueError, match="same shape"):
        invariance_metric(P1, P2[:, :2])
    with pytest.raises(ValueError, match="l1, l2, linf"):
        invariance_metric(P1, P2, norm="l3")


# ----------------------------------------------------------------------------------------------- predict_logits
def _model(in_ch: int = 3, classes: int = 4) -> nn.Module:
    torch.manual_seed(0)
    # BatchNorm and Dropout make train-mode and eval-mode outputs differ, so the mode is observable
    return nn.Sequential(
        nn.Conv2d(in_ch, 5, 3, padding=1), nn.BatchNorm2d(5), nn.ReLU(), nn.Dropout(0.5),
        nn.Flatten(), nn.Linear(5 * 4 * 4, classes),
    )


def test_predict_logits_uint8_matches_normalised_forward_and_restores_mode():
    model = _model()
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        model(torch.randn(16, 3, 4, 4) * 2 + 1)
    model.train()
    x = torch.randint(0, 256, (11, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    out = predict_logits(model, x, batch_size=4, mean=mean, std=std)  # 4 does not divide 11
    assert model.training and all(m.training for m in model.modules())
    xf = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    model.eval()
    with torch.no_grad():
        ref = model(xf)
    assert out.shape == (11, 4) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert not out.requires_grad
    assert torch.allclose(out, ref, atol=1e-5)


def test_predict_logits_float_input_used_as_is_and_mixed_modes_restored():
    model = _model(in_ch=1)
    model.train()
    model[3].eval()  # a submodule deliberately left in eval mode must stay so
    x = torch.randn(7, 1, 4, 4)
    out = predict_logits(model, x, batch_size=1024)
    assert model.training and model[1].training and not model[3].training
    model.eval()
    with torch.no_grad():
        assert torch.allclose(out, model(x), atol=1e-6)
    assert not model.training
    predict_logits(model, x)
    assert not model.training  # eval stays eval
    # float inputs are not rescaled by 255, but mean/std still apply when given (as in DeviceLoader)
    with torch.no_grad():
        assert torch.allclose(predict_logits(model, x, mean=(0.5,), std=(0.2,)), model((x - 0.5) / 0.2), atol=1e-6)


def test_predict_logits_point_sets_normalise_last_axis():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 2))  # applied per point: (N, P, 3) -> (N, P, 2)
    x = torch.randn(5, 8, 3)
    mean, std = (1.0, -2.0, 0.5), (2.0, 0.5, 1.0)
    out = predict_logits(model, x, batch_size=2, mean=mean, std=std)
    with torch.no_grad():
        ref = model((x - torch.tensor(mean)) / torch.tensor(std))
    assert torch.allclose(out, ref, atol=1e-6)


def test_predict_logits_bad_arguments():
    model = _model(in_ch=1)
    x = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    with pytest.raises(ValueError, match="batch_size"):
        predict_logits(model, x, batch_size=0)
    with pytest.raises(ValueError, match="mean and std"):
        predict_logits(model, x, mean=(0.5,))
    with pytest.raises(ValueError, match="values"):
        predict_logits(model, x, mean=(0.5, 0.5), std=(0.2, 0.2))
    with pytest.raises(ValueError, match="std must be positive"):
        predict_logits(model, x, mean=(0.5,), std=(0.0,))
    with pytest.raises(ValueError, match="dtype"):
        predict_logits(model, x.long())


# ----------------------------------------------------------------------------------------------- bundle
def test_classification_metrics_bundle():
    logits = torch.log(HAND_P)
    m = classification_metrics(logits, HAND_Y, n_bins=2)
    assert set(m) == {"accuracy", "errors", "nll", "ece"}
    assert m["accuracy"] == pytest.approx(0.6) and m["errors"] == 2 and isinstance(m["errors"], int)
    assert m["ece"] == pytest.approx(0.11) and m["nll"] == pytest.approx(nll(logits, HAND_Y))
    t = torch.log(HAND_P.flip(1))
    m = classification_metrics(logits, HAND_Y, teacher_logits=t, n_bins=2)
    assert set(m) == {"accuracy", "errors", "nll", "ece", "agreement", "kl"}
    assert m["agreement"] == pytest.approx(agreement(logits, t))
    assert m["kl"] == pytest.approx(predictive_kl(t, logits)) and m["kl"] > 0
    assert all(isinstance(v, (int, float)) for v in m.values())
