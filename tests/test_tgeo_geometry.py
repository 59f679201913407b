"""TGeo-KD geometry features and f_w, checked on a hand-computed 3-class example."""
import math

import pytest
import torch

from kdutils.chapters.tgeo.fusion_net import FusionRatioNet
from kdutils.chapters.tgeo.geometry import feature_dim, geometry_features, teacher_class_means, trilateral_geometry
from kdutils.chapters.tgeo.objective import samplewise_kd_objective
from kdutils.losses import kd_objective

S = [0.5, 0.3, 0.2]
T = [0.7, 0.2, 0.1]
T_OTHER = [0.5, 0.4, 0.1]  # a second class-0 sample: T-bar_0 = (0.6, 0.3, 0.1)


def _logits(p):
    return torch.tensor(p, dtype=torch.float64).log()  # softmax(log p) = p


def test_intra_features_by_hand():
    delta = trilateral_geometry(torch.tensor([S], dtype=torch.float64), torch.tensor([T], dtype=torch.float64),
                                torch.tensor([0]), features="intra")
    expected = [0.5, -0.3, -0.2,   # e_sg = G - S
                0.3, -0.2, -0.1,   # e_tg = G - T
                0.2, -0.1, -0.1,   # e_st = T - S
                *S, *T, 1.0, 0.0, 0.0]
    torch.testing.assert_close(delta[0], torch.tensor(expected, dtype=torch.float64))


def test_inter_and_both_use_teacher_class_mean():
    teacher = torch.stack([_logits(T), _logits(T_OTHER), _logits([0.1, 0.8, 0.1]), _logits([0.2, 0.2, 0.6])])
    labels = torch.tensor([0, 0, 1, 2])
    t_bar = teacher_class_means(teacher, labels)
    torch.testing.assert_close(t_bar[0], torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64))
    torch.testing.assert_close(t_bar.sum(1), torch.ones(3, dtype=torch.float64))
    student = _logits(S)[None]
    inter = geometry_features(student, teacher[:1], labels[:1], t_bar, features="inter")
    expected_inter = [0.5, -0.3, -0.2,  # e_sg
                      0.4, -0.3, -0.1,  # e_t-bar g = G - T-bar
                      0.1, 0.0, -0.1,   # e_s t-bar = T-bar - S
                      *S, 0.6, 0.3, 0.1, 1.0, 0.0, 0.0]
    torch.testing.assert_close(inter[0], torch.tensor(expected_inter, dtype=torch.float64))
    both = geometry_features(student, teacher[:1], labels[:1], t_bar, features="both")
    intra = geometry_features(student, teacher[:1], labels[:1], features="intra")
    assert both.shape == (1, feature_dim(3, "both")) == (1, 36)
    torch.testing.assert_close(both, torch.cat([intra, inter], 1))


def test_features_are_detached_and_errors_are_clear():
    s = torch.randn(4, 3, requires_grad=True)
    d = geometry_features(s, torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), features="intra")
    assert not d.requires_grad
    with pytest.raises(ValueError, match="class_means"):
        geometry_features(s, torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), features="both")
    with pytest.raises(ValueError, match="unknown feature set 'edges'"):
        feature_dim(3, "edges")
    with pytest.raises(ValueError, match=r"classes \[2\] have no training sample"):
        teacher_class_means(torch.randn(4, 3), torch.tensor([0, 1, 1, 0]))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 2\]"):
        geometry_features(s, torch.randn(4, 3), torch.tensor([0, 1, 3, 0]), features="intra")


def test_fusion_net_range_init_and_shape():
    torch.manual_seed(0)
    net = FusionRatioNet.for_classes(10, "inter", init_alpha=0.3)
    assert net.in_features == 60
    alpha = net(torch.zeros(5, 60))
    # zero input -> only the biases act; the last one alone would give exactly 0.3
    assert alpha.shape == (5,) and bool(((alpha > 0) & (alpha < 1)).all())
    assert abs(torch.sigmoid(net.out.bias).item() - 0.3) < 1e-6
    varied = net(torch.randn(64, 60))
    assert varied.std() > 1e-4  # random weights: alpha already differs across samples
    with pytest.raises(ValueError, match=r"\(B, 60\)"):
        net(torch.zeros(2, 36))
    with pytest.raises(ValueError, match="init_alpha"):
        FusionRatioNet(6, init_alpha=1.0)


def test_samplewise_objective_matches_kd_objective_for_constant_alpha():
    torch.manual_seed(1)
    s, t, y = torch.randn(6, 4), torch.randn(6, 4), torch.randint(0, 4, (6,))
    ref = kd_objective(s, y, t, tau=3.0, alpha=0.7)
    torch.testing.assert_close(samplewise_kd_objective(s, y, t, torch.full((6,), 0.7), tau=3.0), ref)
    # per-sample weights: alpha = 1 on sample 0 only picks its tau^2 KL; the rest contribute their CE
    alpha = torch.tensor([1.0, 0, 0, 0, 0, 0])
    kd0 = kd_objective(s[:1], y[:1], t[:1], tau=3.0, alpha=1.0)
    ce_rest = kd_objective(s[1:], y[1:], None, tau=3.0, alpha=0.0)
    torch.testing.assert_close(samplewise_kd_objective(s, y, t, alpha, tau=3.0), (kd0 + 5 * ce_rest) / 6)
    with pytest.raises(ValueError, match="sample 2 has 1.5"):
        samplewise_kd_objective(s, y, t, torch.tensor([0.1, 0.2, 1.5, 0, 0, 0]), tau=1.0)
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        samplewise_kd_objective(s, y, t, torch.zeros(5), tau=1.0)
    assert math.isfinite(samplewise_kd_objective(s, y, t, torch.full((6,), 1.5), tau=1.0,
                                                 check_range=False).item())
