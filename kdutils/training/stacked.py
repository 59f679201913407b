"""Students trained together: one spec per student and the KD objective of all of them at once, stacked
along a leading student dimension (used by both engines of `multi_student`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F

from kdutils.losses import check_alpha, check_direction, check_smoothing, check_tau, kl_terms


#: Called by an engine after the backward pass and before the update with some students' losses and their
#: indices; returns the indices that diverged now (the engine then skips their update).
Guard = Callable[[torch.Tensor, Iterable[int]], list[int]]


# ----------------------------------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class StudentSpec:
    """How one student's objective is weighted: alpha * tau^2 KL + (1 - alpha) * CE(label-smoothed)."""

    tau: float = 1.0
    alpha: float = 0.0
    kd_direction: str = "forward"
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tau", check_tau(self.tau))
        object.__setattr__(self, "alpha", check_alpha(self.alpha))
        object.__setattr__(self, "label_smoothing", check_smoothing(self.label_smoothing))
        check_direction(self.kd_direction)


def as_spec(spec: StudentSpec | Mapping[str, Any]) -> StudentSpec:
    if isinstance(spec, StudentSpec):
        return spec
    unknown = set(spec) - {"tau", "alpha", "kd_direction", "label_smoothing"}
    if unknown:
        raise ValueError(f"unknown student spec key(s) {sorted(unknown)}; allowed: tau, alpha, kd_direction, "
                         "label_smoothing")
    return StudentSpec(**spec)


# ------------------------------------------------------------------------------------------------- objective
@dataclass
class SpecTensors:
    """The K specs as device tensors, built once per training run: creating them every step would copy from
    the host each time (on CUDA a synchronising copy that stalls the otherwise asynchronous loop). Masks are
    only kept where the students differ (e.g. some alpha = 0, some not): fewer kernels per step otherwise."""

    specs: tuple[StudentSpec, ...]
    alpha: torch.Tensor  # (K,)
    one_minus_alpha: torch.Tensor  # (K,), computed in double like the Python scalar in kd_objective
    tau: torch.Tensor  # (K, 1, 1)
    tau_sq: torch.Tensor  # (K, 1), computed in double like the Python scalar in kd_loss
    eps: torch.Tensor | None  # (K, 1) label smoothing, None when no student smooths
    smooth_mask: torch.Tensor | None  # (K, 1) bool, None when all or none smooth
    reverse: torch.Tensor | None  # (K, 1) bool, None when every KL is forward
    kd_mask: torch.Tensor | None  # (K,) alpha > 0, None when all or none are
    ce_mask: torch.Tensor | None  # (K,) alpha < 1, None when all or none are

    @property
    def any_kd(self) -> bool:
        return any(sp.alpha > 0 for sp in self.specs)

    @property
    def any_ce(self) -> bool:
        return any(sp.alpha < 1 for sp in self.specs)

    @classmethod
    def build(cls, specs: Sequence[StudentSpec | Mapping[str, Any]], device: torch.device | str) -> "SpecTensors":
        student_specs = tuple(as_spec(s) for s in specs)
        device = torch.device(device)
        opts: dict[str, Any] = dict(device=device, dtype=torch.float32)

        def mask(flags: list[bool], shape: tuple[int, ...]) -> torch.Tensor | None:
            return None if all(flags) or not any(flags) else torch.tensor(flags, device=device).reshape(shape)

        k = len(student_specs)
        eps = [sp.label_smoothing for sp in student_specs]
        reverse = [sp.kd_direction == "reverse" for sp in student_specs]
        return cls(
            specs=student_specs,
            alpha=torch.tensor([sp.alpha for sp in student_specs], **opts),
            one_minus_alpha=torch.tensor([1.0 - sp.alpha for sp in student_specs], **opts),
            tau=torch.tensor([sp.tau for sp in student_specs], **opts)[:, None, None],
            tau_sq=torch.tensor([sp.tau * sp.tau for sp in student_specs], **opts)[:, None],
            eps=torch.tensor(eps, **opts)[:, None] if any(e > 0 for e in eps) else None,
            smooth_mask=mask([e > 0 for e in eps], (k, 1)),
            reverse=torch.tensor(reverse, device=device)[:, None] if any(reverse) else None,
            kd_mask=mask([sp.alpha > 0 for sp in student_specs], (k,)),
            ce_mask=mask([sp.alpha < 1 for sp in student_specs], (k,)),
        )


def _weighted(weight: torch.Tensor, term: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """weight * term, and exactly 0 with no gradient (even for a non-finite term) where `mask` is False."""
    product = weight * term
    return product if mask is None else torch.where(mask, product, torch.zeros_like(product))


def stacked_kd_objective(logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None,
                         specs: SpecTensors | Sequence[StudentSpec | Mapping[str, Any]]) -> torch.Tensor:
    """The K students' `kd_objective`s at once: logits (K, B, C) -> losses (K,).

    targets are (B,) or (K, B); teacher_logits (B, C), (K, B, C) or None (then every alpha must be 0).
    Same formula and operation order as `losses.kd_objective` (KL via log-softmax, tau^2 scaling, batch
    means, 1 - alpha and tau^2 computed in double precision like the Python scalars there); a term whose
    weight is 0 contributes exactly 0 and no gradient, as in `kd_objective`.
    """
    k, b, _ = logits.shape
    if k == 0:
        raise ValueError("logits must be (K, B, C) with K >= 1 students, got K = 0")
    st = specs if isinstance(specs, SpecTensors) else SpecTensors.build(specs, logits.device)
    if len(st.specs) != k:
        raise ValueError(f"got {len(st.specs)} student specs for {k} students' logits")
    s = logits.float()
    total = None
    if st.any_ce:
        targets = targets.expand(k, b) if targets.ndim == 1 else targets
        log_p = F.log_softmax(s, dim=-1)
        per_ce = -log_p.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)  # (K, B) NLL
        if st.eps is not None:
            smoothed = (1.0 - st.eps) * per_ce + st.eps * (-log_p.mean(dim=-1))
            per_ce = smoothed if st.smooth_mask is None else torch.where(st.smooth_mask, smoothed, per_ce)
        total = _weighted(st.one_minus_alpha, per_ce.mean(dim=-1), st.ce_mask)
    if not st.any_kd:
        assert total is not None  # K >= 1 and every alpha is 0, so the CE term above was computed
        return total
    if teacher_logits is None:
        raise ValueError("teacher_logits is None but some student has alpha > 0")
    t = teacher_logits.detach().float()
    t = t.unsqueeze(0) if t.ndim == 2 else t
    log_s = F.log_softmax(s / st.tau, dim=-1)
    log_t = F.log_softmax(t / st.tau, dim=-1)
    kl = kl_terms(log_t, log_s).sum(dim=-1)  # forward KL(P_t || P_s), 0 log 0 = 0 for a masked class
    if st.reverse is not None:
        rev = kl_terms(log_s, log_t).sum(dim=-1)
        kl = torch.where(st.reverse, rev, kl)
    kd = _weighted(st.alpha, (kl * st.tau_sq).mean(dim=-1), st.kd_mask)
    return kd if total is None else kd + total
