"""Stanton et al. (NeurIPS 2021), "Does knowledge distillation really work?": the chapter's arms and plan.

The chapter's configurations, lr selection and run order at a recipe version (`recipes`);
`kdutils.chapters.does_kd_work.run.run_spec` trains one distilled student or records one baseline; `schedule`
runs everything in phases (two processes if wanted); `claims`, `report` and `figures` turn the records into
verdicts, tables and figures.

What the chapter runs (claim numbers as in book/does_kd_work.md):

1. self-distillation fidelity: PreResNet teacher -> same-architecture student, pure KD, tau = 4, beside
   independently trained plain models (their agreement with the teacher is a baseline record, v2 on);
2. teacher ensembles of 1, 3, 5 members (the student fits the mean of their probabilities);
3. distillation-data policies: none, crop/flip, MixUp at tau 1 and 4, Gaussian noise, OOD images
   (claim 8 reads the same runs: the best policy's agreement);
4. data recycling: teachers trained on one half of the training set, students distilled on that half
   ("recycled") or on the other ("new");
5. train agreement vs. distillation-set size (fractions of the training set), without and with augmentation;
6. near-teacher initialisation theta = r theta_random + (1 - r) theta_teacher, BN recomputed, lr scaled by r,
   beside the agreement at initialisation and the r = 0 ceiling (baseline records, v2 on);
7. LeNet-5 on MNIST with extra unlabelled training images (alpha = 0 in the authors' notation).

Conventions: kdutils' ``alpha`` weights the KD term, so pure distillation (the authors' alpha = 0) is
``alpha = 1``. The authors' student recipe (SGD + Nesterov, lr 5e-2, weight decay 1e-4, cosine, 300 epochs,
batch 128) and teacher recipe (lr 0.1, batch 256, 200 epochs) are the ``full`` profile. Fashion-MNIST is the
main data set (CIFAR-100 is not on these machines; ``dataset="cifar100"`` switches to it), MNIST with LeNet-5
is the near-saturated case (the poster gives no number for it). Teacher members are seeds 0..4 of the teacher
config; an ensemble of size k uses members 0..k-1, and student seeds vary the student only (paired design).

Deviations, to be listed in the chapter: 28x28 grey images instead of 32x32 colour; crop padding 2 on 28x28;
OOD images are MNIST digits (Fashion-MNIST teacher) instead of SVHN; no GAN policy; the MixUp alpha (1.0) and
the noise std (0.1 on [0, 1] pixels) are our choices (not found in the poster); BN statistics are recomputed
with a cumulative average instead of momentum 0.1; the r = 0 point (the teacher itself) is evaluated, not trained.

Learning rates (never the test set): the teacher's rate is chosen on held-out training images (val_size)
from ``Recipe.teacher_lrs`` (member 0 at each rate; the chosen run *is* member 0). Students get one rate per
policy from v2 on (v1: per family, `FAMILIES`: "augmented", chosen on the crop/flip student, and "none");
claim 6 trains at r times the "none" rate, the authors' scaling. Candidates train on seed 0 at full length, and
the chosen candidate is also that arm's seed-0 final run. The plain model (the student trained alone) is the
teacher recipe itself (same architecture), so its rate is the teacher's.

Run: ``python -m kdutils run does_kd_work --profile cpu`` (`schedule.run_all`, resumable, claims in `RUN_ORDER`;
``--shard 1/2`` and ``2/2`` in two processes, ``--set dry_run true`` for the plan and its cost estimate).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Sequence, TypedDict

from kdutils.chapters.does_kd_work.recipes import (ALPHA, BASE_POLICY, DATASETS, EXPERIMENT, OOD_DATASET,
                                                   PAPER_AGREEMENT, PAPER_ENSEMBLES, POLICIES, TAU, VERSIONS, Policy,
                                                   Recipe, latest, recipe)
from kdutils.chapters.does_kd_work.spec import EVALUATIONS, LATE_FIELDS, DistillSpec
from kdutils.config import DataConfig, RunConfig, TrainConfig
from kdutils.store.profiles import check_profile
from kdutils.store.store import ResultStore
from kdutils.sweeps.tuning import (VAL_METRICS, Selection, choose, extend_at_edges, load_selection,
                                   validation_view)

CLAIMS = (1, 2, 3, 4, 5, 6, 7)  # claims with runs of their own (claim 8 reads claim 3's runs)


# ------------------------------------------------------------------------------------------------- teachers
def teacher_config(profile: str, member: int = 0, dataset: str = "fashion_mnist",
                   half: int | None = None, lr: float | None = None, version: str | None = None) -> RunConfig:
    """Teacher ensemble member `member` (its seed), trained alone with the base augmentation (crop/flip; crop
    only on MNIST from v2).

    ``half`` (0 or 1) trains it on that half of the training split only (claim 4: the other half is "new"
    data); a 2-fold partition's ``fold`` is the held-out half, so training on half h means fold 1 - h.
    ``lr`` is the chosen rate (None: the first candidate of the recipe).
    """
    r = recipe(profile, dataset, version)
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
                          weight_decay=r.weight_decay, schedule="cosine", augment=r.augment(BASE_POLICY)),
    )


def grid_of(r: Recipe, base: Sequence[float], make: Callable[[float], Job], arm: str,
            store: ResultStore | None) -> tuple[float, ...]:
    """The rates to train for one selection: ``base``, extended past an edge where the recorded choice sits at it
    (`tuning.extend_at_edges`, up to ``r.max_extensions`` rates; none without a store or before v3)."""
    if store is None or not r.max_extensions:
        return tuple(base)

    def chosen_on(grid: tuple[float, ...]) -> float | None:
        jobs = [make(lr) for lr in grid]
        recs = [store.get(j) for j in jobs]
        if any(rec is None for rec in recs):
            return None
        return choose(arm, [_view(j, rec) for j, rec in zip(jobs, recs) if rec is not None]).lr
    return extend_at_edges(base, chosen_on, r.max_extensions, r.extend_factor)[0]


def teacher_selection(profile: str, dataset: str = "fashion_mnist", version: str | None = None,
                      store: ResultStore | None = None) -> list[RunConfig]:
    """The teacher's lr candidates: member 0 at each rate of the grid (the chosen one *is* member 0); with a
    store, the grid as extended past its edges (`grid_of`)."""
    r = recipe(profile, dataset, version)
    make = lambda lr: teacher_config(profile, 0, dataset, lr=lr, version=version)  # noqa: E731
    return [make(lr) for lr in grid_of(r, r.teacher_lrs, make, "teacher", store)]


def teacher_configs(profile: str, dataset: str = "fashion_mnist", lr: float | None = None,
                    version: str | None = None) -> list[RunConfig]:
    """Every teacher the chapter needs: the ensemble members and the two half-data teachers (claim 4)."""
    r = recipe(profile, dataset, version)
    out = [teacher_config(profile, m, dataset, lr=lr, version=version) for m in range(r.n_members)]
    return out + [teacher_config(profile, 0, dataset, half=h, lr=lr, version=version) for h in (0, 1)]


def plain_configs(profile: str, dataset: str = "fashion_mnist", lr: float | None = None,
                  version: str | None = None) -> list[RunConfig]:
    """The plain models (same architecture trained alone on hard labels) the students are compared with.

    In self-distillation the student alone *is* a teacher-recipe run, so the plain arm reuses ensemble members
    1, 2, 3 (never member 0, the single teacher): one plain model per student seed, paired by position."""
    r = recipe(profile, dataset, version)
    return [teacher_config(profile, 1 + i, dataset, lr=lr, version=version) for i in range(len(r.seeds))]


# ------------------------------------------------------------------------------------------------- students
#: v1's lr families: students whose distillation data is augmented at random (teacher forward every step)
#: share the rate chosen on the crop/flip student; students on the fixed training images ("none") share the rate
#: chosen on the "none" student. From v2 every policy is its own family (a rate chosen per policy).
FAMILIES = ("augmented", "none")


def family_of(policy: str, per_policy: bool = False) -> str:
    if per_policy:
        return policy
    return "none" if policy == "none" else "augmented"


def families(r: Recipe) -> tuple[str, ...]:
    """The lr families of a recipe: one per policy (v2) or the two of v1."""
    return tuple(r.policies) if r.lr_per_policy else FAMILIES


def _spec(profile: str, dataset: str, claim: int, seed: int, *, teacher_lr: float | None = None,
          lr: float | None = None, policy: str = BASE_POLICY, members: int = 1, half: int | None = None,
          version: str | None = None, **changes: Any) -> DistillSpec:
    r = recipe(profile, dataset, version)
    pol = POLICIES[policy]
    teachers = tuple(teacher_config(profile, m, dataset, half=half, lr=teacher_lr, version=version)
                     for m in range(members))
    ood = OOD_DATASET[dataset] if pol.ood else None
    changes.setdefault("epochs", r.student_epochs)
    return DistillSpec(profile=profile, dataset=dataset, claim=claim, student_model=r.student_model,
                       teachers=teachers, policy=policy, augment=r.augment(policy), tau=pol.tau,
                       ood_dataset=ood, n_ood=r.n_ood if ood else 0, batch_size=r.batch_size,
                       lr_candidates=r.student_lrs, weight_decay=r.weight_decay, widths=r.widths, seed=seed,
                       lr=float(r.student_lrs[0] if lr is None else lr), **changes)


def selection_specs(family: str, profile: str, dataset: str = "fashion_mnist", teacher_lr: float | None = None,
                    version: str | None = None, store: ResultStore | None = None) -> list[DistillSpec]:
    """The lr candidates of one family: its reference student (the family's policy, or crop/flip for v1's
    "augmented"; one teacher, seed 0) at each rate (with a store, the grid as extended past its edges). They
    train on the training split; `val_accuracy` (held-out images) chooses. The chosen candidate is also that
    arm's seed-0 final run (same config)."""
    r = recipe(profile, dataset, version)
    policy = {"augmented": BASE_POLICY}.get(family, family)
    if policy not in POLICIES:
        raise ValueError(f"unknown lr family {family!r}; this recipe has: {', '.join(families(r))}")
    claim = 1 if policy == BASE_POLICY else 3
    make = lambda lr: _spec(profile, dataset, claim, r.seeds[0], teacher_lr=teacher_lr, lr=lr,  # noqa: E731
                            policy=policy, version=version)
    return [make(lr) for lr in grid_of(r, r.student_lrs, make, f"student ({family})", store)]


