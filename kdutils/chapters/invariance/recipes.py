"""Odagiu et al.: the chapter's constants, datasets, recipes per profile and the run configs of every arm.

What runs is defined here; `plan` selects learning rates and runs it, `claims` judges the records."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

import numpy as np

from kdutils.config import DataConfig, RunConfig, TrainConfig
from kdutils.data.pointsets import SET_MNIST_JITTER
from kdutils.store.profiles import check_profile


# ---------------------------------------------------------------------------------------------------------
# Chapter-wide constants

EXPERIMENT_PREFIX = "invariance_"
PAIRS = ("resnet_mlp", "dgcnn_deepsets", "deepsets_mlp")
RUN_ORDER = ("resnet_mlp", "deepsets_mlp", "dgcnn_deepsets")  # cheapest first
TAUS = (1.0, 4.0, 8.0, 16.0)
REVERSE_TAUS = (1.0, 4.0)
K_FOLDS = 5
ALPHA = 1.0
# smoke keeps two temperatures so the whole chapter trains in seconds under the tests.
PROFILE_TAUS = {"smoke": (1.0, 4.0), "cpu": TAUS, "gpu": TAUS, "full": TAUS}
FOLDS = {"smoke": (0,), "cpu": (0, 1, 2), "gpu": (0, 1, 2, 3), "full": (0, 1, 2, 3, 4)}
DIRECTIONS = ("auto", "forward", "reverse")
ROLES = ("teacher", "teacher_prime", "student", "student_aug", "self", "self_aug", "distilled",
         "distilled_prime")
# A run "collapsed" when its test accuracy is below twice chance (the authors' tau=1 runs sat at chance).
COLLAPSE_FACTOR = 2.0


@dataclass(frozen=True)
class DatasetInfo:
    num_classes: int
    label: str
    options: dict[str, dict[str, Any]]  # profile -> loader options
    translation: tuple[str, str] | None  # (IM transformation, augmentation) for translation pairs
    permutation: tuple[str, str] | None
    note: str = ""


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(10, "MNIST", {p: {} for p in FOLDS}, ("circshift4", "shift4c"), None),
    "set_mnist_jitter": DatasetInfo(
        10, "set-MNIST", {"smoke": {"n_points": 32}, "cpu": {"n_points": 64}, "gpu": {"n_points": 64},
                          "full": {"n_points": 100}},
        ("translate_xy0.25", "translatexy0.25"), ("permute", "permute"),
        "MNIST digits as sets of lit pixels (x, y, intensity), listed in raster order, (x, y) jittered by "
        f"+-{SET_MNIST_JITTER} to break kNN ties"),
    "set_mnist": DatasetInfo(
        10, "set-MNIST (no jitter)", {"smoke": {"n_points": 32}, "cpu": {"n_points": 64}, "gpu": {"n_points": 64},
                                      "full": {"n_points": 100}},
        ("translate_xy0.25", "translatexy0.25"), ("permute", "permute"),
        "MNIST digits as sets of lit pixels (x, y, intensity), listed in raster order"),
    "modelnet40": DatasetInfo(
        40, "ModelNet40", {"smoke": {"n_points": 64}, "cpu": {"n_points": 256}, "gpu": {"n_points": 256},
                           "full": {"n_points": 1000}},
        ("translate_xyz0.1", "translate0.1"), ("permute", "permute"),
        "PointNet++ resampled text files; the shared copy is a 156-shape subset (demo only)"),
    "modelnet40_h5": DatasetInfo(
        40, "ModelNet40 (HDF5)", {"smoke": {"n_points": 64}, "cpu": {"n_points": 256}, "gpu": {"n_points": 256},
                                  "full": {"n_points": 1000}},
        ("translate_xyz0.1", "translate0.1"), ("permute", "permute")),
    "hls4ml_jets": DatasetInfo(
        5, "hls4ml LHC jets", {p: {"n_constituents": 16} for p in FOLDS}, None, ("permute", "permute"),
        "16 leading constituents (pt, eta_rel, phi_rel), unstandardised"),
}


@dataclass(frozen=True)
class Net:
    model: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        args = ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in self.kwargs.items())
        if self.model == "deepsets_inv_small":  # its builder drops the last phi layer of the phi it is given
            args += f" -> phi={list(self.kwargs.get('phi', (32, 32, 32)))[:-1]}"
        return f"{self.model}({args})"


@dataclass(frozen=True)
class Stage:
    """How one kind of run is optimised (always Adam, as in the authors' code; their learning rate is constant,
    the short `cpu` schedules anneal it with a cosine)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    schedule: str = "none"

    def describe(self) -> str:
        wd = f", wd {self.weight_decay:g}" if self.weight_decay else ""
        sched = f", {self.schedule}" if self.schedule != "none" else ""
        return f"{self.epochs} ep, batch {self.batch_size}, Adam {self.lr:g}{wd}{sched}"


