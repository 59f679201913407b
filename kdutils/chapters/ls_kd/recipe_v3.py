"""Chandrasegaran et al., recipe v3 (issue 22): every comparison at one learning rate, several teachers per
label-smoothing value, a student with a convolutional penultimate layer.

What changes from v2 (``recipes.RECIPES``, whose records the page shows until v3's exist):

* **One rate per comparison.** Every student (the tau sweep, the matched-entropy arms, the student alone) trains
  at one common rate: the rate the validation selection picks for the *plain teacher's tau = 1 arm* (teacher
  seed 0). Why this arm and not "the rate most arms chose": it is the reference arm of every comparison the
  claims make, its selection is one pre-specified run set that no other arm's outcome can sway, and it costs
  one grid instead of one per arm (in v2 the two rules agree: 0.03, chosen by 7 of the 10 distilled arms).
  The v2 records, each arm at its own tuned rate, stay on the page as the robustness row.
* **Teachers per LS value**: ``teacher_seeds`` (>= 3). Teacher ``i`` of every LS value shares seed ``i``
  (same initial weights and data order), so "LS teacher i vs plain teacher i" is a pair; students of teacher
  ``i`` use the student seeds ``student_seeds``, so the unit of a comparison is (teacher pair, student seed)
  and its interval is the two-level one of ``kdutils.verdicts.nested``.
* **Student**: a ResNet-8 at reduced widths (a convolutional penultimate layer, globally pooled, as the
  paper's ResNet-18 students have), the MLP-64 of v2 as the stated fallback.
* **Attempts.** A failed gate changes the scale, never the claims: ``RECIPES_V3`` holds each profile's current
  attempt, ``EARLIER_V3`` the ones it replaced (their records stay, and the page shows why each was replaced).
  At `cpu`, attempt 1 reused v2's teacher recipe (8 epochs on 20,000 images); none of its eight teachers met the
  book's convergence standard, so attempt 2 trains the teachers 25 epochs on 10,000 images, chooses their rates
  anew, and widens the student rate grid past attempt 1's choice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kdutils.chapters.ls_kd.recipes import (DATASET, EXPERIMENT, KD_ALPHA, MATCH_TAUS, TAUS, _train, round_tau,
                                            student_arm, teacher_arm)
from kdutils.config import DataConfig, RunConfig
from kdutils.losses import check_smoothing, check_tau
from kdutils.store.profiles import check_profile

VERSION = "v3"


@dataclass(frozen=True)
class RecipeV3:
    """One profile's scale under recipe v3 (fields as in ``recipes.Recipe`` where they share a name)."""

    n_train: int | None
    n_test: int | None
    val_size: int
    batch_size: int
    teacher_model: str
    teacher_epochs: int
    teacher_lrs: tuple[float, ...]
    select_teacher_epochs: int
    teacher_seeds: tuple[int, ...]
    ls_values: tuple[float, ...]
    student_model: str
    student_epochs: int
    student_lrs: tuple[float, ...]
    select_epochs: int
    student_seeds: tuple[int, ...]
    alone_seeds: tuple[int, ...]
    taus: tuple[float, ...] = TAUS
    match_taus: tuple[float, ...] = MATCH_TAUS
    teacher_augment: str = "none"
    student_augment: str = "none"
    teacher_kwargs: dict[str, Any] = field(default_factory=dict, compare=False)
    student_kwargs: dict[str, Any] = field(default_factory=dict, compare=False)
    #: LS values the recipe does not run, with the reason the page gives.
    not_run: dict[float, str] = field(default_factory=dict, compare=False)
    notes: str = field(default="", compare=False)
    #: which attempt at this profile's scale (a failed gate changes the scale, never the claims)
    attempt: int = field(default=1, compare=False)


RECIPES_V3 = {
    "smoke": RecipeV3(n_train=600, n_test=200, val_size=200, batch_size=128, teacher_model="resnet8",
                      teacher_epochs=1, teacher_lrs=(0.1,), select_teacher_epochs=1, teacher_seeds=(0, 1),
                      ls_values=(0.0, 0.1), student_model="resnet8", student_epochs=1, student_lrs=(0.05, 0.1),
                      select_epochs=1, student_seeds=(0, 1), alone_seeds=(0, 1), taus=(1.0, 3.0),
                      match_taus=(1.0,), teacher_kwargs={"widths": [4, 4, 8, 8]},
                      student_kwargs={"widths": [4, 4, 4, 8]},
                      notes="seconds, for tests: 600 training images, one epoch, two teachers per LS value"),
    "cpu": RecipeV3(n_train=10_000, n_test=None, val_size=2_500, batch_size=128, teacher_model="resnet8",
                    teacher_epochs=25, teacher_lrs=(0.03, 0.1, 0.3, 1.0), select_teacher_epochs=5,
                    teacher_seeds=(1, 2, 3, 4, 5, 6), ls_values=(0.0, 0.1), student_model="resnet8",
                    student_epochs=5, student_lrs=(0.03, 0.1, 0.3, 1.0), select_epochs=5, student_seeds=(0, 1),
                    alone_seeds=(0, 1, 2, 3), student_kwargs={"widths": [8, 8, 16, 32]}, attempt=2,
                    not_run={0.2: "LS 0.2 (Supplementary J) needs its own teacher selection and six more teachers "
                                  "with their students, about 1.7 more core-hours at the measured rates: over the "
                                  "chapter's budget"},
                    notes="v3, attempt 2 (attempt 1's 8-epoch teachers failed the convergence gate): teachers "
                          "ResNet-8 16-32-64 trained 25 epochs on 10,000 un-augmented Fashion-MNIST images (rate "
                          "/ 10 after epochs 10 and 20, so the last 5 epochs run at the final rate), each LS "
                          "value's rate chosen on 2,500 held-out images by 5-epoch runs; six teachers per LS "
                          "value (seeds 1-6, three pairs per process); students ResNet-8 at widths 8-8-16-32 (a 32-d pooled convolutional "
                          "penultimate layer), KD only, 5 epochs on the same images, two seeds per teacher, all "
                          "at one common rate chosen on validation for the plain teacher's tau = 1 arm by runs as "
                          "long as the final ones, from a grid that reaches past attempt 1's choice (0.3)"),
}

