"""TGeo-KD (Hu, Wu et al., ICLR 2024), "Less or More From Teacher: Exploiting Trilateral Geometry For
Knowledge Distillation": the chapter's recipes, configs, runs and verdicts.

Setting (the issue's): Fashion-MNIST, whose ResNet teachers err on a few percent of images (the teacher-wrong
samples the method needs), a ResNet teacher and a clearly weaker MLP student; a validation split held out
from the training split (f_w's outer objective and every arm's lr selection; never the test set).
`dataset="cifar100"` switches to the paper's ResNet-56 -> ResNet-20 pair.

Arms (the RunConfig `role`; `select:<arm>` for its lr-selection candidates):
* `alone`: the student on hard labels (alpha 0), for the testable gate;
* `vanilla_a{alpha}`: fixed alpha in VANILLA_ALPHAS (also the papermill sweep of notebooks/tgeo_point.ipynb);
* `anl`, `ada`, `wls`, `rw`: the sample-wise / scheduled baselines (`kdutils.chapters.tgeo.baselines`);
* `tgeo_intra`, `tgeo_inter`, `tgeo_both`: TGeo-KD with each feature set (the ablation; `both` is the method);
* `motivation_pre` and `motivation_a{alpha}`: Steps 2-6 of the poster (alpha 0.5, then each MOTIVATION_ALPHAS).

DISPATCH: every student config of this chapter is trained by `run_config` (-> `kdutils.chapters.tgeo.runs.run_arm`
with `ARMS[arm]`), never by `kdutils.training.runner.run`, which trains the RunConfig's fixed `alpha` and would silently
train the wrong loss for a sample-wise arm. For those arms the RunConfig's `alpha` is 0 and meaningless.
Only the teacher (a plain RunConfig) goes through `runner.run` / `tuning.run_selection`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypedDict

from kdutils.chapters.tgeo.arms import ArmSpec
from kdutils.config import DataConfig, RunConfig, TrainConfig
from kdutils.gpu.workload import ChapterWork, Work
if TYPE_CHECKING:  # the type checker reads pandas' own names; at run time pandas is imported on first use
    import pandas as pd
else:
    from kdutils.lazy import pandas as pd
from kdutils.store.profiles import capped, check_profile
from kdutils.store.store import ResultStore
from kdutils.sweeps.tuning import ROLE_PREFIX, Selection, load_selection, selection_configs

EXPERIMENT = "tgeo_kd"
PAPER = {"title": "Less or More From Teacher: Exploiting Trilateral Geometry For Knowledge Distillation",
         "authors": "Chengming Hu, Haolun Wu, Xuan Li, Chen Ma, Xi Chen, Jun Yan, Boyu Wang, Xue Liu",
         "venue": "ICLR 2024", "arxiv": "2312.15112", "url": "https://arxiv.org/abs/2312.15112",
         "openreview": "https://openreview.net/forum?id=OZitfSXpdT"}
VANILLA_ALPHAS = (0.1, 0.3, 0.5, 0.7, 0.9)
MOTIVATION_ALPHAS = (0.1, 0.3, 0.5, 0.7, 0.9)
FEATURE_ARMS = ("tgeo_intra", "tgeo_inter", "tgeo_both")
BASELINE_ARMS = ("anl", "ada", "wls", "rw")
VANILLA_ARMS = tuple(f"vanilla_a{a:g}" for a in VANILLA_ALPHAS)
METHOD_ARM = "tgeo_both"
NUM_CLASSES = 10
CHANCE_ACCURACY = 1.0 / NUM_CLASSES  # a failed run (diverged / at chance) is scored as a guessing classifier

ARMS: dict[str, ArmSpec] = {
    "alone": ArmSpec("vanilla", alpha=0.0),
    **{f"vanilla_a{a:g}": ArmSpec("vanilla", alpha=a) for a in VANILLA_ALPHAS},
    **{name: ArmSpec(name) for name in BASELINE_ARMS},
    **{name: ArmSpec("tgeo", features=name.split("_", 1)[1]) for name in FEATURE_ARMS},
}
ARM_LABELS = {"alone": "student alone", **{f"vanilla_a{a:g}": f"vanilla KD, α={a:g}" for a in VANILLA_ALPHAS},
              "anl": "ANL-KD", "ada": "ADA-KD", "wls": "WLS-KD", "rw": "RW-KD", "tgeo_intra": "TGeo-KD (intra)",
              "tgeo_inter": "TGeo-KD (inter)", "tgeo_both": "TGeo-KD (intra + inter)", "teacher": "teacher"}


@dataclass(frozen=True)
class Recipe:
    """One profile's scale."""

    dataset: str
    n_train: int | None
    n_test: int | None
    val_size: int
    teacher: str
    teacher_kwargs: dict = field(default_factory=dict)
    student: str = "mlp"
    student_kwargs: dict = field(default_factory=lambda: {"hidden": [64]})
    teacher_epochs: int = 1
    select_teacher_epochs: int = 1
    teacher_lrs: tuple[float, ...] = (0.1,)
    student_epochs: int = 2
    select_student_epochs: int = 2
    motivation_pre_epochs: int = 1
    motivation_epochs: int = 1
    batch_size: int = 128
    tau: float = 4.0
    student_lrs: tuple[float, ...] = (0.01, 0.05)
    #: Adam's lr for f_w. Not tuned: in a 3-epoch trial at the cpu scale, 1e-3 left every alpha_i within
    #: about 0.02 of its start (f_w barely learned in the budget), 1e-2 spread them (std about 0.1).
    fusion_lr: float = 1e-2
    rw_lr: float = 1e-3
    seeds: tuple[int, ...] = (0,)
    augment: str = "none"
    notes: str = field(default="", compare=False)