@dataclass(frozen=True)
class Recipe:
    n_train: int | None
    n_test: int | None
    teacher: Net
    teacher_prime: Net
    students: dict[str, Net]
    default_students: tuple[str, ...]
    teacher_train: Stage
    teacher_prime_train: Stage
    student_train: Stage
    distill_train: Stage


@dataclass(frozen=True)
class Pair:
    key: str
    title: str
    symmetry: str  # "translation" | "permutation"
    default_dataset: str
    datasets: tuple[str, ...]
    teacher_label: str
    student_labels: dict[str, str]
    notebook: str


PAIR_INFO: dict[str, Pair] = {
    "resnet_mlp": Pair("resnet_mlp", "ResNet -> MLP (translation, MNIST)", "translation", "mnist", ("mnist",),
                       "ResNet", {"mlp2048": "MLP 4x2048", "mlp256": "MLP 4x256"}, "invariance_mnist"),
    "dgcnn_deepsets": Pair("dgcnn_deepsets", "DGCNN -> DeepSets (translation, point sets)", "translation",
                           "set_mnist_jitter", ("set_mnist_jitter", "set_mnist", "modelnet40", "modelnet40_h5"), "DGN",
                           {"dsinv": "dsinv", "dsequiv": "dsequiv"}, "invariance_setmnist_dgcnn"),
    "deepsets_mlp": Pair("deepsets_mlp", "DeepSets -> MLP (permutation, point sets)", "permutation",
                         "set_mnist_jitter", ("set_mnist_jitter", "set_mnist", "hls4ml_jets"), "dsinv", {"mlp": "MLP"},
                         "invariance_setmnist_deepsets"),
}

# ---------------------------------------------------------------------------------------------------------
# Recipes. `full` follows the authors' code (A1 of the research notes); `cpu` is sized so that the whole
# chapter (3 pairs x 8 arms x 4 temperatures x 3 folds) trains in about half an hour on 2 cores; `smoke` is
# for the tests.

_MNIST_STUDENTS = {"mlp2048": Net("mlp_2048x4"), "mlp256": Net("mlp_256x4")}


def _is_set_mnist(dataset: str) -> bool:
    return dataset.startswith("set_mnist")


def _resnet_mlp(profile: str) -> Recipe:
    if profile == "smoke":
        aps = Net("aps_resnet18", {"width": 4})
        one = Stage(1, 64, 1e-3)
        return Recipe(256, 128, aps, aps, _MNIST_STUDENTS, ("mlp256",), one, one, one, one)
    if profile == "cpu":
        # 3 vs 1 epochs on 8,000 images: 97.9% vs 94.7% test accuracy; the 4x256 MLP alone reaches ~96%.
        aps = Net("aps_resnet18", {"width": 8})
        return Recipe(8000, 5000, aps, aps, _MNIST_STUDENTS, ("mlp256",), Stage(3, 64, 2e-3, schedule="cosine"),
                      Stage(1, 64, 2e-3, schedule="cosine"), Stage(5, 64, 1e-3, schedule="cosine"),
                      Stage(5, 64, 1e-3, schedule="cosine"))
    if profile == "gpu":
        # every image of each fold, a wider APS-ResNet-18 than cpu, batch 256 for the GPU's sake
        aps = Net("aps_resnet18", {"width": 16})
        return Recipe(None, None, aps, aps, _MNIST_STUDENTS, ("mlp256",), Stage(3, 256, 2e-3, schedule="cosine"),
                      Stage(1, 256, 2e-3, schedule="cosine"), Stage(4, 256, 1e-3, schedule="cosine"),
                      Stage(4, 256, 1e-3, schedule="cosine"))
    # The authors: teacher 10 epochs, teacher' 2, student alone 5, distillation 10; Adam 1e-3, batch 64.
    aps = Net("aps_resnet18", {"width": 64})
    return Recipe(None, None, aps, aps, _MNIST_STUDENTS, ("mlp2048", "mlp256"), Stage(10, 64, 1e-3),
                  Stage(2, 64, 1e-3), Stage(5, 64, 1e-3), Stage(10, 64, 1e-3))


