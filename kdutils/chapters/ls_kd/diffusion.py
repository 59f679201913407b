r"""Class centroids and the diffusion index of Chandrasegaran et al. (ICML 2022), Sec. 4, Eq. 1.

The diffusion index measures whether, when a student is distilled at a higher temperature, the centroid of a
target class moves *towards* semantically similar classes and (relatively) *away* from dissimilar ones. The
symbols of Eq. 1 are lost in our copy of the paper and the authors' repository has no code for it, so this is
the formula we implement (reconstructed from the prose around Eq. 1 and checked against the paper's tables,
see "Why this normaliser" below).

Let :math:`\mu_c^{T}` be the centroid of the penultimate-layer features of class :math:`c` for a student
distilled at temperature :math:`T`. For a target class :math:`c_t`, a set :math:`S_s` of semantically
similar classes and a set :math:`S_d` of dissimilar ones (disjoint, neither containing :math:`c_t`), let
:math:`N = S_s \cup S_d` be the reference set. The relative distance of class :math:`c_k \in N` is

.. math::

    d^{T}(c_t, c_k) = \frac{\lVert \mu^{T}_{c_t} - \mu^{T}_{c_k} \rVert_2}
                           {\sum_{c_j \in N} \lVert \mu^{T}_{c_t} - \mu^{T}_{c_j} \rVert_2},

and the diffusion index over a set :math:`S \in \{S_s, S_d\}` is the mean percentage change of that relative
distance when the temperature goes from :math:`T_0` to :math:`T_1`:

.. math::

    \eta_{S}^{T_0 \to T_1}(c_t) = \frac{100}{|S|} \sum_{c_k \in S}
        \frac{d^{T_1}(c_t, c_k) - d^{T_0}(c_t, c_k)}{d^{T_0}(c_t, c_k)} .

The paper's claim (systematic diffusion): with an LS teacher, :math:`\eta_{S_s} < 0` (closer to similar classes)
and :math:`\eta_{S_d} > 0` (relatively farther from dissimilar ones) for :math:`T_0 = 1 < T_1`.

Why this normaliser. The prose says the distance is normalised "by the sum of pairwise distance from
:math:`c_t` to centroids of all other classes in :math:`S`", which can be read as :math:`N = S` (each set
normalised by itself) or :math:`N = S_s \cup S_d`. We take the union because (i) the paper's three-class example
(one similar and one dissimilar class) is meaningful only then: with a one-class set the per-set relative
distance is 1 at every temperature; (ii) the union obeys the identity
:math:`\sum_{c_k \in N} d^{T_0}_k\, r_k = 0` (:math:`r_k` the fractional change), which forces
:math:`\eta_{S_s}` and :math:`\eta_{S_d}` to opposite signs with :math:`|\eta_{S_s}|/\eta_{S_d} \approx
|S_d|/|S_s|` when distances are similar; every one of the paper's 60 reported pairs (Tables 3 and B.4) has
opposite signs, with :math:`-\eta_{S_s}/\eta_{S_d}` between 2.4 and 10.5 (median 5.9) for sets of 4 similar and
20 dissimilar classes (the sizes Table G.1's agreement fractions imply). The per-set reading stays available
(``normaliser="per_set"``) as a sensitivity check.

A consequence the chapter must state: under this definition the two indices are not independent evidence.
Once :math:`\eta_{S_s} < 0`, :math:`\eta_{S_d} > 0` follows almost by construction; the informative quantity is
:math:`\eta_{S_s}` (its sign and size across seeds).
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Mapping, Sequence

import torch

__all__ = [
    "NORMALISERS",
    "class_centroids",
    "model_centroids",
    "centroid_distances",
    "relative_distances",
    "diffusion_index",
    "diffusion_table",
    "DiffusionIndex",
    "METHODS_MARKDOWN",
]

#: The formula as the chapter's methods page shows it (MyST/Markdown with dollar math).
METHODS_MARKDOWN = r"""
For a target class $c_t$, its semantically similar classes $S_s$ and dissimilar classes $S_d$
($c_t \notin S_s \cup S_d = N$), and class centroids $\mu^{T}_{c}$ of the student's penultimate features
after distillation at temperature $T$:

$$
d^{T}(c_t, c_k) = \frac{\lVert \mu^{T}_{c_t} - \mu^{T}_{c_k} \rVert_2}
                       {\sum_{c_j \in N} \lVert \mu^{T}_{c_t} - \mu^{T}_{c_j} \rVert_2},
\qquad
\eta_{S}^{T_0 \to T_1}(c_t) = \frac{100}{|S|} \sum_{c_k \in S}
    \frac{d^{T_1}(c_t, c_k) - d^{T_0}(c_t, c_k)}{d^{T_0}(c_t, c_k)},
