"""Stanton et al. (NeurIPS 2021), "Does knowledge distillation really work?": the chapter's recipes and arms.

The chapter's configurations, lr selection and run order; `kdutils.chapters.does_kd_work.run.run_spec` trains one
distilled student; `claims`, `report` and `figures` turn the records into verdicts, tables and figures.

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

Learning rates (never the test set): the teacher's rate is chosen on held-out training images (val_size)
from ``Recipe.teacher_lrs`` (member 0 at each rate; the chosen run *is* member 0). Students share a rate per
family (`FAMILIES`): "augmented" (every random policy, chosen on the crop/flip student) and "none" (fixed
images, chosen on the "none" student; claim 6 trains at r times it, the authors' scaling). Candidates train on
seed 0 at full length, and the chosen candidate is also that arm's seed-0 final run. The plain model (the
student trained alone) is the teacher recipe itself (same architecture), so its rate is the teacher's.

Run: ``python -m kdutils run does_kd_work --profile cpu`` (`run_all`, resumable, claims in `RUN_ORDER`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from kdutils.chapters.does_kd_work.interpolation import check_ratio
from kdutils.chapters.does_kd_work.policies import parse_policy
from kdutils.config import DataConfig, RunConfig, TrainConfig, config_hash
from kdutils.store.profiles import check_profile
from kdutils.store.store import ResultStore
from kdutils.sweeps.tuning import VAL_METRICS, Selection, choose, load_selection

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
BASE_POLICY = "crop_flip"  # the authors' default augmentation; claims 1, 2 and 4 use it

#: Narrow PreResNet-8 of the cpu profile: (stem, stage1, stage2, stage3) planes, half the authors' widths.
CPU_WIDTHS = (8, 8, 16, 32)
CPU_NOTES = ("sized on a measured throughput of about 1,900 training images/s for the narrow PreResNet-8 on one "
             "thread (a teacher forward adds about 0.33 ms per image, 5 members 1.7 ms): 4,000 training images, "
             "teachers 10 epochs, students 15 (the authors' 300:200 ratio), planned at about 50 minutes of one "
             "thread for the whole chapter, lr selection included (the recorded total, with the discarded first "
             "recipes and the slower shared cores, is larger)")


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

    @property
    def n_members(self) -> int:
        return max(self.ensemble_sizes)


def _recipe(profile: str, dataset: str) -> Recipe:
    """The scale of each profile (see CPU_NOTES for how the cpu profile was sized)."""
    crop = 4 if dataset == "cifar100" else 2
    policies = tuple(p for p in POLICIES if not (POLICIES[p].ood and OOD_DATASET[dataset] is None))
    if dataset == "mnist":  # the near-saturated LeNet-5 check
        base = dict(teacher_model="lenet5", student_model="lenet5", widths=None)
    elif profile == "full":
        base = dict(teacher_model="preresnet56", student_model="preresnet56", widths=None)
    else:
        base = dict(teacher_model="preresnet8", student_model="preresnet8", widths=CPU_WIDTHS)
    if profile == "smoke":
        return Recipe(dataset=dataset, **base, n_train=256, n_test=256, val_size=64, batch_size=64,
                      teacher_epochs=1, teacher_lrs=(0.1,), teacher_batch_size=64, student_epochs=1,
                      student_lrs=(0.05,), weight_decay=1e-4, seeds=(0, 1), ensemble_sizes=(1, 3),
                      policies=policies, rs=(0.5, 1.0), distill_fractions=(0.5, 1.0), n_ood=64, crop=crop,
                      notes="seconds, for the tests: 256 training images, one epoch")
    if profile == "cpu" and dataset == "mnist":  # LeNet-5 stalls at chance under KD from 0.05 up: lower grid
        return replace(_recipe(profile, "fashion_mnist"), dataset=dataset, **base,
                       student_lrs=(0.005, 0.01, 0.025, 0.05))
    if profile == "cpu":
        return Recipe(dataset=dataset, **base, n_train=4000, n_test=2000, val_size=1000, batch_size=128,
                      teacher_epochs=10, teacher_lrs=(0.05, 0.1, 0.2, 0.4), teacher_batch_size=128, student_epochs=15,
                      student_lrs=(0.025, 0.05, 0.1), weight_decay=1e-4, seeds=(0, 1, 2),
                      ensemble_sizes=(1, 3, 5), policies=policies, rs=(0.1, 0.25, 1.0),
                      distill_fractions=(0.25, 1.0), n_ood=1000, crop=crop, notes=CPU_NOTES)
    return Recipe(dataset=dataset, **base, n_train=None, n_test=None, val_size=5000, batch_size=128,
                  teacher_epochs=200, teacher_lrs=(0.1,), teacher_batch_size=256, student_epochs=300,
                  student_lrs=(0.05,), weight_decay=1e-4, seeds=(0, 1, 2), ensemble_sizes=(1, 3, 5),
                  policies=policies, rs=(0.0625, 0.125, 0.25, 0.5, 0.75, 1.0),
                  distill_fractions=(0.125, 0.25, 0.5, 1.0), n_ood=10000, crop=crop,
                  notes="the authors' recipe (teachers 200 epochs at lr 0.1, students 300 epochs at 5e-2), meant "
                        "for a GPU; no lr grid (the authors' rates)")


def recipe(profile: str, dataset: str = "fashion_mnist") -> Recipe:
    """The recipe of `profile` on `dataset` (one of DATASETS; "cifar100" needs the CIFAR-100 files)."""
    check_profile(profile)
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r} for this chapter; choose one of: {', '.join(DATASETS)}")
    return _recipe(profile, dataset)


# ------------------------------------------------------------------------------------------------- teachers
def teacher_config(profile: str, member: int = 0, dataset: str = "fashion_mnist",
                   half: int | None = None, lr: float | None = None) -> RunConfig:
    """Teacher ensemble member `member` (its seed), trained alone with crop/flip as the authors' teachers.

    ``half`` (0 or 1) trains it on that half of the training split only (claim 4: the other half is "new"
    data); a 2-fold partition's ``fold`` is the held-out half, so training on half h means fold 1 - h.
    ``lr`` is the chosen rate (None: the first candidate of the recipe).
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
                          lr=float(r.teacher_lrs[0] if lr is None else lr), momentum=0.9, nesterov=True,
                          weight_decay=r.weight_decay, schedule="cosine",
                          augment=POLICIES[BASE_POLICY].augment_for(r.crop)),
    )


