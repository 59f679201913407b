"""Knowledge distillation for teaching symmetry invariances (Odagiu et al.): does a student distilled from an
invariant teacher become invariant?

Three teacher -> student pairs, each run with the protocol of the paper's Sec. 2.3 at every fold:

* ``resnet_mlp`` (translation, MNIST): APS-ResNet18 with circular padding, exactly invariant to circular
  shifts (teacher), the same net trained for fewer epochs (teacher'), MLP students with 4 hidden layers of
  2048 (the paper) or 256 (the authors' code).
* ``dgcnn_deepsets`` (translation, point sets): DGCNN whose edge function sees only x_j - x_i (teacher),
  DGCNN with two EdgeConv layers instead of four (teacher'), invariant and equivariant DeepSets students.
* ``deepsets_mlp`` (permutation, point sets): invariant DeepSets (teacher), the same with one phi layer fewer
  (teacher'), an MLP on the flattened set (student).

Arms (the RunConfig ``role``): ``teacher``, ``teacher_prime``; ``student`` (alone, hard labels),
``student_aug`` (alone, on transformed data: the augmentation baseline); ``self`` (student -> new student),
``self_aug`` (augmented student -> new student); ``distilled`` (teacher -> student), ``distilled_prime``
(teacher' -> student). Every KD arm is pure KD (alpha=1) at tau in {1, 4, 8, 16}, forward KL(P_t||P_s); the
teacher -> student arm is also run with the reverse KL(P_s||P_t) (what the authors' code computes) at tau 1
and 4. Every record carries the invariance metric (IM, L1 and L2) of its model under the pair's
transformation (the table `kdutils.data.symmetry.TRANSFORMATIONS`, which the runner reads).

The paper's point-set data (ModelNet40, hls4ml jets) is not available here, so both set pairs run on MNIST
digits as point sets (set-MNIST); ``dataset="modelnet40"`` / ``"modelnet40_h5"`` / ``"hls4ml_jets"`` switches a
pair to the paper's data with the same code.

This module runs the experiment (learning-rate selection, the runs, the extra evaluations); what runs is defined
in `recipes`. Reading and judging the recorded runs (`tables`, `figures`, `claims`, `report`) imports from
here, never the other way round, so that running the chapter does not depend on its report.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, Sequence

import torch

from kdutils.chapters.invariance.recipes import (DATASETS, EXPERIMENT_PREFIX, K_FOLDS, PAIR_INFO, PROFILE_TAUS,
                                                 RUN_ORDER, Stage, arm_key, check_pair, kd_config, recipe,
                                                 resolve_dataset, resolve_students, student_config, teacher_config,
                                                 transformation, FOLDS, PAIRS, REVERSE_TAUS, Net, _data,
                                                 Recipe, resolve_direction, resolve_fold)
from kdutils.config import RunConfig
from kdutils.data.symmetry import TRANSFORMATIONS
from kdutils.metrics import agreement, flip_rate, invariance_metric, predict_logits, predictive_kl
from kdutils.gpu.workload import ChapterWork, Work
from kdutils.store.profiles import capped, check_profile
from kdutils.store.store import ResultStore
from kdutils.training import runner


# ---------------------------------------------------------------------------------------------------------
# Learning-rate selection (`kdutils.sweeps.tuning`): every arm's Adam rate comes from a small grid trained on one seed
# with a held-out validation split (never the test set), at a fraction of the arm's epochs. It runs in two
# stages, because a KD arm's candidates learn from a teacher that must already have its own selected rate:
#   1. teacher, teacher', each student alone and on transformed data;
#   2. teacher -> student at every temperature; teacher' -> student, self and self-from-augmented at
#      SELECT_TAU (their rate is then used at every temperature); the reverse KL uses the forward rate.
# The KD candidates learn from the fold-0 final teachers; they see the teacher's logits only on their own
# training inputs, and are scored on the held-out split.

LR_GRID = {"smoke": (1e-3, 3e-3), "cpu": (5e-4, 1.5e-3, 4.5e-3, 1.35e-2), "gpu": (5e-4, 1.5e-3, 4.5e-3),
           "full": (3e-4, 1e-3, 3e-3)}
SELECT_TAU = 4.0
SELECT_VAL_SIZE = {"smoke": 128, "cpu": 10_000, "gpu": 10_000, "full": 10_000}
SELECT_EPOCH_FRACTION = {"smoke": 1.0, "cpu": 0.3, "gpu": 0.5, "full": 0.5}


def gpu_work(profile: str = "gpu") -> ChapterWork:
    """What `run_all(profile)` trains, in epochs per architecture (for the GPU script's time budget): per pair,
    the selection (stage 1: teachers and students alone; stage 2: every KD arm) and, per fold, both teachers,
    each student alone and augmented, and its KD arms (4 per temperature, plus the reverse KL at 2)."""
    check_profile(profile)
    works = []
    grid, fraction = len(LR_GRID[profile]), SELECT_EPOCH_FRACTION[profile]
    kd_runs = 4 * len(PROFILE_TAUS[profile]) + len([t for t in PROFILE_TAUS[profile] if t in REVERSE_TAUS])
    for pair in RUN_ORDER:
        dataset = PAIR_INFO[pair].default_dataset
        rec = recipe(pair, profile, dataset)
        data = _data(pair, profile, dataset, 0)

        def work(label: str, net: Net, stage: Stage, fixed: float, per_fold: float, runs_fixed: int,
                 runs_per_fold: int) -> Work:
            return Work(f"invariance {pair} {label}", net.model, data, stage.batch_size, fixed, per_fold,
                        runs_fixed, runs_per_fold, dict(net.kwargs))

        works.append(work("teacher", rec.teacher, rec.teacher_train,
                          grid * max(1, round(rec.teacher_train.epochs * fraction)), rec.teacher_train.epochs, grid, 1))
        works.append(work("teacher'", rec.teacher_prime, rec.teacher_prime_train,
                          grid * max(1, round(rec.teacher_prime_train.epochs * fraction)),
                          rec.teacher_prime_train.epochs, grid, 1))
        for s in rec.default_students:
            select = grid * (2 * max(1, round(rec.student_train.epochs * fraction))
                             + (len(PROFILE_TAUS[profile]) + 3) * max(1, round(rec.distill_train.epochs * fraction)))
            works.append(work(f"student {s}", rec.students[s], rec.distill_train, select,
                              2 * rec.student_train.epochs + kd_runs * rec.distill_train.epochs,
                              grid * (len(PROFILE_TAUS[profile]) + 5), 2 + kd_runs))
    return ChapterWork("invariance", len(FOLDS[profile]), min(2, len(FOLDS[profile])), tuple(works))


def tuned_datasets(pair: str) -> tuple[str, ...]:
    """Datasets whose runs use selected rates: the pair's default (the chapter's data). The ModelNet40 demo and
    other datasets keep the recipe's rates (they carry no verdict)."""
    return (check_pair(pair).default_dataset,)