RECIPES: dict[str, Recipe] = {
    "smoke": Recipe(dataset="fashion_mnist", n_train=1000, n_test=500, val_size=300, teacher="resnet8",
                    student_kwargs={"hidden": [32]}, teacher_epochs=1, select_teacher_epochs=1, teacher_lrs=(0.1,),
                    student_epochs=2, select_student_epochs=2, motivation_pre_epochs=1, motivation_epochs=1,
                    student_lrs=(0.05,), seeds=(0, 1),
                    notes="seconds, for the tests: 1,000 training images, two student epochs"),
    "cpu": Recipe(dataset="fashion_mnist", n_train=20_000, n_test=None, val_size=5_000, teacher="resnet8",
                  student_kwargs={"hidden": [64]}, teacher_epochs=12, select_teacher_epochs=3,
                  teacher_lrs=(0.03, 0.1, 0.3, 1.0), student_epochs=15, select_student_epochs=15,
                  motivation_pre_epochs=8, motivation_epochs=8, student_lrs=(0.01, 0.03, 0.1),
                  seeds=(0, 1, 2, 3, 4),
                  notes="Sized for one single-thread process: ResNet-8 teacher (lr from 4 candidates of 3 "
                        "epochs, 1.0 added after 0.3 was chosen at the top of the first three; then 12 epochs; "
                        "about 15 of the 34 minutes measured), MLP-64 students of 15 "
                        "epochs (13 arms x 3 lr candidates + 5 seeds), the motivation experiment at 5 seeds; "
                        "measured: 34 minutes in all, with two other single-thread jobs on the 2 cores"),
    "gpu": Recipe(dataset="fashion_mnist", n_train=None, n_test=None, val_size=5_000, teacher="resnet20",
                  student_kwargs={"hidden": [128]}, teacher_epochs=15, select_teacher_epochs=3,
                  teacher_lrs=(0.03, 0.1, 0.3), student_epochs=6, select_student_epochs=3, motivation_pre_epochs=3,
                  motivation_epochs=3, batch_size=256, student_lrs=(0.01, 0.03, 0.1), seeds=tuple(range(8)),
                  notes="sized for about a minute of one H200 (`python -m kdutils gpu`): all of Fashion-MNIST "
                        "(5,000 held out), ResNet-20 teacher 15 epochs, MLP-128 students 6 epochs at batch 256, "
                        "selection with 3-epoch runs, 8 seeds (cpu: 5)"),
    "full": Recipe(dataset="fashion_mnist", n_train=None, n_test=None, val_size=5_000, teacher="resnet56",
                   student_kwargs={"hidden": [128]}, teacher_epochs=60, select_teacher_epochs=15,
                   teacher_lrs=(0.03, 0.1, 0.3), student_epochs=60, select_student_epochs=30,
                   motivation_pre_epochs=30, motivation_epochs=30, student_lrs=(0.01, 0.03, 0.1),
                   seeds=(0, 1, 2, 3, 4), augment="crop2",
                   notes="a GPU recipe on the whole of Fashion-MNIST; dataset='cifar100' gives the paper's pair"),
}


