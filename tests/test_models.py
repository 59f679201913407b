"""Model registry and architectures: shapes, the features/head contract, parameter counts against closed
forms and published figures, dropout behaviour, gradients, and error messages."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import kdutils.models as models
from kdutils.models import MODEL_NAMES, build_model, count_parameters, model_names
from kdutils.models.mlp import MLP
from kdutils.models.resnet_cifar import PadShortcut

# Names this file owns; other modules may register more (e.g. point-set models with other input shapes).
OWN_NAMES = [
    "mlp", "mlp_1200x2", "mlp_800x2", "mlp_256x4", "mlp_2048x4", "cnn",
    "resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
    "resnet8x4", "resnet32x4",
]
IMAGE_SHAPES = [(1, 28, 28), (3, 32, 32)]
NUM_CLASSES = 7
RESNETS = {  # name -> (depth, widths)
    **{f"resnet{d}": (d, (16, 16, 32, 64)) for d in (8, 14, 20, 32, 44, 56, 110)},
    "resnet8x4": (8, (32, 64, 128, 256)),
    "resnet32x4": (32, (32, 64, 128, 256)),
}


def _seeded_input(shape: tuple[int, ...], batch: int = 3) -> torch.Tensor:
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0))


def test_registry_lists_all_own_models():
    assert set(OWN_NAMES) <= set(model_names())
    assert model_names() == sorted(MODEL_NAMES)
    assert len(MODEL_NAMES) == len(set(MODEL_NAMES))


@pytest.mark.parametrize("in_shape", IMAGE_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", OWN_NAMES)
def test_shapes_and_forward_equals_head_of_features(name, in_shape):
    torch.manual_seed(0)
    model = build_model(name, in_shape, NUM_CLASSES).eval()
    x = _seeded_input(in_shape)
    with torch.no_grad():
        logits = model(x)
        feats = model.features(x)
    assert isinstance(model.head, nn.Linear)
    assert logits.shape == (3, NUM_CLASSES)
    assert feats.shape == (3, model.head.in_features)
    assert model.head.out_features == NUM_CLASSES
    torch.testing.assert_close(logits, model.head(feats), rtol=0, atol=0)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", OWN_NAMES)
def test_gradient_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = build_model(name, (1, 28, 28), NUM_CLASSES).train()
    x = _seeded_input((1, 28, 28), batch=4)
    y = torch.tensor([0, 1, 2, 3])
    F.cross_entropy(model(x), y).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient for {pname}"


def test_option_a_resnet_gradients_and_no_shortcut_params():
    torch.manual_seed(0)
    model = build_model("resnet20", (3, 32, 32), 10, shortcut="A").train()
    assert not any("shortcut" in n for n, _ in model.named_parameters())
    F.cross_entropy(model(_seeded_input((3, 32, 32), 4)), torch.tensor([0, 1, 2, 3])).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


# ---- parameter counts ---------------------------------------------------------------------------------


def resnet_closed_form(depth: int, widths, in_ch: int, num_classes: int, shortcut: str) -> int:
    """Count written from the architecture definition: convs have no bias, each BN has 2 params per channel."""
    n = (depth - 2) // 6
    w0, w1, w2, w3 = widths
    total = 9 * in_ch * w0 + 2 * w0  # stem conv + BN
    for cin, cout, stride in [(w0, w1, 1), (w1, w2, 2), (w2, w3, 2)]:
        for i in range(n):
            c = cin if i == 0 else cout
            s = stride if i == 0 else 1
            total += 9 * c * cout + 9 * cout * cout + 2 * (2 * cout)  # two 3x3 convs + two BNs
            if shortcut == "B" and (s != 1 or c != cout):
                total += c * cout + 2 * cout  # 1x1 projection + BN
    return total + w3 * num_classes + num_classes  # head


@pytest.mark.parametrize("shortcut", ["A", "B"])
@pytest.mark.parametrize("name", list(RESNETS))
def test_resnet_counts_match_closed_form(name, shortcut):
    depth, widths = RESNETS[name]
    for in_ch, classes in [(3, 10), (1, 100)]:
        model = build_model(name, (in_ch, 28, 28), classes, shortcut=shortcut)
        assert count_parameters(model) == resnet_closed_form(depth, widths, in_ch, classes, shortcut)


def test_resnet20_count_by_hand():
    # Option A, CIFAR-10. stem 3*16*9 + 32 = 464; stage1 3 * (2*2304 + 64) = 14016;
    # stage2 (4608 + 9216 + 128) + 2 * (2*9216 + 128) = 51072; stage3 (18432 + 36864 + 256) + 2 * (2*36864 + 256)
    # = 203520; head 64*10 + 10 = 650.  Sum = 269722.
    assert count_parameters(build_model("resnet20", (3, 32, 32), 10, shortcut="A")) == 269_722
    # Option B adds the two projections: (16*32 + 64) + (32*64 + 128) = 2752.
    assert count_parameters(build_model("resnet20", (3, 32, 32), 10)) == 269_722 + 2_752


@pytest.mark.parametrize(
    "name, exact, quoted, digits",
    [  # He et al. 2016 Table 6 (option A, CIFAR-10), quoted to the printed precision.
        ("resnet20", 269_722, 0.27, 2),
        ("resnet32", 464_154, 0.46, 2),
        ("resnet44", 658_586, 0.66, 2),
        ("resnet56", 853_018, 0.85, 2),
        ("resnet110", 1_727_962, 1.7, 1),
    ],
)
def test_he_et_al_option_a_counts(name, exact, quoted, digits):
    n = count_parameters(build_model(name, (3, 32, 32), 10, shortcut="A"))
    assert n == exact
    assert round(n / 1e6, digits) == quoted


@pytest.mark.parametrize(
    "name, exact, quoted_m",
    [  # RepDistiller / CRD (Tian et al. 2020) CIFAR-100 models, option-B shortcuts.
        ("resnet20", 278_324, 0.28),
        ("resnet56", 861_620, 0.86),
        ("resnet110", 1_736_564, 1.74),
        ("resnet8x4", 1_233_540, 1.23),
        ("resnet32x4", 7_433_860, 7.43),
    ],
)
def test_repdistiller_cifar100_counts(name, exact, quoted_m):
    n = count_parameters(build_model(name, (3, 32, 32), 100))
    assert n == exact
    assert round(n / 1e6, 2) == quoted_m


def test_mlp_and_cnn_counts():
    def mlp_count(widths):
        return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))

    assert count_parameters(build_model("mlp_1200x2", (1, 28, 28), 10)) == mlp_count([784, 1200, 1200, 10]) == 2_395_210
    assert count_parameters(build_model("mlp_800x2", (1, 28, 28), 10)) == mlp_count([784, 800, 800, 10]) == 1_276_810
    assert count_parameters(build_model("mlp_256x4", (3, 32, 32), 10)) == mlp_count([3072] + [256] * 4 + [10])
    assert count_parameters(build_model("mlp", (2, 5), 3, hidden=[4])) == mlp_count([10, 4, 3]) == 59
    # cnn on 1x28x28: conv 1->32 (288+32) + conv 32->64 (18432+64) + fc 64*4*4->128 (131072+128) + head (1280+10)
    assert count_parameters(build_model("cnn", (1, 28, 28), 10)) == 320 + 18_496 + 131_200 + 1_290 == 151_306
    assert count_parameters(build_model("cnn", (3, 32, 32), 10)) == 151_306 - 320 + 896


def test_count_parameters_trainable_only():
    model = build_model("mlp", (4,), 2, hidden=[3])
    model.body[1].requires_grad_(False)  # first Linear: 4*3 + 3 = 15
    assert count_parameters(model) == 15 + 8
    assert count_parameters(model, trainable_only=True) == 8


# ---- behaviour ----------------------------------------------------------------------------------------


def test_mlp_dropout_train_vs_eval():
    torch.manual_seed(0)
    model = build_model("mlp_1200x2", (1, 28, 28), 10)  # input dropout 0.2, hidden dropout 0.5
    x = _seeded_input((1, 28, 28), batch=8)

    model.train()
    assert not torch.equal(model(x), model(x)), "dropout should make train-mode outputs random"
    model.eval()
    with torch.no_grad():
        out1, out2 = model(x), model(x)
    assert torch.equal(out1, out2)

    # Eval mode equals the same weights with no Dropout modules at all.
    no_drop = MLP((1, 28, 28), (1200, 1200), 10).eval()
    src = [m for m in model.body if isinstance(m, nn.Linear)] + [model.head]
    dst = [m for m in no_drop.body if isinstance(m, nn.Linear)] + [no_drop.head]
    for a, b in zip(src, dst, strict=True):
        b.load_state_dict(a.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(out1, no_drop(x))


def test_mlp_input_dropout_rate_and_scaling():
    torch.manual_seed(0)
    model = MLP((100, 100), (), 2, input_dropout=0.2).train()  # no hidden layers: features = dropped input
    feats = model.features(torch.ones(4, 100, 100))
    zero_frac = (feats == 0).float().mean().item()
    assert abs(zero_frac - 0.2) < 0.01
    torch.testing.assert_close(feats[feats != 0], torch.full_like(feats[feats != 0], 1 / 0.8))
    assert torch.equal(model.eval().features(torch.ones(1, 100, 100)), torch.ones(1, 10_000))


def test_preset_regularisation_defaults_and_overrides():
    teacher = build_model("mlp_1200x2", (1, 28, 28), 10)
    rates = [m.p for m in teacher.body if isinstance(m, nn.Dropout)]
    assert rates == [0.2, 0.5, 0.5]
    assert not any(isinstance(m, nn.Dropout) for m in build_model("mlp_800x2", (1, 28, 28), 10).modules())
    tuned = build_model("mlp_1200x2", (1, 28, 28), 10, dropout=0.3, input_dropout=0.0)
    assert [m.p for m in tuned.body if isinstance(m, nn.Dropout)] == [0.3, 0.3]
    assert [m.out_features for m in build_model("mlp_2048x4", (1, 28, 28), 10).body if isinstance(m, nn.Linear)] == [2048] * 4


def test_option_a_shortcut_subsamples_and_zero_pads():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    out = PadShortcut(3, 5, stride=2)(x)
    assert out.shape == (2, 5, 2, 2)
    torch.testing.assert_close(out[:, :3], x[:, :, ::2, ::2])
    assert torch.equal(out[:, 3:], torch.zeros(2, 2, 2, 2))
    # Odd sizes match a stride-2, pad-1 3x3 conv: 7 -> 4.
    assert PadShortcut(3, 3, stride=2)(torch.zeros(1, 3, 7, 7)).shape == (1, 3, 4, 4)


def test_kaiming_init_for_convs():
    torch.manual_seed(0)
    model = build_model("resnet32x4", (3, 32, 32), 100)
    w = model.layer3[-1].conv2.weight  # 256 -> 256, 3x3: fan_out = 2304
    assert abs(w.std().item() - math.sqrt(2 / 2304)) < 0.02 * math.sqrt(2 / 2304)
    assert torch.equal(model.bn1.weight, torch.ones(32)) and torch.equal(model.bn1.bias, torch.zeros(32))


# ---- errors -------------------------------------------------------------------------------------------


def test_unknown_name_lists_allowed_names():
    with pytest.raises(ValueError) as err:
        build_model("resnet21", (3, 32, 32), 10)
    msg = str(err.value)
    assert "'resnet21'" in msg
    for name in OWN_NAMES:
        assert name in msg


@pytest.mark.parametrize(
    "name, in_shape, kwargs, fragment",
    [
        ("resnet20", (784,), {}, "(C, H, W)"),
        ("cnn", (28, 28), {}, "(C, H, W)"),
        ("resnet20", (3, 32, 32), {"shortcut": "C"}, "'C'"),
        ("resnet20", (3, 32, 32), {"depth": 21}, "6n+2"),
        ("mlp", (1, 28, 28), {"activation": "swish"}, "'swish'"),
        ("mlp", (1, 28, 28), {"dropout": 1.0}, "dropout"),
        ("mlp", (0, 28), {}, "in_shape"),
        ("mlp", "abc", {}, "in_shape"),
    ],
)
def test_bad_arguments_raise_value_error(name, in_shape, kwargs, fragment):
    with pytest.raises(ValueError) as err:
        build_model(name, in_shape, 10, **kwargs)
    assert fragment in str(err.value)


def test_bad_num_classes():
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="num_classes"):
            build_model("mlp", (4,), bad)


def test_register_model(monkeypatch):
    monkeypatch.setattr(models, "_REGISTRY", dict(models._REGISTRY))
    monkeypatch.setattr(models, "MODEL_NAMES", list(models.MODEL_NAMES))

    def tiny(in_shape, num_classes, width=3):
        return MLP(in_shape, (width,), num_classes)

    models.register_model("tiny", tiny)
    assert "tiny" in models.model_names() and models.MODEL_NAMES[-1] == "tiny"
    assert models.build_model("tiny", (2, 2), 5, width=6).head.in_features == 6
    with pytest.raises(ValueError, match="already registered"):
        models.register_model("tiny", tiny)
    models.register_model("tiny", tiny, overwrite=True)
    assert models.MODEL_NAMES.count("tiny") == 1
