"""Stanton et al. (NeurIPS 2021), "Does knowledge distillation really work?": the chapter's recipes and arms.

SKELETON: configurations only. Nothing here trains; the runner cannot yet train these students (see "Missing"
below), the chapter is not in the book's table of contents, and no record exists.

What the chapter runs (claim numbers as in issue 9 and book/does_kd_work.md):

1. self-distillation fidelity: PreResNet teacher -> same-architecture student, pure KD, tau = 4;
2. teacher ensembles of 1, 3, 5 members (the student fits the mean of their probabilities);
3. distillation-data policies: none, crop/flip, MixUp at tau 1 and 4, Gaussian noise, OOD images;
4. data recycling: teachers trained on one half of the training set, students distilled on that half
   ("recycled") or on the other ("new");
5. train agreement vs. distillation-set size (fractions of the training set), without and with augmentation;
6. near-teacher initialisation theta = r theta_random + (1 - r) theta_teacher, BN recomputed, lr scaled by r.

Conventions: kdutils' ``alpha`` weights the KD term, so pure distillation (the authors' alpha = 0) is
``alpha = 1``. The authors' student recipe (SGD + Nesterov, lr 5e-2, weight decay 1e-4, cosine, 300 epochs,
batch 128) and teacher recipe (lr 0.1, batch 256, 200 epochs) are the ``full`` profile. Fashion-MNIST is the
main data set (CIFAR-100 is not on these machines; ``dataset="cifar100"`` switches to it), MNIST with LeNet-5
is the near-saturated case (the paper reports > 99% agreement). Teacher members are seeds 0..4 of the teacher
config; an ensemble of size k uses members 0..k-1, and student seeds vary the student only (paired design).

Deviations, to be listed in the chapter: 28x28 grey images instead of 32x32 colour; crop padding 2 on 28x28;
OOD images are MNIST digits (Fashion-MNIST teacher) instead of SVHN; no GAN policy; the MixUp alpha (1.0) and
the noise std (0.1 on [0, 1] pixels) are our choices (not found in the poster); BN statistics are recomputed
with a cumulative average instead of momentum 0.1; the r = 0 point (the teacher itself) is not trained.

Missing before the chapter can run: the runner must (a) parse policy strings with
`kdutils.fidelity.parse_policy` instead of `device_loader.parse_augment`, (b) build an `EnsembleTeacher` from
several teacher records, (c) start a student from `interpolate_init`, (d) add OOD images to the distillation
set, (e) record `fidelity_on_loader` (train) and `fidelity_of_models` (test) next to the usual metrics, and
(f) pick each arm's lr on the validation split from ``Recipe.student_lrs``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from ..config import DataConfig, RunConfig, TrainConfig, config_hash
from ..fidelity.interpolation import check_ratio
from ..fidelity.policies import parse_policy
from ..profiles import check_profile

EXPERIMENT = "does_kd_work"
ALPHA = 1.0  # pure distillation (the authors' alpha = 0)
TAU = 4.0
DATASETS = ("fashion_mnist", "mnist", "cifar100")
CLAIMS = (1, 2, 3, 4, 5, 6)

#: The poster's numbers (Stanton et al. 2021): ensemble table (size: teacher acc, student acc, agreement, KL).
PAPER_ENSEMBLES = {
    "imagenet": {1: (74.8, 75.3, 85.5, 0.217), 3: (76.4, 75.5, 87.8, 0.157), 5: (76.7, 75.6, 88.4, 0.142)},
    "imdb": {1: (79.361, 80.353, 86.488, 0.124), 3: (81.807, 81.129, 89.832, 0.064),
             5: (82.216, 81.167, 90.793, 0.052)},
}
#: Headline fidelity figures quoted in the poster / notes (CIFAR-100 PreResNet-56, MNIST LeNet-5).
PAPER_AGREEMENT = {"cifar100_best_policy_mixup_t4": 85.0, "mnist_lenet5_min": 99.0}

#: Out-of-distribution images per main data set (None: not available here, the arm is skipped).
OOD_DATASET = {"fashion_mnist": "mnist", "mnist": "fashion_mnist", "cifar100": None}


@dataclass(frozen=True)
class Policy:
    """A distillation-data policy: an augmentation string (``{crop}`` is filled per data set), tau, OOD data."""

    augment: str
    tau: float = TAU
    ood: bool = False

    def augment_for(self, crop: int) -> str:
        return self.augment.format(crop=crop)


POLICIES: dict[str, Policy] = {
    "none": Policy("none"),
    "crop_flip": Policy("crop{crop}+flip"),
    "mixup_t1": Policy("crop{crop}+flip+mixup1", tau=1.0),
    "mixup_t4": Policy("crop{crop}+flip+mixup1", tau=4.0),
    "noise": Policy("noise0.1"),
    "ood": Policy("crop{crop}+flip", ood=True),
}
BASE_POLICY = "crop_flip"  # the authors' default augmentation; claims 1, 2, 4 and 6 use it


@dataclass(frozen=True)
class Recipe:
    """One profile's scale for one data set. ``widths=None`` keeps the architecture's default widths."""

    dataset: str
    teacher_model: str
    student_model: str
    widths: tuple[int, ...] | None
    n_train: int | None
    n_test: int | None
    val_size: int
    batch_size: int
    teacher_epochs: int
    teacher_lr: float
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

    @property
    def n_members(self) -> int:
        return max(self.ensemble_sizes)


def _recipe(profile: str, dataset: str) -> Recipe:
    """The scale of each profile. cpu sizes are a first guess to be calibrated with `sample_passes` and a
    throughput measurement (PreResNet-8 ran about 280 images/s per contended core here)."""
    crop = 4 if dataset == "cifar100" else 2
    policies = tuple(p for p in POLICIES if not (POLICIES[p].ood and OOD_DATASET[dataset] is None))
    if dataset == "mnist":  # the near-saturated LeNet-5 check
        base = dict(teacher_model="lenet5", student_model="lenet5", widths=None)
    elif profile == "full":
        base = dict(teacher_model="preresnet56", student_model="preresnet56", widths=None)
    else:
        base = dict(teacher_model="preresnet8", student_model="preresnet8", widths=None)
    if profile == "smoke":
        return Recipe(dataset=dataset, **base, n_train=256, n_test=256, val_size=64, batch_size=64,
                      teacher_epochs=1, teacher_lr=0.1, teacher_batch_size=64, student_epochs=1,
                      student_lrs=(0.05,), weight_decay=1e-4, seeds=(0,), ensemble_sizes=(1, 3),
                      policies=policies, rs=(0.5, 1.0), distill_fractions=(0.5, 1.0), n_ood=64, crop=crop)
    if profile == "cpu":
        return Recipe(dataset=dataset, **base, n_train=3000, n_test=2000, val_size=500, batch_size=128,
                      teacher_epochs=15, teacher_lr=0.1, teacher_batch_size=128, student_epochs=10,
                      student_lrs=(0.03, 0.1), weight_decay=1e-4, seeds=(0, 1, 2),
                      ensemble_sizes=(1, 3, 5), policies=policies, rs=(0.1, 0.25, 0.5, 1.0),
                      distill_fractions=(0.25, 0.5, 1.0), n_ood=2000, crop=crop)
    return Recipe(dataset=dataset, **base, n_train=None, n_test=None, val_size=5000, batch_size=128,
                  teacher_epochs=200, teacher_lr=0.1, teacher_batch_size=256, student_epochs=300,
                  student_lrs=(0.05,), weight_decay=1e-4, seeds=(0, 1, 2), ensemble_sizes=(1, 3, 5),
                  policies=policies, rs=(0.0625, 0.125, 0.25, 0.5, 0.75, 1.0),
                  distill_fractions=(0.125, 0.25, 0.5, 1.0), n_ood=10000, crop=crop)


def recipe(profile: str, dataset: str = "fashion_mnist") -> Recipe:
    """The recipe of `profile` on `dataset` (one of DATASETS; "cifar100" needs the CIFAR-100 files)."""
    check_profile(profile)
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r} for this chapter; choose one of: {', '.join(DATASETS)}")
    return _recipe(profile, dataset)


# ------------------------------------------------------------------------------------------------- teachers
def teacher_config(profile: str, member: int = 0, dataset: str = "fashion_mnist",
                   half: int | None = None) -> RunConfig:
    """Teacher ensemble member `member` (its seed), trained alone with crop/flip as the authors' teachers.

    ``half`` (0 or 1) trains it on that half of the training split only (claim 4: the other half is "new"
    data); a 2-fold partition's ``fold`` is the held-out half, so training on half h means fold 1 - h.
    """
    r = recipe(profile, dataset)
    if half not in (None, 0, 1):
        raise ValueError(f"half must be None (the whole split), 0 or 1, got {half!r}")
    data = DataConfig(dataset=dataset, n_train=r.n_train, n_test=r.n_test, val_size=r.val_size)
    if half is not None:
        data = replace(data, k_folds=2, fold=1 - half)
    return RunConfig(
        experiment=EXPERIMENT, role="teacher", model=r.teacher_model, profile=profile, seed=member, data=data,
        model_kwargs={} if r.widths is None else {"widths": r.widths},
        train=TrainConfig(epochs=r.teacher_epochs, batch_size=r.teacher_batch_size, optimizer="sgd",
                          lr=r.teacher_lr, momentum=0.9, nesterov=True, weight_decay=r.weight_decay,
                          schedule="cosine", augment=POLICIES[BASE_POLICY].augment_for(r.crop)),
    )


def teacher_configs(profile: str, dataset: str = "fashion_mnist") -> list[RunConfig]:
    """Every teacher the chapter needs: the ensemble members and the two half-data teachers (claim 4)."""
    r = recipe(profile, dataset)
    out = [teacher_config(profile, m, dataset) for m in range(r.n_members)]
    return out + [teacher_config(profile, 0, dataset, half=h) for h in (0, 1)]


# ------------------------------------------------------------------------------------------------- students
@dataclass(frozen=True)
class DistillSpec:
    """One distilled student: plain data whose hash names its record, like `RunConfig.key`."""

    profile: str
    dataset: str
    claim: int
    student_model: str
    teachers: tuple[RunConfig, ...]
    policy: str
    augment: str
    tau: float
    alpha: float = ALPHA
    ood_dataset: str | None = None
    n_ood: int = 0
    distill_fraction: float = 1.0
    distill_data: str = "recycled"  # "recycled" (the teachers' data) or "new" (the other half, claim 4)
    r: float | None = None  # None: random init; else interpolate_init at this r (claim 6)
    epochs: int = 1
    batch_size: int = 128
    lr_candidates: tuple[float, ...] = ()
    weight_decay: float = 0.0
    widths: tuple[int, ...] | None = None
    seed: int = 0
    experiment: str = EXPERIMENT

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose one of: {', '.join(POLICIES)}")
        parse_policy(self.augment)  # fails loudly on a bad augmentation string
        if not self.teachers:
            raise ValueError("a distilled student needs at least one teacher")
        if self.distill_data not in ("recycled", "new"):
            raise ValueError(f"distill_data must be 'recycled' or 'new', got {self.distill_data!r}")
        if not 0.0 < self.distill_fraction <= 1.0:
            raise ValueError(f"distill_fraction must be in (0, 1], got {self.distill_fraction!r}")
        if self.r is not None:
            object.__setattr__(self, "r", check_ratio(self.r))
            if self.r == 0.0:
                raise ValueError("r = 0 is the teacher itself (lr scaled to 0): evaluate it, do not train it")

    @property
    def ensemble_size(self) -> int:
        return len(self.teachers)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> str:
        return config_hash(self.to_dict())


def _spec(profile: str, dataset: str, claim: int, seed: int, *, policy: str = BASE_POLICY, members: int = 1,
          half: int | None = None, **changes: Any) -> DistillSpec:
    r = recipe(profile, dataset)
    pol = POLICIES[policy]
    teachers = tuple(teacher_config(profile, m, dataset, half=half) for m in range(members))
    ood = OOD_DATASET[dataset] if pol.ood else None
    return DistillSpec(profile=profile, dataset=dataset, claim=claim, student_model=r.student_model,
                       teachers=teachers, policy=policy, augment=pol.augment_for(r.crop), tau=pol.tau,
                       ood_dataset=ood, n_ood=r.n_ood if ood else 0, epochs=r.student_epochs,
                       batch_size=r.batch_size, lr_candidates=r.student_lrs, weight_decay=r.weight_decay,
                       widths=r.widths, seed=seed, **changes)


def claim_specs(claim: int, profile: str, dataset: str = "fashion_mnist") -> list[DistillSpec]:
    """The distilled students of one claim (1-6); see the module docstring."""
    r = recipe(profile, dataset)
    seeds = r.seeds
    if claim == 1:
        return [_spec(profile, dataset, 1, s) for s in seeds]
    if claim == 2:
        return [_spec(profile, dataset, 2, s, members=k) for k in r.ensemble_sizes for s in seeds]
    if claim == 3:
        return [_spec(profile, dataset, 3, s, policy=p) for p in r.policies for s in seeds]
    if claim == 4:
        return [_spec(profile, dataset, 4, s, half=0, distill_data=d) for d in ("recycled", "new") for s in seeds]
    if claim == 5:
        return [_spec(profile, dataset, 5, s, policy=p, distill_fraction=f)
                for p in ("none", "mixup_t4") for f in r.distill_fractions for s in seeds]
    if claim == 6:
        return [_spec(profile, dataset, 6, s, policy="none", r=rr) for rr in r.rs if rr > 0 for s in seeds]
    raise ValueError(f"unknown claim {claim!r}; choose one of: {', '.join(map(str, CLAIMS))}")


def student_config(profile: str, seed: int = 0, dataset: str = "fashion_mnist") -> RunConfig:
    """The student trained alone on hard labels (the baseline of claims 1 and 2), with the base policy."""
    r = recipe(profile, dataset)
    teacher = teacher_config(profile, 0, dataset)
    return teacher.with_(role="student", model=r.student_model, seed=seed,
                         train=replace(teacher.train, epochs=r.student_epochs, batch_size=r.batch_size,
                                       lr=r.student_lrs[len(r.student_lrs) // 2]))


def grid(profile: str, dataset: str = "fashion_mnist") -> list[DistillSpec]:
    """Every distilled student of the chapter, each once (claims share arms: the first claim keeps it)."""
    seen: dict[str, DistillSpec] = {}
    for claim in CLAIMS:
        for spec in claim_specs(claim, profile, dataset):
            key = config_hash({k: v for k, v in spec.to_dict().items() if k != "claim"})
            seen.setdefault(key, spec)
    return list(seen.values())


def sample_passes(profile: str, dataset: str = "fashion_mnist") -> int:
    """Training images processed by the whole chapter (teachers, students alone, distilled students, one
    pass per lr candidate), to size the cpu profile: divide by a measured images/s to get seconds. Teacher
    forwards on augmented batches (every policy but "none") add roughly a third of a student step on top."""
    r = recipe(profile, dataset)
    n = (r.n_train or {"cifar100": 50000}.get(dataset, 60000)) - r.val_size
    total = sum(t.train.epochs * (n // 2 if t.data.fold is not None else n) for t in teacher_configs(profile, dataset))
    total += len(r.seeds) * r.student_epochs * n * len(r.student_lrs)
    for spec in grid(profile, dataset):
        size = (n // 2 if spec.teachers[0].data.fold is not None else n) * spec.distill_fraction + spec.n_ood
        total += int(size) * spec.epochs * len(spec.lr_candidates)
    return total


__all__ = ["ALPHA", "BASE_POLICY", "CLAIMS", "DATASETS", "DistillSpec", "EXPERIMENT", "OOD_DATASET",
           "PAPER_AGREEMENT", "PAPER_ENSEMBLES", "POLICIES", "Policy", "Recipe", "TAU", "claim_specs", "grid",
           "recipe", "sample_passes", "student_config", "teacher_config", "teacher_configs"]