def claim_specs(claim: int, profile: str, dataset: str = "fashion_mnist", teacher_lr: float | None = None,
                lrs: dict[str, float] | None = None, version: str | None = None) -> list[DistillSpec]:
    """The distilled students of one claim (1-7) at the given teacher lr and family lrs (see the docstring)."""
    r = recipe(profile, dataset, version)
    lrs = lrs or {}
    seeds, seeds35 = r.seeds, r.seeds_3_5

    def spec(s: int, policy: str = BASE_POLICY, **kw: Any) -> DistillSpec:
        return _spec(profile, dataset, claim, s, teacher_lr=teacher_lr,
                     lr=lrs.get(family_of(policy, r.lr_per_policy)), policy=policy, version=version, **kw)

    if claim == 1:
        return [spec(s) for s in seeds]
    if claim == 2:
        return [spec(s, members=k) for k in r.ensemble_sizes for s in seeds]
    if claim == 3:
        return [spec(s, policy=p) for p in r.policies for s in seeds35]
    if claim == 4:
        return [spec(s, half=0, distill_data=d) for d in ("recycled", "new") for s in seeds]
    if claim == 5:  # the same number of gradient steps at every size: epochs scaled by 1 / fraction
        return [spec(s, policy=p, distill_fraction=f, epochs=max(1, round(r.student_epochs / f)))
                for p in ("none", "mixup_t4") for f in r.distill_fractions for s in seeds35]
    if claim == 6:  # r = 1 is the random init: the "none" student of claim 3 (same config)
        return [spec(s, policy="none", r=None if rr == 1.0 else rr) for rr in r.rs if rr > 0 for s in seeds]
    if claim == 7:  # alpha = 0 plus unlabelled images (0: claim 1's student); none where the recipe has no arm
        if not r.unlabelled:
            return []
        return [spec(s, n_unlabelled=u) for u in (0, *r.unlabelled) for s in seeds]
    raise ValueError(f"unknown claim {claim!r}; choose one of: {', '.join(map(str, CLAIMS))}")


