"""Average entropy of tempered targets (Supplementary H) and the matched-entropy temperature search."""
import math

import pytest
import torch

from kdutils.chapters.ls_kd.target_entropy import (average_entropy, matched_temperatures, matching_temperature,
                                                   tempered_entropy)

LN3 = math.log(3.0)


def test_entropy_hand_computed():
    # softmax(0, ln 3) = (1/4, 3/4): H = ln 4 - (3/4) ln 3;  equal logits: H = ln 2.
    logits = torch.tensor([[0.0, LN3], [5.0, 5.0]], dtype=torch.float64)
    h = tempered_entropy(logits, 1.0)
    assert h[0].item() == pytest.approx(math.log(4.0) - 0.75 * LN3, abs=1e-12)
    assert h[1].item() == pytest.approx(math.log(2.0), abs=1e-12)
    assert average_entropy(logits, 1.0) == pytest.approx((math.log(4.0) - 0.75 * LN3 + math.log(2.0)) / 2)
    # tau = 2: softmax(0, ln 3 / 2) = (1, sqrt 3) / (1 + sqrt 3)
    p = torch.tensor([1.0, math.sqrt(3.0)], dtype=torch.float64) / (1 + math.sqrt(3.0))
    assert tempered_entropy(logits[:1], 2.0).item() == pytest.approx(-(p * p.log()).sum().item(), abs=1e-12)


def test_entropy_limits_and_monotonicity():
    g = torch.Generator().manual_seed(0)
    logits = 4.0 * torch.randn(64, 10, generator=g)
    hs = [average_entropy(logits, t) for t in (0.5, 1, 2, 3, 64, 1e4)]
    assert all(a < b for a, b in zip(hs, hs[1:]))
    assert hs[-1] == pytest.approx(math.log(10), abs=1e-6)
    # a saturated prediction underflows to probability 0 without producing NaN
    assert tempered_entropy(torch.tensor([[0.0, 1e4]]), 1.0).item() == pytest.approx(0.0, abs=1e-12)


def test_matching_temperature_recovers_a_known_scaling():
    """Teacher B's logits are 2.5 x teacher A's, so B at 2.5 tau is exactly A at tau."""
    g = torch.Generator().manual_seed(1)
    a = 3.0 * torch.randn(200, 10, generator=g, dtype=torch.float64)
    b = 2.5 * a
    for tau in (1.0, 2.0, 3.0):
        target = average_entropy(a, tau)
        found = matching_temperature(b, target)
        assert found == pytest.approx(2.5 * tau, rel=1e-6)
        assert abs(average_entropy(b, found) - target) <= 1e-9


def test_matched_temperatures_hits_each_target_within_tolerance():
    g = torch.Generator().manual_seed(2)
    plain = 6.0 * torch.randn(300, 10, generator=g)  # sharp targets
    smoothed = torch.randn(300, 10, generator=g)  # LS-like: flatter targets
    pairs = matched_temperatures(smoothed, plain, [1.0, 2.0, 3.0], tol=1e-8)
    assert [p.tau_a for p in pairs] == [1.0, 2.0, 3.0]
    for p in pairs:
        assert p.entropy == pytest.approx(average_entropy(smoothed, p.tau_a))
        assert abs(average_entropy(plain, p.tau_b) - p.entropy) <= 1e-8
        assert p.tau_b > p.tau_a  # the sharper teacher needs a higher temperature to be as smooth
    assert pairs[0].tau_b < pairs[1].tau_b < pairs[2].tau_b


def test_matching_temperature_refuses_unreachable_targets():
    logits = torch.tensor([[0.0, 2.0, 4.0]])
    with pytest.raises(ValueError, match=r"outside .*maximum possible: log C = 1\.0986"):
        matching_temperature(logits, math.log(3.0) + 0.1)
    with pytest.raises(ValueError, match="tau must be a finite number > 0"):
        average_entropy(logits, 0.0)
    with pytest.raises(ValueError, match="need lo < hi"):
        matching_temperature(logits, 0.5, lo=2.0, hi=1.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        average_entropy(torch.tensor([[0.0, float("nan")]]), 1.0)
