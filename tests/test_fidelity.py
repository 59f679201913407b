"""kdutils.chapters.does_kd_work: near-teacher init (exact endpoints, BatchNorm recomputed), loss along a line, ensemble
teachers (mean of probabilities), distillation-data policies (MixUp convexity, the teacher labelling the
mixed input, noise, OOD data) and fidelity metrics."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from kdutils.chapters.does_kd_work.ensemble import EnsembleTeacher, ensemble_probs
from kdutils.chapters.does_kd_work.evaluate import fidelity_metrics, fidelity_of_models, fidelity_on_loader
from kdutils.chapters.does_kd_work.interpolation import (blend_state, distillation_loss_fn, init_lr, interpolate_init,
                                                         loss_along_line, recompute_bn)
from kdutils.chapters.does_kd_work.policies import OOD_LABEL, GaussianNoise, MixUp, ood_distillation_set, parse_policy
from kdutils.config import TrainConfig
from kdutils.data.datasets import ArrayDataset
from kdutils.data.device_loader import Compose, DeviceLoader, RandomCrop, RandomHFlip
from kdutils.metrics import predict_logits
from kdutils.models import build_model
from kdutils.training.train import fit

SHAPE = (1, 12, 12)
WIDTHS = (4, 4, 8, 8)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("preresnet8", SHAPE, 5, widths=WIDTHS)


@pytest.fixture
def pair():
    """A fresh random init and a 'teacher' whose weights and BN statistics differ from any init."""
    random_model, teacher = _net(0), _net(1)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.1 * torch.randn_like(p))
        teacher.train()
        for _ in range(3):  # running statistics away from the init's 0 / 1
            teacher(2.0 * torch.randn(16, *SHAPE) + 0.5)
    return random_model.eval(), teacher.eval()


def _params_equal(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def _bn_layers(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


# ----------------------------------------------------------------------------------------------- interpolation
def test_interpolation_endpoints_are_exact(pair):
    random_model, teacher = pair
    bn_x = _images(32, 5)
    for r, expected in [(1.0, random_model), (0.0, teacher), (1, random_model), (0, teacher)]:
        plain = interpolate_init(random_model, teacher, r)
        for k, v in plain.state_dict().items():  # without recomputation: every entry, buffers too
            assert torch.equal(v, expected.state_dict()[k]), f"r={r}: {k} differs"
        recomputed = interpolate_init(random_model, teacher, r, bn_x)
        assert _params_equal(recomputed, expected)  # BN recomputation touches buffers only


def test_interpolation_is_the_convex_combination():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    with torch.no_grad():
        a.weight.fill_(4.0), a.bias.fill_(-8.0), b.weight.fill_(0.0), b.bias.fill_(8.0)
    mixed = interpolate_init(a, b, 0.25)
    assert torch.equal(mixed.weight, torch.full((2, 3), 1.0))  # 0.25 * 4 + 0.75 * 0
    assert torch.equal(mixed.bias, torch.full((2,), 4.0))  # 0.25 * -8 + 0.75 * 8
    assert torch.equal(a.weight, torch.full((2, 3), 4.0)) and torch.equal(b.bias, torch.full((2,), 8.0))


def test_bn_statistics_recomputed_from_data(pair):
    random_model, teacher = pair
    bn_x = _images(48, 7)
    student = interpolate_init(random_model, teacher, 0.5, bn_x, batch_size=64)  # one batch: exact stats

    # Manual recomputation: the blended net in train mode on the whole set; record every BN's input.
    manual = interpolate_init(random_model, teacher, 0.5)
    seen: dict[int, torch.Tensor] = {}
    hooks = [bn.register_forward_hook(lambda m, inp, out, i=i: seen.__setitem__(i, inp[0].detach()))
             for i, bn in enumerate(_bn_layers(manual))]
    with torch.no_grad():
        manual.train()(bn_x.float() / 255.0)
    for h in hooks:
        h.remove()

    pairs = zip(_bn_layers(student), _bn_layers(random_model), _bn_layers(teacher), strict=True)
    for i, (bn, bn_rand, bn_teach) in enumerate(pairs):
        act = seen[i].transpose(0, 1).flatten(1)  # (channels, N*H*W)
        torch.testing.assert_close(bn.running_mean, act.mean(1), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(bn.running_var, act.var(1, unbiased=True), rtol=1e-4, atol=1e-5)
        for other in (bn_rand, bn_teach):
            assert not torch.allclose(bn.running_mean, other.running_mean, atol=1e-3)
            assert not torch.allclose(bn.running_var, other.running_var, atol=1e-3)
    assert not student.training  # mode restored (interpolate_init copies an eval-mode model)


def test_recompute_bn_applies_normalisation_and_batches_average():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    x = _images(40, 3)
    recompute_bn(model, x, batch_size=10, mean=(0.5,), std=(0.25,))
    z = (x.float() / 255.0 - 0.5) / 0.25  # what the loader feeds; identity conv per channel
    batch_means = z.view(4, -1).mean(1)
    expected = batch_means.mean()  # update_bn: average of the batch statistics
    torch.testing.assert_close(model[1].running_mean, expected.expand(2), rtol=1e-5, atol=1e-6)
    assert int(model[1].num_batches_tracked) == 4
    assert model[1].momentum == 0.1  # restored after the cumulative pass


def test_interpolation_errors(pair):
    random_model, teacher = pair
    for bad in (1.5, -0.1, True, float("nan"), "0.5"):
        with pytest.raises(ValueError, match="r must be a number in \\[0, 1\\]"):
            interpolate_init(random_model, teacher, bad)
    with pytest.raises(ValueError, match="different architectures"):
        blend_state(random_model.state_dict(), build_model("preresnet14", SHAPE, 5).state_dict(), 0.5)
    assert init_lr(0.05, 0.25) == pytest.approx(0.0125)
    with pytest.raises(ValueError, match="base_lr"):
        init_lr(0.0, 0.5)


def test_loss_along_line_endpoints_equal_endpoint_losses(pair):
    student, teacher = pair
    x = _images(32, 9)
    t_logits = predict_logits(teacher, x)
    loss_fn = distillation_loss_fn(t_logits, x, tau=4.0)
    curve = loss_along_line(student, teacher, loss_fn, ts=[0.0, 0.5, 1.0])
    assert curve["t"] == [0.0, 0.5, 1.0]
    assert curve["loss"][0] == loss_fn(student) > 0.0
    assert curve["loss"][-1] == loss_fn(teacher)
    assert abs(curve["loss"][-1]) < 1e-6  # the teacher matches itself: tau^2 KL = 0
    assert curve["loss"][1] != curve["loss"][0]

    default = loss_along_line(student, teacher, loss_fn)
    assert default["t"][0] == 0.0 and default["t"][-1] == 1.0 and len(default["t"]) == 11

    bn_curve = loss_along_line(student, teacher, loss_fn, ts=[0.0, 1.0], bn_x=x)
    for end, model in zip(bn_curve["loss"], (student, teacher)):
        assert end == pytest.approx(loss_fn(recompute_bn(copy.deepcopy(model), x)), abs=1e-6)
    with pytest.raises(ValueError, match="t must be a number in \\[0, 1\\]"):
        loss_along_line(student, teacher, loss_fn, ts=[0.0, 2.0])


# ----------------------------------------------------------------------------------------------- ensembles
def test_ensemble_probabilities_are_the_mean():
    members = [torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0]])]
    # softmax: [1/2, 1/2] and [3/4, 1/4]; mean [5/8, 3/8]
    torch.testing.assert_close(ensemble_probs(members), torch.tensor([[0.625, 0.375]]))

    torch.manual_seed(0)
    nets = [nn.Linear(6, 4) for _ in range(3)]
    teacher = EnsembleTeacher(nets)
    x = torch.randn(10, 6)
    with torch.no_grad():
        mean_p = torch.stack([n(x).softmax(1) for n in nets]).mean(0)
        torch.testing.assert_close(teacher(x).softmax(1), mean_p)
        torch.testing.assert_close(teacher(x).exp(), mean_p)  # forward gives log-probabilities
        torch.testing.assert_close(EnsembleTeacher(nets[:1])(x).softmax(1), nets[0](x).softmax(1))
    assert len(teacher) == 3
    with pytest.raises(ValueError, match="at least one member"):
        EnsembleTeacher([])


# ----------------------------------------------------------------------------------------------- policies
def test_mixup_is_a_convex_combination_of_batch_images():
    x = torch.rand(64, *SHAPE, generator=torch.Generator().manual_seed(0))
    mix = MixUp(alpha=1.0)
    lam, perm = mix.sample(64, generator=torch.Generator().manual_seed(3))
    out = mix(x, generator=torch.Generator().manual_seed(3))
    assert ((lam >= 0) & (lam <= 1)).all() and torch.unique(lam).numel() == 1  # one lambda per batch
    assert sorted(perm.tolist()) == list(range(64))
    torch.testing.assert_close(out, lam[0] * x + (1 - lam[0]) * x[perm])
    lo, hi = torch.minimum(x, x[perm]), torch.maximum(x, x[perm])
    assert ((out >= lo - 1e-6) & (out <= hi + 1e-6)).all()
    assert not torch.equal(out, x)


def test_mixup_lambda_distribution():
    lam_uniform, _ = MixUp(1.0, per_sample=True).sample(4000, generator=torch.Generator().manual_seed(0))
    assert ((lam_uniform >= 0) & (lam_uniform <= 1)).all()
    assert abs(lam_uniform.mean().item() - 0.5) < 0.02  # Beta(1, 1) = U[0, 1]: mean 1/2, var 1/12
    assert abs(lam_uniform.var().item() - 1 / 12) < 0.01
    lam_peaked, _ = MixUp(0.2, per_sample=True).sample(4000, generator=torch.Generator().manual_seed(0))
    near_ends = ((lam_peaked < 0.1) | (lam_peaked > 0.9)).float().mean().item()
    assert near_ends > 0.6  # Beta(0.2, 0.2) piles up at 0 and 1 (about 0.71 of the mass)
    with pytest.raises(ValueError, match="mixup alpha"):
        MixUp(0.0)


class RecordingTeacher(nn.Module):
    """A linear teacher that keeps every input it is asked to label."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(SHAPE), 5))
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return self.net(x)


