r"""Smoothness of a teacher's tempered targets (Chandrasegaran et al. 2022, Supplementary H).

The average entropy (in nats) of the teacher's targets :math:`p = \mathrm{softmax}(z / \tau)` over the
training set,

.. math::  \bar H(\tau) = \frac{1}{N} \sum_{n=1}^{N} \Big( -\sum_{k=1}^{C} p_{n,k} \log p_{n,k} \Big),
           \qquad 0 \le \bar H(\tau) \le \log C,

and, for the matched-entropy case study, the temperature at which a second teacher's average entropy equals a
given value. Entropy of a tempered softmax never decreases with :math:`\tau` (its derivative is the variance of
the logits under :math:`p`, over :math:`\tau^3`), so the matching temperature is found by bisection in
:math:`\log\tau`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from kdutils.losses import check_tau

__all__ = ["tempered_entropy", "average_entropy", "matching_temperature", "MatchedPair", "matched_temperatures"]


def _logits64(logits: torch.Tensor) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] < 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a non-empty 2-D tensor (samples, classes >= 2), got {shape}")
    z = logits.detach().to(torch.float64)
    if not torch.isfinite(z).all():
        raise ValueError("logits contain NaN or inf")
    return z


def tempered_entropy(logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Per-sample entropy (nats, float64) of ``softmax(logits / tau)``; computed from log_softmax, so a
    probability that underflows to 0 contributes 0 rather than NaN."""
    t = check_tau(tau)
    logp = F.log_softmax(_logits64(logits) / t, dim=1)
    return -(logp.exp() * logp).sum(dim=1)


def average_entropy(logits: torch.Tensor, tau: float) -> float:
    """Mean over samples of :func:`tempered_entropy` (the paper's smoothness measure, Table H.1)."""
    return float(tempered_entropy(logits, tau).mean())


def matching_temperature(
    logits: torch.Tensor, target_entropy: float, lo: float = 1e-2, hi: float = 1e4, tol: float = 1e-9
) -> float:
    """The temperature ``tau`` in [lo, hi] with ``average_entropy(logits, tau) == target_entropy`` (within
    ``tol`` nats). A target outside what [lo, hi] reaches is an error naming the reachable range."""
    z = _logits64(logits)
    lo, hi = check_tau(lo), check_tau(hi)
    if not lo < hi:
        raise ValueError(f"need lo < hi, got lo={lo}, hi={hi}")
    target = float(target_entropy)
    h_lo, h_hi = average_entropy(z, lo), average_entropy(z, hi)
    if not h_lo - tol <= target <= h_hi + tol:
        raise ValueError(f"target entropy {target!r} nats is outside [{h_lo:.6g}, {h_hi:.6g}], the range reached "
                         f"for tau in [{lo:g}, {hi:g}] (maximum possible: log C = {math.log(z.shape[1]):.6g})")
    a, b = math.log(lo), math.log(hi)
    for _ in range(200):
        mid = 0.5 * (a + b)
        h = average_entropy(z, math.exp(mid))
        if abs(h - target) <= tol:
            return math.exp(mid)
        if h < target:
            a = mid
        else:
            b = mid
        if b - a < 1e-15:
            break
    return math.exp(0.5 * (a + b))


@dataclass(frozen=True)
class MatchedPair:
    """Teacher A at ``tau_a`` and teacher B at ``tau_b`` give targets of the same average entropy."""

    tau_a: float
    entropy: float
    tau_b: float


def matched_temperatures(
    logits_a: torch.Tensor, logits_b: torch.Tensor, taus_a: Sequence[float], **search: float
) -> list[MatchedPair]:
    """For each ``tau_a``, the temperature at which teacher B's average entropy equals teacher A's.

    E.g. A = the LS teacher at tau 1, 2, 3 and B = the plain teacher: Supplementary H's pairs of equally smooth
    targets. ``search`` goes to :func:`matching_temperature` (``lo``, ``hi``, ``tol``).
    """
    pairs = []
    for tau_a in taus_a:
        h = average_entropy(logits_a, tau_a)
        pairs.append(MatchedPair(float(tau_a), h, matching_temperature(logits_b, h, **search)))
    return pairs
