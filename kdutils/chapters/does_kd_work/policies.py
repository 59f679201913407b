"""Distillation-data policies: what inputs the student and teacher see while distilling (Stanton et al., sec. 5).

Why these are augmentations: the training loop relabels every augmented batch with the teacher
(``teacher(batch.x)``; cached logits are only used when there is no augmentation), so a policy that changes the
inputs only has to change ``batch.x``. MixUp and Gaussian noise are therefore `DeviceLoader` augmentations
(callables ``aug(x, generator)`` on float [0, 1] images, before normalisation; mixing before or after the
affine normalisation gives the same normalised input), and the teacher labels the *mixed / noisy* input, as in
the authors' ``DistillLoader``. The labels ``batch.y`` of a mixed batch are those of the unmixed images, so
these policies are meant for pure distillation (kdutils alpha = 1, the authors' alpha = 0).

Out-of-distribution data is not an augmentation but more inputs: `ood_distillation_set` appends images of
another dataset (e.g. MNIST digits for a Fashion-MNIST teacher, as the authors added SVHN to CIFAR-100).

Policy strings extend `device_loader.parse_augment`'s grammar with two tokens, so a policy fits in
``TrainConfig.augment``-like config strings: ``mixup<a>`` (MixUp, lambda ~ Beta(a, a)) and ``noise<s>``
(additive N(0, s^2) per pixel, clipped to [0, 1]), e.g. ``"crop2+flip+mixup1"`` or ``"noise0.1"``.
"""
from __future__ import annotations

import math
import re
from numbers import Integral, Real

import numpy as np
import torch

from kdutils.data.datasets import ArrayDataset
from kdutils.data.device_loader import Augment, Compose, _check_images, parse_augment

__all__ = ["MixUp", "GaussianNoise", "parse_policy", "ood_distillation_set", "OOD_LABEL", "POLICY_GRAMMAR"]

#: Label given to out-of-distribution images: they have no class of the teacher's task.
OOD_LABEL = -1


def _positive(value: object, name: str) -> float:
    # `value <= 0`, not `not value > 0`: numbers.Real declares __le__ and __lt__ only (the same test on a finite real)
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