def test_teacher_labels_the_mixed_input_during_distillation():
    torch.manual_seed(0)
    x, y = _images(40, 1), torch.randint(0, 5, (40,))
    loader = DeviceLoader(x, y, 16, augment=parse_policy("mixup1"), mean=(0.5,), std=(0.25,), seed=4)
    teacher = RecordingTeacher()
    student = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(SHAPE), 5))
    cfg = TrainConfig(epochs=1, batch_size=16, optimizer="sgd", lr=0.01, momentum=0.0, schedule="none")
    fit(student, loader, cfg, teacher=teacher, tau=4.0, alpha=1.0, progress=False)

    loader.set_epoch(0)  # replay the epoch the student was trained on
    batches = list(loader)
    assert len(teacher.inputs) == len(batches) == 3
    for seen, batch in zip(teacher.inputs, batches, strict=True):
        assert torch.equal(seen, batch.x)  # the teacher saw exactly the mixed inputs
        raw = loader.prepare(batch.idx, augment=False)
        assert not torch.allclose(seen, raw)  # ... which are not the raw images


def test_gaussian_noise_statistics_and_clipping():
    x = torch.full((200, *SHAPE), 0.5)
    out = GaussianNoise(0.1)(x, generator=torch.Generator().manual_seed(0))
    diff = out - x
    assert abs(diff.mean().item()) < 0.005 and abs(diff.std().item() - 0.1) < 0.005
    loud = GaussianNoise(2.0)(x, generator=torch.Generator().manual_seed(0))
    assert loud.min() == 0.0 and loud.max() == 1.0  # clipped to valid pixels
    same = GaussianNoise(0.1)(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, same)


