"""Pre-activation ResNets and LeNet-5 (the "does KD really work?" models): registry, shapes, the
features/head contract, parameter counts against closed forms and hand counts, residual wiring, errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdutils.models import build_model, count_parameters, model_names
from kdutils.models.preact_resnet import PreActBasicBlock, PreActBottleneck, PreActResNet, resolve_block

NAMES = ["preresnet8", "preresnet14", "preresnet20", "preresnet32", "preresnet56", "preresnet110", "lenet5"]
SHAPES = [(1, 28, 28), (3, 32, 32)]


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def _x(shape, batch=2):
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0))


def test_registered():
    assert set(NAMES) <= set(model_names())


@pytest.mark.parametrize("in_shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", ["preresnet20", "preresnet56", "lenet5"])
def test_shapes_and_forward_equals_head_of_features(name, in_shape):
    torch.manual_seed(0)
    model = build_model(name, in_shape, 7).eval()
    x = _x(in_shape)
    with torch.no_grad():
        logits, feats = model(x), model.features(x)
    assert logits.shape == (2, 7)
    assert feats.shape == (2, model.head.in_features)
    assert torch.equal(logits, model.head(feats))


@pytest.mark.parametrize("name, feat_dim", [("preresnet20", 64), ("preresnet56", 256), ("lenet5", 84)])
def test_feature_width(name, feat_dim):
    # PreResNet-56 is a bottleneck net (expansion 4): 64 planes -> 256 channels, as in the authors' code.
    assert build_model(name, (3, 32, 32), 10).head.in_features == feat_dim


def preresnet_closed_form(depth: int, widths, in_ch: int, classes: int) -> int:
    """Written from the layout: convs have no bias, BN has 2 params per channel, 1x1 projections no BN."""
    bottleneck = depth >= 44
    n = (depth - 2) // (9 if bottleneck else 6)
    exp = 4 if bottleneck else 1
    w0, w1, w2, w3 = widths
    total = 9 * in_ch * w0
    cin = w0
    for planes, stride in ((w1, 1), (w2, 2), (w3, 2)):
        for i in range(n):
            s = stride if i == 0 else 1
            if bottleneck:
                total += 2 * cin + cin * planes + 2 * planes + 9 * planes * planes + 2 * planes + planes * 4 * planes
            else:
                total += 2 * cin + 9 * cin * planes + 2 * planes + 9 * planes * planes
            if s != 1 or cin != planes * exp:
                total += cin * planes * exp
            cin = planes * exp
    return total + 2 * cin + cin * classes + classes  # final BN + head


@pytest.mark.parametrize("depth", [8, 14, 20, 32, 56, 110])
def test_preresnet_counts_match_closed_form(depth):
    for in_ch, classes in [(3, 10), (1, 100)]:
        model = build_model(f"preresnet{depth}", (in_ch, 28, 28), classes)
        assert count_parameters(model) == preresnet_closed_form(depth, (16, 16, 32, 64), in_ch, classes)
    wide = PreActResNet((3, 32, 32), 10, depth=20, widths=(32, 32, 64, 128))
    assert count_parameters(wide) == preresnet_closed_form(20, (32, 32, 64, 128), 3, 10)


def test_preresnet20_and_lenet5_counts_by_hand():
    # PreResNet-20, CIFAR-10. stem 3*16*9 = 432; stage1 3 * (32 + 2304 + 32 + 2304) = 14016;
    # stage2 (32 + 4608 + 64 + 9216 + 512) + 2 * (64 + 9216 + 64 + 9216) = 51552;
    # stage3 (64 + 18432 + 128 + 36864 + 2048) + 2 * (128 + 36864 + 128 + 36864) = 205504;
    # final BN 128; head 64*10 + 10 = 650.  Sum = 272282.
    assert count_parameters(build_model("preresnet20", (3, 32, 32), 10)) == 272_282
    # LeNet-5 on MNIST: conv 1*6*25+6 = 156; conv 6*16*25+16 = 2416; fc 400*120+120 = 48120;
    # fc 120*84+84 = 10164; head 84*10+10 = 850.  Sum = 61706.
    assert count_parameters(build_model("lenet5", (1, 28, 28), 10)) == 61_706


def test_block_choice_follows_authors():
    assert resolve_block(20) == (PreActBasicBlock, 3)
    assert resolve_block(56) == (PreActBottleneck, 6)
    assert resolve_block(56, "basic") == (PreActBasicBlock, 9)
    model = build_model("preresnet56", (3, 32, 32), 10)
    assert all(isinstance(b, PreActBottleneck) for b in model.layer1)
    assert len(model.layer1) == len(model.layer2) == len(model.layer3) == 6


@pytest.mark.parametrize("block_cls, last", [(PreActBasicBlock, "conv2"), (PreActBottleneck, "conv3")])
def test_identity_shortcut_is_pre_activation(block_cls, last):
    """With the last conv zeroed, an identity block returns its input unchanged (no ReLU after the sum),
    and a projection block returns exactly its 1x1 conv of the raw input."""
    torch.manual_seed(0)
    exp = block_cls.expansion
    same = block_cls(8 * exp, 8, 1).eval()
    nn.init.zeros_(getattr(same, last).weight)
    x = torch.randn(2, 8 * exp, 6, 6)
    assert same.shortcut is None
    assert torch.equal(same(x), x)  # negative values survive: there is no ReLU after the addition
    down = block_cls(4, 8, 2).eval()
    nn.init.zeros_(getattr(down, last).weight)
    x = torch.randn(2, 4, 6, 6)
    assert isinstance(down.shortcut, nn.Conv2d) and down.shortcut.bias is None
    torch.testing.assert_close(down(x), F.conv2d(x, down.shortcut.weight, stride=2))


@pytest.mark.parametrize("name", ["preresnet8", "preresnet56", "lenet5"])
def test_gradient_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = build_model(name, (1, 28, 28), 5).train()
    F.cross_entropy(model(_x((1, 28, 28), 4)), torch.tensor([0, 1, 2, 3])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient for {pname}"


def test_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="9n\\+2.*44"):
        PreActResNet((3, 32, 32), 10, depth=44)
    with pytest.raises(ValueError, match="6n\\+2.*21"):
        PreActResNet((3, 32, 32), 10, depth=21, block="basic")
    with pytest.raises(ValueError, match="unknown block 'wide'"):
        PreActResNet((3, 32, 32), 10, block="wide")
    with pytest.raises(ValueError, match="widths"):
        PreActResNet((3, 32, 32), 10, widths=(16, 32, 64))
    with pytest.raises(ValueError, match="image in_shape"):
        build_model("preresnet20", (784,), 10)
    with pytest.raises(ValueError, match="at least 12x12"):
        build_model("lenet5", (1, 8, 8), 10)
