"""Similar / dissimilar class sets for the diffusion index (Chandrasegaran et al. 2022, Supplementary G).

Two definitions, compared by :func:`agreement_table` as the paper's Table G.1 does:

* method 1, a prior: hand-made semantic groups (:data:`FASHION_MNIST`, :data:`MNIST`, :data:`CIFAR100`);
  a target's similar set is the rest of its group, its dissimilar set every class outside the group;
* method 2, data: the nearest / farthest class centroids of a trained model (:func:`nearest_farthest_sets`).

Groups marked *residual* are leftovers that share no meaning (Fashion-MNIST's trouser, dress, bag); their
classes are never targets, but they do count as dissimilar for targets of the other groups.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral
from typing import Sequence

import torch

from kdutils.chapters.ls_kd.diffusion import centroid_distances

__all__ = [
    "SemanticGroups",
    "FASHION_MNIST",
    "MNIST",
    "CIFAR100",
    "CIFAR100_FINE_NAMES",
    "CIFAR100_COARSE_OF_FINE",
    "semantic_groups",
    "nearest_farthest_sets",
    "set_agreement",
    "SetAgreement",
    "agreement_table",
    "mean_agreement",
]


@dataclass(frozen=True)
class SemanticGroups:
    """A partition of a dataset's classes into named groups, with the reason for the choice."""

    dataset: str
    class_names: tuple[str, ...]
    groups: dict[str, tuple[int, ...]]
    residual: tuple[str, ...] = ()
    rationale: str = ""
    _group_of: dict[int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.class_names)
        seen: dict[int, str] = {}
        for name, members in self.groups.items():
            for c in members:
                if isinstance(c, bool) or not isinstance(c, Integral) or not 0 <= c < n:
                    raise ValueError(f"group {name!r} has {c!r}, not a class index in 0..{n - 1}")
                if c in seen:
                    raise ValueError(f"class {c} ({self.class_names[c]}) is in groups {seen[c]!r} and {name!r}")
                seen[c] = name
        missing = sorted(set(range(n)) - set(seen))
        if missing:
            raise ValueError(f"classes {missing} belong to no group; the groups must partition all {n} classes")
        unknown = sorted(set(self.residual) - set(self.groups))
        if unknown:
            raise ValueError(f"residual names unknown groups {unknown}; groups are {sorted(self.groups)}")
        object.__setattr__(self, "_group_of", seen)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def group_of(self, cls: int) -> str:
        """Name of the group holding class ``cls``."""
        if cls not in self._group_of:
            raise ValueError(f"class must be in 0..{self.num_classes - 1}, got {cls!r}")
        return self._group_of[cls]

    def targets(self) -> tuple[int, ...]:
        """Classes that can be diffusion targets: members of a non-residual group with a partner."""
        return tuple(
            c for c in range(self.num_classes)
            if self.group_of(c) not in self.residual and len(self.groups[self.group_of(c)]) >= 2
        )

    def sets(self, target: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(similar, dissimilar) for ``target``: its group's other members, and every class outside the group."""
        group = self.group_of(target)
        if target not in self.targets():
            why = "is a residual group" if group in self.residual else "has no other member"
            raise ValueError(f"class {target} ({self.class_names[target]}) cannot be a target: its group "
                             f"{group!r} {why}; targets are {list(self.targets())}")
        members = self.groups[group]
        similar = tuple(c for c in members if c != target)
        dissimilar = tuple(c for c in range(self.num_classes) if c not in members)
        return similar, dissimilar

    def all_sets(self) -> dict[int, tuple[tuple[int, ...], tuple[int, ...]]]:
        """{target: (similar, dissimilar)} for every target, the input of ``diffusion.diffusion_table``."""
        return {t: self.sets(t) for t in self.targets()}


# ----------------------------------------------------------------------------------------------- datasets
FASHION_MNIST = SemanticGroups(
    dataset="fashion_mnist",
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"),
    groups={"tops": (0, 2, 4, 6), "footwear": (5, 7, 9), "rest": (1, 3, 8)},
    residual=("rest",),
    rationale="Garments worn on the upper body and shoes form the two groups with a shared meaning (and "
    "shared silhouettes); trouser, dress and bag are left over. Dress is the debatable dissimilar class for "
    "tops targets (it shares their outline), which the nearest-centroid check (method 2) measures.",
)

MNIST = SemanticGroups(
    dataset="mnist",
    class_names=tuple(str(i) for i in range(10)),
    groups={"hooked": (4, 7, 9), "stacked_curves": (3, 5, 8), "loops": (0, 6), "rest": (1, 2)},
    residual=("rest",),
    rationale="Digits have no semantic hierarchy, so similarity here means shared stroke structure, chosen "
    "before looking at any model: 4, 7 and 9 are a descending stroke under a closed or open top (4-9 and 7-9 "
    "are classic confusions), 3, 5 and 8 are stacked right-facing curves (3-5, 5-8, 3-8), 0 and 6 close a "
    "loop at the bottom. 1 and 2 are left over. Whether trained models agree is what method 2 measures.",
)

#: CIFAR-100 fine label names, in label order (the dataset's ``meta`` file, ``fine_label_names``).
CIFAR100_FINE_NAMES: tuple[str, ...] = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl",
    "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair",
    "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin",
    "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp",
    "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck",
    "pine_tree", "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television",
    "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf",
    "woman", "worm",
)