class _RecipeOverrides(TypedDict, total=False):
    """Recipe fields `recipe` replaces to swap the data set (each with its Recipe type)."""

    dataset: str
    n_train: int | None
    n_test: int | None
    val_size: int
    teacher: str
    student: str
    student_kwargs: dict
    teacher_epochs: int
    student_epochs: int
    augment: str


#: The paper's CIFAR-100 pair (ResNet-56 -> ResNet-20), used by `recipe(profile, dataset="cifar100")`.
CIFAR100_OVERRIDES: _RecipeOverrides = dict(dataset="cifar100", teacher="resnet56", student="resnet20",
                                             student_kwargs={}, teacher_epochs=240, student_epochs=240,
                                             augment="crop4+flip", val_size=5_000)


def recipe(profile: str, dataset: str | None = None) -> Recipe:
    """The profile's recipe; dataset="cifar100" swaps in the paper's data and ResNet-56 -> ResNet-20 pair."""
    r = RECIPES[check_profile(profile)]
    r = replace(r, seeds=capped(r.seeds))  # the GPU script's budget may run the first seeds only
    if dataset is None or dataset == r.dataset:
        return r
    if dataset != "cifar100":
        raise ValueError(f"unknown dataset {dataset!r} for the TGeo-KD chapter; choose fashion_mnist or cifar100")
    keep: _RecipeOverrides = {"n_train": r.n_train, "n_test": r.n_test} if profile == "smoke" else {}
    overrides: _RecipeOverrides = {**CIFAR100_OVERRIDES, **keep}
    return replace(r, **overrides)


def _data(r: Recipe) -> DataConfig:
    return DataConfig(dataset=r.dataset, n_train=r.n_train, n_test=r.n_test, val_size=r.val_size)


#: Sample-wise arms cost more than a plain KD step (f_w's bilevel step, RW's reweighting): charged at this
#: many plain student epochs per epoch, a rough figure until the bench record of this chapter measures it.
_COSTLY_ARM_FACTOR = 3.0


def gpu_work(profile: str = "gpu") -> ChapterWork:
    """What `run_all(profile)` trains, in epochs per architecture (for the GPU script's time budget)."""
    r = RECIPES[check_profile(profile)]
    costly = len(FEATURE_ARMS) + 1  # the TGeo arms and RW-KD
    arm_units = len(ARMS) - costly + costly * _COSTLY_ARM_FACTOR
    teacher = Work(f"tgeo teacher {r.teacher}", r.teacher, _data(r), r.batch_size,
                   fixed_epochs=len(r.teacher_lrs) * r.select_teacher_epochs + r.teacher_epochs, epochs_per_seed=0,
                   runs_fixed=len(r.teacher_lrs) + 1, model_kwargs=dict(r.teacher_kwargs))
    student = Work(f"tgeo student {r.student}", r.student, _data(r), r.batch_size,
                   fixed_epochs=arm_units * len(r.student_lrs) * r.select_student_epochs,
                   epochs_per_seed=arm_units * r.student_epochs + r.motivation_pre_epochs
                   + len(MOTIVATION_ALPHAS) * r.motivation_epochs,
                   runs_fixed=len(ARMS) * len(r.student_lrs), runs_per_seed=len(ARMS) + 1 + len(MOTIVATION_ALPHAS),
                   model_kwargs=dict(r.student_kwargs))
    return ChapterWork("tgeo", len(r.seeds), 2, (teacher, student))


def _train(r: Recipe, epochs: int, lr: float, augment: str) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=r.batch_size, optimizer="sgd", lr=lr, momentum=0.9,
                       weight_decay=5e-4, schedule="cosine", augment=augment)


# ---- configs ------------------------------------------------------------------------------------------------