class _SpecArgs(TypedDict):
    """The keyword arguments every baseline passes to `_spec`."""

    teacher_lr: float | None
    version: str | None


def baseline_specs(profile: str, dataset: str = "fashion_mnist", teacher_lr: float | None = None,
                   lrs: dict[str, float] | None = None, version: str | None = None) -> list[DistillSpec]:
    """The baselines that give fidelity its meaning (v2 on): each plain model's agreement with the teacher
    (claim 1, paired with student seed i as plain member i + 1), and claim 6's agreement at initialisation
    (every r < 1 per seed, before training) with the r = 0 ceiling (the teacher, BatchNorm recomputed on the
    distillation images as every near-teacher start is; once)."""
    r = recipe(profile, dataset, version)
    if r.version == "v1":
        return []
    lrs = lrs or {}
    base = _SpecArgs(teacher_lr=teacher_lr, version=version)
    out = [_spec(profile, dataset, 1, s, policy=BASE_POLICY, evaluate="plain", plain_member=1 + i,
                 lr=lrs.get(family_of(BASE_POLICY, r.lr_per_policy)), **base) for i, s in enumerate(r.seeds)]
    if dataset == "mnist":
        return out
    none_lr = lrs.get(family_of("none", r.lr_per_policy))
    out.append(_spec(profile, dataset, 6, r.seeds[0], policy="none", evaluate="init", r=0.0, lr=none_lr, **base))
    out += [_spec(profile, dataset, 6, s, policy="none", evaluate="init", r=rr, lr=none_lr, **base)
            for rr in r.rs if 0 < rr < 1 for s in r.seeds]
    return out


