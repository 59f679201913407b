"""Invariant teachers and set students: exact invariances on random inputs, plus sanity checks that the
tests are not vacuous (a model without the mechanism, or a non-symmetry, does change the output)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import DATA_ROOT
from kdutils.data.symmetry import (circular_shift, permute_set, random_circular_shift, shape_preserving_roll,
                                   translate_points)
from kdutils.models import aps_resnet, deepsets, dgcnn
from kdutils.models.aps_resnet import (APSDown, build_aps_resnet18, polyphase_norms, polyphase_select)
from kdutils.models.deepsets import PermEquivariant
from kdutils.models.dgcnn import build_dgcnn, build_dgcnn2, knn_indices


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are tiny: on the shared 2-core machine intra-op threads only spin against other
    users (measured 100x slower), so use one thread here and restore the setting afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---- APS-ResNet18 ----------------------------------------------------------------------------------------

def _aps(in_shape, **kw):
    torch.manual_seed(0)
    return build_aps_resnet18(in_shape, 10, width=4, **kw).double().eval()


def test_polyphase_select_and_norms_by_hand():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float64).view(2, 3, 4, 6)
    idx = torch.tensor([3, 1])
    out = polyphase_select(x, idx)
    assert torch.equal(out[0], x[0, :, 1::2, 1::2]) and torch.equal(out[1], x[1, :, 0::2, 1::2])
    norms = polyphase_norms(x)
    for c in range(4):
        i, j = divmod(c, 2)
        torch.testing.assert_close(norms[:, c], x[:, :, i::2, j::2].pow(2).sum(dim=(1, 2, 3)))


def test_aps_down_output_is_a_circular_shift_of_unshifted_output():
    x = torch.randn(3, 2, 8, 6, generator=_gen(1), dtype=torch.float64)
    y, _ = APSDown()(x)
    for s in [(1, 0), (0, 1), (3, 5), (-2, 7)]:
        ys, _ = APSDown()(circular_shift(x, s))
        # each ys[i] must be some circular shift of y[i] (the amount may differ per image)
        h, w = y.shape[-2:]
        for i in range(3):
            assert any(torch.equal(ys[i], torch.roll(y[i], (a, b), dims=(-2, -1)))
                       for a in range(h) for b in range(w))


@pytest.mark.parametrize("in_shape,plan", [((1, 28, 28), [False, True, True, False]),
                                           ((3, 32, 32), [False, True, True, True])])
def test_aps_downsampling_plan_keeps_even_sizes(in_shape, plan):
    assert _aps(in_shape).downsample_plan == plan


@pytest.mark.parametrize("in_shape", [(1, 28, 28), (3, 32, 32)], ids=["28", "32"])
def test_aps_resnet_exactly_invariant_to_circular_shifts(in_shape):
    model = _aps(in_shape)
    x = torch.randn(3, *in_shape, generator=_gen(2), dtype=torch.float64)
    with torch.no_grad():
        ref = model(x)
        for s in [(1, 0), (0, 1), (1, 1), (5, -3), (in_shape[1] - 1, 13)]:
            torch.testing.assert_close(model(circular_shift(x, s)), ref, rtol=0, atol=1e-9)
        for seed in range(2):
            xs = random_circular_shift(x, None, _gen(10 + seed))  # any shift, per image
            torch.testing.assert_close(model(xs), ref, rtol=0, atol=1e-9)


def test_aps_resnet_float32_invariance_and_head_contract():
    torch.manual_seed(0)
    model = build_aps_resnet18((1, 28, 28), 10, width=4).eval()
    x = torch.randn(4, 1, 28, 28, generator=_gen(3))
    with torch.no_grad():
        logits = model(x)
        feats = model.features(x)
        shifted = model(random_circular_shift(x, None, _gen(4)))
    assert isinstance(model.head, nn.Linear) and feats.shape == (4, 32) and logits.shape == (4, 10)
    torch.testing.assert_close(logits, model.head(feats), rtol=0, atol=0)
    torch.testing.assert_close(shifted, logits, rtol=0, atol=1e-4)


def test_aps_resnet_invariant_to_authors_shift_on_real_mnist():
    """On real digits (normalised, so the background is a nonzero constant) the authors' IM shift is a
    circular shift, so an untrained APS-ResNet already has IM ~ 0 in float32."""
    root = DATA_ROOT
    if not (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST absent under {root}")
    from kdutils.data.registry import load_dataset
    x = (load_dataset("mnist", "test", root=root).x[:64].float() / 255 - 0.1307) / 0.3081
    torch.manual_seed(0)
    model = build_aps_resnet18((1, 28, 28), 10, width=8).eval()
    xs, s = shape_preserving_roll(x, 5, _gen(0), return_shifts=True)
    assert s.abs().sum(1).float().mean() > 3  # the digits really moved
    with torch.no_grad():
        p, q = model(x).softmax(1), model(xs).softmax(1)
    assert (p - q).norm(dim=1).mean() < 1e-5


def test_fixed_subsampling_would_not_be_invariant(monkeypatch):
    """Sanity: always taking polyphase component 0 (plain stride 2) breaks invariance to a 1-px shift,
    so the test above really exercises APS."""
    model = _aps((1, 28, 28))
    x = torch.randn(3, 1, 28, 28, generator=_gen(5), dtype=torch.float64)
    monkeypatch.setattr(aps_resnet, "polyphase_norms", lambda t: torch.zeros(t.shape[0], 4, dtype=t.dtype))
    with torch.no_grad():
        diff = (model(circular_shift(x, (1, 0))) - model(x)).abs().max()
    assert diff > 1e-4


def test_aps_on_odd_size_raises():
    model = _aps((1, 28, 28), downsample=[False, True, True, True])  # 7x7 would be downsampled
    with pytest.raises(ValueError, match="even height and width"):
        model(torch.randn(1, 1, 28, 28, dtype=torch.float64))


def test_aps_resnet_gradients_and_filter():
    torch.manual_seed(0)
    model = build_aps_resnet18((3, 32, 32), 5, width=4, blocks=(1, 1, 1, 1), filter_size=3).double()
    x = torch.randn(2, 3, 32, 32, generator=_gen(6), dtype=torch.float64)
    nn.functional.cross_entropy(model(x), torch.tensor([0, 1])).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(circular_shift(x, (3, -1))), model(x), rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="filter_size"):
        build_aps_resnet18((1, 28, 28), 10, filter_size=5)
    with pytest.raises(ValueError, match="image in_shape"):
        build_aps_resnet18((100, 3), 10)


# ---- DGCNN ------------------------------------------------------------------------------------------------

def _dgcnn(builder=build_dgcnn, in_shape=(40, 4), **kw):
    torch.manual_seed(0)
    kw = {"k": 8, "emb_dims": 16, "mlp_widths": (16, 8), **kw}
    return builder(in_shape, 6, **kw).double().eval()


def test_knn_indices_match_brute_force():
    x = torch.randn(2, 15, 3, generator=_gen(7), dtype=torch.float64)
    idx = knn_indices(x, 4)
    d = torch.cdist(x, x)
    ref = d.argsort(dim=-1)[..., :4]
    assert torch.equal(idx.sort(-1).values, ref.sort(-1).values)
    idx_noself = knn_indices(x, 4, include_self=False)
    assert not (idx_noself == torch.arange(15)[None, :, None]).any()


@pytest.mark.parametrize("builder", [build_dgcnn, build_dgcnn2], ids=["dgcnn", "dgcnn2"])
def test_dgcnn_exactly_invariant_to_translations_and_permutations(builder):
    model = _dgcnn(builder)
    x = torch.randn(3, 40, 4, generator=_gen(8), dtype=torch.float64)  # 3 coordinates + 1 other feature
    with torch.no_grad():
        ref = model(x)
        xt = translate_points(x, 10.0, _gen(9), coord_dims=slice(0, 3))
        torch.testing.assert_close(model(xt), ref, rtol=0, atol=1e-9)
        torch.testing.assert_close(model(permute_set(x, _gen(10))), ref, rtol=0, atol=1e-9)
        # sanity: a non-symmetry (scaling the coordinates) does change the output
        xs = x.clone()
        xs[..., :3] *= 1.5
        assert (model(xs) - ref).abs().max() > 1e-4


def test_dgcnn_float32_invariance_layers_and_k_clamp():
    m4, m2 = _dgcnn(), _dgcnn(build_dgcnn2)
    assert len(m4.convs) == 4 and len(m2.convs) == 2
    assert [c.lin.out_features for c in m4.convs] == [64, 64, 128, 256]
    torch.manual_seed(0)
    model = build_dgcnn((5, 3), 6, k=20, emb_dims=16, mlp_widths=(8,)).eval()  # k > P: clamped
    x = torch.randn(2, 5, 3, generator=_gen(11))
    with torch.no_grad():
        logits, feats = model(x), model.features(x)
        moved = model(translate_points(x, 1.0, _gen(12)))
    assert logits.shape == (2, 6) and feats.shape == (2, 8)
    torch.testing.assert_close(logits, model.head(feats), rtol=0, atol=0)
    torch.testing.assert_close(moved, logits, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="point-set in_shape"):
        build_dgcnn((1, 28, 28), 10)
    with pytest.raises(ValueError, match="n_layers"):
        build_dgcnn((10, 3), 10, n_layers=5)


# ---- DeepSets ---------------------------------------------------------------------------------------------

DS_NAMES = ["deepsets_inv", "deepsets_inv_small", "deepsets_equiv"]


def _ds(name, in_shape=(16, 3), **kw):
    torch.manual_seed(0)
    return deepsets.BUILDERS[name](in_shape, 5, **kw).double().eval()


@pytest.mark.parametrize("name", DS_NAMES)
def test_deepsets_exactly_permutation_invariant_but_not_translation_invariant(name):
    model = _ds(name)
    x = torch.randn(4, 16, 3, generator=_gen(13), dtype=torch.float64)
    with torch.no_grad():
        ref = model(x)
        torch.testing.assert_close(model(permute_set(x, _gen(14))), ref, rtol=0, atol=1e-12)
        moved = model(translate_points(x, 1.0, _gen(15)))
        feats = model.features(x)
    assert (moved - ref).abs().max() > 1e-4  # phi sees absolute coordinates
    assert isinstance(model.head, nn.Linear)
    torch.testing.assert_close(ref, model.head(feats), rtol=0, atol=0)


@pytest.mark.parametrize("pool", ["sum", "mean", "max"])
def test_perm_equivariant_layer(pool):
    torch.manual_seed(0)
    layer = PermEquivariant(3, 5, pool).double()
    x = torch.randn(2, 7, 3, generator=_gen(16), dtype=torch.float64)
    xp, perm = permute_set(x, _gen(17), return_permutation=True)
    y, yp = layer(x), layer(xp)
    torch.testing.assert_close(yp, torch.gather(y, 1, perm[:, :, None].expand(2, 7, 5)))
    # by hand: Lambda x_i - Gamma pool(x)
    pooled = {"sum": x.sum(1), "mean": x.mean(1), "max": x.amax(1)}[pool]
    ref = x @ layer.Lambda.weight.T + layer.Lambda.bias - (pooled @ layer.Gamma.weight.T)[:, None, :]
    torch.testing.assert_close(y, ref)


def test_deepsets_architecture_choices():
    inv, small = _ds("deepsets_inv"), _ds("deepsets_inv_small")
    n_lin = lambda seq: sum(isinstance(m, nn.Linear) for m in seq)  # noqa: E731
    assert n_lin(inv.phi) == 3 and n_lin(small.phi) == 2
    mn = _ds("deepsets_inv", phi=[256] * 3, rho=[256], pool="max", activation="tanh", dropout=0.5)
    assert isinstance(mn.phi[1], nn.Tanh) and mn.pool == "max" and mn.head.in_features == 256
    assert n_lin(_ds("deepsets_inv_small", phi=[256] * 3).phi) == 2
    eq = _ds("deepsets_equiv")
    assert sum(isinstance(m, PermEquivariant) for m in eq.phi) == 3 and eq.pool == "max"
    with pytest.raises(ValueError, match="unknown activation"):
        _ds("deepsets_inv", activation="gelu")
    with pytest.raises(ValueError, match="unknown pool"):
        _ds("deepsets_inv", pool="median")
    with pytest.raises(ValueError, match="set in_shape"):
        deepsets.build_deepsets_inv((1, 28, 28), 10)


def test_dropout_only_in_training():
    model = _ds("deepsets_equiv")
    x = torch.randn(8, 16, 3, generator=_gen(18), dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.train()
        assert not torch.equal(model(x), model(x))


def test_builders_dicts_and_optional_registry():
    assert set(aps_resnet.BUILDERS) == {"aps_resnet18"}
    assert set(dgcnn.BUILDERS) == {"dgcnn", "dgcnn2"}
    assert set(deepsets.BUILDERS) == set(DS_NAMES)
    import kdutils.models as registry
    if not hasattr(registry, "build_model") or "dgcnn" not in getattr(registry, "MODEL_NAMES", ()):
        pytest.skip("the model registry does not list the invariance models (yet)")
    model = registry.build_model("dgcnn2", (32, 3), 4, k=4, emb_dims=8, mlp_widths=(8,))
    assert model(torch.randn(2, 32, 3)).shape == (2, 4)
