"""Symmetry transformations for the invariance metric (IM) and for augmentation.

Every function works on a whole batch at once (no Python loop over samples), draws its randomness
from an explicit `torch.Generator` (so a book figure can state and repeat the exact transformation),
and returns a new tensor (inputs are never modified in place).

Conventions (the book quotes these):
* Images are (B, C, H, W). A shift (dy, dx) moves content DOWN by dy rows and RIGHT by dx columns,
  like `torch.roll(x, (dy, dx), dims=(-2, -1))`; negative values move up / left.
* Point sets are (B, P, F): P elements with F features each; the coordinate features are
  `points[..., coord_dims]`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

# Directions of `shape_preserving_roll`, in the order used to encode them as integers 0..3.
DIRECTIONS = ("up", "down", "left", "right")


def _check_images(images: torch.Tensor) -> None:
    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W); got shape {tuple(images.shape)}")


def _check_points(points: torch.Tensor) -> None:
    if points.dim() != 3:
        raise ValueError(f"point sets must be (B, P, F); got shape {tuple(points.shape)}")


def _per_sample_shifts(shifts, batch: int, device: torch.device) -> torch.Tensor:
    """Accept (dy, dx), a (2,) tensor or a (B, 2) tensor; return int64 (B, 2) on `device`."""
    s = torch.as_tensor(shifts, device=device)
    if s.dtype.is_floating_point:
        raise ValueError(f"shifts must be integers; got dtype {s.dtype}")
    s = s.long()
    if s.shape == (2,):
        s = s.expand(batch, 2)
    if s.shape != (batch, 2):
        raise ValueError(f"shifts must be (dy, dx) or shape ({batch}, 2); got shape {tuple(s.shape)}")
    return s


def _rand_int(low: int, high: int, size: tuple[int, ...], generator: torch.Generator | None,
              device: torch.device) -> torch.Tensor:
    """Uniform integers in [low, high] (both inclusive), drawn on the generator's device."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(low, high + 1, size, generator=generator, device=gen_device).to(device)


def circular_shift(images: torch.Tensor, shifts) -> torch.Tensor:
    """Roll every image by its own (dy, dx) with wrap-around (content leaving one border re-enters
    at the opposite one). `shifts` is (dy, dx) for the whole batch or a (B, 2) integer tensor.
    This is the group an APS network is exactly invariant to."""
    _check_images(images)
    b, _, h, w = images.shape
    s = _per_sample_shifts(shifts, b, images.device)
    # out[b, :, i, j] = in[b, :, (i - dy_b) mod H, (j - dx_b) mod W]
    rows = (torch.arange(h, device=images.device)[None, :] - s[:, :1]) % h  # (B, H)
    cols = (torch.arange(w, device=images.device)[None, :] - s[:, 1:]) % w  # (B, W)
    out = torch.gather(images, 2, rows[:, None, :, None].expand(b, images.shape[1], h, w))
    return torch.gather(out, 3, cols[:, None, None, :].expand(b, images.shape[1], h, w))


def random_circular_shift(images: torch.Tensor, max_shift: int | None = None,
                          generator: torch.Generator | None = None,
                          return_shifts: bool = False):
    """Circular shift by independent uniform integers dy, dx in [-max_shift, max_shift] per image
    (max_shift=None: any shift, dy in [0, H-1], dx in [0, W-1])."""
    _check_images(images)
    b, _, h, w = images.shape
    if max_shift is None:
        s = torch.stack([_rand_int(0, h - 1, (b,), generator, images.device),
                         _rand_int(0, w - 1, (b,), generator, images.device)], dim=1)
    else:
        if max_shift < 0:
            raise ValueError(f"max_shift must be >= 0; got {max_shift}")
        s = _rand_int(-max_shift, max_shift, (b, 2), generator, images.device)
    out = circular_shift(images, s)
    return (out, s) if return_shifts else out