\quad S \in \{S_s, S_d\}.
$$

Systematic diffusion is $\eta_{S_s} < 0 < \eta_{S_d}$. The normaliser sums over $N = S_s \cup S_d$ (our
reading of Eq. 1, whose symbols are lost in our copy); then $\sum_{c_k \in N} d^{T_0}_k\,r_k = 0$ for the
fractional changes $r_k$, so the two indices have opposite signs almost by construction and $\eta_{S_s}$
carries the evidence.
"""

NORMALISERS = ("union", "per_set")


# ----------------------------------------------------------------------------------------------- checks
def _check_features(features: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(features, torch.Tensor) or features.ndim != 2 or features.shape[0] == 0:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"features must be a non-empty 2-D tensor (samples, dims), got {shape}")
    if not isinstance(labels, torch.Tensor) or labels.shape != features.shape[:1]:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must have shape ({features.shape[0]},) to match features, got {shape}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got dtype {labels.dtype}")


def _check_centroids(centroids: torch.Tensor, name: str = "centroids") -> torch.Tensor:
    if not isinstance(centroids, torch.Tensor) or centroids.ndim != 2 or centroids.shape[0] < 2:
        shape = tuple(centroids.shape) if isinstance(centroids, torch.Tensor) else type(centroids).__name__
        raise ValueError(f"{name} must be a 2-D tensor (classes >= 2, dims), got {shape}")
    if not torch.isfinite(centroids).all():
        raise ValueError(f"{name} contains NaN or inf (a class without samples?)")
    return centroids.detach().to(torch.float64)


def _check_class(value: object, num_classes: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= int(value) < num_classes:
        raise ValueError(f"{name} must be a class index in 0..{num_classes - 1}, got {value!r}")
    return int(value)


def _check_set(classes: Sequence[int], num_classes: int, target: int, name: str) -> tuple[int, ...]:
    out = tuple(_check_class(c, num_classes, f"each class of {name}") for c in classes)
    if not out:
        raise ValueError(f"{name} must name at least one class, got an empty set")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} lists a class twice: {list(out)}")
    if target in out:
        raise ValueError(f"{name} must not contain the target class {target}: {list(out)}")
    return out


# ----------------------------------------------------------------------------------------------- centroids
def class_centroids(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None
) -> torch.Tensor:
    """Mean feature vector of each class, shape (num_classes, dims), float64.

    Computed in float64 because centroid distances of neighbouring classes can differ in the 4th digit, which
    is what the diffusion index looks at. A class with no sample is an error (its centroid would be NaN and
    every distance to it meaningless), naming the empty classes.
    """
    _check_features(features, labels)
    labels = labels.to(features.device).long()
    if labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got {int(labels.min())}")
    n = int(labels.max()) + 1 if num_classes is None else num_classes
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1 or int(labels.max()) >= n:
        raise ValueError(f"num_classes must be an int > every label (max label {int(labels.max())}), got {n!r}")
    x = features.detach().to(torch.float64)
    sums = torch.zeros(n, x.shape[1], dtype=torch.float64, device=x.device).index_add_(0, labels, x)
    counts = torch.bincount(labels, minlength=n).to(torch.float64)
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"classes {empty} have no samples, so they have no centroid")
    return (sums / counts[:, None]).cpu()


def model_centroids(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                    batch_size: int = 1024) -> torch.Tensor:
    """Class centroids of a kdutils model's penultimate features (``model.features``) on inputs ``x``,
    preprocessed as in training (uint8 images are scaled to [0, 1])."""
    from kdutils.chapters.ls_kd.projection import penultimate_features

    return class_centroids(penultimate_features(model, x, batch_size=batch_size), y.cpu(), num_classes)


def centroid_distances(centroids: torch.Tensor) -> torch.Tensor:
    """Symmetric (C, C) matrix of Euclidean distances between class centroids (Supplementary G, method 2)."""
    c = _check_centroids(centroids)
    diff = c[:, None, :] - c[None, :, :]
    return diff.pow(2).sum(-1).sqrt()  # exact zeros on the diagonal (cdist may give 1e-8 there)


def relative_distances(centroids: torch.Tensor, target: int, reference: Sequence[int]) -> dict[int, float]:
    r"""``d(c_t, c_k)`` for every ``c_k`` in ``reference``: distance over the sum of distances to ``reference``.

    The values sum to 1; they are invariant to translating, rotating or uniformly scaling the feature space,
    which is why the index compares them (and not raw distances) across students with different feature norms.
    """
    c = _check_centroids(centroids)
    t = _check_class(target, c.shape[0], "target")
    ref = _check_set(reference, c.shape[0], t, "reference")
    dist = (c[list(ref)] - c[t]).norm(dim=1)
    total = float(dist.sum())
    if total == 0.0:
        raise ValueError(f"all centroids of {list(ref)} coincide with the target's ({t}); relative distance undefined")
    return {k: d / total for k, d in zip(ref, dist.tolist())}


# ----------------------------------------------------------------------------------------------- the index
@dataclass(frozen=True)
class DiffusionIndex:
    """Diffusion indices (in percent) of one target class between two temperatures (or two students)."""

    target: int
    similar: tuple[int, ...]
    dissimilar: tuple[int, ...]
    eta_similar: float
    eta_dissimilar: float
    normaliser: str

    @property
    def systematic(self) -> bool:
        """The paper's signature of systematic diffusion: eta_similar < 0 < eta_dissimilar."""
        return self.eta_similar < 0.0 < self.eta_dissimilar


