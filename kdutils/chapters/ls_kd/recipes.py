"""Chandrasegaran et al.: the chapter's constants, the paper's numbers, recipes per profile and the run configs of\nevery arm (teachers with and without label smoothing, students at each tau, students alone)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from kdutils.config import DataConfig, RunConfig, TrainConfig
from kdutils.losses import check_smoothing, check_tau
from kdutils.store.profiles import capped, check_profile
from kdutils.store.store import ResultStore
from kdutils.sweeps.tuning import selection_configs


EXPERIMENT = "ls_kd_fashion"
ANALYSIS = "ls_kd_fashion_analysis"
PAPER = {
    "title": "Revisiting Label Smoothing and Knowledge Distillation Compatibility: What was Missing?",
    "authors": "Keshigeyan Chandrasegaran, Ngoc-Trung Tran, Yunqing Zhao, Ngai-Man Cheung",
    "venue": "ICML 2022",
    "arxiv": "2206.14532",
}
#: ImageNet-1K top-1 from the paper's Table 2 A (ResNet-50 teacher -> ResNet-18 student), for the chapter's
#: "paper beside ours" table.
PAPER_TOP1_R18 = {
    (0.0, 1.0): 71.547, (0.1, 1.0): 71.616,
    (0.0, 2.0): 71.349, (0.1, 2.0): 68.428,
    (0.0, 3.0): 69.570, (0.1, 3.0): 66.570,
    (0.0, 64.0): 66.230, (0.1, 64.0): 65.472,
}
PAPER_TEACHER_TOP1 = {0.0: 76.130, 0.1: 76.196}
TAUS = (1.0, 2.0, 3.0, 64.0)
LS_VALUES = (0.0, 0.1)
LS_EXTRA = (0.2,)  # Supplementary J
KD_ALPHA = 1.0  # KD only, as in the paper (weight on the KD term)
DATASET = "fashion_mnist"
NUM_CLASSES = 10
#: The LS teacher's temperatures whose target entropy the plain teacher is matched to (Supplementary H).
MATCH_TAUS = (1.0, 3.0)
#: Temperatures at which each teacher's average target entropy is recorded (Table H.1 analogue).
ENTROPY_TAUS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0, 64.0)
#: Supplementary F's three classes: two semantically similar (T-shirt/top, shirt) and one not (sneaker).
PROJECTION_CLASSES = (0, 6, 7)
PROJECTION_TRAIN_PER_CLASS = 150  # the authors' counts (training / validation images per class)
PROJECTION_TEST_PER_CLASS = 50


@dataclass(frozen=True)
class Recipe:
    """One profile's scale."""

    n_train: int | None
    n_test: int | None
    val_size: int
    teacher_model: str
    student_models: tuple[str, ...]  # (smaller network[, the teacher's architecture])
    teacher_epochs: int
    student_epochs: int
    batch_size: int
    teacher_lrs: tuple[float, ...]
    student_lrs: tuple[float, ...]
    select_epochs: int  # students' selection runs
    seeds: tuple[int, ...]
    select_teacher_epochs: int = 0  # 0: the same as select_epochs
    ls_values: tuple[float, ...] = LS_VALUES
    teacher_augment: str = "crop2+flip"
    student_augment: str = "none"  # "none" lets the teacher's logits be cached (computed once)
    model_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)
    notes: str = field(default="", compare=False)