def teacher_selection(profile: str, dataset: str = "fashion_mnist") -> list[RunConfig]:
    """The teacher's lr candidates: member 0 at each rate of the grid (the chosen one *is* member 0)."""
    return [teacher_config(profile, 0, dataset, lr=lr) for lr in recipe(profile, dataset).teacher_lrs]


def teacher_configs(profile: str, dataset: str = "fashion_mnist", lr: float | None = None) -> list[RunConfig]:
    """Every teacher the chapter needs: the ensemble members and the two half-data teachers (claim 4)."""
    r = recipe(profile, dataset)
    out = [teacher_config(profile, m, dataset, lr=lr) for m in range(r.n_members)]
    return out + [teacher_config(profile, 0, dataset, half=h, lr=lr) for h in (0, 1)]


def plain_configs(profile: str, dataset: str = "fashion_mnist", lr: float | None = None) -> list[RunConfig]:
    """The plain models (same architecture trained alone on hard labels) the students are compared with.

    In self-distillation the student alone *is* a teacher-recipe run, so the plain arm reuses ensemble members
    1, 2, 3 (never member 0, the single teacher): one plain model per student seed, paired by position."""
    r = recipe(profile, dataset)
    return [teacher_config(profile, 1 + i, dataset, lr=lr) for i in range(len(r.seeds))]