#: The 20 superclasses (``coarse_label_names`` order) and their five fine classes, as published with CIFAR-100.
_CIFAR100_SUPERCLASSES: dict[str, tuple[str, ...]] = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}

_FINE_INDEX = {name: i for i, name in enumerate(CIFAR100_FINE_NAMES)}

CIFAR100 = SemanticGroups(
    dataset="cifar100",
    class_names=CIFAR100_FINE_NAMES,
    groups={sc: tuple(sorted(_FINE_INDEX[f] for f in fines)) for sc, fines in _CIFAR100_SUPERCLASSES.items()},
    rationale="The dataset's own 20 coarse superclasses (5 fine classes each), the analogue of the paper's "
    "WordNet prior for ImageNet.",
)

#: Coarse label (0..19, ``coarse_label_names`` order) of each fine label: ``CIFAR100_COARSE_OF_FINE[fine]``.
CIFAR100_COARSE_OF_FINE: tuple[int, ...] = tuple(
    list(_CIFAR100_SUPERCLASSES).index(CIFAR100.group_of(f)) for f in range(100)
)

_BY_DATASET = {g.dataset: g for g in (FASHION_MNIST, MNIST, CIFAR100)}


def semantic_groups(dataset: str) -> SemanticGroups:
    """The semantic groups of a dataset by its kdutils name ("fashion_mnist", "mnist", "cifar100")."""
    if dataset not in _BY_DATASET:
        raise ValueError(f"no semantic groups for dataset {dataset!r}; available: {', '.join(sorted(_BY_DATASET))}")
    return _BY_DATASET[dataset]


# ----------------------------------------------------------------------------------------------- method 2
def nearest_farthest_sets(
    centroids: torch.Tensor, target: int, n_similar: int, n_dissimilar: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Supplementary G method 2: the ``n_similar`` classes whose centroids are nearest the target's and the
    ``n_dissimilar`` farthest. Ties are broken by class index, so the result is deterministic.

    The paper takes the nearest 1% and farthest 90% of ImageNet's 999 other classes; with 10 classes that
    would make the dissimilar set nearly everything, so callers choose the sizes (``agreement_table`` uses the
    semantic sets' own sizes by default).
    """
    dist = centroid_distances(centroids)
    n = dist.shape[0]
    if isinstance(target, bool) or not isinstance(target, Integral) or not 0 <= target < n:
        raise ValueError(f"target must be a class index in 0..{n - 1}, got {target!r}")
    others = [c for c in range(n) if c != target]
    for name, k in (("n_similar", n_similar), ("n_dissimilar", n_dissimilar)):
        if isinstance(k, bool) or not isinstance(k, Integral) or not 1 <= k <= len(others):
            raise ValueError(f"{name} must be an int in 1..{len(others)}, got {k!r}")
    if n_similar + n_dissimilar > len(others):
        raise ValueError(f"n_similar + n_dissimilar = {n_similar + n_dissimilar} exceeds the {len(others)} "
                         f"other classes, so the two sets would overlap")
    row = dist[target].tolist()
    by_near = sorted(others, key=lambda c: (row[c], c))
    by_far = sorted(others, key=lambda c: (-row[c], c))
    return tuple(by_near[:n_similar]), tuple(by_far[:n_dissimilar])


def set_agreement(reference: Sequence[int], other: Sequence[int]) -> float:
    """Fraction of ``reference`` that ``other`` also contains (Table G.1: |S^1 & S^2| / |S^1|)."""
    ref = set(reference)
    if not ref:
        raise ValueError("reference set is empty; agreement is undefined")
    return len(ref & set(other)) / len(ref)


@dataclass(frozen=True)
class SetAgreement:
    """One row of the Table G.1 analogue: semantic (method 1) against nearest/farthest (method 2) sets."""

    target: int
    name: str
    similar: tuple[int, ...]
    dissimilar: tuple[int, ...]
    nearest: tuple[int, ...]
    farthest: tuple[int, ...]
    similar_agreement: float
    dissimilar_agreement: float


def agreement_table(
    groups: SemanticGroups,
    centroids: torch.Tensor,
    targets: Sequence[int] | None = None,
    n_similar: int | None = None,
    n_dissimilar: int | None = None,
) -> list[SetAgreement]:
    """Per target: how much of the semantic similar (dissimilar) set is among the nearest (farthest) centroids.

    By default method 2 takes as many classes as method 1 has in each set, which makes a perfect score mean
    "the semantic neighbours are exactly the nearest centroids" (a stricter test than the paper's 1%/90%).
    """
    if centroids.shape[0] != groups.num_classes:
        raise ValueError(f"centroids have {centroids.shape[0]} classes, {groups.dataset} has {groups.num_classes}")
    rows = []
    for t in groups.targets() if targets is None else targets:
        sim, dis = groups.sets(t)
        near, far = nearest_farthest_sets(
            centroids, t, n_similar or len(sim), n_dissimilar or min(len(dis), groups.num_classes - 1 - len(sim))
        )
        rows.append(SetAgreement(t, groups.class_names[t], sim, dis, near, far,
                                 set_agreement(sim, near), set_agreement(dis, far)))
    return rows


def mean_agreement(rows: Sequence[SetAgreement]) -> tuple[float, float]:
    """(mean similar agreement, mean dissimilar agreement) over the rows, as Table G.1's "Average" line."""
    if not rows:
        raise ValueError("no agreement rows to average")
    return (sum(r.similar_agreement for r in rows) / len(rows), sum(r.dissimilar_agreement for r in rows) / len(rows))