#: Earlier attempts at a profile's scale, oldest first: their records stay in results/ and the page shows why
#: each was replaced (attempt 1 at `cpu`: its teachers had not finished learning).
EARLIER_V3 = {"cpu": (
    RecipeV3(n_train=20_000, n_test=None, val_size=5_000, batch_size=128, teacher_model="resnet8",
             teacher_epochs=8, teacher_lrs=(0.03, 0.1, 0.3, 1.0), select_teacher_epochs=2,
             teacher_seeds=(1, 2, 3, 4), ls_values=(0.0, 0.1), student_model="resnet8", student_epochs=5,
             student_lrs=(0.01, 0.03, 0.1, 0.3), select_epochs=2, student_seeds=(0, 1),
             alone_seeds=(0, 1, 2, 3), student_kwargs={"widths": [8, 8, 16, 32]}, attempt=1,
             notes="v3, attempt 1: the v2 teachers (ResNet-8 16-32-64, 8 epochs on 20,000 un-augmented "
                   "Fashion-MNIST images, plain at 0.1 and LS 0.1 at 0.3 from v2's recorded selection), four per LS "
                   "value (seeds 1-4); students ResNet-8 at widths 8-8-16-32, KD only, 5 epochs, two seeds per "
                   "teacher, all at one common rate chosen on validation for the plain teacher's tau = 1 arm "
                   "(2-epoch runs on 15,000 images, 5,000 held out)"),
)}


def recipe_v3(profile: str) -> RecipeV3:
    check_profile(profile)
    if profile not in RECIPES_V3:
        raise ValueError(f"recipe v3 has no {profile!r} profile; choose one of: {', '.join(RECIPES_V3)}")
    return RECIPES_V3[profile]


def _kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}


def _data(r: RecipeV3) -> DataConfig:
    return DataConfig(dataset=DATASET, n_train=r.n_train, n_test=r.n_test)


def teacher_config(profile: str, ls: float, lr: float, seed: int = 0, r: RecipeV3 | None = None) -> RunConfig:
    """Teacher ``seed`` trained with label smoothing ``ls`` under ``r`` (default: the profile's current attempt)."""
    r = r or recipe_v3(profile)
    return RunConfig(experiment=EXPERIMENT, role="teacher", model=r.teacher_model, profile=profile, seed=int(seed),
                     data=_data(r), train=_train(r, r.teacher_epochs, lr, r.teacher_augment),
                     model_kwargs=_kwargs(r.teacher_kwargs), label_smoothing=check_smoothing(ls))


def teacher_selection(profile: str, ls: float) -> list[RunConfig]:
    """The teacher's rate candidates (v2's: same keys, so v2's recorded selections answer them)."""
    from kdutils.sweeps.tuning import selection_configs

    r = recipe_v3(profile)
    return selection_configs(teacher_config(profile, ls, r.teacher_lrs[0]), teacher_arm(ls), r.teacher_lrs,
                             r.select_teacher_epochs, r.val_size)


def student_config(profile: str, teacher: RunConfig, tau: float, lr: float, seed: int = 0) -> RunConfig:
    """A KD-only student of ``teacher`` at ``tau`` (forward KL times tau^2, as the authors' loss)."""
    r = recipe_v3(profile)
    return RunConfig(experiment=EXPERIMENT, role="student", model=r.student_model, profile=profile, seed=int(seed),
                     data=_data(r), train=_train(r, r.student_epochs, lr, r.student_augment), teacher=teacher,
                     tau=check_tau(tau), alpha=KD_ALPHA, kd_direction="forward",
                     model_kwargs=_kwargs(r.student_kwargs))


def alone_config(profile: str, lr: float, seed: int = 0) -> RunConfig:
    """The student architecture on hard labels (cross-entropy, no LS), same budget: the testability gate."""
    r = recipe_v3(profile)
    return RunConfig(experiment=EXPERIMENT, role="alone", model=r.student_model, profile=profile, seed=int(seed),
                     data=_data(r), train=_train(r, r.student_epochs, lr, r.student_augment),
                     model_kwargs=_kwargs(r.student_kwargs))


def rate_arm(profile: str) -> str:
    """The arm whose validation selection fixes the common rate: the plain teacher's tau = 1 student."""
    return "common-rate-" + student_arm(recipe_v3(profile).student_model, 0.0, 1.0)


def rate_selection(profile: str, plain_teacher: RunConfig) -> list[RunConfig]:
    """The common rate's candidates: the first plain teacher's tau = 1 student at every rate of the grid,
    trained on the training split minus ``val_size`` held-out images, student seed 0."""
    from kdutils.sweeps.tuning import selection_configs

    r = recipe_v3(profile)
    base = student_config(profile, plain_teacher, 1.0, r.student_lrs[0])
    return selection_configs(base, rate_arm(profile), r.student_lrs, r.select_epochs, r.val_size)


__all__ = ["EARLIER_V3", "RECIPES_V3", "RecipeV3", "VERSION", "alone_config", "rate_arm", "rate_selection", "recipe_v3",
           "round_tau", "student_config", "teacher_config", "teacher_selection"]
