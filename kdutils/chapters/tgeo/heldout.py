"""A held-out teacher: one teacher trained on a pool of training images disjoint from the student's labelled and
validation images, so its logits on every image the student sees are out of sample.

Why: the cross-fitted teachers (`crossfit`) gave out-of-sample logits, but each was trained on 5,000 images and
reached only about 2 pts above the MLP-32 student alone (the records of attempt 1), so vanilla KD had no room. The
first recipe's teacher on 20,000 images was strong (91.1% test) but its logits on the student's images were
in-sample. Here the teacher's images come from the part of the training split the student never uses: the
student's `DataConfig` holds out `val_size` images and keeps a seeded subset of `n_train` of the rest
(`runner.prepare_data`); the pool is a seeded subset of what is left after both.

The teacher's config is a RunConfig with the student's DataConfig and role `ho_teacher_pool<size>` (the pool size
is in the key through the role; no config field changes). `index_sets` recomputes the three index sets with the
same splitting functions and the same seeds as `prepare_data`; tests check it against the loaded data.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import torch

from kdutils.chapters.tgeo.crossfit import fit_on_subset, load_or_train, subset_accuracy
from kdutils.config import DataConfig, RunConfig
from kdutils.data.splits import train_val_split
from kdutils.store.store import ResultStore
from kdutils.training import runner

__all__ = ["POOL_SEED_OFFSET", "index_sets", "is_pool_teacher", "load_pool_teacher", "pool_role", "pool_size_of",
           "run_pool_teacher"]

_ROLE = re.compile(r"^ho_teacher_pool(\d+)$")
#: The pool's draw is seeded by split_seed + this (n_train's subset uses split_seed, n_test's split_seed + 1).
POOL_SEED_OFFSET = 2


def pool_role(size: int) -> str:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"the teacher pool size must be a positive int, got {size!r}")
    return f"ho_teacher_pool{size}"


def is_pool_teacher(cfg: RunConfig | None) -> bool:
    return cfg is not None and bool(_ROLE.match(cfg.role))


def pool_size_of(cfg: RunConfig) -> int:
    m = _ROLE.match(cfg.role)
    if not m:
        raise ValueError(f"role {cfg.role!r} is not a held-out teacher's (ho_teacher_pool<size>)")
    return int(m.group(1))


def index_sets(data: DataConfig, n_full: int, pool: int) -> dict[str, torch.Tensor]:
    """Indices into the dataset's whole training split: "val" (the student's validation images), "labelled" (its
    training images), "pool" (the teacher's), and "pool_pos" / "labelled_pos" (the same as positions in the
    training split left after the validation hold-out, which `prepare_data` subsets). Sorted int64."""
    if data.fold is not None or data.options.get("train_classes") is not None:
        raise ValueError("a held-out teacher pool needs a DataConfig without fold or train_classes, got "
                         f"fold={data.fold!r}, options={data.options!r}")
    if data.val_size:
        train_idx, val_idx = train_val_split(n_full, data.val_size, data.split_seed)
    else:
        train_idx, val_idx = torch.arange(n_full), torch.empty(0, dtype=torch.long)
    n = train_idx.numel()
    lab_pos = (runner.seeded_subset(n, data.n_train, data.split_seed) if data.n_train is not None and data.n_train < n
               else torch.arange(n))
    free = torch.ones(n, dtype=torch.bool)
    free[lab_pos] = False
    rest = torch.nonzero(free).flatten()
    if pool > rest.numel():
        raise ValueError(f"teacher pool of {pool} images asked, but only {rest.numel()} training images are left "
                         f"outside the student's {lab_pos.numel()} labelled and {val_idx.numel()} validation images")
    pool_pos = rest[runner.seeded_subset(rest.numel(), pool, data.split_seed + POOL_SEED_OFFSET)].sort().values
    return {"val": val_idx, "labelled": train_idx[lab_pos], "pool": train_idx[pool_pos], "labelled_pos": lab_pos,
            "pool_pos": pool_pos}


def _full(cfg: RunConfig) -> runner.Splits:
    """The student's splits before the n_train subset (validation and test as the student's)."""
    return runner.prepare_data(replace(cfg.data, n_train=None))


def run_pool_teacher(cfg: RunConfig, store: ResultStore | None = None, *, device: torch.device | None = None,
                     progress: bool = True, force: bool = False) -> dict[str, Any]:
    """Train the teacher on its pool (unless recorded) and record it; the record adds "heldout": the pool size, its
    overlap with the student's images (0 by construction, checked), and the teacher's accuracy on the student's
    labelled images (out of sample) and on its own pool."""
    store = store or ResultStore()
    if not force and (rec := store.get(cfg)) is not None:
        return rec
    if runner.load_only() and not force:
        raise runner.missing_run_error(cfg, store)
    with runner.sole_writer(cfg, store, force) as done:
        if done is not None:
            return done
        device = device or runner.default_device()
        full = _full(cfg)
        sets = index_sets(cfg.data, len(full.train) + (0 if full.val is None else len(full.val)), pool_size_of(cfg))
        overlap = int(torch.isin(sets["pool"], torch.cat([sets["labelled"], sets["val"]])).sum())
        if overlap:
            raise RuntimeError(f"the teacher pool shares {overlap} images with the student's; refusing to train")
        sub = runner.Splits(full.train.subset(sets["pool_pos"]), full.val, full.test, full.mean, full.std)
        model, result, started = fit_on_subset(cfg, sub, device, progress)
        extra: dict[str, Any] = {}
        if result.status == "ok":
            acc = lambda pos: subset_accuracy(model, full.train, sub, pos, device)  # noqa: E731
            extra["heldout"] = {"pool": int(sets["pool"].numel()), "overlap": overlap,
                                "student_train_accuracy": acc(sets["labelled_pos"]),
                                "pool_accuracy": acc(sets["pool_pos"])}
        return runner.record_run(cfg, model, None, sub, result, store, device, started, **extra)


def load_pool_teacher(cfg: RunConfig, store: ResultStore, device: torch.device, progress: bool = True):
    """The trained held-out teacher (frozen), from its checkpoint or trained now."""
    if not is_pool_teacher(cfg):
        raise ValueError(f"held-out teacher logits need a ho_teacher_pool<size> teacher, got role {cfg.role!r}")
    return load_or_train(cfg, store, device, run_pool_teacher, progress)
