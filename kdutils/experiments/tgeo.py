"""TGeo-KD (Hu, Wu et al., ICLR 2024), "Less or More From Teacher: Exploiting Trilateral Geometry For
Knowledge Distillation": the chapter's recipes, configs, runs and verdicts.

Setting (the issue's): Fashion-MNIST, whose ResNet teachers err on a few percent of images (the teacher-wrong
samples the method needs), a ResNet teacher and a clearly weaker MLP student; a validation split held out
from the training split (f_w's outer objective and every arm's lr selection; never the test set).
`dataset="cifar100"` switches to the paper's ResNet-56 -> ResNet-20 pair.

Arms (the RunConfig `role`; `select:<arm>` for its lr-selection candidates):
* `alone`: the student on hard labels (alpha 0), for the testable gate;
* `vanilla_a{alpha}`: fixed alpha in VANILLA_ALPHAS (also the papermill sweep of notebooks/tgeo_point.ipynb);
* `anl`, `ada`, `wls`, `rw`: the sample-wise / scheduled baselines (`kdutils.tgeo.baselines`);
* `tgeo_intra`, `tgeo_inter`, `tgeo_both`: TGeo-KD with each feature set (the ablation; `both` is the method);
* `motivation_pre` and `motivation_a{alpha}`: Steps 2-6 of the poster (alpha 0.5, then each MOTIVATION_ALPHAS).

DISPATCH: every student config of this chapter is trained by `run_config` (-> `kdutils.tgeo.chapter.run_arm`
with `ARMS[arm]`), never by `kdutils.runner.run`, which trains the RunConfig's fixed `alpha` and would silently
train the wrong loss for a sample-wise arm. For those arms the RunConfig's `alpha` is 0 and meaningless.
Only the teacher (a plain RunConfig) goes through `runner.run` / `tuning.run_selection`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .. import stats
from ..config import DataConfig, RunConfig, TrainConfig
from ..profiles import check_profile, resolve_profile
from ..store import ResultStore
from ..tgeo.arms import ArmSpec
from ..tuning import ROLE_PREFIX, Selection, choose, load_selection, selection_configs, validation_view
from ..verdict import (INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN, PARTLY, REPRODUCED, Verdict,
                       beats, scores_by_key, testable, min_testable_gap)

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
    "full": Recipe(dataset="fashion_mnist", n_train=None, n_test=None, val_size=5_000, teacher="resnet56",
                   student_kwargs={"hidden": [128]}, teacher_epochs=60, select_teacher_epochs=15,
                   teacher_lrs=(0.03, 0.1, 0.3), student_epochs=60, select_student_epochs=30,
                   motivation_pre_epochs=30, motivation_epochs=30, student_lrs=(0.01, 0.03, 0.1),
                   seeds=(0, 1, 2, 3, 4), augment="crop2",
                   notes="a GPU recipe on the whole of Fashion-MNIST; dataset='cifar100' gives the paper's pair"),
}

#: The paper's CIFAR-100 pair (ResNet-56 -> ResNet-20), used by `recipe(profile, dataset="cifar100")`.
CIFAR100_OVERRIDES = dict(dataset="cifar100", teacher="resnet56", student="resnet20", student_kwargs={},
                          teacher_epochs=240, student_epochs=240, augment="crop4+flip", val_size=5_000)


def recipe(profile: str, dataset: str | None = None) -> Recipe:
    """The profile's recipe; dataset="cifar100" swaps in the paper's data and ResNet-56 -> ResNet-20 pair."""
    r = RECIPES[check_profile(profile)]
    if dataset is None or dataset == r.dataset:
        return r
    if dataset != "cifar100":
        raise ValueError(f"unknown dataset {dataset!r} for the TGeo-KD chapter; choose fashion_mnist or cifar100")
    keep = {"n_train": r.n_train, "n_test": r.n_test} if profile == "smoke" else {}
    return replace(r, **{**CIFAR100_OVERRIDES, **keep})


def _data(r: Recipe) -> DataConfig:
    return DataConfig(dataset=r.dataset, n_train=r.n_train, n_test=r.n_test, val_size=r.val_size)


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
    return RunConfig(experiment=EXPERIMENT, role=arm, model=r.student, model_kwargs=dict(r.student_kwargs),
                     profile=profile, seed=seed, data=_data(r), teacher=teacher, tau=r.tau,
                     alpha=spec.alpha if spec.rule == "vanilla" else 0.0,
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
    from ..tgeo.chapter import run_arm

    arm = arm_of(cfg.role)
    if cfg.experiment != EXPERIMENT or arm not in ARMS:
        raise ValueError(f"run_config trains this chapter's student arms ({', '.join(ARMS)}), "
                         f"got experiment {cfg.experiment!r} role {cfg.role!r}")
    spec = ARMS[arm]
    if spec.rule == "vanilla" and float(cfg.alpha) != float(spec.alpha):
        raise ValueError(f"config alpha {cfg.alpha} does not match arm {arm!r} (alpha {spec.alpha})")
    r = recipe(cfg.profile)
    return run_arm(cfg, spec, store, fusion_lr=r.fusion_lr, rw_lr=r.rw_lr, progress=progress, force=force)


def run_bench(profile: str, store: ResultStore | None = None) -> dict[str, Any]:
    """Time one TGeo bilevel step against one plain KD step (the recipe's MLP student) and record it."""
    import time

    from .. import runner
    from ..provenance import provenance

    store = store or ResultStore()
    cfg = bench_config(profile)
    if (rec := store.get(cfg)) is not None:
        return rec
    if runner.load_only():
        raise runner.missing_run_error(cfg, store)
    from ..tgeo.bench import bench_bilevel_vs_plain

    r = recipe(profile)
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
    from ..tuning import run_selection

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
            from .. import runner

            runner.run(teacher, store, progress=progress)
        for a in arms:
            selections[a] = _load_or_run_selection(arm_selection(profile, teacher, a), a, store, train, progress)
            if selections[a] is not None:
                finals[a] = [arm_config(profile, teacher, a, selections[a].lr, s) for s in seeds]
        base = selections.get("vanilla_a0.5")
        if base is None and "vanilla_a0.5" not in arms:
            base = load_selection("vanilla_a0.5", arm_selection(profile, teacher, "vanilla_a0.5"), store)
        if base is not None:
            motivation = {s: motivation_configs(profile, teacher, base.lr, s) for s in seeds}
    return Plan(profile, t_sel, teacher, selections, finals, motivation)


def run_motivation_seed(p: Plan, seed: int, store: ResultStore, progress: bool = True) -> list[dict[str, Any]]:
    from ..tgeo.chapter import run_motivation

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
    from .. import runner

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


# ---- verdicts -------------------------------------------------------------------------------------------------

CLAIMS = (
    "Motivation experiment: where the teacher is right, a larger student-teacher distance favours a larger KD "
    "weight; where it is wrong, a smaller KD weight is better.",
    "TGeo-KD beats vanilla KD and every sample-wise baseline (ANL-, ADA-, WLS-, RW-KD) in student accuracy.",
    "The learned weight is lower where the teacher is wrong and rises with the student-teacher distance where "
    "it is right.",
)


def scale(profile: str, table: pd.DataFrame | None = None) -> str:
    from ..present import short_device

    r = recipe(profile)
    devices = ""
    if table is not None and "device" in table and table["device"].notna().any():
        devices = ", ".join(sorted({short_device(d) for d in table["device"].dropna()}))
    n_test = None
    if table is not None and "n_test" in table and table["n_test"].notna().any():
        n_test = int(table["n_test"].dropna().iloc[0])
    train = "all" if r.n_train is None else f"{r.n_train:,}"
    data = "Fashion-MNIST" if r.dataset == "fashion_mnist" else r.dataset
    return (f"profile `{profile}`, {data} ({train} training images, {r.val_size:,} validation images held out, "
            f"{f'{n_test:,}' if n_test else '?'} test images), {r.teacher} teacher -> MLP "
            f"{r.student_kwargs.get('hidden')} student, {devices or 'device unknown'}")


def _combine(a, b) -> str:
    """Two-part claim: both reproduced -> reproduced; one -> partly; none but a contradiction -> not reproduced."""
    labels = (a.label, b.label)
    if labels == (REPRODUCED, REPRODUCED):
        return REPRODUCED
    if REPRODUCED in labels:
        return PARTLY
    if NOT_REPRODUCED in labels:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())