class MixUp:
    """MixUp inside a batch: ``x_i' = lam * x_i + (1 - lam) * x_perm(i)`` with ``lam ~ Beta(alpha, alpha)``.

    One lam per batch (the authors' choice) unless ``per_sample``; perm is a random permutation of the batch.
    Every draw comes from the loader's torch generator (Beta draws via a NumPy generator seeded from it), so
    epochs are reproducible.
    """

    def __init__(self, alpha: float = 1.0, per_sample: bool = False) -> None:
        self.alpha = _positive(alpha, "mixup alpha")
        self.per_sample = bool(per_sample)

    def sample(self, batch_size: int, device: torch.device | str = "cpu",
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(lam (batch_size,) float in [0, 1], perm (batch_size,) long) that __call__ uses with this state."""
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=device).item())
        rng = np.random.default_rng(seed)
        draws = rng.beta(self.alpha, self.alpha, size=batch_size if self.per_sample else 1)
        lam = torch.as_tensor(draws, dtype=torch.float32, device=device).expand(batch_size).clone()
        perm = torch.randperm(batch_size, generator=generator, device=device)
        return lam, perm

    @staticmethod
    def mix(x: torch.Tensor, lam: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
        """The convex combinations for given draws (exposed so tests and plots can reproduce a batch)."""
        w = lam.to(x.dtype).view(-1, *([1] * (x.ndim - 1)))
        return w * x + (1 - w) * x.index_select(0, perm)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_images(x, "MixUp")
        lam, perm = self.sample(x.shape[0], x.device, generator)
        return self.mix(x, lam, perm)

    def __repr__(self) -> str:
        return f"MixUp(alpha={self.alpha}, per_sample={self.per_sample})"


class GaussianNoise:
    """Add independent N(0, std^2) noise to every pixel of [0, 1] images, then clip back to [0, 1]."""

    def __init__(self, std: float, clip: bool = True) -> None:
        self.std = _positive(std, "noise std")
        self.clip = bool(clip)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_images(x, "GaussianNoise")
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        out = x + self.std * noise
        return out.clamp_(0.0, 1.0) if self.clip else out

    def __repr__(self) -> str:
        return f"GaussianNoise(std={self.std}, clip={self.clip})"


_NUMBER = r"(\d+(?:\.\d+)?)"
_OWN = re.compile(rf"^(?:mixup{_NUMBER}|noise{_NUMBER})$")
POLICY_GRAMMAR = ("'none', or '+'-joined parts: any token of device_loader.parse_augment ('crop<p>', 'flip', "
                  "'shift<k>', ...), 'mixup<a>' (MixUp, lambda ~ Beta(a, a)), 'noise<s>' (Gaussian noise of "
                  "std s on [0, 1] pixels); e.g. 'crop2+flip+mixup1', 'noise0.1'")


def parse_policy(spec: str | None) -> Augment | None:
    """Turn a policy string into an augmentation callable (None for "none"); parts apply left to right."""
    if spec is None:
        return None
    if not isinstance(spec, str):
        raise ValueError(f"policy must be a string; allowed: {POLICY_GRAMMAR}; got {spec!r}")
    text = spec.strip().lower()
    if text in ("", "none"):
        return None
    parts: list[Augment] = []
    for token in (t.strip() for t in text.split("+")):
        m = _OWN.match(token)
        if m is not None:
            parts.append(MixUp(float(m[1])) if m[1] is not None else GaussianNoise(float(m[2])))
            continue
        try:
            aug = parse_augment(token)
        except ValueError:
            raise ValueError(f"unknown policy part {token!r} in {spec!r}; allowed: {POLICY_GRAMMAR}") from None
        if aug is None:
            raise ValueError(f"'none' cannot be combined with other parts in {spec!r}")
        parts.append(aug)
    return parts[0] if len(parts) == 1 else Compose(parts)


def ood_distillation_set(train: ArrayDataset, ood: ArrayDataset, n_ood: int | None = None,
                         seed: int = 0) -> ArrayDataset:
    """``train`` followed by ``n_ood`` images of ``ood`` (all when None), labelled `OOD_LABEL` (-1).

    The images must have the same shape and dtype as the teacher's data (e.g. MNIST and Fashion-MNIST, both
    uint8 1x28x28). The subset of ``ood`` is drawn with a CPU generator seeded by ``seed``. The labels of OOD
    images are -1 on purpose: a cross-entropy term on them fails loudly, so use pure distillation.
    """
    if tuple(train.x.shape[1:]) != tuple(ood.x.shape[1:]) or train.x.dtype != ood.x.dtype:
        raise ValueError(f"OOD images {tuple(ood.x.shape[1:])} {ood.x.dtype} must match the distillation "
                         f"images {tuple(train.x.shape[1:])} {train.x.dtype}")
    n_avail = len(ood)
    if n_ood is None:
        n_ood = n_avail
    if isinstance(n_ood, bool) or not isinstance(n_ood, Integral) or not 0 <= n_ood <= n_avail:
        raise ValueError(f"n_ood must be an integer in [0, {n_avail}] (images available), got {n_ood!r}")
    idx = torch.randperm(n_avail, generator=torch.Generator().manual_seed(int(seed)))[: int(n_ood)].sort().values
    x = torch.cat([train.x, ood.x[idx]], dim=0)
    y = torch.cat([train.y.long(), torch.full((int(n_ood),), OOD_LABEL, dtype=torch.long)], dim=0)
    # Keep the teacher data's name: loaders look up its normalisation by name, and OOD images must be
    # normalised as the teacher's inputs are.
    return ArrayDataset(x, y, list(train.classes), train.name)