def _mean_pct_change(before: dict[int, float], after: dict[int, float], members: tuple[int, ...]) -> float:
    zero = [k for k in members if before[k] == 0.0]
    if zero:
        raise ValueError(f"at T0 the centroids of classes {zero} coincide with the target's; a percentage "
                         f"change from a zero distance is undefined")
    return 100.0 * sum((after[k] - before[k]) / before[k] for k in members) / len(members)


def diffusion_index(
    centroids_t0: torch.Tensor,
    centroids_t1: torch.Tensor,
    target: int,
    similar: Sequence[int],
    dissimilar: Sequence[int],
    normaliser: str = "union",
) -> DiffusionIndex:
    r"""Eq. 1: mean percentage change of the relative centroid distance, over ``similar`` and ``dissimilar``.

    ``centroids_t0`` / ``centroids_t1``: (C, D) class centroids of the student distilled at :math:`T_0` and
    :math:`T_1` (same class order; D may differ, e.g. two architectures). ``normaliser="union"`` (default, see
    the module docstring) divides by the sum of distances to :math:`S_s \cup S_d`; ``"per_set"`` divides each
    set by its own sum, which makes a one-class set's index identically 0 and is therefore refused for it.
    """
    if normaliser not in NORMALISERS:
        raise ValueError(f"unknown normaliser {normaliser!r}; choose one of: {', '.join(NORMALISERS)}")
    c0 = _check_centroids(centroids_t0, "centroids_t0")
    c1 = _check_centroids(centroids_t1, "centroids_t1")
    if c0.shape[0] != c1.shape[0]:
        raise ValueError(f"centroids_t0 has {c0.shape[0]} classes but centroids_t1 has {c1.shape[0]}")
    t = _check_class(target, c0.shape[0], "target")
    sim = _check_set(similar, c0.shape[0], t, "similar")
    dis = _check_set(dissimilar, c0.shape[0], t, "dissimilar")
    overlap = sorted(set(sim) & set(dis))
    if overlap:
        raise ValueError(f"classes {overlap} are in both the similar and the dissimilar set")
    if normaliser == "union":
        ref = sim + dis
        d0, d1 = relative_distances(c0, t, ref), relative_distances(c1, t, ref)
        eta_s, eta_d = _mean_pct_change(d0, d1, sim), _mean_pct_change(d0, d1, dis)
    else:
        for name, members in (("similar", sim), ("dissimilar", dis)):
            if len(members) < 2:
                raise ValueError(f"normaliser='per_set' needs >= 2 classes in the {name} set (a single class's "
                                 f"relative distance is 1 at every temperature), got {list(members)}")
        eta_s = _mean_pct_change(relative_distances(c0, t, sim), relative_distances(c1, t, sim), sim)
        eta_d = _mean_pct_change(relative_distances(c0, t, dis), relative_distances(c1, t, dis), dis)
    return DiffusionIndex(t, sim, dis, eta_s, eta_d, normaliser)


def diffusion_table(
    centroids_t0: torch.Tensor,
    centroids_t1: torch.Tensor,
    sets: Mapping[int, tuple[Sequence[int], Sequence[int]]],
    normaliser: str = "union",
) -> list[DiffusionIndex]:
    """:func:`diffusion_index` for every target in ``sets`` ({target: (similar, dissimilar)}), as Table 3.

    ``sets`` typically comes from ``kdutils.chapters.ls_kd.semantic_groups.SemanticGroups.all_sets()`` (method 1) or from
    nearest / farthest centroids (method 2).
    """
    if not sets:
        raise ValueError("sets is empty: no target class to compute a diffusion index for")
    return [diffusion_index(centroids_t0, centroids_t1, t, sim, dis, normaliser) for t, (sim, dis) in sets.items()]
