"""Straight lines in weight space: the near-teacher initialisation and the loss along a line (Stanton et al.).

Why: the paper's optimisation claim is that a student started at theta = r * theta_random +
(1 - r) * theta_teacher recovers near-perfect agreement for small r, while one started at random ends in a
worse optimum of the *same* distillation loss; the loss along the straight line between the student's solution
and the teacher shows the barrier between them. Both need the same operation, a convex combination of two
state dicts, so it lives in one function (`blend_state`) whose endpoints are exact (1 * a + 0 * b == a).

BatchNorm running statistics of a blended network belong to neither endpoint, so they are recomputed on data
(as the authors do) with `torch.optim.swa_utils.update_bn`, which averages the batch statistics over one pass
(the authors run train-mode forwards with the default momentum, which weights the last batches most).
"""
from __future__ import annotations

import copy
import math
from numbers import Real
from typing import Callable, Iterator, Mapping, Sequence

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from kdutils.data.device_loader import DeviceLoader
from kdutils.losses import check_tau, kd_loss
from kdutils.metrics import predict_logits
from kdutils.progress import tqdm

__all__ = ["check_ratio", "blend_state", "recompute_bn", "interpolate_init", "init_lr", "loss_along_line",
           "distillation_loss_fn"]


def check_ratio(r: object, name: str = "r") -> float:
    """A mixing weight in [0, 1] as a float; anything else (bool, nan, out of range) is refused."""
    if isinstance(r, torch.Tensor) and r.numel() == 1:
        r = r.item()
    if isinstance(r, bool) or not isinstance(r, Real) or not (0.0 <= float(r) <= 1.0):
        raise ValueError(f"{name} must be a number in [0, 1], got {r!r}")
    return float(r)


