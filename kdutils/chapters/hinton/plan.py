"""Hinton, Vinyals & Dean (2015), MNIST: a big regularised MLP distilled into a small one.

Paper figures (test errors out of 10,000): teacher 2x1200 with dropout, weight constraints and inputs jittered
by up to two pixels, 67; the 2x800 net trained alone, 146; the same 2x800 net distilled at T=20, 74.

The chapter's protocol:

1. **Teacher** (2x1200 ReLU): input dropout 0.2, hidden dropout 0.5, max-norm 3.5 on each hidden unit's incoming
   weights (the dropout paper's regularisation; 3.5 is the middle of its suggested 3-4), jitter up to 2 px,
   SGD with momentum and a cosine-decaying rate; its rate is chosen on validation data, one seed.
2. **Arms** (2x800 ReLU, no regularisation): "alone" on hard labels, and distilled at each temperature
   ("T20" ...) with `alpha` on the KD term alpha * tau^2 KL(P_t || P_s) + (1 - alpha) CE.
3. **Selection** (`kdutils.sweeps.tuning`): every arm's learning rate comes from a recorded grid trained on the
   training split minus a held-out validation split, chosen by validation accuracy (ties: validation NLL).
   The distilled candidates learn from the final teacher (trained on all 60,000 images), whose logits they
   see only on the images that remain in their training split.
4. **Final runs**: the chosen rate, full training split, several seeds for "alone" and "T20" (the verdict's
   arms), fewer for the rest of the temperature sweep.
5. **Verdict** (`kdutils.verdicts.verdict`): testable gate on the teacher-student gap, then "T=20 beats alone" from
   the paired interval over seeds, then ">= 75% of the gap closed" from the interval of per-seed fractions.

The student sees un-jittered training images, so the teacher's logits are computed once and reused.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from kdutils.config import DataConfig, RunConfig, TrainConfig
from kdutils.gpu.workload import ChapterWork, Work
from kdutils.store.profiles import capped, check_profile, resolve_profile
from kdutils.store.store import ResultStore
from kdutils.sweeps.tuning import Selection, load_selection, run_selection, selection_configs

EXPERIMENT = "hinton_mnist"
PAPER_ERRORS = {"teacher": 67, "student": 146, "distilled": 74}
PAPER = {"title": "Distilling the Knowledge in a Neural Network", "authors": "Geoffrey Hinton, Oriol Vinyals, Jeff Dean",
         "venue": "NIPS 2014 Deep Learning Workshop", "arxiv": "1503.02531"}
TAUS = (1.0, 2.0, 4.0, 8.0, 20.0)
DEFAULT_ALPHA = 0.9
VERDICT_TAU = 20.0
GAP_THRESHOLD = 0.75  # "most of the way": the paper closes (146 - 74) / (146 - 67) = 91%
MAX_NORM = 3.5
NUM_CLASSES = 10

if TYPE_CHECKING:  # pandas is imported where a table is built: running the chapter needs only torch and numpy
    import pandas as pd


@dataclass(frozen=True)
class Recipe:
    """One profile's scale. `seeds` are the verdict arms' seeds (alone, T=20); `sweep_seeds` the other taus'."""

    n_train: int | None
    n_test: int | None
    val_size: int
    teacher_epochs: int
    student_epochs: int
    batch_size: int
    teacher_lrs: tuple[float, ...]
    student_lrs: tuple[float, ...]
    select_teacher_epochs: int
    select_student_epochs: int
    seeds: tuple[int, ...]
    sweep_seeds: tuple[int, ...]
    notes: str = field(default="", compare=False)
    #: `DataConfig.options` of every run (the `paper` profile records learning curves: {"epoch_eval": 2}).
    data_options: tuple[tuple[str, Any], ...] = ()
    #: the 2x800 temperatures of `plan` (None: `TAUS`); the `paper` profile's sweep is in `hinton_paper`.
    taus: tuple[float, ...] | None = None