def baseline_families(r: Recipe, dataset: str) -> set[str]:
    """The lr families the baselines are keyed by: crop/flip (plain models), and "none" (claim 6) but on MNIST."""
    policies = (BASE_POLICY,) if dataset == "mnist" else (BASE_POLICY, "none")
    return {family_of(p, r.lr_per_policy) for p in policies}


def grid(profile: str, dataset: str = "fashion_mnist", teacher_lr: float | None = None,
         lrs: dict[str, float] | None = None, claims: tuple[int, ...] = CLAIMS,
         version: str | None = None) -> list[DistillSpec]:
    """Every distilled student of the chapter, each once (claims share arms: the first claim keeps it)."""
    seen: dict[str, DistillSpec] = {}
    for claim in claims:
        for spec in claim_specs(claim, profile, dataset, teacher_lr, lrs, version):
            seen.setdefault(spec.key(), spec)
    return list(seen.values())


# ------------------------------------------------------------------------------------------------- plan
#: The order claims run in when the budget may not fit them all (the chapter's priorities).
RUN_ORDER = (1, 2, 6, 3, 5, 4, 7)


#: one run of the chapter: a teacher-recipe run (`RunConfig`) or a distilled student or baseline (`DistillSpec`)
Job = RunConfig | DistillSpec


def _unique(jobs: Iterable[Job]) -> list[Job]:
    seen: dict[str, Job] = {}
    for j in jobs:
        seen.setdefault(j.key(), j)
    return list(seen.values())


