"""Symmetry transformations: each is checked against torch.roll / hand-placed pixels / hand arithmetic."""
from __future__ import annotations

import pytest
import torch

from kdutils.data.symmetry import (background_margins, circular_shift, permute_set, random_circular_shift, random_shift,
                                   shape_preserving_roll, shift_with_fill, translate_points)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _one_hot_images(positions, h=7, w=9, c=2):
    x = torch.zeros(len(positions), c, h, w)
    for b, (r, col) in enumerate(positions):
        x[b, :, r, col] = 1.0
    return x


def test_circular_shift_moves_a_pixel_with_wraparound():
    x = _one_hot_images([(1, 2), (6, 8), (0, 0)])
    shifts = torch.tensor([[2, 3], [1, 1], [-1, -2]])  # (dy, dx) per image
    out = circular_shift(x, shifts)
    expected = [(3, 5), (0, 0), (6, 7)]  # (r + dy) mod 7, (c + dx) mod 9
    for b, (r, c) in enumerate(expected):
        assert out[b, :, r, c].tolist() == [1.0, 1.0]
        assert out[b].sum() == 2.0


def test_circular_shift_equals_torch_roll_per_sample_and_broadcast_pair():
    x = torch.randn(4, 3, 6, 5, generator=_gen())
    shifts = torch.tensor([[0, 0], [1, -2], [-7, 4], [5, 5]])
    out = circular_shift(x, shifts)
    for b in range(4):
        ref = torch.roll(x[b], (int(shifts[b, 0]), int(shifts[b, 1])), dims=(-2, -1))
        assert torch.equal(out[b], ref)
    assert torch.equal(circular_shift(x, (2, -1)), torch.roll(x, (2, -1), dims=(-2, -1)))


def test_circular_shift_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shifts"):
        circular_shift(torch.zeros(2, 1, 4, 4), torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="integers"):
        circular_shift(torch.zeros(2, 1, 4, 4), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        circular_shift(torch.zeros(1, 4, 4), (1, 1))


def test_random_circular_shift_range_reproducibility_and_consistency():
    x = torch.randn(64, 1, 8, 8, generator=_gen(1))
    out, s = random_circular_shift(x, 2, _gen(5), return_shifts=True)
    assert s.abs().max() <= 2 and s.min() == -2 and s.max() == 2  # 128 draws cover the whole range
    assert torch.equal(out, circular_shift(x, s))
    out2 = random_circular_shift(x, 2, _gen(5))
    assert torch.equal(out, out2)
    _, s_full = random_circular_shift(x, None, _gen(6), return_shifts=True)
    assert s_full.min() >= 0 and s_full.max() <= 7


def test_shift_with_fill_matches_padding_reference():
    x = torch.randn(3, 2, 6, 7, generator=_gen(2))
    shifts = torch.tensor([[2, -3], [-1, 0], [0, 7]])
    out = shift_with_fill(x, shifts, fill=-1.0)
    for b in range(3):
        dy, dx = int(shifts[b, 0]), int(shifts[b, 1])
        ref = torch.full_like(x[b], -1.0)
        for i in range(6):
            for j in range(7):
                si, sj = i - dy, j - dx
                if 0 <= si < 6 and 0 <= sj < 7:
                    ref[:, i, j] = x[b, :, si, sj]
        assert torch.equal(out[b], ref)


def test_random_shift_range_and_fill():
    x = torch.ones(50, 1, 5, 5)
    out, s = random_shift(x, 1, _gen(3), fill=0.0, return_shifts=True)
    assert s.abs().max() <= 1
    # number of zero pixels = pixels uncovered by a (dy, dx) shift of a 5x5 image
    uncovered = 25 - (5 - s[:, 0].abs()) * (5 - s[:, 1].abs())
    assert torch.equal((out == 0).flatten(1).sum(1), uncovered)


def _digit(top, bottom, left, right, h=28, w=28, bg=-1.0):
    """A 'digit': a lit block with the given numbers of background rows/columns at each border."""
    x = torch.full((1, 1, h, w), bg)
    x[0, 0, top:h - bottom, left:w - right] = torch.linspace(0.1, 1.0, (h - bottom - top) * (w - right - left)).view(
        h - bottom - top, w - right - left)
    return x


def test_background_margins_by_hand():
    x = torch.cat([_digit(10, 8, 3, 7), _digit(0, 2, 5, 0)])
    assert background_margins(x).tolist() == [[10, 8, 3, 7], [0, 2, 5, 0]]
    assert background_margins(x, background=-1.0).tolist() == [[10, 8, 3, 7], [0, 2, 5, 0]]


def test_shape_preserving_roll_is_authors_shift():
    # margins: top 10, bottom 8, left 3, right 7 -> up 5, down 5, left 3, right 5 (max_shift=5)
    x = _digit(10, 8, 3, 7).expand(200, 1, 28, 28).contiguous()
    out, s = shape_preserving_roll(x, 5, _gen(0), return_shifts=True)
    allowed = {(-5, 0), (5, 0), (0, -3), (0, 5)}
    got = {tuple(v) for v in s.tolist()}
    assert got == allowed  # all four directions drawn among 200 images
    assert torch.equal(out, circular_shift(x, s))
    # shape preserving: the lit pixels are all still there
    assert torch.equal((out > -1).flatten(1).sum(1), (x > -1).flatten(1).sum(1))


def test_shape_preserving_roll_leaves_image_if_digit_touches_that_border():
    x = _digit(0, 0, 0, 0).expand(20, 1, 28, 28).contiguous()  # touches all borders
    out, s = shape_preserving_roll(x, 5, _gen(1), return_shifts=True)
    assert torch.equal(out, x) and s.abs().sum() == 0


def test_shape_preserving_roll_random_amount_bounded():
    x = _digit(10, 8, 3, 7).expand(300, 1, 28, 28).contiguous()
    _, s = shape_preserving_roll(x, 5, _gen(2), amount="random", return_shifts=True)
    mag = s.abs().sum(1)
    assert mag.min() >= 1 and mag.max() <= 5
    assert (s[:, 1] >= -3).all()  # left margin is 3
    assert len(set(mag.tolist())) > 2


def test_translate_points_adds_one_vector_per_set_to_coordinates_only():
    p = torch.randn(5, 11, 4, generator=_gen(4))
    out, t = translate_points(p, 0.5, _gen(7), coord_dims=slice(0, 2), return_translation=True)
    assert t.shape == (5, 2) and t.abs().max() <= 0.5
    torch.testing.assert_close(out[..., :2] - p[..., :2], t[:, None, :].expand(5, 11, 2), rtol=0, atol=1e-6)
    assert torch.equal(out[..., 2:], p[..., 2:])
    assert not torch.equal(t[0], t[1])  # independent per set
    out3 = translate_points(p, 0.5, _gen(7), coord_dims=[0, 1, 2])
    assert torch.equal(out3[..., 3], p[..., 3])


def test_permute_set_is_a_permutation_per_sample():
    p = torch.randn(6, 10, 3, generator=_gen(5))
    out, perm = permute_set(p, _gen(8), return_permutation=True)
    for b in range(6):
        assert sorted(perm[b].tolist()) == list(range(10))
        assert torch.equal(out[b], p[b, perm[b]])
    assert len({tuple(r) for r in perm.tolist()}) > 1  # independent per sample
    _, shared = permute_set(p, _gen(8), shared=True, return_permutation=True)
    assert all(torch.equal(shared[0], shared[b]) for b in range(6))
    assert torch.equal(permute_set(p, _gen(8)), out)  # seeded