RECIPES = {
    "smoke": Recipe(n_train=1000, n_test=300, val_size=200, teacher_model="resnet8",
                    student_models=("resnet8",), teacher_epochs=2, student_epochs=2, batch_size=128,
                    teacher_lrs=(0.1,), student_lrs=(0.05,), select_epochs=1, seeds=(0, 1),
                    teacher_augment="none", model_kwargs={"resnet8": {"widths": [4, 4, 8, 8]}},
                    notes="seconds, for tests: 1,000 training images, two epochs, one candidate rate, a "
                          "teacher as small as the student"),
    "cpu": Recipe(n_train=20_000, n_test=None, val_size=5_000, teacher_model="resnet8",
                  student_models=("mlp",), teacher_epochs=8, student_epochs=12, batch_size=128,
                  teacher_lrs=(0.03, 0.1, 0.3, 1.0), student_lrs=(0.003, 0.01, 0.03, 0.1, 0.3, 1.0), select_epochs=4,
                  select_teacher_epochs=2, seeds=(0, 1, 2, 3, 4), teacher_augment="none",
                  model_kwargs={"mlp": {"hidden": [64]}},
                  notes="v2, sized for two single-thread processes: teacher ResNet-8 at default widths "
                        "(16-32-64) 8 epochs on 20,000 un-augmented Fashion-MNIST training images, one per LS "
                        "value, the two in parallel; student an MLP with one hidden layer of 64 units (deviation: "
                        "the paper's student is a smaller ResNet; an MLP keeps 11 arms x 5 seeds within the CPU "
                        "budget) 12 epochs on the same images; selection runs on one seed, 2 (teachers) or 4 "
                        "(students) epochs, training split minus 5,000 held-out images; the teacher-architecture "
                        "student is dropped at this scale. Measured on the shared 2-core machine (other training "
                        "processes running beside it): the two teachers with their selection in parallel, 10.0 and "
                        "9.6 minutes of wall time; then all students, their selection, the claim-1 runs at common "
                        "rates and the analysis in one process, 8.5 minutes (7.6 minutes of CPU time): about 28 "
                        "minutes of one thread in all; the teachers' candidate 1.0 was added afterwards (0.3 had been chosen "
                        "at the top of the grid for the LS teacher) and lost for both (2 more minutes)"),
    "gpu": Recipe(n_train=None, n_test=None, val_size=5_000, teacher_model="resnet20", student_models=("mlp",),
                  teacher_epochs=12, student_epochs=8, batch_size=256, teacher_lrs=(0.05, 0.1, 0.2),
                  student_lrs=(0.01, 0.03, 0.1, 0.3), select_epochs=3, select_teacher_epochs=3,
                  seeds=tuple(range(8)), teacher_augment="crop2+flip", model_kwargs={"mlp": {"hidden": [128]}},
                  notes="sized for about a minute of one H200 (`python -m kdutils gpu`): ResNet-20 teachers (one "
                        "per LS value) 12 epochs with crop/flip on all of Fashion-MNIST, MLP-128 students 8 epochs "
                        "at batch 256 trained together, selection with 3-epoch runs, 8 seeds (cpu: 5)"),
    "full": Recipe(n_train=None, n_test=None, val_size=10_000, teacher_model="resnet56",
                   student_models=("resnet20", "resnet56"), teacher_epochs=200, student_epochs=200,
                   batch_size=128, teacher_lrs=(0.05, 0.1, 0.2), student_lrs=(0.01, 0.05, 0.1),
                   select_epochs=40, seeds=(0, 1, 2), ls_values=LS_VALUES + LS_EXTRA,
                   notes="the paper's schedule length (200 epochs, SGD momentum 0.9, lr / 10 at 40% and 80%) on "
                         "all of Fashion-MNIST with both student architectures and the LS 0.2 teacher "
                         "(Supplementary J), for a GPU"),
}


def recipe(profile: str) -> Recipe:
    """The profile's recipe, its seeds cut to an active `seed_cap` (the GPU script's budget)."""
    r = RECIPES[check_profile(profile)]
    return replace(r, seeds=capped(r.seeds))


class _Batched(Protocol):
    """What `_train` reads of a recipe (v2's `Recipe` and v3's `RecipeV3` both have it)."""

    @property
    def batch_size(self) -> int: ...


def _train(r: _Batched, epochs: int, lr: float, augment: str) -> TrainConfig:
    milestones = (max(1, int(0.4 * epochs)), max(1, int(0.8 * epochs))) if epochs >= 5 else ()
    return TrainConfig(epochs=epochs, batch_size=r.batch_size, optimizer="sgd", lr=lr, momentum=0.9,
                       weight_decay=5e-4, schedule="step" if milestones else "none", milestones=milestones,
                       gamma=0.1, augment=augment)


def _data(r: Recipe) -> DataConfig:
    return DataConfig(dataset=DATASET, n_train=r.n_train, n_test=r.n_test)


def _kwargs(r: Recipe, model: str) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in r.model_kwargs.get(model, {}).items()}


def teacher_arm(ls: float) -> str:
    return f"teacher-ls{float(ls):g}"


def student_arm(model: str, ls: float, tau: float) -> str:
    return f"{model}-ls{float(ls):g}-T{float(tau):g}"


def alone_arm(model: str) -> str:
    return f"{model}-alone"


def teacher_config(profile: str, ls: float, lr: float, seed: int = 0) -> RunConfig:
    """The teacher trained with label smoothing ``ls`` (0 = plain cross-entropy)."""
    r = recipe(profile)
    return RunConfig(experiment=EXPERIMENT, role="teacher", model=r.teacher_model, profile=profile, seed=seed,
                     data=_data(r), train=_train(r, r.teacher_epochs, lr, r.teacher_augment),
                     model_kwargs=_kwargs(r, r.teacher_model), label_smoothing=check_smoothing(ls))