def test_parse_policy():
    assert parse_policy("none") is None and parse_policy(None) is None
    composed = parse_policy("crop2+flip+mixup0.4")
    assert isinstance(composed, Compose)
    kinds = [type(t) for t in composed.transforms]
    assert kinds == [RandomCrop, RandomHFlip, MixUp] and composed.transforms[2].alpha == 0.4
    assert isinstance(parse_policy("noise0.1"), GaussianNoise) and parse_policy("noise0.1").std == 0.1
    for bad in ("mixup", "noise-1", "blur3", "none+flip"):
        with pytest.raises(ValueError, match="mixup<a>|cannot be combined"):
            parse_policy(bad)


def test_ood_distillation_set():
    train = ArrayDataset(_images(10, 0), torch.arange(10) % 5, ["a", "b", "c", "d", "e"], "fashion_mnist")
    ood = ArrayDataset(_images(30, 1), torch.arange(30) % 10, [], "mnist")
    mixed = ood_distillation_set(train, ood, n_ood=8, seed=2)
    assert len(mixed) == 18 and mixed.name == "fashion_mnist" and mixed.classes == train.classes
    assert torch.equal(mixed.x[:10], train.x) and torch.equal(mixed.y[:10], train.y)
    assert (mixed.y[10:] == OOD_LABEL).all()
    rows = {tuple(r.flatten().tolist()) for r in ood.x}
    assert all(tuple(r.flatten().tolist()) in rows for r in mixed.x[10:])
    assert torch.equal(ood_distillation_set(train, ood, 8, seed=2).x, mixed.x)  # seeded
    assert len(ood_distillation_set(train, ood)) == 40
    with pytest.raises(ValueError, match="n_ood must be an integer in \\[0, 30\\]"):
        ood_distillation_set(train, ood, 31)
    other = ArrayDataset(torch.zeros(3, 3, 12, 12, dtype=torch.uint8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="must match"):
        ood_distillation_set(train, other)


# ----------------------------------------------------------------------------------------------- metrics
def test_fidelity_metrics_by_hand():
    s = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 0.0]])
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 1, OOD_LABEL])
    m = fidelity_metrics(s, t, y)
    assert m["agreement"] == 0.75
    assert m["student_acc"] == pytest.approx(2 / 3) and m["teacher_acc"] == pytest.approx(2 / 3)  # OOD row out
    p, q = (torch.tensor(v, dtype=torch.float64).softmax(0) for v in ([1.0, 0.0], [2.0, 0.0]))
    kl_same = (p * (p / q).log()).sum().item()
    kl_flip = (p.flip(0) * (p.flip(0) / q).log()).sum().item()
    assert m["kl"] == pytest.approx((3 * kl_same + kl_flip) / 4, rel=1e-9)


