"""Stanton et al.: plain models trained for as long as the students, the baseline of the generalisation parts of
claims 1 and 7 wherever the teacher recipe is not.

Why: "the student beats (or does not beat) a plain model" compares two training runs, and a run given six times
the image-epochs of the other wins or loses for that reason alone. The chapter's plain models are the teacher
recipe (same architecture, hard labels). At ``cpu`` v2 that recipe trains 120 epochs on Fashion-MNIST while the
students train 20, and on MNIST 60 epochs on 4,000 images while the student with 40,000 unlabelled images sees
11 times as many images per epoch. The comparison is fair only within `BUDGET_FACTOR` (the paper's own 300:200
epochs of student to teacher) either way (`budget_gate`).

Where the teacher recipe misses that band, this module adds plain models at the students' budget: the teacher
recipe (architecture, augmentation, optimiser, cosine schedule) with its epochs set so that epochs x labelled
images equals the compared student's epochs x images (`matched_epochs`), a rate of their own chosen on the
validation split from the union of the teacher and student grids (`lr_grid`; member 1 at each rate, the chosen
candidate *is* member 1), and one model per student seed (members 1, 2, 3, paired by position as the long plain
models are). They were added after v2's records were read, as a control; they change none of v2's runs, so they
run as two extra steps after v2's three phases (`jobs`) and do not enter `plan.missing_runs`.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from kdutils.chapters.does_kd_work import plan as dkw
from kdutils.config import RunConfig
from kdutils.store.store import ResultStore
from kdutils.sweeps.tuning import Selection, load_selection
from kdutils.verdicts import gates

ROLE = "plain_matched"
#: image-epochs of student and plain model within this factor either way: the paper's own ratio (students 300
#: epochs, teachers 200) is the widest it admits. Added after v2's records were read, as a fairness control.
BUDGET_FACTOR = 1.5
BUDGET = "same training budget as the plain model"
STEPS = (4, 5)  # after plan.phase_jobs' phases 1-3: the rate candidates, then the other members


def compared_images(r: dkw.Recipe, dataset: str) -> int:
    """Images per epoch of the student the plain model is compared with: claim 1's (the labelled set) on
    Fashion-MNIST, claim 7's with the most unlabelled images on MNIST."""
    extra = max(r.unlabelled, default=0) if dataset == "mnist" else 0
    return (r.n_train or 0) + extra


def matched_epochs(r: dkw.Recipe, dataset: str) -> int:
    """Epochs of a plain model on the labelled images with the compared student's image-epochs."""
    n = r.n_train or 0
    return max(1, round(r.student_epochs * compared_images(r, dataset) / n)) if n else r.student_epochs


def budget_gate(r: dkw.Recipe, dataset: str, plain_epochs: int | None = None) -> gates.Gate:
    """The compared student's image-epochs against the plain model's (``plain_epochs`` on the labelled images;
    None: the teacher recipe's), within `BUDGET_FACTOR` either way."""
    n = r.n_train or 0
    plain_epochs = r.teacher_epochs if plain_epochs is None else plain_epochs
    images = compared_images(r, dataset)
    student, plain = r.student_epochs * images, plain_epochs * n
    ratio = student / plain if plain else float("nan")
    ok = 1 / BUDGET_FACTOR <= ratio <= BUDGET_FACTOR
    return gates.Gate(BUDGET, ok, f"student {r.student_epochs} epochs x {images:,} images against the plain "
                                  f"model's {plain_epochs} epochs x {n:,}: ratio {ratio:.2f} (allowed "
                                  f"{1 / BUDGET_FACTOR:.2f}-{BUDGET_FACTOR:g})",
                      {"student image-epochs": student, "plain-model image-epochs": plain})


def needed(profile: str, dataset: str, version: str | None = None) -> bool:
    """Does the recipe need plain models at the students' budget (its teacher recipe misses the band)?"""
    r = dkw.recipe(profile, dataset, version)
    return bool(r.n_train) and not budget_gate(r, dataset).passed


def lr_grid(r: dkw.Recipe) -> tuple[float, ...]:
    """The candidates: the teacher and student grids together (a short run may want either end)."""
    return tuple(sorted(set(r.teacher_lrs) | set(r.student_lrs)))


def config(profile: str, dataset: str, index: int, lr: float, version: str | None = None) -> RunConfig:
    """Plain model ``index`` (paired with student seed ``index``): member ``index + 1`` of the teacher recipe at
    the students' budget."""
    r = dkw.recipe(profile, dataset, version)
    cfg = dkw.teacher_config(profile, 1 + index, dataset, lr=lr, version=version)
    return replace(cfg, role=ROLE, train=replace(cfg.train, epochs=matched_epochs(r, dataset)))


def _arm(dataset: str) -> str:
    """The selection's name on the page (its table has a data column, so the data set is not repeated)."""
    return "plain model (students' budget)"


def selection(profile: str, dataset: str, version: str | None = None,
              store: ResultStore | None = None) -> list[RunConfig]:
    """The rate candidates: plain model 0 at each rate of `lr_grid` (with a store, as extended past an edge
    where the recipe extends grids, `plan.grid_of`)."""
    r = dkw.recipe(profile, dataset, version)
    make = lambda lr: config(profile, dataset, 0, lr, version)  # noqa: E731
    return [make(lr) for lr in dkw.grid_of(r, lr_grid(r), make, _arm(dataset), store)]


def chosen(profile: str, dataset: str, store: ResultStore, version: str | None = None) -> Selection | None:
    """The rate chosen on validation, or None while a candidate is missing."""
    return load_selection(_arm(dataset), selection(profile, dataset, version, store), store)


def configs(profile: str, dataset: str, lr: float, version: str | None = None) -> list[RunConfig]:
    """One plain model per student seed at the chosen rate (the first is the chosen candidate)."""
    r = dkw.recipe(profile, dataset, version)
    return [config(profile, dataset, i, lr, version) for i in range(len(r.seeds))]


def jobs(step: int, profile: str, datasets: Sequence[str], claims: Sequence[int], version: str,
         store: ResultStore, planned: bool = False) -> list[RunConfig]:
    """The runs of step 4 (rate candidates) or 5 (the other plain models) for the data sets that need them and
    whose claim (1: Fashion-MNIST, 7: MNIST) is run. With ``planned`` an unknown rate is the grid's first."""
    if step not in STEPS:
        raise ValueError(f"step must be one of {STEPS}, got {step!r}")
    out: list[RunConfig] = []
    for ds in datasets:
        if not needed(profile, ds, version) or (1 if ds != "mnist" else 7) not in claims:
            continue
        if step == 4:
            out += selection(profile, ds, version, store)
            continue
        sel = chosen(profile, ds, store, version)
        lr = sel.lr if sel is not None else (lr_grid(dkw.recipe(profile, ds, version))[0] if planned else None)
        if lr is not None:
            out += configs(profile, ds, lr, version)
    return list({c.key(): c for c in out}.values())


def records(profile: str, dataset: str, store: ResultStore, version: str | None = None) -> list[dict] | None:
    """The plain models' records in student-seed order, or None until the rate is chosen and all are recorded."""
    sel = chosen(profile, dataset, store, version)
    if sel is None:
        return None
    recs = [store.get(c) for c in configs(profile, dataset, sel.lr, version)]
    return None if any(r is None for r in recs) else [r for r in recs if r is not None]


__all__ = ["BUDGET", "BUDGET_FACTOR", "ROLE", "STEPS", "budget_gate", "chosen", "compared_images", "config",
           "configs", "jobs", "lr_grid", "matched_epochs", "needed", "records", "selection"]