def blend_state(state_a: Mapping[str, torch.Tensor], state_b: Mapping[str, torch.Tensor],
                r: float) -> dict[str, torch.Tensor]:
    """``r * a + (1 - r) * b`` for every floating-point entry of two state dicts of the same architecture.

    r = 1 returns a's values exactly and r = 0 b's (IEEE: 1 * a + 0 * b == a). Integer buffers (BatchNorm's
    ``num_batches_tracked``) cannot be blended and are copied from the endpoint with the larger weight.
    Keys and shapes must match; entries are matched by name, not by position.
    """
    r = check_ratio(r)
    if set(state_a) != set(state_b):
        only_a, only_b = sorted(set(state_a) - set(state_b)), sorted(set(state_b) - set(state_a))
        raise ValueError(f"state dicts differ (different architectures?): only in a: {only_a[:5]}, "
                         f"only in b: {only_b[:5]}")
    out: dict[str, torch.Tensor] = {}
    for key, a in state_a.items():
        b = state_b[key]
        if a.shape != b.shape:
            raise ValueError(f"{key}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
        if a.is_floating_point():
            out[key] = r * a.detach() + (1.0 - r) * b.detach().to(a.device, a.dtype)
        else:
            out[key] = (a if r >= 0.5 else b).detach().clone()
    return out


def _input_batches(x: torch.Tensor, batch_size: int, mean, std, device) -> Iterator[torch.Tensor]:
    """Inputs preprocessed exactly as training sees them (uint8 -> [0, 1], then normalised), no augmentation."""
    labels = torch.zeros(x.shape[0], dtype=torch.long)
    loader = DeviceLoader(x, labels, batch_size, shuffle=False, mean=mean, std=std, device=device)
    for batch in loader:
        yield batch.x


def recompute_bn(model: nn.Module, x: torch.Tensor, batch_size: int = 512, mean=None, std=None,
                 device: torch.device | str | None = None) -> nn.Module:
    """Reset every BatchNorm's running mean/var and re-estimate them in one pass over ``x`` (in place).

    The estimate is the average of the per-batch statistics (``update_bn``), so with ``batch_size >= len(x)``
    running_mean / running_var are exactly the mean / unbiased variance of each BN input over the whole set.
    The model's train/eval mode is restored afterwards. Models without BatchNorm are returned unchanged.
    """
    if device is None:
        p = next(iter(model.parameters()), None)
        device = p.device if p is not None else torch.device("cpu")
    update_bn(_input_batches(x, batch_size, mean, std, device), model)
    return model


def interpolate_init(random_model: nn.Module, teacher: nn.Module, r: float, bn_x: torch.Tensor | None = None,
                     *, batch_size: int = 512, mean=None, std=None) -> nn.Module:
    """A new student with ``theta = r * theta_random + (1 - r) * theta_teacher`` (r = 1: the random init).

    With ``bn_x`` (the distillation inputs, raw as stored) the BatchNorm statistics are recomputed on it, as
    in the authors' code; without, the running statistics are blended like the weights. Neither input model
    is modified. Pair it with `init_lr` to scale the learning rate by r as the authors do.
    """
    r = check_ratio(r)
    student = copy.deepcopy(random_model)
    student.load_state_dict(blend_state(random_model.state_dict(), teacher.state_dict(), r))
    if bn_x is not None:
        recompute_bn(student, bn_x, batch_size=batch_size, mean=mean, std=std)
    return student


def init_lr(base_lr: float, r: float) -> float:
    """The authors' learning rate for a student initialised at distance ratio r: ``r * base_lr``.

    Why: a student that starts next to the teacher (small r) would be knocked away from it by a full step size.
    """
    if isinstance(base_lr, bool) or not isinstance(base_lr, Real) or not (math.isfinite(base_lr) and base_lr > 0):
        raise ValueError(f"base_lr must be a finite number > 0, got {base_lr!r}")
    return float(base_lr) * check_ratio(r)


def loss_along_line(model_a: nn.Module, model_b: nn.Module, loss_fn: Callable[[nn.Module], float],
                    ts: Sequence[float] | torch.Tensor | None = None, bn_x: torch.Tensor | None = None,
                    *, batch_size: int = 512, mean=None, std=None, progress: bool = False
                    ) -> dict[str, list[float]]:
    """``loss_fn`` at ``theta(t) = (1 - t) * theta_a + t * theta_b`` for each t (default 0, 0.1, ..., 1).

    t = 0 is model_a exactly and t = 1 model_b exactly (when ``bn_x`` is None their BN buffers too). With
    ``bn_x`` every point, endpoints included, gets BatchNorm statistics recomputed on it. Returns
    ``{"t": [...], "loss": [...]}`` (plain floats, ready for a JSON record). The two models are not modified.
    """
    ts_list = [i / 10 for i in range(11)] if ts is None else [float(t) for t in ts]
    if not ts_list:
        raise ValueError("ts must hold at least one point in [0, 1]")
    for t in ts_list:
        check_ratio(t, "t")
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    probe = copy.deepcopy(model_a)
    losses = []
    for t in tqdm(ts_list, desc="loss along line", leave=False, disable=not progress):
        probe.load_state_dict(blend_state(state_a, state_b, 1.0 - t))
        if bn_x is not None:
            recompute_bn(probe, bn_x, batch_size=batch_size, mean=mean, std=std)
        losses.append(float(loss_fn(probe)))
    return {"t": ts_list, "loss": losses}


def distillation_loss_fn(teacher_logits: torch.Tensor, x: torch.Tensor, tau: float = 4.0, *,
                         batch_size: int = 1024, mean=None, std=None) -> Callable[[nn.Module], float]:
    """A ``loss_fn`` for `loss_along_line`: mean ``tau^2 * KL(P_t || P_s)`` at temperature tau over ``x``.

    This is the authors' objective minus the teacher's entropy (a constant), so the curve has the same shape
    and is exactly 0 wherever the student's predictions equal the teacher's. The model is evaluated in eval
    mode (running BN statistics), as a trained student is used.
    """
    tau = check_tau(tau)
    if teacher_logits.ndim != 2 or teacher_logits.shape[0] != x.shape[0]:
        raise ValueError(f"teacher_logits must be (N, classes) with N = len(x) = {x.shape[0]}, "
                         f"got {tuple(teacher_logits.shape)}")
    target = teacher_logits.detach().to(torch.float32).cpu()

    def loss(model: nn.Module) -> float:
        logits = predict_logits(model, x, batch_size=batch_size, mean=mean, std=std)
        return kd_loss(logits, target, tau).item()

    return loss