def phase_jobs(phase: int, profile: str, datasets: Sequence[str], claims: Sequence[int], version: str,
               store: ResultStore, planned: bool = False) -> list[Job]:
    """The runs of one phase (1, 2, 3). With `planned`, rates still unknown are taken as each grid's first
    candidate, so a dry run can size phases 2 and 3 before phase 1 has run (the counts do not depend on it)."""
    jobs: list[Job] = []
    for ds in datasets:
        r = recipe(profile, ds, version)
        if phase == 1:
            jobs += teacher_selection(profile, ds, version, store)
            continue
        p = plan(profile, ds, store, version=version)
        t_lr = p.teacher_lr if p.teacher_lr is not None else (r.teacher_lrs[0] if planned else None)
        if t_lr is None:
            continue
        fams = _families_for(r, ds, claims)
        if phase == 2:
            members = teacher_configs(profile, ds, t_lr, version)
            if ds == "mnist":  # member 0 and the plain models only
                members = members[: 1 + len(r.seeds)]
            jobs += members
            for fam in fams:
                jobs += selection_specs(fam, profile, ds, t_lr, version, store)
            continue
        lrs = dict(p.lrs)
        if planned:
            lrs = {f: lrs.get(f, r.student_lrs[0]) for f in families(r)}
        ds_claims = [c for c in claims if c in (1, 7)] if ds == "mnist" else [c for c in claims if c != 7]
        for c in ds_claims:
            needed = {family_of(s.policy, r.lr_per_policy)
                      for s in claim_specs(c, profile, ds, version=version)}
            if needed <= set(lrs):
                jobs += claim_specs(c, profile, ds, t_lr, lrs, version)
        if baseline_families(r, ds) <= set(lrs):
            jobs += baseline_specs(profile, ds, t_lr, lrs, version)
    return _unique(jobs)


def _families_for(r: Recipe, dataset: str, claims: Sequence[int]) -> tuple[str, ...]:
    if dataset == "mnist":
        return (family_of(BASE_POLICY, r.lr_per_policy),)
    return families(r)


def missing_runs(profile: str, version: str, store: ResultStore) -> int:
    """How many runs of recipe ``version`` (every phase, both data sets, every claim) are not recorded; a run whose
    rate is not chosen yet counts as missing (`phase_jobs` with ``planned``)."""
    datasets = ("fashion_mnist", "mnist")
    return sum(store.get(j) is None for phase in (1, 2, 3)
               for j in phase_jobs(phase, profile, datasets, RUN_ORDER, version, store, planned=True))


def active_version(profile: str, store: ResultStore | None = None) -> str:
    """The recipe version the book shows: the newest whose runs are all recorded, else the oldest. A recipe being
    recorded is not shown half-done: its claims would read "not yet run" over records the older recipe judges."""
    store = store or ResultStore()
    versions = VERSIONS[check_profile(profile)]
    for v in reversed(versions[1:]):
        if missing_runs(profile, v, store) == 0:
            return v
    return versions[0]


@dataclass
class Plan:
    """What the recorded selections determine for one profile, data set and recipe version (nothing trained
    unless asked)."""

    profile: str
    dataset: str
    teacher: Selection | None
    families: dict[str, Selection | None]
    version: str = "v1"

    @property
    def recipe(self) -> Recipe:
        return recipe(self.profile, self.dataset, self.version)

    @property
    def teacher_lr(self) -> float | None:
        return None if self.teacher is None else self.teacher.lr

    @property
    def lrs(self) -> dict[str, float]:
        return {f: sel.lr for f, sel in self.families.items() if sel is not None}

    def needed(self, claim: int) -> set[str]:
        """The lr families the students of `claim` train in."""
        r = self.recipe
        return {family_of(s.policy, r.lr_per_policy)
                for s in claim_specs(claim, self.profile, self.dataset, version=self.version)}

    def ready(self, claim: int) -> bool:
        """Are the rates of every arm of `claim` known?"""
        return self.teacher is not None and self.needed(claim) <= set(self.lrs)

    def specs(self, claim: int) -> list[DistillSpec]:
        if not self.ready(claim):
            return []
        return claim_specs(claim, self.profile, self.dataset, self.teacher_lr, self.lrs, self.version)

    def baselines(self) -> list[DistillSpec]:
        """The baseline evaluations, once the rates they are keyed by are known."""
        if self.teacher is None or not baseline_families(self.recipe, self.dataset) <= set(self.lrs):
            return []
        return baseline_specs(self.profile, self.dataset, self.teacher_lr, self.lrs, self.version)

    def selection_rows(self) -> list[dict[str, Any]]:
        sels = [("teacher", self.teacher)] + [(f"student ({f})", s) for f, s in self.families.items()]
        return [row for _, sel in sels if sel is not None for row in sel.rows]