def _dgcnn_deepsets(profile: str, dataset: str) -> Recipe:
    subset = _is_set_mnist(dataset)
    if profile == "smoke":
        dg = {"k": 8, "emb_dims": 32, "mlp_widths": (32,)}
        ds = {"phi": (16, 16, 16), "rho": (16,)}
        n_train, n_test = (256, 128) if subset else (None, None)
        one = Stage(1, 32, 1e-3)
        return Recipe(n_train, n_test, Net("dgcnn", {**dg, "widths": (8, 8, 16, 16)}),
                      Net("dgcnn", {**dg, "widths": (8, 8)}),
                      {"dsinv": Net("deepsets_inv", {**ds, "pool": "max", "activation": "tanh", "dropout": 0.5}),
                       "dsequiv": Net("deepsets_equiv", ds)}, ("dsinv", "dsequiv"), one, one, one, one)
    if profile == "cpu":
        dg = {"k": 10, "emb_dims": 128, "mlp_widths": (64,)}
        ds = {"phi": (64, 64, 64), "rho": (64,)}
        # The first cpu recipe (6,000 sets, 8 teacher epochs) gave a DGCNN teacher of 0.84 and students of
        # 0.66-0.69: too weak a teacher for "distilling a good teacher". Twice the data for half the epochs (the
        # same 48,000 examples seen: the DGCNN is the chapter's most expensive net) is what one CPU core affords
        # beside the rest; the students see 12,000 x 2.
        # Other datasets (the ModelNet40 demo) keep the first recipe's epochs.
        n_train, n_test = (12000, 5000) if subset else (None, None)
        t_ep, s_ep = (4, 2) if subset else (8, 10)
        return Recipe(n_train, n_test, Net("dgcnn", {**dg, "widths": (16, 16, 32, 64)}),
                      Net("dgcnn", {**dg, "widths": (16, 16)}),
                      {"dsinv": Net("deepsets_inv", {**ds, "pool": "max", "activation": "tanh", "dropout": 0.5}),
                       "dsequiv": Net("deepsets_equiv", ds)}, ("dsinv", "dsequiv"),
                      Stage(t_ep, 32, 2e-3, schedule="cosine"), Stage(t_ep, 32, 2e-3, schedule="cosine"),
                      Stage(s_ep, 128, 2e-3, schedule="cosine"), Stage(s_ep, 128, 2e-3, schedule="cosine"))
    if profile == "gpu":  # the cpu nets on every set of each fold, larger batches
        dg = {"k": 10, "emb_dims": 128, "mlp_widths": (64,)}
        ds = {"phi": (64, 64, 64), "rho": (64,)}
        return Recipe(None, None, Net("dgcnn", {**dg, "widths": (16, 16, 32, 64)}),
                      Net("dgcnn", {**dg, "widths": (16, 16)}),
                      {"dsinv": Net("deepsets_inv", {**ds, "pool": "max", "activation": "tanh", "dropout": 0.5}),
                       "dsequiv": Net("deepsets_equiv", ds)}, ("dsinv", "dsequiv"),
                      Stage(3, 128, 2e-3, schedule="cosine"), Stage(3, 128, 2e-3, schedule="cosine"),
                      Stage(3, 256, 2e-3, schedule="cosine"), Stage(3, 256, 2e-3, schedule="cosine"))
    # The authors (ModelNet40, 1000 points): DGCNN k=20, EdgeConv 64-64-128-256, embedding 1024, MLP 512-256,
    # dropout 0.5, batch 32, Adam 1e-3, wd 1e-7, 200 epochs; DGN' keeps two EdgeConv layers. Students: DeepSets
    # phi [256]*3, rho [256], max pooling, tanh, dropout 0.5, batch 128, Adam 1e-3, up to 1000 epochs with
    # early stopping. We train a fixed number of epochs (no early stopping); on set-MNIST (48,000 sets per fold,
    # five times ModelNet40's 9,843) the epochs are cut so the number of examples seen stays about the same.
    epochs = 40 if subset else 200
    ds = {"phi": (256, 256, 256), "rho": (256,)}
    return Recipe(None, None, Net("dgcnn", {"k": 20}), Net("dgcnn2", {"k": 20}),
                  {"dsinv": Net("deepsets_inv", {**ds, "pool": "max", "activation": "tanh", "dropout": 0.5}),
                   "dsequiv": Net("deepsets_equiv", ds)}, ("dsinv", "dsequiv"),
                  Stage(epochs, 32, 1e-3, 1e-7), Stage(epochs, 32, 1e-3, 1e-7), Stage(epochs, 128, 1e-3, 1e-7),
                  Stage(epochs, 128, 1e-3, 1e-7))