# ------------------------------------------------------------------------------------------------- students
@dataclass(frozen=True)
class DistillSpec:
    """One distilled student: plain data whose hash names its record, like `RunConfig.key`.

    ``lr`` is the rate it trains at (chosen on validation data for its family, see `FAMILIES`); a student
    started near the teacher (``r`` set) trains at ``r * lr``, as the authors scale it."""

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
    lr: float = 0.05
    experiment: str = EXPERIMENT
    role: str = "distilled"

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
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be a number > 0, got {self.lr!r}")
        if self.r is not None:
            object.__setattr__(self, "r", check_ratio(self.r))
            if self.r == 0.0:
                raise ValueError("r = 0 is the teacher itself (lr scaled to 0): evaluate it, do not train it")
            if len(self.teachers) != 1:
                raise ValueError("a near-teacher init needs exactly one teacher")

    @property
    def ensemble_size(self) -> int:
        return len(self.teachers)

    @property
    def family(self) -> str:
        return family_of(self.policy)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> str:
        """The record's name: a hash of every field but ``claim`` (claims share arms) and ``lr_candidates`` (the
        grid does not change the run: a candidate keeps its record when the grid is widened), computed once."""
        cached = self.__dict__.get("_key")
        if cached is None:
            cached = config_hash({k: v for k, v in self.to_dict().items() if k not in ("claim", "lr_candidates")})
            object.__setattr__(self, "_key", cached)
        return cached


#: lr families: students whose distillation data is augmented at random (teacher forward every step) share the
#: rate chosen on the crop/flip student; students on the fixed training images ("none": cached teacher logits,
#: claims 3, 5 and the base rate of claim 6) share the rate chosen on the "none" student.
FAMILIES = ("augmented", "none")


def family_of(policy: str) -> str:
    return "none" if policy == "none" else "augmented"


def _spec(profile: str, dataset: str, claim: int, seed: int, *, teacher_lr: float | None = None,
          lr: float | None = None, policy: str = BASE_POLICY, members: int = 1, half: int | None = None,
          **changes: Any) -> DistillSpec:
    r = recipe(profile, dataset)
    pol = POLICIES[policy]
    teachers = tuple(teacher_config(profile, m, dataset, half=half, lr=teacher_lr) for m in range(members))
    ood = OOD_DATASET[dataset] if pol.ood else None
    changes.setdefault("epochs", r.student_epochs)
    return DistillSpec(profile=profile, dataset=dataset, claim=claim, student_model=r.student_model,
                       teachers=teachers, policy=policy, augment=pol.augment_for(r.crop), tau=pol.tau,
                       ood_dataset=ood, n_ood=r.n_ood if ood else 0, batch_size=r.batch_size,
                       lr_candidates=r.student_lrs, weight_decay=r.weight_decay, widths=r.widths, seed=seed,
                       lr=float(r.student_lrs[0] if lr is None else lr), **changes)


def selection_specs(family: str, profile: str, dataset: str = "fashion_mnist",
                    teacher_lr: float | None = None) -> list[DistillSpec]:
    """The lr candidates of one family: its reference student (crop/flip or "none", one teacher, seed 0) at
    each rate. They train on the training split; `val_accuracy` (held-out images) chooses. The chosen
    candidate is also that arm's seed-0 final run (same config)."""
    policy = BASE_POLICY if family == "augmented" else "none"
    claim = 1 if family == "augmented" else 3
    r = recipe(profile, dataset)
    return [_spec(profile, dataset, claim, r.seeds[0], teacher_lr=teacher_lr, lr=lr, policy=policy)
            for lr in r.student_lrs]