RECIPES = {
    "smoke": Recipe(n_train=2000, n_test=1000, val_size=500, teacher_epochs=1, student_epochs=1, batch_size=128,
                    teacher_lrs=(0.05, 0.1), student_lrs=(0.01, 0.05), select_teacher_epochs=1,
                    select_student_epochs=1, seeds=(0, 1), sweep_seeds=(0,),
                    notes="seconds, for the tests: 2,000 training images, one epoch"),
    "cpu": Recipe(n_train=None, n_test=None, val_size=10_000, teacher_epochs=60, student_epochs=10, batch_size=128,
                  teacher_lrs=(0.02, 0.05, 0.1, 0.2), student_lrs=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2), select_teacher_epochs=3,
                  select_student_epochs=3, seeds=(0, 1, 2, 3), sweep_seeds=(0, 1, 2),
                  notes="about 30 minutes on one free CPU core (over an hour on the shared 2-core machine it was "
                        "recorded on): teacher 60 epochs, students 10, selection on one seed with 3-epoch runs"),
    "gpu": Recipe(n_train=None, n_test=None, val_size=10_000, teacher_epochs=60, student_epochs=10, batch_size=128,
                  teacher_lrs=(0.02, 0.05, 0.1, 0.2), student_lrs=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2),
                  select_teacher_epochs=3, select_student_epochs=3, seeds=tuple(range(8)), sweep_seeds=(0, 1, 2, 3),
                  notes="the cpu recipe with more seeds, for about two minutes of one H200 (`python -m kdutils "
                        "gpu`): 8 seeds for the verdict's arms (cpu: 4), 4 for the rest of the sweep (cpu: 3)"),
    "full": Recipe(n_train=None, n_test=None, val_size=10_000, teacher_epochs=600, student_epochs=60, batch_size=128,
                   teacher_lrs=(0.03, 0.1, 0.3), student_lrs=(0.002, 0.005, 0.01, 0.02, 0.05),
                   select_teacher_epochs=60, select_student_epochs=30, seeds=tuple(range(10)),
                   sweep_seeds=(0, 1, 2),
                   notes="a GPU recipe: teacher 600 epochs, students 60, selection with half-length runs; longer "
                         "than `cpu` but still far shorter than the dropout paper's teachers"),
    "paper": Recipe(n_train=None, n_test=None, val_size=10_000, teacher_epochs=150, student_epochs=40,
                    batch_size=128, teacher_lrs=(0.02, 0.05, 0.1), student_lrs=(0.01, 0.02, 0.05, 0.1, 0.2),
                    select_teacher_epochs=15, select_student_epochs=15, seeds=tuple(range(10)),
                    sweep_seeds=(0, 1, 2, 3, 4), data_options=(("epoch_eval", 2),), taus=(20.0,),
                    notes="the paper's section 3 on one CPU core per process (about 6 core-hours): teacher 150 "
                          "epochs (13 s each on one free thread), 2x800 students 40 epochs, 10 seeds; rates "
                          "chosen from 15-epoch runs on a 10,000-image validation "
                          "split; every run records its learning curve (test errors every 2 epochs, and "
                          "validation errors where a split is held out); the temperature and transfer-set "
                          "claims are in `hinton_paper`"),
}


def recipe(profile: str) -> Recipe:
    """The profile's recipe, its seeds cut to an active `profiles.seed_cap` (the GPU script's budget)."""
    r = RECIPES[check_profile(profile)]
    return replace(r, seeds=capped(r.seeds), sweep_seeds=capped(r.sweep_seeds))


def gpu_work(profile: str = "gpu") -> ChapterWork:
    """What `run_all(profile)` trains, in epochs per architecture (for the GPU script's time budget)."""
    r = RECIPES[check_profile(profile)]
    n_all = 60_000 if r.n_train is None else r.n_train
    fit = (n_all - r.val_size) / n_all  # selection runs train on the split minus the validation images
    arms = 1 + len(TAUS)  # alone + one arm per temperature
    teacher = Work("hinton teacher mlp_1200x2", "mlp_1200x2", _data(r), r.batch_size,
                   fixed_epochs=fit * len(r.teacher_lrs) * r.select_teacher_epochs + r.teacher_epochs,
                   epochs_per_seed=0, runs_fixed=len(r.teacher_lrs) + 1,
                   model_kwargs={"input_dropout": 0.2, "dropout": 0.5, "max_norm": MAX_NORM})
    # students: selection (every arm x lr, one seed), then per seed the two verdict arms and the other arms at
    # the sweep's seeds (cut alike by the cap); trained together, 8 at a time
    per_seed = 2 + (len(TAUS) - 1) * len(r.sweep_seeds) / len(r.seeds)
    student = Work("hinton student mlp_800x2", "mlp_800x2", _data(r), r.batch_size,
                   fixed_epochs=fit * arms * len(r.student_lrs) * r.select_student_epochs,
                   epochs_per_seed=per_seed * r.student_epochs, runs_fixed=arms * len(r.student_lrs),
                   runs_per_seed=math.ceil(per_seed), grouped=True)
    return ChapterWork("hinton", len(r.seeds), 2, (teacher, student))


