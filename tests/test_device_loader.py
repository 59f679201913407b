"""DeviceLoader batching and the vectorised augmentations, checked against hand-built results."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kdutils.data.datasets import ArrayDataset
from kdutils.data.device_loader import (Batch, Compose, DeviceLoader, RandomCrop, RandomHFlip, RandomShift,
                                        parse_augment, shift_images)


def _images(n=37, c=1, h=6, w=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8), torch.arange(n) % 3


def _epoch(loader):
    return list(loader)


# ---------------------------------------------------------------- batching

def test_each_index_once_per_epoch_and_labels_match():
    x, y = _images()
    loader = DeviceLoader(x, y, 8, seed=1)
    assert len(loader) == 5
    for _ in range(2):
        batches = _epoch(loader)
        assert len(batches) == 5 and all(isinstance(b, Batch) for b in batches)
        assert [len(b.idx) for b in batches] == [8, 8, 8, 8, 5]
        idx = torch.cat([b.idx for b in batches])
        assert torch.equal(idx.sort().values, torch.arange(37))
        for b in batches:
            assert torch.equal(b.y, y[b.idx]) and b.y.dtype == torch.int64
            assert torch.allclose(b.x, x[b.idx].float() / 255)
            assert b.x.dtype == torch.float32
    assert loader.x.dtype == torch.uint8  # stored compactly


def test_drop_last_and_no_shuffle():
    x, y = _images()
    loader = DeviceLoader(x, y, 8, drop_last=True, shuffle=False)
    batches = _epoch(loader)
    assert len(loader) == len(batches) == 4
    assert torch.equal(torch.cat([b.idx for b in batches]), torch.arange(32))
    assert len(DeviceLoader(x, y, 100)) == 1 and len(DeviceLoader(x, y, 100, drop_last=True)) == 0


def test_order_reproducible_and_changes_with_epoch():
    x, y = _images()

    def order(loader):
        return torch.cat([b.idx for b in loader])

    a, b = DeviceLoader(x, y, 8, seed=5), DeviceLoader(x, y, 8, seed=5)
    e0, e0b = order(a), order(b)
    assert torch.equal(e0, e0b)
    e1 = order(a)  # epoch auto-advances
    assert not torch.equal(e0, e1)
    b.set_epoch(1)
    assert torch.equal(order(b), e1)
    a.set_epoch(0)
    assert torch.equal(order(a), e0)
    # permutation is torch.randperm under Generator(seed + epoch)
    assert torch.equal(e1, torch.randperm(37, generator=torch.Generator().manual_seed(6)))
    assert not torch.equal(order(DeviceLoader(x, y, 8, seed=6)), e0)


def test_normalization_numerics():
    x, y = _images(c=3)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    loader = DeviceLoader(x, y, 10, mean=mean, std=std, shuffle=False)
    got = torch.cat([b.x for b in loader])
    expected = (x.double() / 255 - torch.tensor(mean, dtype=torch.float64)[:, None, None]) \
        / torch.tensor(std, dtype=torch.float64)[:, None, None]
    assert torch.allclose(got.double(), expected, atol=1e-6)
    # single-channel stats broadcast; a wrong count is an error
    with pytest.raises(ValueError, match="mean has 2 values"):
        DeviceLoader(x, y, 10, mean=(0.1, 0.2), std=(1.0, 1.0))
    with pytest.raises(ValueError, match="both mean and std"):
        DeviceLoader(x, y, 10, mean=(0.1,))
    with pytest.raises(ValueError, match="std must be positive"):
        DeviceLoader(x, y, 10, mean=0.0, std=0.0)


def test_from_dataset_uses_normalization_table():
    x, y = _images(n=4, h=28, w=28)
    loader = DeviceLoader.from_dataset(ArrayDataset(x, y, [], "mnist"), 4, shuffle=False)
    b = next(iter(loader))
    assert torch.allclose(b.x, (x.float() / 255 - 0.1307) / 0.3081, atol=1e-6)


def test_point_sets_pass_through():
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(11, 7, 3, generator=g)
    loader = DeviceLoader(pts, torch.arange(11), 4, seed=2)
    for b in loader:
        assert torch.equal(b.x, pts[b.idx])
    loader = DeviceLoader(pts, torch.arange(11), 4, mean=(1.0, 2.0, 3.0), std=(2.0, 2.0, 2.0))
    b = next(iter(loader))
    assert torch.allclose(b.x, (pts[b.idx] - torch.tensor([1.0, 2.0, 3.0])) / 2)
    assert torch.equal(loader.x, pts)  # stored data untouched
    with pytest.raises(ValueError, match="augment needs image data"):
        DeviceLoader(pts, torch.arange(11), 4, augment="shift1")


def test_argument_errors():
    x, y = _images()
    with pytest.raises(ValueError, match="batch_size"):
        DeviceLoader(x, y, 0)
    with pytest.raises(ValueError, match="one label per sample"):
        DeviceLoader(x, y[:-1], 4)
    with pytest.raises(ValueError, match="x must be uint8"):
        DeviceLoader(x.long(), y, 4)
    with pytest.raises(ValueError, match="epoch"):
        DeviceLoader(x, y, 4).set_epoch(-1)


def test_augmented_batches_reproducible():
    x, y = _images(n=20, h=8, w=8)

    def run(seed):
        loader = DeviceLoader(x, y, 6, augment="shift2+flip", seed=seed)
        return [b.x for b in loader], [b.x for b in loader]

    (a0, a1), (b0, b1), (c0, _) = run(3), run(3), run(4)
    assert all(torch.equal(p, q) for p, q in zip(a0 + a1, b0 + b1))
    assert not all(torch.equal(p, q) for p, q in zip(a0, a1))  # new draws next epoch
    assert not all(torch.equal(p, q) for p, q in zip(a0, c0))


# ---------------------------------------------------------------- augmentations

def _one_hot_images(positions, h=9, w=9):
    x = torch.zeros(len(positions), 1, h, w)
    for i, (r, c) in enumerate(positions):
        x[i, 0, r, c] = 1.0
    return x


def test_random_shift_moves_content_by_sampled_offset():
    positions = [(4, 4)] * 64
    x = _one_hot_images(positions)
    aug = RandomShift(3, "zeros")
    shifts = aug.sample(64, "cpu", torch.Generator().manual_seed(9))
    out = aug(x, torch.Generator().manual_seed(9))
    assert shifts.min() == -3 and shifts.max() == 3  # the full range is drawn
    assert len({tuple(s) for s in shifts.tolist()}) > 10  # independent per image
    for i, (dy, dx) in enumerate(shifts.tolist()):
        assert out[i].sum() == 1 and out[i, 0, 4 + dy, 4 + dx] == 1


def test_shift_zeros_matches_hand_built():
    x = torch.arange(2 * 2 * 4 * 5, dtype=torch.float32).reshape(2, 2, 4, 5) + 1
    shifts = torch.tensor([[1, -2], [-3, 4]])
    expected = torch.zeros_like(x)
    expected[0, :, 1:, :3] = x[0, :, :3, 2:]  # down 1, left 2
    expected[1, :, :1, 4:] = x[1, :, 3:, :1]  # up 3, right 4
    assert torch.equal(shift_images(x, shifts, "zeros"), expected)
    assert torch.equal(shift_images(x, torch.tensor([[0, 0], [9, 0]]), "zeros")[1], torch.zeros(2, 4, 5))


def test_shift_circular_is_roll_and_preserves_sum():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(16, 3, 7, 6, generator=g)
    aug = RandomShift(4, "circular")
    shifts = aug.sample(16, "cpu", torch.Generator().manual_seed(2))
    out = aug(x, torch.Generator().manual_seed(2))
    for i, (dy, dx) in enumerate(shifts.tolist()):
        assert torch.equal(out[i], torch.roll(x[i], shifts=(dy, dx), dims=(1, 2)))
    assert torch.allclose(out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))


def test_random_crop_is_pad_then_crop():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(10, 3, 8, 8, generator=g)
    p = 2
    crop = RandomCrop(p)
    shifts = crop.sample(10, "cpu", torch.Generator().manual_seed(4))
    out = crop(x, torch.Generator().manual_seed(4))
    padded = F.pad(x, (p, p, p, p))
    for i, (dy, dx) in enumerate(shifts.tolist()):
        top, left = p - dy, p - dx  # crop window offset in [0, 2p]
        assert torch.equal(out[i], padded[i, :, top:top + 8, left:left + 8])


def test_hflip():
    g = torch.Generator().manual_seed(5)
    x = torch.rand(40, 2, 3, 4, generator=g)
    assert torch.equal(RandomHFlip(1.0)(x), x.flip(-1))
    assert torch.equal(RandomHFlip(0.0)(x), x)
    flip = RandomHFlip(0.5)
    mask = flip.sample(40, "cpu", torch.Generator().manual_seed(6))
    out = flip(x, torch.Generator().manual_seed(6))
    assert 0 < int(mask.sum()) < 40
    assert torch.equal(out[mask], x[mask].flip(-1)) and torch.equal(out[~mask], x[~mask])
    with pytest.raises(ValueError, match="probability"):
        RandomHFlip(1.5)


def test_parse_augment():
    assert parse_augment("none") is None and parse_augment(None) is None and parse_augment("") is None
    a = parse_augment("shift2")
    assert isinstance(a, RandomShift) and a.max_shift == 2 and a.mode == "zeros"
    a = parse_augment("shift2c")
    assert isinstance(a, RandomShift) and a.mode == "circular"
    a = parse_augment("crop4+flip")
    assert isinstance(a, Compose) and isinstance(a.transforms[0], RandomCrop) and a.transforms[0].padding == 4
    assert isinstance(a.transforms[1], RandomHFlip) and a.transforms[1].p == 0.5
    for bad in ("shift", "rotate10", "crop4+", "shift2x"):
        with pytest.raises(ValueError, match="allowed"):
            parse_augment(bad)
    with pytest.raises(ValueError, match="unknown shift mode"):
        RandomShift(2, "reflect")


def test_compose_uses_one_generator_in_order():
    x = torch.rand(8, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    comp = Compose([RandomShift(1), RandomHFlip(0.5)])
    g = torch.Generator().manual_seed(7)
    expected = RandomHFlip(0.5)(RandomShift(1)(x, g), g)
    assert torch.equal(comp(x, torch.Generator().manual_seed(7)), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_loader_matches_contract():
    x, y = _images(n=50, c=3, h=8, w=8)
    loader = DeviceLoader(x, y, 16, augment="crop2+flip", mean=(0.5,) * 3, std=(0.25,) * 3, device="cuda", seed=1)
    assert loader.x.is_cuda and loader.x.dtype == torch.uint8
    idx = torch.cat([b.idx for b in loader])
    assert idx.is_cuda and torch.equal(idx.sort().values.cpu(), torch.arange(50))
    kw = dict(augment="crop2+flip", mean=(0.5,) * 3, std=(0.25,) * 3, device="cuda", seed=1)
    first, second = DeviceLoader(x, y, 16, **kw), DeviceLoader(x, y, 16, **kw)
    assert all(torch.equal(a.x, b.x) and torch.equal(a.idx, b.idx) for a, b in zip(first, second))