def shift_with_fill(images: torch.Tensor, shifts, fill: float = 0.0) -> torch.Tensor:
    """Translate every image by its own (dy, dx) WITHOUT wrap-around: content pushed past a border is
    lost and the uncovered rows/columns take the value `fill` (e.g. 0 for raw pixels, or the
    normalised background value)."""
    _check_images(images)
    b, _, h, w = images.shape
    s = _per_sample_shifts(shifts, b, images.device)
    out = circular_shift(images, s)
    src_r = torch.arange(h, device=images.device)[None, :] - s[:, :1]  # source row of each output row
    src_c = torch.arange(w, device=images.device)[None, :] - s[:, 1:]
    valid = (((src_r >= 0) & (src_r < h))[:, :, None] & ((src_c >= 0) & (src_c < w))[:, None, :])
    return torch.where(valid[:, None], out, torch.as_tensor(fill, dtype=out.dtype, device=out.device))


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None,
                 fill: float = 0.0, return_shifts: bool = False):
    """Non-circular translation by independent uniform integers dy, dx in [-max_shift, max_shift]
    per image; uncovered pixels take `fill` (see `shift_with_fill`)."""
    _check_images(images)
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0; got {max_shift}")
    s = _rand_int(-max_shift, max_shift, (images.shape[0], 2), generator, images.device)
    out = shift_with_fill(images, s, fill)
    return (out, s) if return_shifts else out


def background_margins(images: torch.Tensor, background: float | torch.Tensor | None = None) -> torch.Tensor:
    """Number of fully-background rows/columns at each border: int64 (B, 4) in the order of
    `DIRECTIONS` (top rows, bottom rows, left columns, right columns). A row counts as background
    when every channel of every pixel in it equals `background` exactly; background=None uses each
    image's minimum value (the MNIST background, whatever the normalisation)."""
    _check_images(images)
    b = images.shape[0]
    if background is None:
        bg = images.reshape(b, -1).amin(dim=1).view(b, 1, 1, 1)
    else:
        bg = torch.as_tensor(background, dtype=images.dtype, device=images.device)
    is_bg = images == bg
    rows = is_bg.all(dim=1).all(dim=2).long()  # (B, H)
    cols = is_bg.all(dim=1).all(dim=1).long()  # (B, W)

    def leading(m: torch.Tensor) -> torch.Tensor:
        return torch.cumprod(m, dim=1).sum(dim=1)

    return torch.stack([leading(rows), leading(rows.flip(1)), leading(cols), leading(cols.flip(1))], dim=1)


def shape_preserving_roll(images: torch.Tensor, max_shift: int = 5,
                          generator: torch.Generator | None = None,
                          background: float | None = None, amount: str = "max",
                          return_shifts: bool = False):
    """The MNIST shift of the authors' invariance metric (Odagiu et al., `shift_preserving_shape`),
    vectorised. For each image independently:

    1. pick one of the 4 directions (up, down, left, right) uniformly at random;
    2. shift by s = min(a, m) pixels in that direction, where m is the number of fully-background
       rows/columns on the border the content moves toward (see `background_margins`) and
       a = max_shift (amount="max", what the authors' code does: its random draw is overwritten by
       max_shift) or a ~ Uniform{1..max_shift} (amount="random", what its docstring intends);
    3. the shift is a roll, but only background rows/columns wrap around, so it equals a translation
       with background fill and no digit pixel is lost ("shape preserving").

    If the digit touches that border (m = 0) the image is returned unchanged, as in the authors' code
    (whose fallback to another direction never executes). So the transformation is a translation
    by 0..max_shift pixels along one axis, never diagonal.
    """
    _check_images(images)
    if max_shift < 1:
        raise ValueError(f"max_shift must be >= 1; got {max_shift}")
    if amount not in ("max", "random"):
        raise ValueError(f"unknown amount {amount!r}; choose 'max' or 'random'")
    b = images.shape[0]
    direction = _rand_int(0, 3, (b,), generator, images.device)
    if amount == "max":
        a = torch.full((b,), max_shift, dtype=torch.long, device=images.device)
    else:
        a = _rand_int(1, max_shift, (b,), generator, images.device)
    margins = background_margins(images, background)
    s = torch.minimum(a, margins.gather(1, direction[:, None]).squeeze(1))
    # up: dy=-s, down: dy=+s, left: dx=-s, right: dx=+s
    sign = torch.tensor([-1, 1, -1, 1], device=images.device)[direction]
    vertical = direction < 2
    shifts = torch.stack([torch.where(vertical, sign * s, 0), torch.where(vertical, 0, sign * s)], dim=1)
    out = circular_shift(images, shifts)
    return (out, shifts) if return_shifts else out


