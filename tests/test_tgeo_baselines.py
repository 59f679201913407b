"""The fusion-ratio baselines against hand-computed values, and the sample-wise training loop."""
import pytest
import torch

from kdutils.chapters.tgeo.baselines import (RWKDWeights, ada_alpha, anl_alpha, make_baseline_rule, vanilla_alpha,
                                             wls_alpha)
from kdutils.chapters.tgeo.objective import per_sample_terms, samplewise_kd_objective
from kdutils.chapters.tgeo.training import fit_samplewise
from kdutils.config import TrainConfig
from kdutils.data.device_loader import DeviceLoader


def _logits(rows):
    return torch.tensor(rows, dtype=torch.float64).log()


def test_vanilla_and_anl():
    torch.testing.assert_close(vanilla_alpha(0.3, 4), torch.full((4,), 0.3))
    assert [anl_alpha(e, 5) for e in range(1, 6)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert anl_alpha(1, 200) == 1.0 and anl_alpha(200, 200) == 0.0 and anl_alpha(101, 200) == 99 / 199
    with pytest.raises(ValueError, match=r"epoch must be an int in \[1, 5\]"):
        anl_alpha(0, 5)
    with pytest.raises(ValueError, match="epochs must be an int >= 2"):
        anl_alpha(1, 1)
    with pytest.raises(ValueError, match="alpha must be in"):
        vanilla_alpha(1.2, 3)


def test_ada_by_hand():
    teacher = _logits([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1], [0.4, 0.35, 0.25]])
    alpha = ada_alpha(teacher, torch.tensor([0, 1, 0]))
    # 0.7 - 0.3/2 = 0.55;  0.2 - 0.8/2 < 0 -> 0;  0.4 - 0.6/2 = 0.1
    torch.testing.assert_close(alpha, torch.tensor([0.55, 0.0, 0.1], dtype=torch.float64))


def test_wls_by_hand():
    student = _logits([[0.5, 0.3, 0.2], [0.2, 0.5, 0.3]])
    teacher = _logits([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    alpha = wls_alpha(student, teacher, torch.tensor([0, 1]))
    # 1 - exp(-ln(1/0.5) / ln(1/0.7)) and 1 - exp(-ln(1/0.5) / ln(1/0.8))
    torch.testing.assert_close(alpha, torch.tensor([0.8567778288358554, 0.9552329866313629], dtype=torch.float64))
    perfect = torch.tensor([[0.0, 100.0]], dtype=torch.float64)  # CE_t underflows to 0
    assert wls_alpha(torch.zeros(1, 2), perfect, torch.tensor([1])).item() == 1.0


def test_rw_gradient_clamp_and_unclamped_release():
    torch.manual_seed(0)
    s, t, y = torch.randn(4, 3), torch.randn(4, 3), torch.randint(0, 3, (4,))
    weights = RWKDWeights(10)
    idx = torch.tensor([7, 2, 5, 0])
    samplewise_kd_objective(s, y, t, weights(idx), tau=2.0).backward()
    kd, ce = per_sample_terms(s, y, t, 2.0)
    expected = torch.zeros(10)
    expected[idx] = (kd - ce) / 4  # d/d alpha_i of mean_i [alpha_i kd_i + (1 - alpha_i) ce_i]
    torch.testing.assert_close(weights.raw.grad, expected)
    with torch.no_grad():
        weights.raw[7] = 1.3
    assert weights(idx)[0].item() == 1.0
    free = RWKDWeights(10, clamp=False)
    with torch.no_grad():
        free.raw[7] = 1.3
    assert abs(free(idx)[0].item() - 1.3) < 1e-6
    with pytest.raises(ValueError, match="must lie in"):
        samplewise_kd_objective(s, y, t, free(idx), tau=2.0)


def test_rule_factory_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown baseline 'anneal'; choose one of: vanilla, anl, ada, wls, rw"):
        make_baseline_rule("anneal")
    with pytest.raises(ValueError, match="num_samples"):
        make_baseline_rule("rw")


def _data(n=96, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(c, 6, generator=g) * 2
    y = torch.arange(n) % c
    x = centers[y] + torch.randn(n, 6, generator=g)
    teacher = torch.nn.functional.one_hot(y, c).float() * 3 + torch.randn(n, c, generator=g)
    return x, y, teacher


@pytest.mark.parametrize("name", ["vanilla", "anl", "ada", "wls", "rw"])
def test_fit_samplewise_records_the_alphas_it_used(name, one_thread):
    torch.manual_seed(0)
    x, y, teacher = _data()
    loader = DeviceLoader(x, y, batch_size=32, seed=0)
    student = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    rule = make_baseline_rule(name, alpha=0.3, num_samples=len(y), rw_lr=0.05)
    res = fit_samplewise(student, loader, TrainConfig(epochs=3, batch_size=32, lr=0.05), teacher_logits=teacher,
                         rule=rule, tau=2.0, progress=False)
    assert res.status == "ok" and len(res.history) == 3
    means = [h["alpha_mean"] for h in res.history]
    if name == "vanilla":
        assert means == pytest.approx([0.3] * 3) and res.history[0]["alpha_std"] < 1e-9
    elif name == "anl":
        assert means == pytest.approx([1.0, 0.5, 0.0])
    elif name == "ada":  # fixed per sample: the same statistics every epoch
        assert means == pytest.approx([means[0]] * 3) and res.history[0]["alpha_std"] > 0
        assert means[0] == pytest.approx(ada_alpha(teacher, y).double().mean().item(), rel=1e-6)
    else:  # WLS follows the student, RW is trained: both change between epochs
        assert res.history[0]["alpha_std"] > 0 or name == "rw"
        assert means[0] != pytest.approx(means[2], abs=1e-4)
    assert all(0.0 <= h["alpha_min"] <= h["alpha_max"] <= 1.0 for h in res.history)
