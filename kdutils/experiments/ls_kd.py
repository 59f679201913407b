"""Chandrasegaran et al. (ICML 2022), "Revisiting Label Smoothing and Knowledge Distillation Compatibility:
What was Missing?": run configurations only (a skeleton; not wired into the book yet, nothing trains here).

The paper's recipe, scaled to Fashion-MNIST (ImageNet and CUB are not obtainable here):

* **Teachers**: one deeper CIFAR-style ResNet per label-smoothing value ``ls`` in {0, 0.1} (0.2 for
  Supplementary J), trained with cross-entropy on LS targets ``(1 - ls) * NLL + ls * mean_k(-log p_k)``
  (the authors' NVIDIA-style LS, which is ``kdutils.losses.label_smoothing_ce``).
* **Students**: a smaller ResNet, and the teacher's own architecture; **KD only** (no cross-entropy term,
  ``alpha = 1`` in kdutils' convention where ``alpha`` weights the KD term), forward KL(P_t || P_s) times
  ``tau**2`` as in the authors' ``KL_div_Loss``, at ``tau`` in {1, 2, 3, 64}.
* **Selection**: every arm's learning rate (each teacher; each student architecture x ls x tau) is chosen on a
  validation split held out from the training data (``kdutils.tuning``), never on the test set.

Naming: the paper's LS mixture is called ``ls`` here, because ``alpha`` is already kdutils' KD weight.
The ``cpu`` and ``full`` budgets below are provisional (not timed yet on this machine).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import DataConfig, RunConfig, TrainConfig
from ..losses import check_smoothing, check_tau
from ..profiles import check_profile
from ..tuning import selection_configs

EXPERIMENT = "ls_kd_fashion"
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
TAUS = (1.0, 2.0, 3.0, 64.0)
LS_VALUES = (0.0, 0.1)
LS_EXTRA = (0.2,)  # Supplementary J
KD_ALPHA = 1.0  # KD only, as in the paper (weight on the KD term)
DATASET = "fashion_mnist"


@dataclass(frozen=True)
class Recipe:
    """One profile's scale."""

    n_train: int | None
    n_test: int | None
    val_size: int
    teacher_model: str
    student_models: tuple[str, ...]  # (smaller ResNet, the teacher's architecture)
    teacher_epochs: int
    student_epochs: int
    batch_size: int
    teacher_lrs: tuple[float, ...]
    student_lrs: tuple[float, ...]
    select_epochs: int
    seeds: tuple[int, ...]
    teacher_augment: str = "crop2+flip"
    student_augment: str = "crop2+flip"  # "none" lets the teacher's logits be cached (computed once)
    notes: str = field(default="", compare=False)


RECIPES = {
    "smoke": Recipe(n_train=1000, n_test=500, val_size=200, teacher_model="resnet14",
                    student_models=("resnet8", "resnet14"), teacher_epochs=1, student_epochs=1, batch_size=128,
                    teacher_lrs=(0.05, 0.1), student_lrs=(0.05, 0.1), select_epochs=1, seeds=(0,),
                    teacher_augment="none", student_augment="none", notes="seconds, for tests"),
    "cpu": Recipe(n_train=12_000, n_test=None, val_size=2_000, teacher_model="resnet20",
                  student_models=("resnet8", "resnet20"), teacher_epochs=30, student_epochs=15, batch_size=128,
                  teacher_lrs=(0.05, 0.1, 0.2), student_lrs=(0.02, 0.05, 0.1), select_epochs=5, seeds=(0, 1, 2),
                  student_augment="none",
                  notes="provisional, not timed: 12,000 training images so that 2 single-thread processes fit "
                        "about 90 minutes; students see un-augmented images so the teacher's logits are "
                        "cached (the paper augments); the teacher-student gap must be checked before any "
                        "verdict"),
    "full": Recipe(n_train=None, n_test=None, val_size=10_000, teacher_model="resnet56",
                   student_models=("resnet20", "resnet56"), teacher_epochs=200, student_epochs=200,
                   batch_size=128, teacher_lrs=(0.05, 0.1, 0.2), student_lrs=(0.01, 0.05, 0.1),
                   select_epochs=40, seeds=(0, 1, 2),
                   notes="the paper's schedule length (200 epochs, SGD momentum 0.9, lr / 10 at 40% and 80%) on "
                         "all of Fashion-MNIST, for a GPU"),
}