def claim_specs(claim: int, profile: str, dataset: str = "fashion_mnist", teacher_lr: float | None = None,
                lrs: dict[str, float] | None = None) -> list[DistillSpec]:
    """The distilled students of one claim (1-6) at the given teacher lr and family lrs (see the docstring)."""
    r = recipe(profile, dataset)
    lrs = lrs or {}
    seeds = r.seeds

    def spec(s: int, policy: str = BASE_POLICY, **kw: Any) -> DistillSpec:
        return _spec(profile, dataset, claim, s, teacher_lr=teacher_lr, lr=lrs.get(family_of(policy)),
                     policy=policy, **kw)

    if claim == 1:
        return [spec(s) for s in seeds]
    if claim == 2:
        return [spec(s, members=k) for k in r.ensemble_sizes for s in seeds]
    if claim == 3:
        return [spec(s, policy=p) for p in r.policies for s in seeds]
    if claim == 4:
        return [spec(s, half=0, distill_data=d) for d in ("recycled", "new") for s in seeds]
    if claim == 5:  # the same number of gradient steps at every size: epochs scaled by 1 / fraction
        return [spec(s, policy=p, distill_fraction=f, epochs=max(1, round(r.student_epochs / f)))
                for p in ("none", "mixup_t4") for f in r.distill_fractions for s in seeds]
    if claim == 6:  # r = 1 is the random init: the "none" student of claim 3 (same config)
        return [spec(s, policy="none", r=None if rr == 1.0 else rr) for rr in r.rs if rr > 0 for s in seeds]
    raise ValueError(f"unknown claim {claim!r}; choose one of: {', '.join(map(str, CLAIMS))}")


def grid(profile: str, dataset: str = "fashion_mnist", teacher_lr: float | None = None,
         lrs: dict[str, float] | None = None, claims: tuple[int, ...] = CLAIMS) -> list[DistillSpec]:
    """Every distilled student of the chapter, each once (claims share arms: the first claim keeps it)."""
    seen: dict[str, DistillSpec] = {}
    for claim in claims:
        for spec in claim_specs(claim, profile, dataset, teacher_lr, lrs):
            seen.setdefault(spec.key(), spec)
    return list(seen.values())