def arm_name(tau: float | None, alpha: float = DEFAULT_ALPHA) -> str:
    """"alone" for the hard-label student, "T20" for T=20 at the default alpha, "T20a0.5" otherwise."""
    if tau is None:
        return "alone"
    return f"T{float(tau):g}" + ("" if float(alpha) == DEFAULT_ALPHA else f"a{float(alpha):g}")


# ---- configs ------------------------------------------------------------------------------------------------

def _train(r: Recipe, epochs: int, lr: float, augment: str) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=r.batch_size, optimizer="sgd", lr=lr, momentum=0.9,
                       schedule="cosine", augment=augment)


def _data(r: Recipe) -> DataConfig:
    return DataConfig(dataset="mnist", n_train=r.n_train, n_test=r.n_test, options=dict(r.data_options))


def teacher_config(profile: str, lr: float) -> RunConfig:
    """2x1200 ReLU MLP: input dropout 0.2, hidden dropout 0.5, max-norm, jitter up to 2 px, cosine decay."""
    r = recipe(profile)
    return RunConfig(experiment=EXPERIMENT, role="teacher", model="mlp_1200x2", profile=profile, seed=0,
                     data=_data(r), train=_train(r, r.teacher_epochs, lr, "shift2"),
                     model_kwargs={"input_dropout": 0.2, "dropout": 0.5, "max_norm": MAX_NORM})


def student_config(profile: str, lr: float, seed: int = 0) -> RunConfig:
    """2x800 ReLU MLP trained alone on hard labels, no regularisation."""
    r = recipe(profile)
    return RunConfig(experiment=EXPERIMENT, role="student", model="mlp_800x2", profile=profile, seed=seed,
                     data=_data(r), train=_train(r, r.student_epochs, lr, "none"))


def distilled_config(profile: str, teacher: RunConfig, tau: float, lr: float, alpha: float = DEFAULT_ALPHA,
                     seed: int = 0) -> RunConfig:
    """The same 2x800 MLP trained on alpha * tau^2 KL(P_t||P_s) + (1 - alpha) * CE."""
    return student_config(profile, lr, seed).with_(role="distilled", teacher=teacher, tau=float(tau),
                                                   alpha=float(alpha))


def teacher_selection(profile: str) -> list[RunConfig]:
    r = recipe(profile)
    return selection_configs(teacher_config(profile, r.teacher_lrs[0]), "teacher", r.teacher_lrs,
                             r.select_teacher_epochs, r.val_size)


def required_teacher(teacher: RunConfig | None, what: str) -> RunConfig:
    """`teacher`, or a clear error naming what needed it (a distilled run cannot be configured without one)."""
    if teacher is None:
        raise ValueError(f"{what} needs the teacher's config, but none is given (is the teacher recorded?)")
    return teacher


def arm_selection(profile: str, teacher: RunConfig | None, tau: float | None, alpha: float = DEFAULT_ALPHA
                  ) -> list[RunConfig]:
    """The lr grid of one student arm (tau None: the student alone, which needs no teacher)."""
    r = recipe(profile)
    base = (student_config(profile, r.student_lrs[0]) if tau is None else
            distilled_config(profile, required_teacher(teacher, f"the distilled arm at tau={tau}"), tau,
                             r.student_lrs[0], alpha))
    return selection_configs(base, arm_name(tau, alpha), r.student_lrs, r.select_student_epochs, r.val_size)


@dataclass
class Plan:
    """Everything the chapter runs for one profile, as far as the recorded selections determine it."""

    profile: str
    selections: dict[str, Selection | None]
    selection_runs: dict[str, list[RunConfig]]
    teacher: RunConfig | None
    finals: dict[str, list[RunConfig]]  # arm -> one config per seed ([] while the arm's lr is unknown)
    taus: tuple[float, ...]
    alphas: tuple[float, ...]

    def missing(self) -> list[str]:
        return [arm for arm, sel in self.selections.items() if sel is None]

    def all_configs(self) -> list[RunConfig]:
        out = [c for cfgs in self.selection_runs.values() for c in cfgs]
        out += [self.teacher] if self.teacher is not None else []
        return out + [c for cfgs in self.finals.values() for c in cfgs]


