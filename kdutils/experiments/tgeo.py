"""TGeo-KD (Hu, Wu et al., ICLR 2024), "Less or More From Teacher: Exploiting Trilateral Geometry For
Knowledge Distillation": the chapter's recipes and run configs. CONFIGS ONLY, not yet wired into the runner,
the sweep or the book: `runner.run` trains a RunConfig with its fixed `alpha`, so the sample-wise arms below
need a dispatch on `role` to `kdutils.tgeo.arms.train_arm(ARMS[role], ...)` before they can be run.
Until then, never hand a non-vanilla arm's config to `runner.run`: it would silently train the wrong loss.

Setting (the issue's): Fashion-MNIST, whose ResNet teachers err on roughly 5-10% of images (the teacher-wrong
samples the method needs), a ResNet teacher and a clearly weaker MLP student; a validation split held out
from the training split (f_w's outer objective and every arm's lr selection; never the test set).
`dataset="cifar100"` switches to the paper's ResNet-56 -> ResNet-20 pair.

Arms (the RunConfig `role`):
* `vanilla_a{alpha}`: fixed alpha in VANILLA_ALPHAS (the papermill sweep);
* `anl`, `ada`, `wls`, `rw`: the sample-wise / scheduled baselines (`kdutils.tgeo.baselines`);
* `tgeo_intra`, `tgeo_inter`, `tgeo_both`: TGeo-KD with each feature set (the ablation; `both` is the method);
* `motivation_a{alpha}`: Steps 2-6 of the poster (alpha 0.5 pre-training, then each of MOTIVATION_ALPHAS).
For the non-vanilla arms the RunConfig's `alpha` is 0 and meaningless: the rule is `ARMS[role]`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..config import DataConfig, RunConfig, TrainConfig
from ..profiles import check_profile
from ..tgeo.arms import ArmSpec

EXPERIMENT = "tgeo_kd"
VANILLA_ALPHAS = (0.1, 0.3, 0.5, 0.7, 0.9)
MOTIVATION_ALPHAS = (0.1, 0.3, 0.5, 0.7, 0.9)
FEATURE_ARMS = ("tgeo_intra", "tgeo_inter", "tgeo_both")
BASELINE_ARMS = ("anl", "ada", "wls", "rw")


ARMS: dict[str, ArmSpec] = {
    **{f"vanilla_a{a:g}": ArmSpec("vanilla", alpha=a) for a in VANILLA_ALPHAS},
    **{name: ArmSpec(name) for name in BASELINE_ARMS},
    **{name: ArmSpec("tgeo", features=name.split("_", 1)[1]) for name in FEATURE_ARMS},
}


@dataclass(frozen=True)
class Recipe:
    """One profile's scale. Wall times in `notes` are estimates, not yet measured on the 2-core machine."""

    dataset: str
    n_train: int | None
    n_test: int | None
    val_size: int
    teacher: str
    teacher_kwargs: dict = field(default_factory=dict)
    student: str = "mlp"
    student_kwargs: dict = field(default_factory=lambda: {"hidden": [64]})
    teacher_epochs: int = 1
    student_epochs: int = 1
    motivation_pre_epochs: int = 1
    batch_size: int = 128
    tau: float = 4.0
    student_lrs: tuple[float, ...] = (0.01, 0.05)
    teacher_lr: float = 0.1
    fusion_lr: float = 1e-3
    seeds: tuple[int, ...] = (0,)
    augment: str = "none"
    notes: str = ""


RECIPES: dict[str, Recipe] = {
    "smoke": Recipe(dataset="fashion_mnist", n_train=2000, n_test=1000, val_size=500, teacher="resnet8",
                    student_kwargs={"hidden": [32]}, student_lrs=(0.05,), seeds=(0,),
                    notes="seconds, for the tests: 2,000 training images, one epoch each"),
    "cpu": Recipe(dataset="fashion_mnist", n_train=20_000, n_test=None, val_size=5_000, teacher="resnet14",
                  teacher_epochs=10, student_epochs=20, motivation_pre_epochs=10,
                  student_lrs=(0.01, 0.03, 0.1), seeds=(0, 1, 2),
                  notes="estimate: teacher about 20 min on one core; a TGeo step costs about 5x a plain KD step "
                        "(kdutils.tgeo.bench), so the tgeo arms dominate the student budget; to be timed"),
    "full": Recipe(dataset="fashion_mnist", n_train=None, n_test=None, val_size=5_000, teacher="resnet56",
                   teacher_epochs=60, student_epochs=60, motivation_pre_epochs=30, student_lrs=(0.01, 0.03, 0.1),
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


def teacher_config(profile: str, dataset: str | None = None) -> RunConfig:
    """The ResNet teacher, trained on the training split minus the validation split."""
    r = recipe(profile, dataset)
    return RunConfig(experiment=EXPERIMENT, role="teacher", model=r.teacher, model_kwargs=dict(r.teacher_kwargs),
                     profile=profile, data=_data(r), train=_train(r, r.teacher_epochs, r.teacher_lr, r.augment))


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


def motivation_configs(profile: str, teacher: RunConfig, lr: float, seed: int = 0,
                       dataset: str | None = None) -> dict[str, RunConfig]:
    """Step 2 (`motivation_pre`: alpha 0.5) and Step 5 (`motivation_a{alpha}`: continued from it)."""
    r = recipe(profile, dataset)
    pre = arm_config(profile, teacher, "vanilla_a0.5", lr, seed, dataset).with_(
        role="motivation_pre", train=_train(r, r.motivation_pre_epochs, lr, "none"))
    out = {"motivation_pre": pre}
    for a in MOTIVATION_ALPHAS:
        out[f"motivation_a{a:g}"] = pre.with_(role=f"motivation_a{a:g}", alpha=a,
                                              train=_train(r, r.student_epochs, lr, "none"))
    return out


def all_arm_configs(profile: str, teacher: RunConfig, lr_by_arm: dict[str, float],
                    dataset: str | None = None) -> list[RunConfig]:
    """Every arm x seed at its selected lr (lr_by_arm from the validation-split selection)."""
    missing = [a for a in ARMS if a not in lr_by_arm]
    if missing:
        raise ValueError(f"no selected lr for arm(s) {missing}; select each arm's lr on the validation split first")
    r = recipe(profile, dataset)
    return [arm_config(profile, teacher, arm, lr_by_arm[arm], s, dataset) for arm in ARMS for s in r.seeds]