def _deepsets_mlp(profile: str, dataset: str) -> Recipe:
    # The authors' jet recipe (config_deepsinv_to_mlp_16const): teacher DeepSets phi [32,32,32], rho [32], mean
    # pooling, ReLU; teacher' with one phi layer fewer; student MLP [88,88,44,44,44]; Adam 1.5e-3, batch 256,
    # up to 1000 epochs with early stopping (we: a fixed number of epochs). On set-MNIST that teacher is weak
    # (58% after 20 epochs on 6,000 sets, below the MLP's 67%): max pooling and width 64 reach 87%, so set-MNIST
    # uses those; the jets keep the authors' nets.
    kw: dict[str, tuple[int, ...] | str]  # layer widths, and the pooling where it is not the default
    if dataset == "hls4ml_jets":
        kw = {"phi": (32, 32, 32), "rho": (32,)}
    elif profile == "smoke":
        kw = {"phi": (16, 16, 16), "rho": (16,), "pool": "max"}
    else:
        kw = {"phi": (64, 64, 64), "rho": (64,), "pool": "max"}
    teacher, prime = Net("deepsets_inv", kw), Net("deepsets_inv_small", kw)
    students = {"mlp": Net("mlp", {"hidden": (32, 32, 16, 16, 16) if profile == "smoke" else (88, 88, 44, 44, 44)})}
    subset = _is_set_mnist(dataset)
    if profile == "smoke":
        one = Stage(1, 64, 1.5e-3)
        return Recipe(256 if subset else None, 128 if subset else None, teacher, prime, students, ("mlp",),
                      one, one, one, one)
    if profile == "cpu":
        # The first cpu recipe (6,000 sets, 20 epochs) gave a teacher of 0.83; all 48,000 sets of a fold for
        # 10 epochs gave 0.92 on the validation split in a trial (8 are run, for the budget).
        teach, stud = Stage(8, 64, 1.5e-3, schedule="cosine"), Stage(2, 64, 1.5e-3, schedule="cosine")
        return Recipe(48000 if subset else None, 5000 if subset else None, teacher, prime, students, ("mlp",),
                      teach, teach, stud, stud)
    if profile == "gpu":
        teach, stud = Stage(8, 256, 1.5e-3, schedule="cosine"), Stage(3, 256, 1.5e-3, schedule="cosine")
        return Recipe(None, None, teacher, prime, students, ("mlp",), teach, teach, stud, stud)
    stage = Stage(100, 256, 1.5e-3)
    return Recipe(None, None, teacher, prime, students, ("mlp",), stage, stage, stage, stage)


def check_pair(pair: str) -> Pair:
    if pair not in PAIR_INFO:
        raise ValueError(f"unknown pair {pair!r}; choose one of: {', '.join(PAIRS)}")
    return PAIR_INFO[pair]


