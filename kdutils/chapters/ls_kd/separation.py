"""Class separation in a penultimate space: the measure behind "the student inherits the teacher's distance
enlargement" (Chandrasegaran et al., Table 1 and Fig. 1 observation 2, after Shen et al. 2021).

Shen et al.'s observation is that label smoothing makes each class's cluster tighter while the centres of
semantically similar classes stay (relatively) far apart; the paper's novelty claim is that a student distilled
from an LS teacher shows the same. Raw centroid distances cannot be compared across two students (their feature
scales differ), so the measure here is scale-free: the distance between two class centroids divided by the
classes' pooled within-class spread (root mean squared distance of a class's samples to its centroid),

    sep(a, b) = ||mu_a - mu_b|| / sqrt((s_a^2 + s_b^2) / 2),

i.e. how many cluster radii apart two classes are. It is averaged over the *similar* pairs (a class and a member
of its semantic group) and, for contrast, over the dissimilar pairs. Enlargement = a larger similar-pair
separation with the LS teacher than with the plain one.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from kdutils.chapters.ls_kd.diffusion import _check_centroids, class_centroids


def class_spreads(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Root mean squared distance of each class's samples to their class centroid, shape (num_classes,), float64."""
    cents = class_centroids(features, labels, num_classes)
    x = features.detach().to(torch.float64).cpu()
    y = labels.long().cpu()
    sq = (x - cents[y]).pow(2).sum(dim=1)
    sums = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, y, sq)
    return (sums / torch.bincount(y, minlength=num_classes).to(torch.float64)).sqrt()


def pair_separation(centroids: torch.Tensor, spreads: torch.Tensor, a: int, b: int) -> float:
    """Centroid distance of classes ``a`` and ``b`` in units of their pooled within-class spread."""
    c = _check_centroids(centroids)
    s = torch.as_tensor(spreads, dtype=torch.float64)
    if s.shape != (c.shape[0],) or not torch.isfinite(s).all() or (s < 0).any():
        raise ValueError(f"spreads must be {c.shape[0]} finite values >= 0 (one per class), got {s.tolist()}")
    if a == b or not (0 <= a < c.shape[0] and 0 <= b < c.shape[0]):
        raise ValueError(f"a and b must be two distinct classes in 0..{c.shape[0] - 1}, got {a!r}, {b!r}")
    pooled = float(((s[a] ** 2 + s[b] ** 2) / 2).sqrt())
    if pooled == 0.0:
        raise ValueError(f"classes {a} and {b} have zero spread: separation undefined")
    return float((c[a] - c[b]).norm()) / pooled


def pairs_of(sets: Mapping[int, tuple[Sequence[int], Sequence[int]]]) -> tuple[list[tuple[int, int]],
                                                                                  list[tuple[int, int]]]:
    """The unordered similar and dissimilar class pairs of ``sets`` ({target: (similar, dissimilar)}), each once."""
    sim = sorted({(min(t, k), max(t, k)) for t, (s, _) in sets.items() for k in s})
    dis = sorted({(min(t, k), max(t, k)) for t, (_, d) in sets.items() for k in d} - set(sim))
    return sim, dis


def mean_separation(centroids: torch.Tensor, spreads: torch.Tensor,
                    sets: Mapping[int, tuple[Sequence[int], Sequence[int]]]) -> dict[str, float]:
    """{"similar": mean separation over the similar pairs, "dissimilar": over the dissimilar pairs}."""
    sim, dis = pairs_of(sets)
    if not sim or not dis:
        raise ValueError("sets must give at least one similar and one dissimilar pair")
    mean = lambda ps: sum(pair_separation(centroids, spreads, a, b) for a, b in ps) / len(ps)  # noqa: E731
    return {"similar": mean(sim), "dissimilar": mean(dis)}


__all__ = ["class_spreads", "mean_separation", "pair_separation", "pairs_of"]