def _view(job: Job, record: dict[str, Any]) -> dict[str, Any]:
    """What selection may see of a candidate's record (a teacher-recipe run or a student)."""
    return validation_view(record) if isinstance(job, RunConfig) else _spec_view(job, record)


def _spec_view(spec: DistillSpec, record: dict[str, Any]) -> dict[str, Any]:
    """What selection may see of a student candidate: lr, epochs, status, val_* metrics (never test)."""
    status = "diverged" if record["status"] == "diverged" else "ok"
    view = {"lr": float(spec.lr), "epochs": int(spec.epochs), "status": status}
    m = record.get("metrics", {})
    view.update({k: float(m[k]) for k in VAL_METRICS if k in m})
    return view


def select_families(profile: str, dataset: str, store: ResultStore, teacher_lr: float,
                    fams: tuple[str, ...], version: str) -> dict[str, Selection | None]:
    """Each family's chosen rate from its recorded candidates (None where one is missing)."""
    out: dict[str, Selection | None] = {}
    for fam in fams:
        specs = selection_specs(fam, profile, dataset, teacher_lr, version, store)
        records = [store.get(sp) for sp in specs]
        out[fam] = (choose(f"student ({fam})",  # every record is there (`all` below): the filter drops none
                           [_spec_view(sp, rec) for sp, rec in zip(specs, records) if rec is not None])
                    if all(rec is not None for rec in records) else None)
    return out


def plan(profile: str, dataset: str = "fashion_mnist", store: ResultStore | None = None, *, train: bool = False,
         families_: tuple[str, ...] | None = None, progress: bool = True, version: str | None = None) -> Plan:
    """Resolve the chapter's rates from the recorded selections (at `version`, default the `active_version`);
    with `train`, run the missing candidates in this process."""
    from kdutils.chapters.does_kd_work.run import run_spec
    from kdutils.training.runner import run

    store = store or ResultStore()
    version = active_version(profile, store) if version is None else version
    r = recipe(profile, dataset, version)
    fams_all = families(r)
    while train and any(store.get(c) is None for c in teacher_selection(profile, dataset, version, store)):
        for cfg in teacher_selection(profile, dataset, version, store):  # an extension adds candidates
            run(cfg, store, progress=progress)
    teacher = load_selection("teacher", teacher_selection(profile, dataset, version, store), store)
    fams: dict[str, Selection | None] = {f: None for f in fams_all}
    if teacher is not None:
        wanted = fams_all if families_ is None else tuple(f for f in families_ if f in fams_all)
        for fam in wanted if train else ():
            while any(store.get(sp) is None for sp in selection_specs(fam, profile, dataset, teacher.lr, version,
                                                                       store)):
                for spec in selection_specs(fam, profile, dataset, teacher.lr, version, store):
                    run_spec(spec, store, progress=progress)
        fams.update(select_families(profile, dataset, store, teacher.lr, wanted, version))
    return Plan(profile, dataset, teacher, fams, version)


def point(profile: str = "cpu", claim: int = 1, seed: int = 0, dataset: str = "fashion_mnist",
          store: ResultStore | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """One point of `notebooks/does_kd_work_point.ipynb`: the students of `claim` at student seed `seed` (the
    selections and teachers they need first). Returns their records; load-only mode raises MissingRunError."""
    from kdutils.chapters.does_kd_work.run import run_spec

    store = store or ResultStore()
    p = plan(profile, dataset, store, train=True, progress=progress)
    return [run_spec(spec, store, progress=progress) for spec in p.specs(int(claim)) if spec.seed == int(seed)]


__all__ = ["ALPHA", "BASE_POLICY", "CLAIMS", "DATASETS", "DistillSpec", "EXPERIMENT", "FAMILIES", "LATE_FIELDS",
           "OOD_DATASET", "PAPER_AGREEMENT", "PAPER_ENSEMBLES", "POLICIES", "Plan", "Policy", "RUN_ORDER", "Recipe",
           "TAU", "active_version", "baseline_families", "baseline_specs", "claim_specs", "families", "family_of",
           "Job", "grid", "latest", "missing_runs", "phase_jobs", "plain_configs", "plan", "point", "recipe", "selection_specs",
           "teacher_config", "teacher_configs", "teacher_selection"]