def _arm_seeds(r: Recipe, tau: float | None, alpha: float, seeds: tuple[int, ...] | None) -> tuple[int, ...]:
    if seeds is not None:
        return seeds
    verdict_arm = tau is None or (float(tau) == VERDICT_TAU and float(alpha) == DEFAULT_ALPHA)
    return r.seeds if verdict_arm else r.sweep_seeds


def plan(profile: str, store: ResultStore | None = None, *, train: bool = False, taus=None,
         alphas=(DEFAULT_ALPHA,), seeds=None, progress: bool = True) -> Plan:
    """Resolve the chapter's configs from the recorded selections; with `train`, run missing selections
    (and the teacher they need) first. Without `train` nothing is trained: unknown arms stay empty."""
    store = store or ResultStore()
    r = recipe(profile)
    taus = tuple(float(t) for t in (taus if taus is not None else r.taus or TAUS))
    alphas = tuple(float(a) for a in alphas)
    seeds = None if seeds is None else tuple(int(s) for s in seeds)
    t_runs = teacher_selection(profile)
    get = (lambda sels: run_selection(sels, store, progress)) if train else (
        lambda sels: {arm: load_selection(arm, cfgs, store) for arm, cfgs in sels.items()})
    selections: dict[str, Selection | None] = dict(get({"teacher": t_runs}))
    runs: dict[str, list[RunConfig]] = {"teacher": t_runs}
    teacher = teacher_config(profile, selections["teacher"].lr) if selections["teacher"] else None
    arms: list[tuple[float | None, float]] = [(None, DEFAULT_ALPHA)] + [(t, a) for t in taus for a in alphas]
    finals: dict[str, list[RunConfig]] = {}
    if teacher is not None:
        if train:
            from kdutils.training.group_runner import run_grouped

            run_grouped([teacher], store, progress=progress)  # the distilled candidates need it
        student_runs = {arm_name(t, a): arm_selection(profile, teacher, t, a) for t, a in arms}
        runs.update(student_runs)
        selections.update(get(student_runs))
        for tau, alpha in arms:
            sel = selections[arm_name(tau, alpha)]
            finals[arm_name(tau, alpha)] = [] if sel is None else [
                student_config(profile, sel.lr, s) if tau is None else
                distilled_config(profile, teacher, tau, sel.lr, alpha, s) for s in _arm_seeds(r, tau, alpha, seeds)]
    else:
        for tau, alpha in arms:
            selections[arm_name(tau, alpha)] = None
            finals[arm_name(tau, alpha)] = []
    return Plan(profile, selections, runs, teacher, finals, taus, alphas)


def configs(profile: str, store: ResultStore | None = None, **kwargs: Any) -> list[RunConfig]:
    """The chapter's final configs that the recorded selections determine (nothing is trained)."""
    p = plan(profile, store, **kwargs)
    return ([p.teacher] if p.teacher else []) + [c for cfgs in p.finals.values() for c in cfgs]


def point_configs(profile: str, tau: float = 20.0, alpha: float = DEFAULT_ALPHA, seed: int = 0) -> list[RunConfig]:
    """The final configs one point of `notebooks/hinton_kd.ipynb` needs (teacher, alone, distilled at tau),
    so the sweep can train all points' students together. Runs the selections it depends on if missing."""
    p = plan(resolve_profile(profile), train=True, taus=(float(tau),), alphas=(float(alpha),), seeds=(int(seed),))
    return [required_teacher(p.teacher, "a sweep point")] + [c for cfgs in p.finals.values() for c in cfgs]