def resolve_dataset(pair: str, dataset: str | None) -> str:
    info = check_pair(pair)
    if dataset in (None, "default"):
        return info.default_dataset
    if dataset not in info.datasets:
        raise ValueError(f"pair {pair!r} runs on: {', '.join(info.datasets)}; got dataset {dataset!r}")
    return dataset


def recipe(pair: str, profile: str, dataset: str | None = None) -> Recipe:
    check_profile(profile)
    dataset = resolve_dataset(pair, dataset)
    if pair == "resnet_mlp":
        return _resnet_mlp(profile)
    if pair == "dgcnn_deepsets":
        return _dgcnn_deepsets(profile, dataset)
    return _deepsets_mlp(profile, dataset)


def transformation(pair: str, dataset: str | None = None) -> tuple[str, str]:
    """(IM transformation name, augmentation spec) of a pair on a dataset."""
    info = check_pair(pair)
    dataset = resolve_dataset(pair, dataset)
    out = getattr(DATASETS[dataset], info.symmetry)
    if out is None:
        raise ValueError(f"dataset {dataset!r} has no {info.symmetry} transformation")
    return out


def resolve_students(pair: str, profile: str, student: str | Iterable[str] | None = None,
                     dataset: str | None = None) -> tuple[str, ...]:
    rec = recipe(pair, profile, dataset)
    if student in (None, "default"):
        return rec.default_students
    names = (student,) if isinstance(student, str) else tuple(student)
    for s in names:
        if s not in rec.students:
            raise ValueError(f"unknown student {s!r} for pair {pair!r}; choose one of: {', '.join(rec.students)}")
    return names


def resolve_direction(direction: str | None) -> str:
    direction = direction or "auto"
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; choose one of: {', '.join(DIRECTIONS)} "
                         "(auto: forward KL everywhere plus the reverse KL at tau 1 and 4)")
    return direction


def resolve_fold(fold: int | None) -> int | None:
    if fold is None:
        return None
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < K_FOLDS:
        raise ValueError(f"fold must be an integer in 0..{K_FOLDS - 1} (or None for the whole training split); "
                         f"got {fold!r}")
    return int(fold)

# ---------------------------------------------------------------------------------------------------------
# Run configs


def experiment_name(pair: str) -> str:
    return EXPERIMENT_PREFIX + check_pair(pair).key


def _data(pair: str, profile: str, dataset: str, fold: int | None) -> DataConfig:
    rec = recipe(pair, profile, dataset)
    return DataConfig(dataset=dataset, n_train=rec.n_train, n_test=rec.n_test, fold=fold, k_folds=K_FOLDS,
                      options=dict(DATASETS[dataset].options[profile]))


def _train(stage: Stage, augment: str = "none") -> TrainConfig:
    return TrainConfig(epochs=stage.epochs, batch_size=stage.batch_size, optimizer="adam", lr=stage.lr,
                       weight_decay=stage.weight_decay, schedule=stage.schedule, augment=augment)


def _config(pair: str, profile: str, dataset: str, fold: int | None, role: str, net: Net, stage: Stage,
            augment: str = "none", lr: float | None = None) -> RunConfig:
    train = _train(stage, augment)
    if lr is not None:
        train = replace(train, lr=float(lr))
    return RunConfig(experiment=experiment_name(pair), role=role, model=net.model, model_kwargs=dict(net.kwargs),
                     data=_data(pair, profile, dataset, fold), train=train, profile=profile,
                     seed=0 if fold is None else fold, invariance=transformation(pair, dataset)[0])


def arm_key(role: str, student: str | None = None, tau: float | None = None) -> str:
    """The name under which an arm's learning rate is selected (`kdutils.sweeps.tuning`): "teacher", "teacher_prime",
    "student-<s>", "student_aug-<s>", "distilled-<s>-tau<t>" (teacher -> student: one selection per
    temperature) and "distilled_prime-<s>", "self-<s>", "self_aug-<s>" (one selection each, at SELECT_TAU)."""
    if role in ("teacher", "teacher_prime"):
        return role
    if role not in ROLES or student is None:
        raise ValueError(f"unknown arm: role {role!r}, student {student!r}; roles: {', '.join(ROLES)}")
    if role == "distilled":
        if tau is None:
            raise ValueError("the teacher -> student arm is selected per temperature: give tau")
        return f"distilled-{student}-tau{float(tau):g}"
    return f"{role}-{student}"