def _select_epochs(stage: Stage, profile: str) -> int:
    return max(1, int(round(stage.epochs * SELECT_EPOCH_FRACTION[profile])))


def selection_plan(profile: str, pair: str, stage: int, student: str | Iterable[str] | None = None,
                   dataset: str | None = None, lrs: Mapping[str, float] | None = None
                   ) -> dict[str, list[RunConfig]]:
    """The candidate runs of every arm of selection stage 1 or 2 (stage 2 needs the stage-1 `lrs`)."""
    from kdutils.sweeps.tuning import selection_configs

    check_profile(profile)
    dataset = resolve_dataset(pair, dataset)
    rec = recipe(pair, profile, dataset)
    grid, val = LR_GRID[profile], SELECT_VAL_SIZE[profile]
    students = resolve_students(pair, profile, student, dataset)
    plan: dict[str, list[RunConfig]] = {}

    def add(arm: str, base: RunConfig, st: Stage) -> None:
        plan[arm] = selection_configs(base, arm, grid, _select_epochs(st, profile), val)

    if stage == 1:
        add("teacher", teacher_config(profile, pair, 0, False, dataset), rec.teacher_train)
        add("teacher_prime", teacher_config(profile, pair, 0, True, dataset), rec.teacher_prime_train)
        shared = [c.with_(role=plan["teacher"][0].role) for c in plan["teacher_prime"]]
        if [c.key() for c in shared] == [c.key() for c in plan["teacher"]]:
            # teacher' is the teacher's net trained for fewer epochs (MNIST): with the same selection epochs its
            # candidates would be the teacher's own runs, so they are shared rather than trained twice
            plan["teacher_prime"] = plan["teacher"]
        for s in students:
            add(arm_key("student", s), student_config(profile, pair, s, 0, False, dataset), rec.student_train)
            add(arm_key("student_aug", s), student_config(profile, pair, s, 0, True, dataset), rec.student_train)
        return plan
    if stage != 2:
        raise ValueError(f"selection stage must be 1 or 2, got {stage!r}")
    if lrs is None:
        raise ValueError("stage 2 (the KD arms) needs the stage-1 rates: lrs=")
    for s in students:
        for tau in PROFILE_TAUS[profile]:
            cfg = kd_config(profile, pair, s, tau, "distilled", 0, "forward", dataset)
            add(arm_key("distilled", s, tau), cfg.with_(teacher=teacher_config(profile, pair, 0, False, dataset, lrs)),
                rec.distill_train)
        teachers = {"distilled_prime": teacher_config(profile, pair, 0, True, dataset, lrs),
                    "self": student_config(profile, pair, s, 0, False, dataset, lrs),
                    "self_aug": student_config(profile, pair, s, 0, True, dataset, lrs)}
        for arm, teacher in teachers.items():
            cfg = kd_config(profile, pair, s, SELECT_TAU, arm, 0, "forward", dataset)
            add(arm_key(arm, s), cfg.with_(teacher=teacher), rec.distill_train)
    return plan


