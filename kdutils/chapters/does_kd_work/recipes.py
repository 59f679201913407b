"""Stanton et al.: the chapter's recipes (one per profile, data set and recipe version) and its data policies.

Why versions: a recipe's values flow into every run config, so a new recipe gives new record keys and the old
records stay valid under their own recipe. The `cpu` profile has two versions:

- ``v1`` (recorded): 4,000 Fashion-MNIST images, teachers 10 epochs (310 SGD steps, about 80% final training
  accuracy: not converged), students 15, three seeds, one learning rate per policy family, LeNet-5 on MNIST with
  the Fashion-MNIST recipe's horizontal flips.
- ``v2`` (issue 23): teachers trained 120 epochs with a cosine schedule, so that their recorded history can pass
  the convergence gate; five student seeds for the policy and set-size claims; one learning rate chosen per
  policy; the whole test set; LeNet-5 on MNIST without flips, plus students given extra unlabelled MNIST
  images (the poster's "alpha = 0, add unlabelled examples").

- ``v3``: v2's runs (the same record keys), with each learning-rate grid extended past an edge where the
  choice sits at it (`Recipe.max_extensions`, `kdutils.sweeps.tuning.extend_at_edges`); an arm whose choice
  moves trains its runs anew at the new rate.

The book reads the newest version whose runs are all recorded (`plan.active_version`); `schedule.run_all`
trains the newest version. ``smoke`` and ``full`` have one version each (no committed records).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TypedDict

from kdutils.store.profiles import capped, check_profile

EXPERIMENT = "does_kd_work"
ALPHA = 1.0  # pure distillation (the authors' alpha = 0)
TAU = 4.0
DATASETS = ("fashion_mnist", "mnist", "cifar100")

#: The poster's numbers (Stanton et al. 2021): ensemble table (size: teacher acc, student acc, agreement, KL).
PAPER_ENSEMBLES = {
    "imagenet": {1: (74.8, 75.3, 85.5, 0.217), 3: (76.4, 75.5, 87.8, 0.157), 5: (76.7, 75.6, 88.4, 0.142)},
    "imdb": {1: (79.361, 80.353, 86.488, 0.124), 3: (81.807, 81.129, 89.832, 0.064),
             5: (82.216, 81.167, 90.793, 0.052)},
}
#: The poster's fidelity figure for the best policy (MixUp tau = 4 on CIFAR-100). The poster gives no number
#: for MNIST/LeNet-5, so the chapter quotes none.
PAPER_AGREEMENT = {"cifar100_best_policy_mixup_t4": 85.0}

#: Out-of-distribution images per main data set (None: not available here, the arm is skipped).
OOD_DATASET = {"fashion_mnist": "mnist", "mnist": "fashion_mnist", "cifar100": None}


@dataclass(frozen=True)
class Policy:
    """A distillation-data policy: an augmentation string (``{aug}`` is the data set's base augmentation:
    crop, plus a horizontal flip where flips keep the class), tau, OOD data."""

    augment: str
    tau: float = TAU
    ood: bool = False

    def augment_for(self, crop: int, flip: bool = True) -> str:
        return self.augment.format(aug=f"crop{crop}+flip" if flip else f"crop{crop}")


POLICIES: dict[str, Policy] = {
    "none": Policy("none"),
    "crop_flip": Policy("{aug}"),
    "mixup_t1": Policy("{aug}+mixup1", tau=1.0),
    "mixup_t4": Policy("{aug}+mixup1", tau=4.0),
    "noise": Policy("noise0.1"),
    "ood": Policy("{aug}", ood=True),
}
BASE_POLICY = "crop_flip"  # the authors' default augmentation; claims 1, 2 and 4 use it

#: Narrow PreResNet-8 of the cpu profile: (stem, stage1, stage2, stage3) planes, half the authors' widths.
CPU_WIDTHS = (8, 8, 16, 32)
V1_NOTES = ("4,000 training images, teachers 10 epochs, students 15 (the authors' 300:200 ratio), planned at "
            "about 50 minutes of one thread for the whole chapter, lr selection included; the teachers did not "
            "converge at this length")
V2_NOTES = ("teachers 120 epochs (cosine) so that their recorded training accuracy can level off, students "
            "20 epochs (the authors' 300:200 ratio is not affordable here), 4,000 training images (students "
            "dominate the cost: about 100 of them), sized from the recorded per-epoch times of v1 at about "
            "3 core-hours (`python -m kdutils run does_kd_work --set dry_run True`)")

V3_NOTES = ("recipe v2's runs, with every learning-rate grid whose choice sits at an edge extended past it (up to "
            "two rates, a factor 2 apart): v2 chose five rates at an edge of a three-rate grid")
VERSIONS = {"smoke": ("v2",), "cpu": ("v1", "v2", "v3"), "gpu": ("v2",), "full": ("v2",)}


def latest(profile: str) -> str:
    """The newest recipe version of `profile` (what `run_all` trains)."""
    return VERSIONS[check_profile(profile)][-1]


@dataclass(frozen=True)
class Recipe:
    """One profile's scale for one data set. ``widths=None`` keeps the architecture's default widths.
    ``policy_seeds`` are the student seeds of claims 3 and 5 (``seeds`` for the rest); ``lr_per_policy``
    chooses a rate per policy (else per family, v1); ``unlabelled`` the extra unlabelled image counts of the
    alpha = 0 arm (claim 7; empty: no arm)."""

    dataset: str
    teacher_model: str
    student_model: str
    widths: tuple[int, ...] | None
    n_train: int | None
    n_test: int | None
    val_size: int
    batch_size: int
    teacher_epochs: int
    teacher_lrs: tuple[float, ...]  # candidates; the teacher's lr is chosen on the validation split
    teacher_batch_size: int
    student_epochs: int
    student_lrs: tuple[float, ...]  # candidates; each arm's lr is chosen on the validation split
    weight_decay: float
    seeds: tuple[int, ...]
    ensemble_sizes: tuple[int, ...]
    policies: tuple[str, ...]
    rs: tuple[float, ...]
    distill_fractions: tuple[float, ...]
    n_ood: int
    crop: int
    notes: str = field(default="", compare=False)
    version: str = "v1"
    flip: bool = True
    policy_seeds: tuple[int, ...] = ()
    lr_per_policy: bool = False
    unlabelled: tuple[int, ...] = ()
    max_extensions: int = 0  # rates added past a grid edge where the choice sits at it (v3)
    extend_factor: float = 2.0

    @property
    def n_members(self) -> int:
        return max(self.ensemble_sizes)

    @property
    def seeds_3_5(self) -> tuple[int, ...]:
        """The student seeds of claims 3 and 5 (five in v2, to narrow their intervals)."""
        return self.policy_seeds or self.seeds

    def augment(self, policy: str) -> str:
        return POLICIES[policy].augment_for(self.crop, self.flip)


class _Architecture(TypedDict):
    """The models of a recipe (spread into `Recipe`)."""

    teacher_model: str
    student_model: str
    widths: tuple[int, ...] | None


class _MnistArchitecture(_Architecture):
    """LeNet-5 on MNIST: the models, without flips."""

    flip: bool


class _Common(TypedDict):
    """The fields every v2 recipe shares (spread into `Recipe`)."""

    version: str
    lr_per_policy: bool
    crop: int
    policies: tuple[str, ...]


def _v1(profile: str, dataset: str) -> Recipe:
    """The recorded cpu recipe (unchanged: its values name the v1 records)."""
    crop = 2
    policies = tuple(p for p in POLICIES if not (POLICIES[p].ood and OOD_DATASET[dataset] is None))
    base = _Architecture(teacher_model="preresnet8", student_model="preresnet8", widths=CPU_WIDTHS)
    r = Recipe(dataset=dataset, **base, n_train=4000, n_test=2000, val_size=1000, batch_size=128,
               teacher_epochs=10, teacher_lrs=(0.05, 0.1, 0.2, 0.4), teacher_batch_size=128, student_epochs=15,
               student_lrs=(0.025, 0.05, 0.1), weight_decay=1e-4, seeds=(0, 1, 2), ensemble_sizes=(1, 3, 5),
               policies=policies, rs=(0.1, 0.25, 1.0), distill_fractions=(0.25, 1.0), n_ood=1000, crop=crop,
               notes=V1_NOTES)
    if dataset == "mnist":  # LeNet-5 stalls at chance under KD from 0.05 up: lower grid
        r = replace(r, teacher_model="lenet5", student_model="lenet5", widths=None,
                    student_lrs=(0.005, 0.01, 0.025, 0.05))
    return r


def _v2(profile: str, dataset: str) -> Recipe:
    crop = 4 if dataset == "cifar100" else 2
    policies = tuple(p for p in POLICIES if not (POLICIES[p].ood and OOD_DATASET[dataset] is None))
    mnist = dataset == "mnist"
    base: _Architecture | _MnistArchitecture
    if mnist:  # the near-saturated LeNet-5 check, without flips (a flipped digit is another digit)
        base = _MnistArchitecture(teacher_model="lenet5", student_model="lenet5", widths=None, flip=False)
    elif profile == "full":
        base = _Architecture(teacher_model="preresnet56", student_model="preresnet56", widths=None)
    elif profile == "gpu":  # the authors' architecture family at depth 20, default widths
        base = _Architecture(teacher_model="preresnet20", student_model="preresnet20", widths=None)
    else:
        base = _Architecture(teacher_model="preresnet8", student_model="preresnet8", widths=CPU_WIDTHS)
    common = _Common(version="v2", lr_per_policy=True, crop=crop, policies=policies)
    if profile == "smoke":
        return Recipe(dataset=dataset, **base, **common, n_train=256, n_test=256, val_size=64, batch_size=64,
                      teacher_epochs=1, teacher_lrs=(0.1,), teacher_batch_size=64, student_epochs=1,
                      student_lrs=(0.05,), weight_decay=1e-4, seeds=(0, 1), policy_seeds=(0, 1, 2),
                      ensemble_sizes=(1, 3), rs=(0.5, 1.0), distill_fractions=(0.5, 1.0), n_ood=64,
                      unlabelled=(64,) if mnist else (), notes="seconds, for the tests: 256 training images")
    if profile == "gpu":
        return Recipe(dataset=dataset, **base, **common, n_train=None, n_test=None, val_size=5000, batch_size=512,
                      teacher_epochs=4, teacher_lrs=(0.2, 0.4) if not mnist else (0.05, 0.1), teacher_batch_size=512,
                      student_epochs=4, student_lrs=(0.1, 0.2) if not mnist else (0.01, 0.025), weight_decay=1e-4,
                      seeds=(0, 1, 2, 3), policy_seeds=(0, 1, 2, 3, 4, 5), ensemble_sizes=(1, 3, 5),
                      rs=(0.1, 0.25, 1.0), distill_fractions=(0.25, 1.0), n_ood=5000,
                      unlabelled=(10000, 40000) if mnist else (),
                      notes="sized for minutes of one H200 (`python -m kdutils gpu`): PreResNet-20 (LeNet-5 on "
                            "MNIST) on all training images, teachers and students 4 epochs at batch 512, 4 seeds "
                            "(cpu: 3) and 6 for claims 3 and 5 (cpu: 5)")
    if profile == "cpu":
        r = Recipe(dataset=dataset, **base, **common, n_train=4000, n_test=None, val_size=1000, batch_size=128,
                   teacher_epochs=120, teacher_lrs=(0.05, 0.1, 0.2), teacher_batch_size=128, student_epochs=20,
                   student_lrs=(0.025, 0.05, 0.1), weight_decay=1e-4, seeds=(0, 1, 2),
                   policy_seeds=(0, 1, 2, 3, 4), ensemble_sizes=(1, 3, 5), rs=(0.1, 0.25, 1.0),
                   distill_fractions=(0.25, 1.0), n_ood=1000, notes=V2_NOTES)
        if mnist:  # LeNet-5: v1 stalled at chance from 0.2 (teacher) and 0.05 (students) up
            r = replace(r, teacher_epochs=60, teacher_lrs=(0.025, 0.05, 0.1), student_lrs=(0.005, 0.01, 0.025),
                        unlabelled=(10000, 40000),
                        notes="LeNet-5 on MNIST, no flips: teachers 60 epochs, students 20; the alpha = 0 arm adds "
                              "10,000 or 40,000 unlabelled training images the teacher never saw")
        return r
    return Recipe(dataset=dataset, **base, **common, n_train=None, n_test=None, val_size=5000, batch_size=128,
                  teacher_epochs=200, teacher_lrs=(0.1,), teacher_batch_size=256, student_epochs=300,
                  student_lrs=(0.05,), weight_decay=1e-4, seeds=(0, 1, 2), policy_seeds=(0, 1, 2, 3, 4),
                  ensemble_sizes=(1, 3, 5), rs=(0.0625, 0.125, 0.25, 0.5, 0.75, 1.0),
                  distill_fractions=(0.125, 0.25, 0.5, 1.0), n_ood=10000, unlabelled=(40000,) if mnist else (),
                  notes="the authors' recipe (teachers 200 epochs at lr 0.1, students 300 epochs at 5e-2), meant "
                        "for a GPU; no lr grid (the authors' rates)")


def recipe(profile: str, dataset: str = "fashion_mnist", version: str | None = None) -> Recipe:
    """The recipe of `profile` on `dataset` (one of DATASETS; "cifar100" needs the CIFAR-100 files) at recipe
    `version` (None: the newest, see `VERSIONS`)."""
    check_profile(profile)
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r} for this chapter; choose one of: {', '.join(DATASETS)}")
    version = latest(profile) if version is None else version
    if version not in VERSIONS[profile]:
        raise ValueError(f"unknown recipe version {version!r} for profile {profile!r}; choose one of: "
                         f"{', '.join(VERSIONS[profile])}")
    r = _v1(profile, dataset) if version == "v1" else _v2(profile, dataset)
    if version == "v3":  # the same runs as v2 (the version is in no run's key), grids extended at their edges
        r = replace(r, version="v3", max_extensions=2, notes=f"{r.notes}; v3: {V3_NOTES}")
    # the GPU script's budget may run the first seeds only (`seed_cap`); the runs themselves do not change
    return replace(r, seeds=capped(r.seeds), policy_seeds=capped(r.policy_seeds))


__all__ = ["ALPHA", "BASE_POLICY", "CPU_WIDTHS", "DATASETS", "EXPERIMENT",
           "OOD_DATASET", "PAPER_AGREEMENT", "PAPER_ENSEMBLES",
           "POLICIES", "Policy", "Recipe", "TAU", "VERSIONS", "latest", "recipe"]