def test_a_model_agrees_with_itself(pair):
    _, teacher = pair
    x, y = _images(24, 3), torch.randint(0, 5, (24,))
    m = fidelity_of_models(teacher, teacher, x, y)
    assert m["agreement"] == 1.0 and abs(m["kl"]) < 1e-12 and m["student_acc"] == m["teacher_acc"]
    loader = DeviceLoader(x, y, 8, augment=parse_policy("mixup1"), seed=0)
    loader.set_epoch(3)
    assert fidelity_on_loader(teacher, teacher, loader)["agreement"] == 1.0
    assert loader.epoch == 3  # evaluation does not advance what training sees next


def test_fidelity_on_loader_matches_fixed_inputs_without_augmentation(pair):
    student, teacher = pair
    x, y = _images(24, 4), torch.randint(0, 5, (24,))
    loader = DeviceLoader(x, y, 7, shuffle=True, mean=(0.5,), std=(0.25,))
    on_loader = fidelity_on_loader(student, teacher, loader, epochs=2)
    fixed = fidelity_of_models(student, teacher, x, mean=(0.5,), std=(0.25,))
    assert on_loader["agreement"] == pytest.approx(fixed["agreement"])
    assert on_loader["kl"] == pytest.approx(fixed["kl"], rel=1e-5)
    assert 0.0 <= fixed["agreement"] < 1.0 and fixed["kl"] > 0.0
    assert student.training is False and teacher.training is False