def select_lrs(profile: str, pair: str, student: str | Iterable[str] | None = None, dataset: str | None = None,
               store: ResultStore | None = None, train: bool = False, progress: bool = True
               ) -> dict[str, Any] | None:
    """The selections of every arm of a pair ({arm: kdutils.sweeps.tuning.Selection}), from the recorded candidates;
    `train=True` trains the missing ones first. None when a candidate is missing and `train` is False."""
    store = store or ResultStore()
    out: dict[str, Any] = {}
    lrs: dict[str, float] | None = None
    for stage in (1, 2):
        plan = selection_plan(profile, pair, stage, student, dataset, lrs)
        if train:
            from kdutils.training.group_runner import run_grouped

            with thread_limit(profile):
                run_grouped([c for cfgs in plan.values() for c in cfgs], store, progress=progress)
        for arm, cfgs in plan.items():
            sel = _selection(arm, cfgs, store)
            if sel is None:
                return None
            out[arm] = sel
        lrs = {arm: sel.lr for arm, sel in out.items()}
    return out


def _selection(arm: str, cfgs: list[RunConfig], store: ResultStore):
    """`tuning.load_selection`, except that when every candidate failed (diverged or at chance, which happens
    at the one-epoch smoke scale) the smallest rate of the grid is taken and the rows say so (`fallback`)."""
    from kdutils.sweeps.tuning import Selection, load_selection, validation_view

    try:
        return load_selection(arm, cfgs, store)
    except ValueError as err:
        if "failed" not in str(err):
            raise
    views = sorted((validation_view(_recorded(store, c)) for c in cfgs), key=lambda v: v["lr"])
    rows = tuple({**v, "arm": arm, "chosen": i == 0, "fallback": True} for i, v in enumerate(views))
    return Selection(arm, views[0]["lr"], views[0]["epochs"], rows)


def _recorded(store: ResultStore, cfg: RunConfig) -> dict[str, Any]:
    record = store.get(cfg)
    # `_selection` reads records only after `load_selection` found every candidate recorded (else it returns None)
    assert record is not None, f"no finished record for {cfg.key()}"
    return record


class SelectionMissing(LookupError):
    """The learning-rate selection of a pair is not recorded yet (so its final configs are not known)."""


def _recorded_lrs(profile: str, pair: str, student: str | Iterable[str] | None, dataset: str,
                  store: ResultStore | None) -> dict[str, float] | None:
    if dataset not in tuned_datasets(pair):
        return None
    sel = select_lrs(profile, pair, student, dataset, store, train=False)
    if sel is None:
        raise SelectionMissing(f"the learning-rate selection of pair {pair!r} at profile {profile!r} is not "
                               f"recorded; `run_point` or `python -m kdutils run invariance --profile {profile} "
                               f"--set pair {pair}` selects it first")
    return {arm: s.lr for arm, s in sel.items()}


def _run_lrs(profile: str, pair: str, student: str | Iterable[str] | None, dataset: str | None,
             store: ResultStore, progress: bool) -> dict[str, float] | None:
    """The rates the runs of a pair use: selected (trained first if missing; in load-only mode a missing
    candidate raises `runner.MissingRunError`) on a tuned dataset, None (the recipe's) elsewhere."""
    if resolve_dataset(pair, dataset) not in tuned_datasets(pair):
        return None
    sel = select_lrs(profile, pair, student, dataset, store, train=True, progress=progress)
    if sel is None:  # a candidate was trained but left no finished record (`run_grouped` returns None for it)
        raise RuntimeError(f"the learning-rate selection of pair {pair!r} at profile {profile!r} is still "
                           "missing a candidate's record after training it")
    return {arm: s.lr for arm, s in sel.items()}