def run_all(profile: str = "cpu", taus=None, alphas=(DEFAULT_ALPHA,), seeds=None, tau=None, alpha=None,
            seed=None, store: ResultStore | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Select every arm's lr, then run (or load) every final config; `tau`/`alpha`/`seed` restrict it to one
    grid point. Returns the final runs' records (teacher first)."""
    from kdutils.training.group_runner import recorded, run_grouped

    taus = (float(tau),) if tau is not None else tuple(taus if taus is not None else recipe(profile).taus or TAUS)
    alphas = (float(alpha),) if alpha is not None else alphas
    seeds = (int(seed),) if seed is not None else seeds
    store = store or ResultStore()
    # The verdict's arms first (alone, T=20), the rest of the sweep after: a run cut short still has a verdict.
    first = tuple(t for t in taus if float(t) == VERDICT_TAU)
    if first and len(taus) > 1 and DEFAULT_ALPHA in [float(a) for a in alphas]:
        p = plan(profile, store, train=True, taus=first, alphas=(DEFAULT_ALPHA,), seeds=seeds, progress=progress)
        run_grouped([required_teacher(p.teacher, "the verdict's arms")] + [c for cfgs in p.finals.values()
                                                                            for c in cfgs], store, progress=progress)
    p = plan(profile, store, train=True, taus=taus, alphas=alphas, seeds=seeds, progress=progress)
    cfgs = [required_teacher(p.teacher, "the sweep")] + [c for cfgs in p.finals.values() for c in cfgs]
    return recorded(cfgs, run_grouped(cfgs, store, progress=progress))


# ---- tables ----------------------------------------------------------------------------------------------------

COLUMNS = {"arm": "arm", "config.role": "role", "config.tau": "tau", "config.alpha": "alpha", "config.seed": "seed",
           "config.train.lr": "lr", "config.train.epochs": "epochs", "errors": "test errors",
           "accuracy": "accuracy", "nll": "NLL", "ece": "ECE", "agreement": "agreement", "kl": "KL(t||s)",
           "device": "device", "commit": "commit", "wall_time_s": "wall time (s)", "n_test": "n_test",
           "status": "status"}


def _table_of(store: ResultStore, cfgs: dict[str, list[RunConfig]]) -> pd.DataFrame:
    """Rows of the recorded runs among `cfgs` (arm -> configs), with an `arm` column; missing runs skipped."""
    table = store.table(EXPERIMENT)
    if table.empty:
        return table
    arm_of = {c.key(): arm for arm, cs in cfgs.items() for c in cs}
    table = table[table.key.isin(arm_of)].copy()
    table["arm"] = table.key.map(arm_of)
    return table


def results_table(profile: str, store: ResultStore | None = None) -> pd.DataFrame:
    """One row per recorded final run of this profile (teacher, alone, distilled), with the chapter's columns.
    Records of older recipes (e.g. the untuned lr 0.05) stay on disk but are not in this table."""
    store = store or ResultStore()
    p = plan(profile, store)
    cfgs = {"teacher": [p.teacher] if p.teacher else [], **p.finals}
    table = _table_of(store, cfgs)
    if table.empty:
        import pandas as pd

        return pd.DataFrame(columns=list(COLUMNS.values()))
    table = table[[c for c in COLUMNS if c in table]].rename(columns=COLUMNS)
    table.loc[table.role != "distilled", ["tau", "alpha"]] = float("nan")
    order = {"teacher": 0, "student": 1, "distilled": 2}
    return table.sort_values(["role", "tau", "alpha", "seed"], key=lambda s: s.map(order) if s.name == "role" else s)\
        .reset_index(drop=True)


def selection_table(profile: str, store: ResultStore | None = None) -> pd.DataFrame:
    """One row per selection candidate: arm, lr, epochs, validation accuracy and NLL, status, chosen."""
    store = store or ResultStore()
    p = plan(profile, store)
    rows = [row for sel in p.selections.values() if sel is not None for row in sel.rows]
    import pandas as pd

    if not rows:
        return pd.DataFrame(columns=["arm", "lr", "epochs", "status", "val_accuracy", "val_nll", "chosen"])
    table = pd.DataFrame(rows)
    return table[["arm", "lr", "epochs", "status", "val_accuracy", "val_nll", "chosen"]]


def untuned_records(store: ResultStore | None = None, lr: float = 0.05) -> pd.DataFrame:
    """The chapter's first cpu runs, all at one untuned lr (0.05) with the earlier teacher: kept on disk for
    the deviations section, outside every table and verdict."""
    store = store or ResultStore()
    table = store.table(EXPERIMENT, profile="cpu")
    if table.empty:
        return table
    current = {c.key() for c in plan("cpu", store).all_configs()}
    old = table[~table.key.isin(current) & (table["config.train.lr"] == lr)
                & table["config.role"].isin(["teacher", "student", "distilled"])]
    return old.rename(columns=COLUMNS)[[v for k, v in COLUMNS.items() if k in old]].reset_index(drop=True)


__all__ = ["EXPERIMENT", "PAPER", "PAPER_ERRORS", "RECIPES", "TAUS", "Plan", "configs", "gpu_work", "plan", "point_configs",
           "results_table", "run_all", "selection_table", "untuned_records"]