def motivation_statistics(cells: pd.DataFrame) -> pd.DataFrame:
    """Per seed: `trend_right` = slope over g1..g5 of (slope of accuracy in pp per unit alpha) (claim: > 0, a
    larger ST favours a larger alpha), `slope_wrong` = mean over g'1..g'5 of the slope of accuracy on alpha
    (claim: < 0, a smaller alpha is better where the teacher is wrong)."""
    rows = []
    for seed, df in cells.groupby("seed"):
        slopes = {g: _slope(d.alpha.values, d.accuracy.values) for g, d in df.groupby("group")
                  if d.alpha.nunique() >= 2}
        right = [slopes.get(f"g{k}") for k in range(1, 6)]
        wrong = [slopes.get(f"g'{k}") for k in range(1, 6)]
        if any(v is None for v in right + wrong):
            continue
        rows.append({"seed": seed, "trend_right": _slope(np.arange(1, 6), np.array(right)),
                     "slope_wrong": float(np.mean(wrong)), **{f"slope_{g}": v for g, v in slopes.items()}})
    return pd.DataFrame(rows)


def motivation_verdict(profile: str, store: ResultStore | None = None, p: Plan | None = None) -> Verdict:
    store = store or ResultStore()
    p = p or plan(profile, store)
    cells = motivation_cells(profile, store, p)
    st = motivation_statistics(cells) if not cells.empty else pd.DataFrame()
    if st.empty:
        return Verdict(CLAIMS[0], NOT_YET_RUN, "The motivation runs are not recorded for this profile.",
                       f"profile `{profile}`")
    failed = int((cells.status != "ok").sum() // 10)
    trend = stats.t_interval(st.trend_right.tolist())
    wrong = stats.t_interval(st.slope_wrong.tolist())
    a, b = beats(trend, "greater"), beats(wrong, "less")
    label = _combine(a, b)
    mean = cells.groupby(["group", "alpha"]).accuracy.mean().unstack()
    best = {g: float(mean.loc[g].idxmax()) for g in mean.index}
    best_txt = ", ".join(f"{g}: {best[g]:g}" for g in [f"g{k}" for k in range(1, 6)] + [f"g'{k}" for k in range(1, 6)]
                         if g in best)
    val = motivation_cells(profile, store, p, where="val")
    val_st = motivation_statistics(val) if not val.empty else pd.DataFrame()
    val_txt = ""
    if not val_st.empty:
        val_txt = (f" On the held-out validation samples (groups from the same pre-trained student) the same "
                   f"statistics are {stats.t_interval(val_st.trend_right.tolist()).describe('pp')} and "
                   f"{stats.t_interval(val_st.slope_wrong.tolist()).describe('pp')} (shown, not judged).")
    evidence = (f"Rule: per seed, the slope of each group's accuracy against alpha (pp of accuracy per unit "
                f"alpha, least squares over the five alphas). (a) Teacher right: the trend of these slopes "
                f"over g1..g5 (ascending ST) must be > 0: {trend.describe('pp per group')}, {a.reason}. "
                f"(b) Teacher wrong: the mean slope over g'1..g'5 must be < 0: {wrong.describe('pp')}, "
                f"{b.reason}. Best alpha per group (mean accuracy over seeds, training samples): {best_txt}."
                f"{val_txt} {'Failed runs: ' + str(failed) + ' (scored at chance).' if failed else 'No run failed.'}")
    sizes = _motivation_sizes(p, store)
    if sizes:
        evidence += (f" Group sizes (training samples, mean over seeds): teacher right {sizes['right']:.0f} per "
                     f"group, teacher wrong {sizes['wrong']:.0f} per group.")
    return Verdict(CLAIMS[0], label, evidence, scale(profile, results_table(profile, store, p)),
                   f"(a) {trend.describe('pp per group')}; (b) {wrong.describe('pp')}")


def _motivation_sizes(p: Plan, store: ResultStore) -> dict[str, float]:
    right, wrong = [], []
    for cfgs in p.motivation.values():
        for role, c in cfgs.items():
            rec = store.get(c) if role != "motivation_pre" else None
            groups = ((rec or {}).get("motivation") or {}).get("train_groups")
            if groups:
                right += [d["n"] for g, d in groups.items() if "'" not in g]
                wrong += [d["n"] for g, d in groups.items() if "'" in g]
                break
    return {"right": float(np.mean(right)), "wrong": float(np.mean(wrong))} if right and wrong else {}


def _scores(table: pd.DataFrame, arm: str) -> tuple[dict, int]:
    return scores_by_key(table[table.arm == arm], "seed", "accuracy", CHANCE_ACCURACY)


def comparison_verdict(profile: str, store: ResultStore | None = None, p: Plan | None = None) -> Verdict:
    """Claim 2: TGeo-KD (both) vs vanilla KD (alpha chosen on validation) and every baseline, paired over seeds."""
    store = store or ResultStore()
    p = p or plan(profile, store)
    table = results_table(profile, store, p)
    vbest = p.vanilla_best()
    needed = {"teacher", "alone", METHOD_ARM, *BASELINE_ARMS} | ({vbest} if vbest else set())
    if table.empty or vbest is None or not needed <= set(table.arm):
        return Verdict(CLAIMS[1], NOT_YET_RUN, "The teacher, the student alone, TGeo-KD, the vanilla KD sweep and "
                                               "every baseline are not all recorded for this profile.",
                       f"profile `{profile}`")
    sc = scale(profile, table)
    n_test = int(table["n_test"].dropna().iloc[0])
    teacher, _ = _scores(table, "teacher")
    t_acc = float(np.mean(list(teacher.values())))
    alone, a_failed = _scores(table, "alone")
    gap = stats.paired_difference({s: t_acc for s in alone}, alone)
    min_gap = min_testable_gap(1.0 - float(np.mean(list(alone.values()))), n_test)
    gate = testable(gap, min_gap)
    method, m_failed = _scores(table, METHOD_ARM)
    comps = {f"vanilla KD (α={ARMS[vbest].alpha:g}, chosen on validation)": vbest,
             **{ARM_LABELS[a]: a for a in BASELINE_ARMS}}
    decisions, parts, failed = {}, [], m_failed + a_failed
    for label, a in comps.items():
        other, f = _scores(table, a)
        failed += f
        diff = stats.paired_difference(method, other)
        decisions[a] = (beats(diff, "greater"), diff)
        parts.append(f"vs {label}: {diff.describe('pp', scale=100)} ({decisions[a][0].label})")
    # the strongest baseline, chosen by mean validation accuracy of its final runs (never by test accuracy)
    val_mean = {a: float(table[table.arm == a]["val accuracy"].mean()) for a in comps.values()}
    best = max(val_mean, key=val_mean.get)
    _, best_diff = decisions[best]
    from scipy import stats as sps

    keys, d = stats.paired_values(method, _scores(table, best)[0])
    p_val = float(sps.ttest_1samp(d, 0.0).pvalue) if len(d) >= 2 and np.std(d) > 0 else math.nan
    gap_txt = (f"Teacher {100 * t_acc:.2f}% test accuracy (one seed); student alone "
               f"{100 * np.mean(list(alone.values())):.2f}% (mean of {len(alone)} seeds): gap "
               f"{gap.describe('pp', scale=100)}, minimum testable gap {100 * min_gap:.2f} pp.")
    testable_txt = (f"the teacher is clearly better than the student alone (the gap's interval excludes 0 and its "
                    f"mean is above the minimum testable gap)" if gate.label != NOT_TESTABLE else gate.reason)
    kd_gain = stats.paired_difference(_scores(table, vbest)[0], alone)
    evidence = (f"Testable: {testable_txt}. {gap_txt} How much room KD has here: vanilla KD minus the student alone "
                f"{kd_gain.describe('pp', scale=100)}. TGeo-KD (intra + inter) minus each arm, test accuracy, paired "
                f"over seeds: " + "; ".join(parts) + f". Strongest baseline by validation accuracy: "
                f"{ARM_LABELS.get(best, best)}; paired t-test against it p = {p_val:.3g}. "
                + (f"Failed runs (scored at chance, {100 * CHANCE_ACCURACY:.0f}%): {failed}." if failed
                   else "No run failed."))
    effect = f"TGeo-KD minus {ARM_LABELS.get(best, best)}: {best_diff.describe('pp', scale=100)}"
    if gate.label == NOT_TESTABLE:
        return Verdict(CLAIMS[1], NOT_TESTABLE, evidence, sc, effect)
    labels = [dec.label for dec, _ in decisions.values()]
    if all(lab == REPRODUCED for lab in labels):
        label = REPRODUCED
    elif REPRODUCED in labels:
        label = PARTLY
    elif NOT_REPRODUCED in labels:
        label = NOT_REPRODUCED
    else:
        label = INCONCLUSIVE
    return Verdict(CLAIMS[1], label, evidence, sc, effect)


def alpha_statistics(profile: str, store: ResultStore | None = None, p: Plan | None = None,
                     arm: str = METHOD_ARM) -> pd.DataFrame:
    """Per seed of a TGeo arm: wrong_minus_right, spearman_right, f_w's relative change, alpha spread."""
    rows = []
    for item in tgeo_alpha_records(profile, store, p, arms=(arm,)):
        rec = item["record"]
        t = rec.get("tgeo")
        if rec["status"] != "ok" or not t:
            rows.append({"seed": item["seed"], "status": rec["status"]})
            continue
        rows.append({"seed": item["seed"], "status": "ok", "wrong_minus_right": t["wrong_minus_right"],
                     "spearman_right": t["spearman_right"], "fw_relative_change": t["fw_relative_change"],
                     "alpha_std": t["alpha_std"], "alpha_q05": t["alpha_q05"], "alpha_q95": t["alpha_q95"],
                     "alpha_mean": t["alpha_mean"], "n_teacher_wrong": t["n_teacher_wrong"]})
    return pd.DataFrame(rows)


def _alpha_group_means(profile: str, store: ResultStore, p: Plan, arm: str = METHOD_ARM) -> dict[str, float]:
    per: dict[str, list[float]] = {}
    for item in tgeo_alpha_records(profile, store, p, arms=(arm,)):
        for g, d in ((item["record"].get("tgeo") or {}).get("groups") or {}).items():
            per.setdefault(g, []).append(float(d["mean"]))
    order = [f"g{k}" for k in range(1, 6)] + [f"g'{k}" for k in range(1, 6)]
    return {g: float(np.mean(per[g])) for g in order if g in per}


def alpha_verdict(profile: str, store: ResultStore | None = None, p: Plan | None = None) -> Verdict:
    """Claim 3 from the learned alpha_i of TGeo-KD (both) on the training samples, per seed."""
    store = store or ResultStore()
    p = p or plan(profile, store)
    st = alpha_statistics(profile, store, p)
    if st.empty:
        return Verdict(CLAIMS[2], NOT_YET_RUN, "No TGeo-KD run is recorded for this profile.", f"profile `{profile}`")
    failed = int((st.status != "ok").sum())
    ok = st[st.status == "ok"]
    # a failed run has no learned alpha: it counts as no effect (0), which widens the interval towards "no"
    wmr = stats.t_interval(ok.wrong_minus_right.tolist() + [0.0] * failed)
    rho = stats.t_interval(ok.spearman_right.tolist() + [0.0] * failed)
    a, b = beats(wmr, "less"), beats(rho, "greater")
    label = _combine(a, b)
    moved = ok.fw_relative_change.min() if not ok.empty else math.nan
    group_means = _alpha_group_means(profile, store, p)
    means_txt = (" Mean alpha_i by group (means over seeds): " + ", ".join(f"{g} {v:.3f}" for g, v in group_means.items())
                 + "." if group_means else "")
    evidence = (f"Rule, per seed, on the learned alpha_i = f_w(Delta_i) of every training sample after training: "
                f"(a) mean alpha where the teacher is wrong minus mean alpha where it is right must be < 0: "
                f"{wmr.describe(digits=3)}, {a.reason}; (b) where the teacher is right, the Spearman correlation "
                f"of alpha_i with ST_i must be > 0: {rho.describe(digits=3)}, {b.reason}. f_w trained: its "
                f"parameters moved by at least {100 * moved:.0f}% of their initial norm in every seed; alpha_i "
                f"spread: std {ok.alpha_std.mean():.3f} on average, 5-95% range "
                f"[{ok.alpha_q05.mean():.3f}, {ok.alpha_q95.mean():.3f}].{means_txt} "
                + (f"Failed runs: {failed} (scored as no effect)." if failed else "No run failed."))
    return Verdict(CLAIMS[2], label, evidence, scale(profile, results_table(profile, store, p)),
                   f"(a) {wmr.describe(digits=3)}; (b) Spearman {rho.describe(digits=3)}")


def chapter_verdicts(profile: str, store: ResultStore | None = None) -> list[Verdict]:
    """One verdict per claim, in the scorecard's order, from the records only (nothing is trained)."""
    profile = check_profile(profile)
    store = store or ResultStore()
    p = plan(profile, store)
    return [motivation_verdict(profile, store, p), comparison_verdict(profile, store, p),
            alpha_verdict(profile, store, p)]


__all__ = ["ARMS", "CLAIMS", "EXPERIMENT", "PAPER", "RECIPES", "Plan", "all_arm_configs", "alpha_statistics",
           "alpha_verdict", "arm_config", "chapter_verdicts", "comparison_verdict", "motivation_cells",
           "motivation_configs", "motivation_statistics", "motivation_verdict", "plan", "point_records", "recipe",
           "results_table", "run_all", "run_config", "selection_table", "teacher_config", "tgeo_alpha_records"]