@contextmanager
def thread_limit(profile: str) -> Iterator[None]:
    """Smoke runs use one intra-op thread, restored afterwards. Their tensors are tiny, and on a shared 2-core
    machine a second thread only spins against other processes: we measured 10-100x slower smoke runs with
    two threads under load. Other profiles keep torch's setting (set OMP_NUM_THREADS to change it)."""
    if profile != "smoke":
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def run_point(profile: str, pair: str, tau: float = 4.0, fold: int | None = 0, direction: str | None = "auto",
              student: str | Iterable[str] | None = None, dataset: str | None = None,
              store: ResultStore | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Run (or load) the runs of one point notebook, with the selected rates (selecting them first if needed);
    returns their records."""
    store = store or ResultStore()
    lrs = _run_lrs(profile, pair, student, dataset, store, progress)
    cfgs = point_configs(profile, pair, tau, fold, direction, student, dataset, lrs)
    with thread_limit(profile):
        return [_run(cfg, store, progress, lrs) for cfg in cfgs]


def run_all(profile: str = "cpu", pair: str | None = None, tau: float | None = None, fold: int | None = None,
            direction: str | None = "auto", student: str | None = None, dataset: str | None = None,
            store: ResultStore | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Run (or load) the whole chapter, pair by pair (cheapest first, so an interrupted run leaves whole
    pairs): its learning-rate selection, then every fold; `pair`, `tau`, `fold`, `student`, `dataset` restrict
    it."""
    store = store or ResultStore()
    out = []
    for p in (RUN_ORDER if pair is None else (check_pair(pair).key,)):
        lrs = _run_lrs(profile, p, student, dataset, store, progress)
        cfgs = configs(profile, (p,), None if tau is None else (tau,), None if fold is None else (fold,), direction,
                       student, dataset, {p: lrs} if lrs is not None else None)
        cfgs = sorted(cfgs, key=_priority)  # stable: fold order kept within each priority
        with thread_limit(profile):
            out += [_run(cfg, store, progress, lrs) for cfg in cfgs]
    return out


def _priority(cfg: RunConfig) -> int:
    """Run order within a pair, so that a run cut short by its time budget still has what the verdicts need:
    models trained alone first (they are teachers), then teacher -> student (forward) and self-distillation,
    then teacher' and teacher' -> student, self-distillation from the augmented student and the reverse KL."""
    if cfg.teacher is None:
        return 2 if cfg.role == "teacher_prime" else 0
    if cfg.role in ("distilled", "self") and cfg.kd_direction == "forward":
        return 1
    return 2


def _run(cfg: RunConfig, store: ResultStore, progress: bool,
         lrs: Mapping[str, float] | None = None) -> dict[str, Any]:
    record = runner.run(cfg, store, progress=progress)
    return add_extra_metrics(cfg, record, store, lrs=lrs)

# ---------------------------------------------------------------------------------------------------------
# Extra evaluations attached to the records: the authors' MNIST roll IM, and the (t', s) fidelity check


def _extra_keys(cfg: RunConfig) -> list[str]:
    keys = []
    if cfg.data.dataset == "mnist":
        keys += ["im_roll_l1", "im_roll_l2", "flip_roll"]
    if cfg.role == "distilled":
        keys += ["agreement_tprime", "kl_tprime"]
    if cfg.role == "student":
        keys += ["agreement_teacher", "kl_teacher"]
    return keys


def _load_checkpoint(cfg: RunConfig, store: ResultStore, splits: runner.Splits, device: torch.device):
    path = store.checkpoint_path(cfg)
    if not path.exists():
        return None
    model = runner.build_for(cfg, splits)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(device).eval()


def add_extra_metrics(cfg: RunConfig, record: dict[str, Any], store: ResultStore,
                      device: torch.device | None = None, lrs: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Add to a finished record (from its checkpoint, without retraining) what the runner does not measure:
    the IM and flip rate under the authors' MNIST roll (`im_roll_l1/l2`, `flip_roll`); for teacher -> student
    runs, agreement and KL of the student with teacher' (`agreement_tprime`, `kl_tprime`; the authors' "target
    teacher" check); for the student alone, its agreement and KL with the teacher it never saw
    (`agreement_teacher`, `kl_teacher`: the baseline of the fidelity gate). `lrs`: the selected rates that
    name this fold's teachers. Records whose checkpoint is not on this machine are returned unchanged."""
    keys = _extra_keys(cfg)
    evaluated = record.get("status") in ("ok", "chance")  # a run at chance level is evaluated; a diverged one not
    if not evaluated or not keys or all(k in record.get("metrics", {}) for k in keys):
        return record
    device = device or runner.default_device()
    splits = runner.prepare_data(cfg.data)
    model = _load_checkpoint(cfg, store, splits, device)
    if model is None:
        return record
    extra: dict[str, float] = {}
    x = splits.test.x
    if "im_roll_l1" in keys:
        gen = torch.Generator().manual_seed(1234)
        p = predict_logits(model, x, device=device, mean=splits.mean, std=splits.std).softmax(1)
        p_t = predict_logits(model, TRANSFORMATIONS["roll5"].fn(x, gen), device=device, mean=splits.mean,
                             std=splits.std).softmax(1)
        extra["im_roll_l1"] = invariance_metric(p, p_t, "l1")
        extra["im_roll_l2"] = invariance_metric(p, p_t, "l2")
        extra["flip_roll"] = flip_rate(p, p_t)
    for key, prime in (("agreement_tprime", True), ("agreement_teacher", False)):
        if key not in keys:
            continue
        t_cfg = teacher_config(cfg.profile, _pair_of(cfg), cfg.data.fold, prime, cfg.data.dataset, lrs)
        teacher = _load_checkpoint(t_cfg, store, splits, device)
        if teacher is not None:
            logits = predict_logits(model, x, device=device, mean=splits.mean, std=splits.std)
            t_logits = runner.teacher_logits_for(t_cfg, teacher, cfg.data, "test", x, splits, device)
            extra[key] = agreement(logits, t_logits)
            extra[key.replace("agreement", "kl")] = predictive_kl(t_logits, logits)
    if not extra:
        return record
    updated = {k: v for k, v in record.items() if k not in ("key", "config")}
    updated["metrics"] = {**record["metrics"], **extra}
    return store.put(cfg, updated)


def _pair_of(cfg: RunConfig) -> str:
    return cfg.experiment[len(EXPERIMENT_PREFIX):]

# ---------------------------------------------------------------------------------------------------------
# Text helpers for the notebooks


def describe(profile: str, pair: str, dataset: str | None = None, student: str | None = None,
             rec: Recipe | None = None, n_transfer: int | None = None, lr_grid: Sequence[float] | None = None,
             folds: Sequence[int] | None = None, version: str = "") -> str:
    """The recipe of one pair at one profile, as the notebooks print it. `rec`, `n_transfer` (the students' and
    KD runs' training-set size, where it differs from the teachers'), `lr_grid`, `folds` and `version` (its name)
    describe another recipe version (`plan_v2.describe_v2`); by default the pair's v1 recipe."""
    dataset = resolve_dataset(pair, dataset)
    rec = rec or recipe(pair, profile, dataset)
    im, aug = transformation(pair, dataset)
    info = DATASETS[dataset]
    opts = ", ".join(f"{k}={v}" for k, v in info.options[profile].items())
    students = resolve_students(pair, profile, student, dataset)
    sizes = (f"teachers {rec.n_train or 'all'}, students and KD runs {n_transfer}" if n_transfer
             and n_transfer != rec.n_train else f"{rec.n_train or 'all'}")
    lines = [
        f"pair {pair}: {PAIR_INFO[pair].title}; profile {profile}{f', recipe {version}' if version else ''}; "
        f"dataset {dataset}" + (f" ({opts})" if opts else ""),
        f"  training examples per run: {sizes} (drawn from the fold's {K_FOLDS - 1}/{K_FOLDS} of the "
        f"training split when a fold is set); test examples: {rec.n_test or 'all'}"
        + (f"; folds {', '.join(map(str, folds))}" if folds is not None else ""),
        f"  teacher : {rec.teacher.describe()}, {rec.teacher_train.describe()}",
        f"  teacher': {rec.teacher_prime.describe()}, {rec.teacher_prime_train.describe()}",
    ]
    for s in students:
        lines.append(f"  student {s}: {rec.students[s].describe()}, alone {rec.student_train.describe()}; "
                     f"KD {rec.distill_train.describe()}")
    lines.append(f"  IM transformation {im!r}; augmentation {aug!r}")
    if dataset in tuned_datasets(pair):
        grid = LR_GRID[profile] if lr_grid is None else lr_grid
        lines.append(f"  learning rates: each arm's own, selected on a validation split from Adam "
                     f"{', '.join(f'{lr:g}' for lr in grid)} (the rates above are the recipe's defaults)")
    return "\n".join(lines)


def transformation_text(pair: str, dataset: str | None = None) -> str:
    im, aug = transformation(pair, dataset)
    return f"{im}: {TRANSFORMATIONS[im].text}. Augmented students train on '{aug}', the same random transformation."


def gpu_command(profile: str = "full") -> str:
    return (f"KDUTILS_DATA=/path/to/data python -m kdutils run invariance --profile {profile}"
            "   # per pair: --set pair resnet_mlp (or dgcnn_deepsets, deepsets_mlp)")


def point_configs(profile: str, pair: str | None = None, tau: float = 4.0, fold: int | None = 0,
                  direction: str | None = "auto", student: str | Iterable[str] | None = None,
                  dataset: str | None = None, lrs: Mapping[str, float] | str | None = "selected",
                  store: ResultStore | None = None) -> list[RunConfig]:
    """The runs one point notebook shows: both teachers, each student alone and augmented, and the four KD arms
    at `tau` (with `direction` "auto": forward KL, plus the reverse KL for teacher -> student at tau 1 and 4).

    lrs: "selected" (default; what the sweep's grouped pre-run and its done-check use) takes the recorded
    selection of the chapter's dataset and raises `SelectionMissing` while it is not recorded (`run_point`
    selects first); a mapping gives the rates; None keeps the recipe's rates."""
    if pair is None:
        raise ValueError(f"point_configs needs pair=; choose one of: {', '.join(PAIRS)}")
    check_profile(profile)
    check_pair(pair)
    direction = resolve_direction(direction)
    fold = resolve_fold(fold)
    dataset = resolve_dataset(pair, dataset)
    tau = float(tau)
    if isinstance(lrs, str):
        if lrs != "selected":
            raise ValueError(f"lrs must be 'selected', a mapping arm -> lr, or None; got {lrs!r}")
        lrs = _recorded_lrs(profile, pair, student, dataset, store)
    out = [teacher_config(profile, pair, fold, False, dataset, lrs),
           teacher_config(profile, pair, fold, True, dataset, lrs)]
    for s in resolve_students(pair, profile, student, dataset):
        out += [student_config(profile, pair, s, fold, False, dataset, lrs),
                student_config(profile, pair, s, fold, True, dataset, lrs)]
        directions = {"auto": ["forward"] + (["reverse"] if tau in REVERSE_TAUS else []),
                      "forward": ["forward"], "reverse": ["reverse"]}[direction]
        out += [kd_config(profile, pair, s, tau, "distilled", fold, d, dataset, lrs) for d in directions]
        out += [kd_config(profile, pair, s, tau, arm, fold, "forward", dataset, lrs)
                for arm in ("distilled_prime", "self", "self_aug")]
    return out


def configs(profile: str, pairs: Iterable[str] | None = None, taus: Iterable[float] | None = None,
            folds: Iterable[int | None] | None = None, direction: str | None = "auto",
            student: str | Iterable[str] | None = None, dataset: str | None = None,
            lrs: Mapping[str, Mapping[str, float]] | None = None) -> list[RunConfig]:
    """Every run of the chapter at `profile`, deduplicated. `lrs`: per pair, the selected learning rates
    (`select_lrs`); a pair missing from it (or lrs=None) keeps its recipe's rates."""
    check_profile(profile)
    pairs = PAIRS if pairs is None else tuple(pairs)
    taus = PROFILE_TAUS[profile] if taus is None else tuple(float(t) for t in taus)
    folds = capped(FOLDS[profile]) if folds is None else tuple(folds)  # the GPU script's budget may cut folds
    seen: dict[str, RunConfig] = {}
    for fold in folds:
        for pair in pairs:
            for tau in taus:
                for cfg in point_configs(profile, pair, tau, fold, direction, student, dataset,
                                         None if lrs is None else lrs.get(pair)):
                    seen.setdefault(cfg.key(), cfg)
    # fold by fold (an interrupted run leaves whole folds), teachers and students alone before the KD runs
    return sorted(seen.values(), key=lambda c: (folds.index(c.data.fold), c.teacher is not None))