def translate_points(points: torch.Tensor, max_translation: float,
                     generator: torch.Generator | None = None,
                     coord_dims: slice | list[int] = slice(0, 3), return_translation: bool = False):
    """Add one random vector t ~ Uniform[-max_translation, max_translation]^d (d = number of
    coordinate features) to the coordinates of every element of a set; each set in the batch gets
    its own t, and the non-coordinate features are left untouched. A network whose edge function
    sees only x_j - x_i (our DGCNN) is exactly invariant to this."""
    _check_points(points)
    if max_translation < 0:
        raise ValueError(f"max_translation must be >= 0; got {max_translation}")
    idx = torch.arange(points.shape[-1], device=points.device)[coord_dims]
    if idx.numel() == 0:
        raise ValueError(f"coord_dims {coord_dims!r} selects no feature of {points.shape[-1]}")
    gen_device = generator.device if generator is not None else torch.device("cpu")
    t = torch.rand((points.shape[0], idx.numel()), generator=generator, device=gen_device,
                   dtype=points.dtype if points.dtype.is_floating_point else torch.float32)
    t = ((2 * t - 1) * max_translation).to(points.device, points.dtype)
    out = points.clone()
    out[..., idx] = out[..., idx] + t[:, None, :]
    return (out, t) if return_translation else out


def permute_set(points: torch.Tensor, generator: torch.Generator | None = None, shared: bool = False,
                return_permutation: bool = False):
    """Reorder the P elements of each set by an independent uniformly random permutation
    (shared=True: one permutation for the whole batch, as the authors' jet IM code does per batch).
    out[b, i] = points[b, perm[b, i]]."""
    _check_points(points)
    b, p, f = points.shape
    gen_device = generator.device if generator is not None else torch.device("cpu")
    keys = torch.rand((1 if shared else b, p), generator=generator, device=gen_device)
    perm = keys.argsort(dim=1).to(points.device).expand(b, p)
    out = torch.gather(points, 1, perm[:, :, None].expand(b, p, f))
    return (out, perm) if return_permutation else out


# ---------------------------------------------------------------------------------------------------------
# The transformations the invariance metric is measured under, by the name a RunConfig's `invariance` field
# gives (the runner reads this table; nothing registers itself at import).

@dataclass(frozen=True)
class Transformation:
    """A named transformation of the invariance metric: the function (batch, generator) -> batch and the
    sentence the book prints about it."""

    fn: Callable[[torch.Tensor, torch.Generator], torch.Tensor]
    text: str


TRANSFORMATIONS: dict[str, Transformation] = {
    "circshift4": Transformation(
        lambda x, g: random_circular_shift(x, 4, g),
        "circular shift of each test image by (dy, dx), each uniform on {-4, ..., 4} px, with wrap-around "
        "(MNIST digits sit inside a 20x20 box, so this rarely wraps digit pixels); the APS teacher is exactly "
        "invariant to it"),
    "roll5": Transformation(
        lambda x, g: shape_preserving_roll(x, 5, g),
        "the authors' 'shape-preserving' roll: up to 5 px in one random direction (up/down/left/right), only "
        "background rows wrap, so no digit pixel is lost"),
    "translate_xy0.25": Transformation(
        lambda x, g: translate_points(x, 0.25, g, coord_dims=[0, 1]),
        "translation of every element's (x, y) in a set by one vector uniform on [-0.25, 0.25]^2, a new vector "
        "per set (set-MNIST coordinates span [-1, 1], so 0.25 is about 3.4 px); the intensity is unchanged"),
    "translate_xyz0.1": Transformation(
        lambda x, g: translate_points(x, 0.1, g, coord_dims=slice(0, 3)),
        "translation of every point's (x, y, z) by one vector uniform on [-0.1, 0.1]^3 per shape (the authors: "
        "uniform on [0, 0.1]^3); coordinates are NormalizeScale'd into (-1, 1)"),
    "permute": Transformation(
        lambda x, g: permute_set(x, g),
        "an independent, uniformly random permutation of the elements of each set"),
}