def recipe(profile: str) -> Recipe:
    return RECIPES[check_profile(profile)]


def _train(r: Recipe, epochs: int, lr: float, augment: str) -> TrainConfig:
    milestones = (max(1, int(0.4 * epochs)), max(1, int(0.8 * epochs))) if epochs >= 5 else ()
    return TrainConfig(epochs=epochs, batch_size=r.batch_size, optimizer="sgd", lr=lr, momentum=0.9,
                       weight_decay=5e-4, schedule="step" if milestones else "none", milestones=milestones,
                       gamma=0.1, augment=augment)


def _data(r: Recipe) -> DataConfig:
    return DataConfig(dataset=DATASET, n_train=r.n_train, n_test=r.n_test)


def teacher_arm(ls: float) -> str:
    return f"teacher-ls{float(ls):g}"


def student_arm(model: str, ls: float, tau: float) -> str:
    return f"{model}-ls{float(ls):g}-T{float(tau):g}"


def teacher_config(profile: str, ls: float, lr: float, seed: int = 0) -> RunConfig:
    """The teacher trained with label smoothing ``ls`` (0 = plain cross-entropy)."""
    r = recipe(profile)
    return RunConfig(experiment=EXPERIMENT, role="teacher", model=r.teacher_model, profile=profile, seed=seed,
                     data=_data(r), train=_train(r, r.teacher_epochs, lr, r.teacher_augment),
                     label_smoothing=check_smoothing(ls))


def student_config(profile: str, teacher: RunConfig, model: str, tau: float, lr: float, seed: int = 0
                   ) -> RunConfig:
    """A student distilled from ``teacher`` at ``tau`` with the KD term only (no cross-entropy)."""
    r = recipe(profile)
    if model not in r.student_models:
        raise ValueError(f"student model {model!r} is not in the {profile} recipe; choose one of: "
                         f"{', '.join(r.student_models)}")
    return RunConfig(experiment=EXPERIMENT, role="student", model=model, profile=profile, seed=seed,
                     data=_data(r), train=_train(r, r.student_epochs, lr, r.student_augment), teacher=teacher,
                     tau=check_tau(tau), alpha=KD_ALPHA, kd_direction="forward")


def teacher_selection(profile: str, ls: float) -> list[RunConfig]:
    """The learning-rate candidates of one teacher (held-out validation split, shorter runs)."""
    r = recipe(profile)
    return selection_configs(teacher_config(profile, ls, r.teacher_lrs[0]), teacher_arm(ls), r.teacher_lrs,
                             r.select_epochs, r.val_size)


def student_selection(profile: str, teacher: RunConfig, model: str, tau: float) -> list[RunConfig]:
    """The learning-rate candidates of one student arm (architecture x teacher's ls x tau)."""
    r = recipe(profile)
    base = student_config(profile, teacher, model, tau, r.student_lrs[0])
    return selection_configs(base, student_arm(model, teacher.label_smoothing, tau), r.student_lrs,
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


def grid_size(profile: str, ls_values=LS_VALUES, taus=TAUS) -> dict[str, int]:
    """How many runs the chapter needs at ``profile`` (for budgeting before anything is trained)."""
    r = recipe(profile)
    n_arms = len(ls_values) * len(r.student_models) * len(taus)
    return {
        "teacher_selection": len(ls_values) * len(r.teacher_lrs),
        "teachers": len(ls_values),
        "student_selection": n_arms * len(r.student_lrs),
        "students": n_arms * len(r.seeds),
    }

