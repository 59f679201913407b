"""Run many `RunConfig`s, training the ones that differ only in their loss weighting or seed together.

`run_grouped(cfgs)` does what `[runner.run(c) for c in cfgs]` does (same records in the same store, one per
config, same checkpoints) but trains every group of compatible students in one `fit_students` call: one
process, one data pipeline per seed and one teacher forward (or one cached-logit lookup) per step for all.

Grouping rule. Two configs go in the same group when they are identical except for
`GROUP_FIELDS` = role, tau, alpha, kd_direction, label_smoothing, seed, invariance, and the teacher, which
may differ only between "none" and one shared teacher (a student with no teacher has alpha = 0 and ignores
the teacher's logits). Everything that shapes the model or the data stream (architecture, data config,
optimiser, schedule, epochs, batch size, augmentation) is therefore shared. A differing seed changes the
initial weights and the data order, so each distinct seed gets its own loader (seeded exactly as
`runner.run` seeds it) and, under vmap, the batches of the distinct seeds are stacked per student: every
student sees exactly the batches, augmentation draws and teacher targets its separate run would see, which
is what makes "trained together" equal to "trained alone with the same seed" (see `multi_student`).

On a CPU `fit_students` steps the group's students one after another only when they share a live teacher's
forward pass (augmented inputs); otherwise it trains them in sequence (`multi_student.resolve_mode`), because
interleaving K students without anything to share was measured slower than K separate runs. The records are
the same either way.

Teachers that a student needs are trained first (alone, via `runner.load_model`). A group of one is
`runner.run`. Records carry `"trained_together": K`; their `wall_time_s` is the group's training time
divided by K plus the student's own evaluation time (the cost of that run when shared). In load-only mode
(`KDUTILS_LOAD_ONLY=1`) a config without a record raises `runner.MissingRunError` before anything trains.
A group is trained holding every member's run lock (`kdutils.store.locks`); members another process recorded while
this one waited are loaded, not trained again.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import torch

from kdutils.config import RunConfig
from kdutils.data.device_loader import DeviceLoader, parse_augment
from kdutils.store import locks
from kdutils.store.recovery import collecting
from kdutils.store.store import ResultStore
from kdutils.training import runner
from kdutils.training.engines import capture_rng_state
from kdutils.training.multi_student import fit_students
from kdutils.training.train import freeze

#: Fields that may differ between configs trained together.
GROUP_FIELDS = ("role", "tau", "alpha", "kd_direction", "label_smoothing", "seed", "invariance")


def group_key(cfg: RunConfig) -> str:
    """Configs with the same key can be trained together (teacher aside: see `partition`)."""
    neutral = replace(cfg, role="", tau=1.0, alpha=0.0, kd_direction="forward", label_smoothing=0.0, seed=0,
                      invariance=None, teacher=None)
    return neutral.key()


def partition(cfgs: list[RunConfig], max_group: int = 8) -> list[list[RunConfig]]:
    """Split configs into groups that can be trained together, each of at most `max_group` members.

    Within one `group_key`, configs are split by teacher; teacher-less configs join the first teacher's
    group. A bucket larger than `max_group` is cut into near-equal parts (10 with max 8 -> 5 + 5, max 3 -> 3+3+2+2).
    A config that records a learning curve (`options["epoch_eval"]`) is a group of its own.
    Order is kept: groups appear in the order of their first member.
    """
    if max_group < 1:
        raise ValueError(f"max_group must be >= 1, got {max_group!r}")
    buckets: dict[str, dict[str | None, list[RunConfig]]] = {}
    for cfg in cfgs:
        if runner.eval_every(cfg.data) is not None:  # learning curves are recorded by `fit` only: train alone
            buckets[f"alone:{cfg.key()}"] = {None: [cfg]}
            continue
        by_teacher = buckets.setdefault(group_key(cfg), {})
        by_teacher.setdefault(None if cfg.teacher is None else cfg.teacher.key(), []).append(cfg)
    groups: list[list[RunConfig]] = []
    for by_teacher in buckets.values():
        loose = by_teacher.pop(None, [])
        parts = list(by_teacher.values()) or [[]]
        parts[0] = loose + parts[0]
        for part in parts:
            n_chunks = math.ceil(len(part) / max_group)
            sizes = [len(part) // n_chunks + (i < len(part) % n_chunks) for i in range(n_chunks)]
            starts = [sum(sizes[:i]) for i in range(n_chunks)]
            groups += [part[a:a + n] for a, n in zip(starts, sizes)]
    order = {id(c): i for i, c in enumerate(cfgs)}
    return sorted(groups, key=lambda g: min(order[id(c)] for c in g))


def run_grouped(cfgs: list[RunConfig], store: ResultStore | None = None, *, device: torch.device | None = None,
                progress: bool = True, max_group: int = 8, mode: str = "auto") -> list[dict[str, Any] | None]:
    """Train (together where possible) and record every config that has no record; return all records in input
    order (duplicates get the same record; None where the store holds no finished record, as `store.get`).
    `mode` is passed to `fit_students` ("auto", "vmap" or "loop")."""
    store = store or ResultStore()
    device = torch.device(device) if device is not None else runner.default_device()
    unique: dict[str, RunConfig] = {}
    for cfg in cfgs:
        unique.setdefault(cfg.key(), cfg)
    pending = [c for c in unique.values() if store.get(c) is None]
    if pending and runner.load_only():
        raise runner.missing_run_error(pending[0], store)
    if pending:
        store.check_writable()  # before any training

    teachers: dict[str, torch.nn.Module] = {}
    notes: dict[str, list[str]] = {}  # teacher key -> damaged files rebuilt while loading it
    for cfg in pending:  # every teacher a pending run needs, trained (or loaded) once, before the students
        if cfg.teacher is not None and cfg.teacher.key() not in teachers:
            found = notes.setdefault(cfg.teacher.key(), [])
            teachers[cfg.teacher.key()] = freeze(runner.load_model(cfg.teacher, store, device, progress, found))
    pending = [c for c in pending if store.get(c) is None]  # teachers in the list were just recorded

    for group in partition(pending, max_group):
        with locks.hold([store.lock_path(c) for c in group]):  # another writer may have trained some meanwhile
            group = [c for c in group if store.get(c) is None]
            if len(group) == 1:
                teacher = group[0].teacher
                runner.run(group[0], store, device=device, progress=progress,
                           notes=list(notes.get(teacher.key(), [])) if teacher is not None else [])
            elif group:
                _train_group(group, store, teachers, device, progress, mode, notes)
    return [store.get(cfg) for cfg in cfgs]


def _train_group(group: list[RunConfig], store: ResultStore, teachers: dict[str, torch.nn.Module],
                 device: torch.device, progress: bool, mode: str, notes: dict[str, list[str]] | None = None) -> None:
    first = group[0]
    data_notes: list[str] = []  # a data cache rebuilt here is noted in every record of the group
    with collecting(data_notes):
        splits = runner.prepare_data(first.data)
    teacher_cfg = next((c.teacher for c in group if c.teacher is not None), None)
    teacher = teachers.get(teacher_cfg.key()) if teacher_cfg is not None else None
    found = list((notes or {}).get(teacher_cfg.key(), [])) if teacher_cfg is not None else []
    if teacher_cfg is not None and teacher is None:
        teacher = teachers[teacher_cfg.key()] = freeze(runner.load_model(teacher_cfg, store, device, progress, found))

    models, rng_states, loaders, by_seed = [], [], [], {}
    augment = parse_augment(first.train.augment)
    for cfg in group:  # exactly the init and loader of runner.run, per student
        runner.seed_everything(cfg.seed)
        models.append(runner.build_for(cfg, splits))
        rng_states.append(capture_rng_state(device))
        if cfg.seed not in by_seed:
            by_seed[cfg.seed] = DeviceLoader(splits.train.x, splits.train.y, first.train.batch_size, shuffle=True,
                                             augment=augment, mean=splits.mean, std=splits.std, device=device,
                                             seed=cfg.seed)
        loaders.append(by_seed[cfg.seed])
    cached = None
    if teacher_cfg is not None and teacher is not None and any(c.alpha > 0 for c in group) and augment is None:
        cached = runner.teacher_logits_for(teacher_cfg, teacher, first.data, "train", splits.train.x, splits, device,
                                           found)
    specs = [dict(tau=c.tau, alpha=c.alpha, kd_direction=c.kd_direction, label_smoothing=c.label_smoothing)
             for c in group]
    started = time.perf_counter()
    results = fit_students(models, loaders if len(by_seed) > 1 else loaders[0], first.train, specs=specs,
                           teacher=None if cached is not None else teacher, teacher_logits=cached, device=device,
                           progress=progress, desc=f"{first.experiment}/{len(group)} together", mode=mode,
                           rng_states=rng_states)
    shared_time = (time.perf_counter() - started) / len(group)
    for cfg, model, result in zip(group, models, results):
        own_teacher = teacher if cfg.teacher is not None else None
        runner.record_run(cfg, model, own_teacher, splits, result, store, device, time.perf_counter(),
                          train_share_s=shared_time, notes=data_notes + (found if own_teacher is not None else []),
                          trained_together=len(group))



def recorded(cfgs: list[RunConfig], records: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """`run_grouped`'s records with a lost one made an error: it records every run it trains, a failed one
    included, so a None after training means a record went missing, never a run to drop."""
    missing = [c.role for c, rec in zip(cfgs, records) if rec is None]
    if missing:
        raise RuntimeError(f"runs trained but not recorded: {', '.join(missing)}")
    return [rec for rec in records if rec is not None]

__all__ = ["GROUP_FIELDS", "group_key", "partition", "recorded", "run_grouped"]
