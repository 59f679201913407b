"""On-device batching and augmentation: the whole split lives on the device, batches are index_select + a few
vectorised ops. For MNIST/CIFAR-sized data this is far faster than a DataLoader with workers and fully
reproducible: the order and every augmentation draw come from one torch.Generator seeded by seed + epoch.
"""
from __future__ import annotations

import math
import numbers
import re
from typing import Callable, Iterator, NamedTuple, Sequence

import torch

Augment = Callable[..., torch.Tensor]


class Batch(NamedTuple):
    """One batch: `idx` are the dataset indices (for looking up cached teacher logits), x float, y int64."""

    idx: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor


# --------------------------------------------------------------------------------------------------------------
# Augmentations: callables aug(x, generator=None) on a float (B, C, H, W) batch, vectorised over the batch
# --------------------------------------------------------------------------------------------------------------

def _check_images(x: torch.Tensor, who: str) -> None:
    if x.ndim != 4 or not x.dtype.is_floating_point:
        raise ValueError(f"{who} needs a float image batch (B, C, H, W), got dtype {x.dtype} shape {tuple(x.shape)}")


def shift_images(x: torch.Tensor, shifts: torch.Tensor, mode: str = "zeros") -> torch.Tensor:
    """Shift image i by shifts[i] = (dy, dx) pixels: content moves dy rows down and dx columns right.

    mode "zeros" fills the uncovered border with 0; "circular" wraps around (a torch.roll per image).
    Implemented with two gathers, so the cost does not depend on how many distinct shifts there are.
    """
    if mode not in ("zeros", "circular"):
        raise ValueError(f"unknown shift mode {mode!r}; choose 'zeros' or 'circular'")
    if x.ndim != 4:
        raise ValueError(f"shift_images needs a (B, C, H, W) batch, got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    shifts = torch.as_tensor(shifts, device=x.device).long()
    if shifts.shape != (b, 2):
        raise ValueError(f"shifts must have shape ({b}, 2) = (batch, (dy, dx)), got {tuple(shifts.shape)}")
    rows = torch.arange(h, device=x.device)[None, :] - shifts[:, :1]  # (B, H): source row of each output row
    cols = torch.arange(w, device=x.device)[None, :] - shifts[:, 1:]  # (B, W)
    if mode == "circular":
        rows, cols = rows % h, cols % w
    else:
        row_ok = (rows >= 0) & (rows < h)
        col_ok = (cols >= 0) & (cols < w)
        rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    out = x.gather(2, rows[:, None, :, None].expand(b, c, h, w))
    out = out.gather(3, cols[:, None, None, :].expand(b, c, h, w))
    if mode == "zeros":
        keep = row_ok[:, None, :, None] & col_ok[:, None, None, :]
        out = out.masked_fill(~keep, 0)
    return out


class RandomShift:
    """Shift each image by an independent integer offset, uniform in [-max_shift, max_shift] per axis."""

    def __init__(self, max_shift: int, mode: str = "zeros") -> None:
        if isinstance(max_shift, bool) or not isinstance(max_shift, numbers.Integral) or max_shift < 0:
            raise ValueError(f"max_shift must be a non-negative integer, got {max_shift!r}")
        if mode not in ("zeros", "circular"):
            raise ValueError(f"unknown shift mode {mode!r}; choose 'zeros' or 'circular'")
        self.max_shift: int = int(max_shift)
        self.mode: str = mode

    def sample(self, batch_size: int, device: torch.device | str = "cpu",
               generator: torch.Generator | None = None) -> torch.Tensor:
        """The (batch_size, 2) offsets (dy, dx) that __call__ would use with the same generator state."""
        s = self.max_shift
        return torch.randint(-s, s + 1, (batch_size, 2), generator=generator, device=device)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_images(x, type(self).__name__)
        return shift_images(x, self.sample(x.shape[0], x.device, generator), self.mode)

    def __repr__(self) -> str:
        return f"RandomShift(max_shift={self.max_shift}, mode={self.mode!r})"


class RandomCrop(RandomShift):
    """Zero-pad by `padding` and crop a random window of the original size.

    A crop offset uniform in [0, 2p] is exactly a zero-filled shift uniform in [-p, p], so this is RandomShift.
    """

    def __init__(self, padding: int) -> None:
        super().__init__(padding, "zeros")
        self.padding = self.max_shift

    def __repr__(self) -> str:
        return f"RandomCrop(padding={self.padding})"


class RandomHFlip:
    """Mirror each image left-right independently with probability p."""

    def __init__(self, p: float = 0.5) -> None:
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"flip probability p must be in [0, 1], got {p!r}")
        self.p: float = float(p)

    def sample(self, batch_size: int, device: torch.device | str = "cpu",
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Boolean (batch_size,) mask of the images that get flipped."""
        return torch.rand(batch_size, generator=generator, device=device) < self.p

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_images(x, "RandomHFlip")
        flip = self.sample(x.shape[0], x.device, generator)
        return torch.where(flip[:, None, None, None], x.flip(-1), x)

    def __repr__(self) -> str:
        return f"RandomHFlip(p={self.p})"


class RandomTranslate:
    """Point sets (B, P, F): add one random vector, uniform in [-r, r] per coordinate, to the coordinate
    features of every element of a set (each set its own vector; see `kdutils.data.symmetry.translate_points`).
    `coord_dims` = 3 translates (x, y, z), 2 translates (x, y) only (set-MNIST, whose third feature is the
    pixel intensity)."""

    data_kind = "points"

    def __init__(self, max_translation: float, coord_dims: int = 3) -> None:
        if isinstance(max_translation, bool) or not isinstance(max_translation, numbers.Real) or not (
                math.isfinite(max_translation) and max_translation >= 0):
            raise ValueError(f"max_translation must be a finite number >= 0, got {max_translation!r}")
        if coord_dims not in (2, 3):
            raise ValueError(f"coord_dims must be 2 (x, y) or 3 (x, y, z), got {coord_dims!r}")
        self.max_translation: float = float(max_translation)
        self.coord_dims: int = int(coord_dims)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        from kdutils.data.symmetry import translate_points

        return translate_points(x, self.max_translation, generator, coord_dims=slice(0, self.coord_dims))

    def __repr__(self) -> str:
        return f"RandomTranslate(max_translation={self.max_translation}, coord_dims={self.coord_dims})"


class RandomPermute:
    """Point sets (B, P, F): reorder the elements of each set by its own uniformly random permutation."""

    data_kind = "points"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        from kdutils.data.symmetry import permute_set

        return permute_set(x, generator)

    def __repr__(self) -> str:
        return "RandomPermute()"


class Compose:
    """Apply augmentations in order, all drawing from the same generator."""

    def __init__(self, transforms: Sequence[Augment]) -> None:
        self.transforms = list(transforms)
        kinds = {data_kind(t) for t in self.transforms}
        if len(kinds) > 1:
            raise ValueError(f"cannot compose image and point-set augmentations: {self.transforms!r}")
        self.data_kind = kinds.pop() if kinds else "images"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for t in self.transforms:
            x = t(x, generator=generator)
        return x

    def __repr__(self) -> str:
        return f"Compose([{', '.join(map(repr, self.transforms))}])"


_TOKEN = re.compile(r"^(?:shift(?P<shift>\d+)(?P<circ>c?)|crop(?P<crop>\d+)|(?P<flip>h?flip)"
                    r"|translate(?P<xy>xy)?(?P<tr>\d+(?:\.\d+)?)|(?P<perm>permute))$")
_GRAMMAR = ("'none', or '+'-joined parts from: 'shift<k>' (zero-filled shift up to k px), "
            "'shift<k>c' (circular shift), 'crop<p>' (pad p + random crop), 'flip' (horizontal flip, p=0.5); "
            "for point sets: 'translate<r>' (x, y, z each shifted by U[-r, r]), 'translatexy<r>' (x, y only), "
            "'permute' (random reordering of each set); e.g. 'shift2', 'shift2c', 'crop4+flip', 'translatexy0.25'")


def data_kind(augment: Augment) -> str:
    """"images" (needs (N, C, H, W) data) or "points" (needs (N, P, F) sets); image augmentations by default."""
    return getattr(augment, "data_kind", "images")


def parse_augment(spec: str | None) -> Augment | None:
    """Turn a config string like "shift2", "shift2c", "crop4+flip" or, for point sets, "translatexy0.25" or
    "permute" into an augmentation ("none" -> None)."""
    if spec is None:
        return None
    if not isinstance(spec, str):
        raise ValueError(f"augment spec must be a string; allowed: {_GRAMMAR}; got {spec!r}")
    text = spec.strip().lower()
    if text in ("", "none"):
        return None
    parts: list[Augment] = []
    for token in text.split("+"):
        m = _TOKEN.match(token.strip())
        if m is None:
            raise ValueError(f"unknown augmentation {token.strip()!r} in {spec!r}; allowed: {_GRAMMAR}")
        if m["shift"] is not None:
            parts.append(RandomShift(int(m["shift"]), "circular" if m["circ"] else "zeros"))
        elif m["crop"] is not None:
            parts.append(RandomCrop(int(m["crop"])))
        elif m["tr"] is not None:
            parts.append(RandomTranslate(float(m["tr"]), 2 if m["xy"] else 3))
        elif m["perm"] is not None:
            parts.append(RandomPermute())
        else:
            parts.append(RandomHFlip(0.5))
    return parts[0] if len(parts) == 1 else Compose(parts)


# --------------------------------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------------------------------

def _stat_tensor(values, n_channels: int, ndim: int, device: torch.device, what: str) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=torch.float32).flatten()
    if t.numel() not in (1, n_channels):
        raise ValueError(f"{what} has {t.numel()} values; expected 1 or {n_channels} (one per channel/feature)")
    if what == "std" and bool((t <= 0).any()):
        raise ValueError(f"std must be positive, got {t.tolist()}")
    t = t.expand(n_channels).clone()
    shape = (1, n_channels, 1, 1) if ndim == 4 else (1,) * (ndim - 1) + (n_channels,)
    return t.reshape(shape).to(device)


class DeviceLoader:
    """Batches of a whole split kept on `device`.

    uint8 images stay uint8 on the device (4x less memory) and each batch is converted to float in [0, 1],
    augmented, then normalised with (x - mean) / std. Float data (e.g. point sets (N, P, F)) is used as is,
    normalised over its last dimension if mean/std are given. Iterating once is one epoch: the order and the
    augmentation draws come from torch.Generator(seed + epoch); the epoch advances by one per iteration, or
    is set explicitly with set_epoch(e) (the next iteration then uses e).
    """

    def __init__(self, x, y, batch_size: int, *, shuffle: bool = True, drop_last: bool = False,
                 augment: Augment | str | None = None, mean=None, std=None,
                 device: torch.device | str = "cpu", seed: int = 0) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        if x.dtype != torch.uint8 and not x.dtype.is_floating_point:
            raise ValueError(f"x must be uint8 images or a float tensor, got dtype {x.dtype}")
        if x.ndim < 2:
            raise ValueError(f"x must have a sample dimension and features, got shape {tuple(x.shape)}")
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"y must be 1-d with one label per sample ({x.shape[0]}), got shape {tuple(y.shape)}")
        if y.dtype.is_floating_point or y.dtype == torch.bool:
            raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        if isinstance(augment, str):
            augment = parse_augment(augment)
        if augment is not None and data_kind(augment) == "points":
            if x.ndim != 3 or not x.dtype.is_floating_point:
                raise ValueError(f"augment {augment!r} needs float point-set data (N, P, F), got dtype {x.dtype}"
                                 f" shape {tuple(x.shape)}")
        elif augment is not None and (x.ndim != 4 or not callable(augment)):
            raise ValueError(f"augment needs image data (N, C, H, W) and a callable, got x shape {tuple(x.shape)}"
                             f" and augment {augment!r}")

        self.device: torch.device = torch.device(device)
        self.x: torch.Tensor = x.to(self.device)
        self.y: torch.Tensor = y.to(self.device, torch.long)
        self.batch_size: int = int(batch_size)
        self.shuffle: bool = bool(shuffle)
        self.drop_last: bool = bool(drop_last)
        self.augment: Augment | None = augment
        self.seed: int = int(seed)
        self.epoch: int = 0
        n_channels = x.shape[1] if x.ndim == 4 else x.shape[-1]
        self.mean: torch.Tensor | None = None if mean is None else _stat_tensor(mean, n_channels, x.ndim, self.device,
                                                                                "mean")
        self.std: torch.Tensor | None = None if std is None else _stat_tensor(std, n_channels, x.ndim, self.device,
                                                                              "std")

    @classmethod
    def from_dataset(cls, dataset, batch_size: int, *, normalize: bool = True, **kwargs) -> "DeviceLoader":
        """Loader over an ArrayDataset, with the dataset's NORMALIZATION entry when `normalize` and one exists."""
        from kdutils.data.datasets import NORMALIZATION

        if normalize and "mean" not in kwargs and dataset.name in NORMALIZATION:
            kwargs["mean"], kwargs["std"] = NORMALIZATION[dataset.name]
        return cls(dataset.x, dataset.y, batch_size, **kwargs)

    @property
    def num_samples(self) -> int:
        return int(self.y.shape[0])

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else math.ceil(n / b)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use epoch `epoch` (its order and augmentations)."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def generator(self, epoch: int) -> torch.Generator:
        """The generator behind one epoch: first the permutation, then the augmentations, batch by batch."""
        return torch.Generator(device=self.device).manual_seed(self.seed + int(epoch))

    def prepare(self, idx: torch.Tensor, generator: torch.Generator | None = None,
                augment: bool = True) -> torch.Tensor:
        """Float, augmented (if `augment` and one is set) and normalised inputs of the samples `idx`."""
        xb = self.x.index_select(0, idx)
        if xb.dtype == torch.uint8:
            xb = xb.float().mul_(1.0 / 255.0)
        if augment and self.augment is not None:
            xb = self.augment(xb, generator=generator)
        if self.mean is not None and self.std is not None:  # set together (__init__ checks)
            # out of place once, so float inputs stored on the device are never modified
            xb = (xb - self.mean).div_(self.std)
        return xb

    def __iter__(self) -> Iterator[Batch]:
        epoch = self.epoch
        self.epoch += 1
        return self._epoch_batches(epoch)

    def _epoch_batches(self, epoch: int) -> Iterator[Batch]:
        gen = self.generator(epoch)
        n = self.num_samples
        if self.shuffle:
            order = torch.randperm(n, generator=gen, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        stop = len(self) * self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield Batch(idx, self.prepare(idx, gen), self.y.index_select(0, idx))

    def __repr__(self) -> str:
        return (f"DeviceLoader(n={self.num_samples}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, augment={self.augment!r}, device={str(self.device)!r}, "
                f"seed={self.seed}, epoch={self.epoch})")