def teacher_config(profile: str, lr: float | None = None, dataset: str | None = None) -> RunConfig:
    """The ResNet teacher, trained on the training split minus the validation split (lr: the selected one)."""
    r = recipe(profile, dataset)
    lr = r.teacher_lrs[0] if lr is None else float(lr)
    return RunConfig(experiment=EXPERIMENT, role="teacher", model=r.teacher, model_kwargs=dict(r.teacher_kwargs),
                     profile=profile, data=_data(r), train=_train(r, r.teacher_epochs, lr, r.augment))


def arm_of(role: str) -> str:
    """The arm a role trains: "select:tgeo_both" -> "tgeo_both"; motivation roles -> "vanilla_a{alpha}"-like."""
    return role[len(ROLE_PREFIX):] if role.startswith(ROLE_PREFIX) else role


def arm_config(profile: str, teacher: RunConfig, arm: str, lr: float, seed: int = 0,
               dataset: str | None = None) -> RunConfig:
    """One student arm (see ARMS) at one lr and seed; the student sees un-augmented images so that the
    teacher's logits can be cached once (teacher outputs T_i and the class means T-bar come from them)."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; choose one of: {', '.join(ARMS)}")
    r = recipe(profile, dataset)
    spec = ARMS[arm]
    alpha = 0.0
    if spec.rule == "vanilla":
        assert spec.alpha is not None  # ArmSpec refuses a vanilla rule without its alpha
        alpha = spec.alpha
    return RunConfig(experiment=EXPERIMENT, role=arm, model=r.student, model_kwargs=dict(r.student_kwargs),
                     profile=profile, seed=seed, data=_data(r), teacher=teacher, tau=r.tau, alpha=alpha,
                     train=_train(r, r.student_epochs, lr, "none"))


def arm_selection(profile: str, teacher: RunConfig, arm: str, dataset: str | None = None) -> list[RunConfig]:
    """The lr candidates of one arm (role "select:<arm>", seed 0, the recipe's selection epochs)."""
    r = recipe(profile, dataset)
    base = arm_config(profile, teacher, arm, r.student_lrs[0], 0, dataset)
    return selection_configs(base, arm, r.student_lrs, r.select_student_epochs, r.val_size)


def teacher_selection(profile: str, dataset: str | None = None) -> list[RunConfig]:
    r = recipe(profile, dataset)
    return selection_configs(teacher_config(profile, None, dataset), "teacher", r.teacher_lrs,
                             r.select_teacher_epochs, r.val_size)


def motivation_configs(profile: str, teacher: RunConfig, lr: float, seed: int = 0,
                       dataset: str | None = None) -> dict[str, RunConfig]:
    """Step 2 (`motivation_pre`: alpha 0.5) and Step 5 (`motivation_a{alpha}`: continued from it)."""
    r = recipe(profile, dataset)
    pre = arm_config(profile, teacher, "vanilla_a0.5", lr, seed, dataset).with_(
        role="motivation_pre", train=_train(r, r.motivation_pre_epochs, lr, "none"))
    out = {"motivation_pre": pre}
    for a in MOTIVATION_ALPHAS:
        out[f"motivation_a{a:g}"] = pre.with_(role=f"motivation_a{a:g}", alpha=a,
                                              train=_train(r, r.motivation_epochs, lr, "none"))
    return out


def all_arm_configs(profile: str, teacher: RunConfig, lr_by_arm: dict[str, float],
                    dataset: str | None = None) -> list[RunConfig]:
    """Every arm x seed at its selected lr (lr_by_arm from the validation-split selection)."""
    missing = [a for a in ARMS if a not in lr_by_arm]
    if missing:
        raise ValueError(f"no selected lr for arm(s) {missing}; select each arm's lr on the validation split first")
    r = recipe(profile, dataset)
    return [arm_config(profile, teacher, arm, lr_by_arm[arm], s, dataset) for arm in ARMS for s in r.seeds]


def bench_config(profile: str) -> RunConfig:
    """The identity of the bilevel-vs-plain step benchmark's record (the recipe's student, batch size)."""
    r = recipe(profile)
    return RunConfig(experiment=EXPERIMENT, role="bench", model=r.student, model_kwargs=dict(r.student_kwargs),
                     profile=profile, data=_data(r), train=TrainConfig(batch_size=r.batch_size), tau=r.tau)


# ---- running ------------------------------------------------------------------------------------------------

def run_config(cfg: RunConfig, store: ResultStore | None = None, *, progress: bool = True,
               force: bool = False) -> dict[str, Any]:
    """THE DISPATCH: train (or load) one of this chapter's student configs with the loss its arm names."""
    from kdutils.chapters.tgeo.runs import run_arm

    arm = arm_of(cfg.role)
    if cfg.experiment != EXPERIMENT or arm not in ARMS:
        raise ValueError(f"run_config trains this chapter's student arms ({', '.join(ARMS)}), "
                         f"got experiment {cfg.experiment!r} role {cfg.role!r}")
    spec = ARMS[arm]
    if spec.rule == "vanilla":
        assert spec.alpha is not None  # ArmSpec refuses a vanilla rule without its alpha
        if float(cfg.alpha) != float(spec.alpha):
            raise ValueError(f"config alpha {cfg.alpha} does not match arm {arm!r} (alpha {spec.alpha})")
    r = recipe(cfg.profile)
    return run_arm(cfg, spec, store, fusion_lr=r.fusion_lr, rw_lr=r.rw_lr, progress=progress, force=force)


def run_bench(profile: str, store: ResultStore | None = None) -> dict[str, Any]:
    """Time one TGeo bilevel step against one plain KD step (the recipe's MLP student) and record it."""
    import time

    from kdutils.training import runner
    from kdutils.store.provenance import provenance

    store = store or ResultStore()
    cfg = bench_config(profile)
    if (rec := store.get(cfg)) is not None:
        return rec
    if runner.load_only():
        raise runner.missing_run_error(cfg, store)
    from kdutils.chapters.tgeo.bench import bench_bilevel_vs_plain

    r = recipe(profile)
    with runner.sole_writer(cfg, store) as done:  # one timing per config, even with two writers
        if done is not None:
            return done
        started = time.perf_counter()
        device = runner.default_device()
        times = bench_bilevel_vs_plain(batch_size=r.batch_size, hidden=tuple(r.student_kwargs.get("hidden", (64,))),
                                       device=str(device), min_run_time=0.05 if profile == "smoke" else 1.0,
                                       verbose=False)
        record = {"status": "ok", "message": "", "metrics": {k: float(v) for k, v in times.items()}, "history": [],
                  "wall_time_s": round(time.perf_counter() - started, 3), "provenance": provenance(device)}
        return store.put(cfg, record)


def _load_or_run_selection(cfgs: list[RunConfig], arm: str, store: ResultStore, train: bool,
                           progress: bool) -> Selection | None:
    if train:
        for c in cfgs:
            run_config(c, store, progress=progress)
    return load_selection(arm, cfgs, store)


@dataclass
class Plan:
    """The chapter's configs for one profile, as far as the recorded selections determine them."""

    profile: str
    teacher_selection: Selection | None
    teacher: RunConfig | None
    selections: dict[str, Selection | None]
    finals: dict[str, list[RunConfig]]  # arm -> one config per seed ([] while its lr is unknown)
    motivation: dict[int, dict[str, RunConfig]]  # seed -> role -> config

    def vanilla_best(self) -> str | None:
        """The vanilla arm whose chosen candidate has the best validation accuracy (ties: lower val NLL)."""
        views = {a: next(r for r in s.rows if r["chosen"]) for a, s in self.selections.items()
                 if a in VANILLA_ARMS and s is not None}
        if len(views) < len(VANILLA_ARMS):
            return None
        return min(views, key=lambda a: (-views[a].get("val_accuracy", -math.inf), views[a].get("val_nll", math.inf)))


def plan(profile: str, store: ResultStore | None = None, *, train: bool = False, arms=None, seeds=None,
         progress: bool = True) -> Plan:
    """Resolve configs from the recorded selections; with `train`, run missing selections (and the teacher)."""
    from kdutils.sweeps.tuning import run_selection

    store = store or ResultStore()
    r = recipe(profile)
    arms = tuple(ARMS) if arms is None else tuple(arms)
    seeds = r.seeds if seeds is None else tuple(int(s) for s in seeds)
    t_cfgs = teacher_selection(profile)
    t_sel = (run_selection({"teacher": t_cfgs}, store, progress)["teacher"] if train
             else load_selection("teacher", t_cfgs, store))
    teacher = teacher_config(profile, t_sel.lr) if t_sel else None
    selections: dict[str, Selection | None] = {a: None for a in arms}
    finals: dict[str, list[RunConfig]] = {a: [] for a in arms}
    motivation: dict[int, dict[str, RunConfig]] = {}
    if teacher is not None:
        if train:
            from kdutils.training import runner

            runner.run(teacher, store, progress=progress)
        for a in arms:
            sel = _load_or_run_selection(arm_selection(profile, teacher, a), a, store, train, progress)
            selections[a] = sel
            if sel is not None:
                finals[a] = [arm_config(profile, teacher, a, sel.lr, s) for s in seeds]
        base = selections.get("vanilla_a0.5")
        if base is None and "vanilla_a0.5" not in arms:
            base = load_selection("vanilla_a0.5", arm_selection(profile, teacher, "vanilla_a0.5"), store)
        if base is not None:
            motivation = {s: motivation_configs(profile, teacher, base.lr, s) for s in seeds}
    return Plan(profile, t_sel, teacher, selections, finals, motivation)


def run_motivation_seed(p: Plan, seed: int, store: ResultStore, progress: bool = True) -> list[dict[str, Any]]:
    from kdutils.chapters.tgeo.runs import run_motivation

    cfgs = p.motivation[seed]
    continued = {float(c.alpha): c for role, c in cfgs.items() if role != "motivation_pre"}
    return run_motivation(cfgs["motivation_pre"], continued, store, progress=progress)


def run_all(profile: str = "cpu", arm: str | None = None, alpha: float | None = None, seed: int | None = None,
            store: ResultStore | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Everything the chapter shows: the step benchmark, the teacher (lr chosen on validation), every arm's lr
    selection, the final runs (seed by seed, so a run cut short still has every arm at the first seeds) and
    the motivation experiment. `arm`/`alpha`/`seed` restrict it to one point (alpha: a vanilla arm).
    Returns the final runs' records (teacher first). Resumable: finished records are loaded, not retrained."""
    store = store or ResultStore()
    profile = check_profile(profile)
    r = recipe(profile)
    point = arm is not None or alpha is not None
    if alpha is not None:
        if arm not in (None, "vanilla"):
            raise ValueError(f"alpha applies to the vanilla arm only, got arm={arm!r}")
        arm = f"vanilla_a{float(alpha):g}"
    elif arm == "vanilla":
        raise ValueError("arm 'vanilla' needs an alpha (e.g. alpha=0.5)")
    if arm is not None and arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; choose one of: {', '.join(ARMS)} (or vanilla with alpha)")
    seeds = r.seeds if seed is None else (int(seed),)
    arms = (arm,) if arm is not None else tuple(ARMS)
    if not point:
        run_bench(profile, store)
    p = plan(profile, store, train=True, arms=arms, seeds=seeds, progress=progress)
    from kdutils.training import runner

    # plan(train=True) chose the teacher's lr (run_selection raises where it cannot), so the teacher is set
    assert p.teacher is not None
    out = [runner.run(p.teacher, store, progress=progress)]
    order = list(arms)
    for s_i, s in enumerate(seeds):
        for a in order:
            out.append(run_config(p.finals[a][s_i], store, progress=progress))
        if not point:
            run_motivation_seed(p, s, store, progress)
    return out


def point_records(profile: str, arm: str = "vanilla", alpha: float | None = 0.5, seed: int = 0,
                  store: ResultStore | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """One point of notebooks/tgeo_point.ipynb: teacher, the student alone and the arm (vanilla at alpha, or a
    named arm) at one seed, each at its selected lr."""
    alpha = alpha if arm == "vanilla" else None
    arm_arg = None if arm == "vanilla" else arm
    recs = run_all(profile, arm=arm_arg, alpha=alpha, seed=seed, store=store, progress=progress)
    alone = run_all(profile, arm="alone", seed=seed, store=store, progress=progress)[1:]
    return recs[:1] + alone + recs[1:]


# ---- tables ---------------------------------------------------------------------------------------------------

COLUMNS = {"arm": "arm", "config.seed": "seed", "config.train.lr": "lr", "accuracy": "accuracy", "nll": "NLL",
           "ece": "ECE", "agreement": "agreement", "val_accuracy": "val accuracy", "status": "status",
           "wall_time_s": "wall time (s)", "device": "device", "n_train": "n_train", "n_test": "n_test"}


def _records_by_key(store: ResultStore) -> dict[str, dict[str, Any]]:
    return {rec["key"]: rec for rec in store.records(EXPERIMENT)}


def results_table(profile: str, store: ResultStore | None = None, p: Plan | None = None) -> pd.DataFrame:
    """One row per recorded final run of this profile (teacher and every arm), with the chapter's columns."""
    store = store or ResultStore()
    p = p or plan(profile, store)
    cfgs = {"teacher": [p.teacher] if p.teacher else [], **p.finals}
    table = store.table(EXPERIMENT)
    if table.empty:
        return pd.DataFrame(columns=list(COLUMNS.values()))
    arm_of_key = {c.key(): a for a, cs in cfgs.items() for c in cs}
    table = table[table.key.isin(arm_of_key)].copy()
    if table.empty:
        return pd.DataFrame(columns=list(COLUMNS.values()))
    table["arm"] = table.key.map(arm_of_key)
    table = table[[c for c in COLUMNS if c in table]].rename(columns=COLUMNS)
    order = {a: i for i, a in enumerate(["teacher", *ARMS])}
    return table.sort_values(["arm", "seed"], key=lambda s: s.map(order) if s.name == "arm" else s)\
        .reset_index(drop=True)


def selection_table(profile: str, store: ResultStore | None = None, p: Plan | None = None) -> pd.DataFrame:
    """One row per lr candidate (teacher and every arm): lr, epochs, status, val accuracy / NLL, chosen."""
    p = p or plan(profile, store)
    sels = {"teacher": p.teacher_selection, **p.selections}
    rows = [row for sel in sels.values() if sel is not None for row in sel.rows]
    cols = ["arm", "lr", "epochs", "status", "val_accuracy", "val_nll", "chosen"]
    if not rows:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame(rows)[cols]


def motivation_cells(profile: str, store: ResultStore | None = None, p: Plan | None = None,
                     where: str = "train") -> pd.DataFrame:
    """Long table of the heatmap cells: seed, group, alpha, accuracy (%) on that group (training groups by
    default, the poster's protocol; where="val" for the held-out groups)."""
    store = store or ResultStore()
    p = p or plan(profile, store)
    rows = []
    for seed, cfgs in p.motivation.items():
        for role, c in cfgs.items():
            if role == "motivation_pre" or (rec := store.get(c)) is None:
                continue
            m = rec.get("motivation")
            if rec["status"] != "ok" or not m:
                for g in [f"g{k}" for k in range(1, 6)] + [f"g'{k}" for k in range(1, 6)]:
                    rows.append({"seed": seed, "group": g, "alpha": float(c.alpha), "accuracy": 100 * CHANCE_ACCURACY,
                                 "status": rec["status"]})
                continue
            for g, acc in m[where].items():
                rows.append({"seed": seed, "group": g, "alpha": float(m["alpha"]), "accuracy": float(acc),
                             "status": "ok"})
    return pd.DataFrame(rows, columns=["seed", "group", "alpha", "accuracy", "status"])


def tgeo_alpha_records(profile: str, store: ResultStore | None = None, p: Plan | None = None,
                       arms=FEATURE_ARMS) -> list[dict[str, Any]]:
    """The recorded final TGeo runs (with their "tgeo" evidence), for the alpha_i plots and claim 3."""
    store = store or ResultStore()
    p = p or plan(profile, store)
    out = []
    for a in arms:
        for c in p.finals.get(a, []):
            if (rec := store.get(c)) is not None:
                out.append({"arm": a, "seed": c.seed, "record": rec})
    return out


__all__ = ["ARMS", "EXPERIMENT", "PAPER", "RECIPES", "Plan", "all_arm_configs", "arm_config", "motivation_cells",
           "gpu_work", "motivation_configs", "plan", "point_records", "recipe", "results_table", "run_all", "run_config",
           "selection_table", "teacher_config", "tgeo_alpha_records"]