def _lr(lrs: Mapping[str, float] | None, arm: str) -> float | None:
    """The selected lr of `arm`; None (the recipe's own rate) when no selection is given."""
    if lrs is None:
        return None
    if arm not in lrs:
        raise ValueError(f"no selected learning rate for arm {arm!r}; selected: {', '.join(sorted(lrs)) or 'none'}")
    return float(lrs[arm])


def teacher_config(profile: str, pair: str, fold: int | None = 0, prime: bool = False,
                   dataset: str | None = None, lrs: Mapping[str, float] | None = None) -> RunConfig:
    """The invariant teacher (or teacher', the fidelity control), trained on hard labels. `lrs`: the selected
    learning rates (`select_lrs`); None keeps the recipe's rate."""
    dataset = resolve_dataset(pair, dataset)
    rec = recipe(pair, profile, dataset)
    if prime:
        return _config(pair, profile, dataset, fold, "teacher_prime", rec.teacher_prime, rec.teacher_prime_train,
                       lr=_lr(lrs, "teacher_prime"))
    return _config(pair, profile, dataset, fold, "teacher", rec.teacher, rec.teacher_train, lr=_lr(lrs, "teacher"))


def student_config(profile: str, pair: str, student: str, fold: int | None = 0, augmented: bool = False,
                   dataset: str | None = None, lrs: Mapping[str, float] | None = None) -> RunConfig:
    """The student trained alone on hard labels; `augmented`: on randomly transformed training data."""
    dataset = resolve_dataset(pair, dataset)
    rec = recipe(pair, profile, dataset)
    if student not in rec.students:
        raise ValueError(f"unknown student {student!r} for pair {pair!r}; choose one of: {', '.join(rec.students)}")
    augment = transformation(pair, dataset)[1] if augmented else "none"
    role = "student_aug" if augmented else "student"
    return _config(pair, profile, dataset, fold, role, rec.students[student], rec.student_train, augment,
                   lr=_lr(lrs, arm_key(role, student)))


def kd_config(profile: str, pair: str, student: str, tau: float, arm: str, fold: int | None = 0,
              direction: str = "forward", dataset: str | None = None,
              lrs: Mapping[str, float] | None = None) -> RunConfig:
    """A fresh student trained by pure KD (alpha=1) from the teacher of `arm`: "distilled" (teacher),
    "distilled_prime" (teacher'), "self" (the student alone), "self_aug" (the augmented student). With `lrs`,
    the teacher and the student get their selected rates (the reverse KL uses the forward arm's rate at the
    same temperature)."""
    dataset = resolve_dataset(pair, dataset)
    teachers = {
        "distilled": lambda: teacher_config(profile, pair, fold, False, dataset, lrs),
        "distilled_prime": lambda: teacher_config(profile, pair, fold, True, dataset, lrs),
        "self": lambda: student_config(profile, pair, student, fold, False, dataset, lrs),
        "self_aug": lambda: student_config(profile, pair, student, fold, True, dataset, lrs),
    }
    if arm not in teachers:
        raise ValueError(f"unknown KD arm {arm!r}; choose one of: {', '.join(teachers)}")
    rec = recipe(pair, profile, dataset)
    base = student_config(profile, pair, student, fold, False, dataset)
    train = _train(rec.distill_train)
    lr = _lr(lrs, arm_key(arm, student, tau))
    if lr is not None:
        train = replace(train, lr=lr)
    return base.with_(role=arm, teacher=teachers[arm](), tau=float(tau), alpha=ALPHA, kd_direction=direction,
                      train=train)


def _row_label(pair: str, student: str) -> str:
    info = PAIR_INFO[pair]
    return f"{info.teacher_label} -> {info.student_labels[student]}"