def sample_passes(profile: str, dataset: str = "fashion_mnist") -> int:
    """Training images processed by the whole chapter (teachers with their lr grid, distilled students, the
    students' lr grids), to size the cpu profile: divide by a measured images/s to get seconds. Teacher
    forwards on augmented batches (every policy but "none") add roughly a third of a student step per member."""
    r = recipe(profile, dataset)
    n = r.n_train or ({"cifar100": 50000}.get(dataset, 60000) - r.val_size)
    total = (len(r.teacher_lrs) - 1 + len(teacher_configs(profile, dataset))) * r.teacher_epochs * n
    specs = grid(profile, dataset) + [s for f in FAMILIES for s in selection_specs(f, profile, dataset)[1:]]
    for spec in specs:
        size = n * spec.distill_fraction + spec.n_ood
        total += int(size) * spec.epochs * (1 if spec.policy == "none" else 1 + spec.ensemble_size // 3)
    return total


# ------------------------------------------------------------------------------------------------- plan and run
#: The order claims run in when the budget may not fit them all (the chapter's priorities).
RUN_ORDER = (1, 2, 6, 3, 5, 4)


@dataclass
class Plan:
    """What the recorded selections determine for one profile and data set (nothing trained unless asked)."""

    profile: str
    dataset: str
    teacher: Selection | None
    families: dict[str, Selection | None]

    @property
    def teacher_lr(self) -> float | None:
        return None if self.teacher is None else self.teacher.lr

    @property
    def lrs(self) -> dict[str, float]:
        return {f: sel.lr for f, sel in self.families.items() if sel is not None}

    def ready(self, claim: int) -> bool:
        """Are the rates of every arm of `claim` known?"""
        if self.teacher is None:
            return False
        needed = {"augmented", "none"} if claim in (3, 5) else ({"none"} if claim == 6 else {"augmented"})
        return needed <= set(self.lrs)

    def specs(self, claim: int) -> list[DistillSpec]:
        return claim_specs(claim, self.profile, self.dataset, self.teacher_lr, self.lrs) if self.ready(claim) else []

    def selection_rows(self) -> list[dict[str, Any]]:
        sels = [("teacher", self.teacher)] + [(f"student ({f})", s) for f, s in self.families.items()]
        return [row for _, sel in sels if sel is not None for row in sel.rows]


def _spec_view(spec: DistillSpec, record: dict[str, Any]) -> dict[str, Any]:
    """What selection may see of a student candidate: lr, epochs, status, val_* metrics (never test)."""
    status = "diverged" if record["status"] == "diverged" else "ok"
    view = {"lr": float(spec.lr), "epochs": int(spec.epochs), "status": status}
    m = record.get("metrics", {})
    view.update({k: float(m[k]) for k in VAL_METRICS if k in m})
    return view


def plan(profile: str, dataset: str = "fashion_mnist", store: ResultStore | None = None, *, train: bool = False,
         families: tuple[str, ...] = FAMILIES, progress: bool = True) -> Plan:
    """Resolve the chapter's rates from the recorded selections; with `train`, run the missing candidates."""
    from kdutils.chapters.does_kd_work.run import run_spec
    from kdutils.training.runner import run

    store = store or ResultStore()
    t_cfgs = teacher_selection(profile, dataset)
    if train:
        for cfg in t_cfgs:
            run(cfg, store, progress=progress)
    teacher = load_selection("teacher", t_cfgs, store)
    fams: dict[str, Selection | None] = {f: None for f in FAMILIES}
    if teacher is not None:
        for fam in families:
            specs = selection_specs(fam, profile, dataset, teacher.lr)
            if train:
                for spec in specs:
                    run_spec(spec, store, progress=progress)
            records = [store.get(sp) for sp in specs]
            if all(rec is not None for rec in records):
                fams[fam] = choose(f"student ({fam})", [_spec_view(sp, rec) for sp, rec in zip(specs, records)])
    return Plan(profile, dataset, teacher, fams)


def run_all(profile: str = "cpu", dataset: str = "fashion_mnist", claim: int | None = None, mnist: bool = True,
            store: ResultStore | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Select the rates, train the teachers and every claim's students (claims in RUN_ORDER; `claim` runs one),
    then the MNIST/LeNet-5 near-saturated check of claim 1. Resumable: finished records are skipped."""
    from kdutils.chapters.does_kd_work.run import run_spec
    from kdutils.training.runner import run

    check_profile(profile)
    store = store or ResultStore()
    claims = RUN_ORDER if claim is None else (int(claim),)
    p = plan(profile, dataset, store, train=True, progress=progress)
    records = []
    r = recipe(profile, dataset)
    for cfg in teacher_configs(profile, dataset, p.teacher_lr)[: r.n_members]:
        records.append(run(cfg, store, progress=progress))
    for c in claims:
        for spec in p.specs(c):
            records.append(run_spec(spec, store, progress=progress))
    if mnist and dataset != "mnist" and claim in (None, 1):
        m = plan(profile, "mnist", store, train=True, families=("augmented",), progress=progress)
        for cfg in plain_configs(profile, "mnist", m.teacher_lr):
            records.append(run(cfg, store, progress=progress))
        for spec in m.specs(1):
            records.append(run_spec(spec, store, progress=progress))
    return records


def point(profile: str = "cpu", claim: int = 1, seed: int = 0, dataset: str = "fashion_mnist",
          store: ResultStore | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """One point of `notebooks/does_kd_work_point.ipynb`: the students of `claim` at student seed `seed` (the
    selections and teachers they need first). Returns their records; load-only mode raises MissingRunError."""
    from kdutils.chapters.does_kd_work.run import run_spec

    store = store or ResultStore()
    p = plan(profile, dataset, store, train=True, progress=progress)
    return [run_spec(spec, store, progress=progress) for spec in p.specs(int(claim)) if spec.seed == int(seed)]


__all__ = ["ALPHA", "BASE_POLICY", "CLAIMS", "Plan", "point", "RUN_ORDER", "plan", "run_all", "DATASETS", "DistillSpec",
           "EXPERIMENT", "FAMILIES", "OOD_DATASET", "PAPER_AGREEMENT", "PAPER_ENSEMBLES", "POLICIES", "Policy",
           "Recipe", "TAU", "claim_specs", "family_of", "grid", "plain_configs", "recipe", "sample_passes",
           "selection_specs", "teacher_config", "teacher_configs", "teacher_selection"]