def _check_model(r: Recipe, profile: str, model: str) -> None:
    if model not in r.student_models:
        raise ValueError(f"student model {model!r} is not in the {profile} recipe; choose one of: "
                         f"{', '.join(r.student_models)}")


def student_config(profile: str, teacher: RunConfig, model: str, tau: float, lr: float, seed: int = 0
                   ) -> RunConfig:
    """A student distilled from ``teacher`` at ``tau`` with the KD term only (no cross-entropy)."""
    r = recipe(profile)
    _check_model(r, profile, model)
    return RunConfig(experiment=EXPERIMENT, role="student", model=model, profile=profile, seed=seed,
                     data=_data(r), train=_train(r, r.student_epochs, lr, r.student_augment), teacher=teacher,
                     tau=check_tau(tau), alpha=KD_ALPHA, kd_direction="forward", model_kwargs=_kwargs(r, model))


def alone_config(profile: str, model: str, lr: float, seed: int = 0) -> RunConfig:
    """The student architecture trained alone on hard labels (cross-entropy, no LS), same budget."""
    r = recipe(profile)
    _check_model(r, profile, model)
    return RunConfig(experiment=EXPERIMENT, role="alone", model=model, profile=profile, seed=seed,
                     data=_data(r), train=_train(r, r.student_epochs, lr, r.student_augment),
                     model_kwargs=_kwargs(r, model))


def teacher_selection(profile: str, ls: float) -> list[RunConfig]:
    """The learning-rate candidates of one teacher (held-out validation split, shorter runs)."""
    r = recipe(profile)
    return selection_configs(teacher_config(profile, ls, r.teacher_lrs[0]), teacher_arm(ls), r.teacher_lrs,
                             r.select_teacher_epochs or r.select_epochs, r.val_size)


def student_selection(profile: str, teacher: RunConfig, model: str, tau: float) -> list[RunConfig]:
    """The learning-rate candidates of one student arm (architecture x teacher's ls x tau)."""
    r = recipe(profile)
    base = student_config(profile, teacher, model, tau, r.student_lrs[0])
    return selection_configs(base, student_arm(model, teacher.label_smoothing, tau), r.student_lrs,
                             r.select_epochs, r.val_size)


def alone_selection(profile: str, model: str) -> list[RunConfig]:
    r = recipe(profile)
    return selection_configs(alone_config(profile, model, r.student_lrs[0]), alone_arm(model), r.student_lrs,
                             r.select_epochs, r.val_size)


def final_students(profile: str, teacher: RunConfig, lrs: dict[str, float], taus=TAUS) -> list[RunConfig]:
    """Every seed of every student arm of ``teacher``, given the chosen rates ``lrs`` ({arm name: lr})."""
    r = recipe(profile)
    out = []
    for model in r.student_models:
        for tau in taus:
            arm = student_arm(model, teacher.label_smoothing, tau)
            if arm not in lrs:
                raise ValueError(f"no chosen learning rate for arm {arm!r}; run its selection first")
            out += [student_config(profile, teacher, model, tau, lrs[arm], seed) for seed in r.seeds]
    return out


def grid_size(profile: str, ls_values=None, taus=TAUS) -> dict[str, int]:
    """How many runs the chapter needs at ``profile`` (for budgeting before anything is trained)."""
    r = recipe(profile)
    ls_values = r.ls_values if ls_values is None else ls_values
    n_models = len(r.student_models)
    n_arms = len(ls_values) * n_models * len(taus) + len(MATCH_TAUS) * n_models
    return {
        "teacher_selection": len(ls_values) * len(r.teacher_lrs),
        "teachers": len(ls_values),
        "student_selection": (n_arms + n_models) * len(r.student_lrs),
        "students": (n_arms + n_models) * len(r.seeds),
    }


def round_tau(tau: float) -> float:
    """Matched temperatures are rounded to 0.01 so that their configs (and record names) are stable."""
    return float(round(float(tau), 2))


def analysis_config(cfg: RunConfig) -> RunConfig:
    """The config under which the analysis of run ``cfg`` is recorded (same key material, other folder)."""
    return cfg.with_(experiment=ANALYSIS)


def load_analysis(cfg: RunConfig, store: ResultStore | None = None) -> dict[str, Any] | None:
    store = store or ResultStore()
    rec = store.get(analysis_config(cfg))
    return None if rec is None else rec.get("analysis")
