"""Odagiu et al., recipe v2: what the run still has to train, per shard, and what it will cost, from per-example-epoch
times measured in the chapter's own records (``wall_time_s / (epochs x n_train)`` of runs of the same network).

Before the selection is recorded the final runs' rates (so their record keys) are unknown: the estimate then
counts every run of the design at the recipe's rates; afterwards it counts only what has no record. Per run:
training (epochs x examples x rate) plus evaluation (a forward pass, a third of a training step per example,
over the test set twice for the invariance metric and over the validation fold); per KD run's teacher, one
forward over the transfer and test sets (the teacher-logit cache makes it once per teacher and data). An edge
extension adds one candidate per arm and time: the dry run prints its worst case separately. The medians, the
per-run arithmetic and the summary lines are the core's (`kdutils.sweeps.cost`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kdutils.chapters.invariance import recipe_v2 as rv
from kdutils.chapters.invariance.plan_v2 import (SHARDS, candidates, final_configs, select_v2, shard_pairs,
                                                 stage_bases)
from kdutils.chapters.invariance.recipes import PAIRS, arm_key, experiment_name
from kdutils.config import RunConfig
from kdutils.store.store import ResultStore
from kdutils.sweeps.cost import (FORWARD_SHARE, Rate, RateSamples, Work, rate_line, run_seconds as priced,
                                 seconds_per_image_epoch, shard_blocks, total_line)

VAL_FOLD = 12_000  # the held-out fold of a 60,000-example training split at k = 5


def model_id(model: str, kwargs: dict[str, Any], dataset: str) -> str:
    """A network on a dataset (a DGCNN on 256-point ModelNet40 shapes costs more per example than on set-MNIST)."""
    return f"{dataset}: {model}{json.dumps(kwargs, sort_keys=True, default=list) if kwargs else ''}"


def measured_rates(store: ResultStore) -> dict[str, Rate]:
    """{model id: median seconds per example-epoch} over the chapter's recorded runs that trained (final runs;
    selection runs only for a model without a final run: they carry a validation pass)."""
    samples: RateSamples[str] = RateSamples()
    for pair in PAIRS:
        for rec in store.records(experiment_name(pair)):
            cfg = rec.get("config", {})
            if rec.get("status") == "diverged":
                continue
            key = model_id(cfg.get("model", "?"), cfg.get("model_kwargs") or {}, cfg.get("data", {}).get("dataset", "?"))
            samples.add(key, seconds_per_image_epoch(rec.get("wall_time_s"), cfg.get("train", {}).get("epochs"),
                                                     rec.get("n_train")),
                        fallback=str(cfg.get("role", "")).startswith("select:"))
    return samples.medians()


def _mid(cfg: RunConfig) -> str:
    return model_id(cfg.model, dict(cfg.model_kwargs), cfg.data.dataset)


def _rate(mid: str, rates: dict[str, Rate]) -> float:
    got = rates.get(mid)
    return float("nan") if got is None else got.seconds


def run_seconds(cfg: RunConfig, rates: dict[str, Rate]) -> float:
    """Training plus evaluation of one run (teacher forwards are counted apart, once per teacher)."""
    n = cfg.data.n_train or 48_000
    n_test = cfg.data.n_test or 10_000
    return priced(_rate(_mid(cfg), rates), cfg.train.epochs * n, 2 * n_test + VAL_FOLD)


def teacher_seconds(cfgs: list[RunConfig], rates: dict[str, Rate]) -> float:
    seen: dict[tuple[str, str], tuple[RunConfig, RunConfig]] = {}  # -> (config, its teacher)
    for c in cfgs:
        if c.teacher is not None:
            seen[(c.teacher.key(), json.dumps(c.data.__dict__, sort_keys=True, default=str))] = (c, c.teacher)
    total = 0.0
    for c, teacher in seen.values():
        rate = _rate(_mid(teacher), rates)
        total += ((c.data.n_train or 48_000) + (c.data.n_test or 10_000)) * rate * FORWARD_SHARE
    return total


@dataclass(frozen=True)
class Part:
    what: str
    cfgs: tuple[RunConfig, ...]
    shard: int

    def seconds(self, rates: dict[str, Rate]) -> float:
        return sum(run_seconds(c, rates) for c in self.cfgs) + teacher_seconds(list(self.cfgs), rates)


def todo(profile: str, n_shards: int = 2, store: ResultStore | None = None) -> tuple[list[Part], list[Part]]:
    """(what is still to train, the worst-case edge extensions) per pair and shard."""
    store = store or ResultStore()
    parts, extra = [], []
    for k in range(n_shards):
        for pair in shard_pairs(k, n_shards):
            sel = select_v2(profile, pair, store)
            lrs = None if sel is None else {a: s.lr for a, s in sel.items()}
            sel_cfgs, ext_cfgs = [], []
            for stage in (1, 2):
                stage_lrs = None if stage == 1 else (lrs or _placeholder(profile, pair))
                for arm, (base, ep) in stage_bases(profile, pair, stage, stage_lrs).items():
                    sel_cfgs += candidates(profile, arm, base, ep, rv.LR_GRID_V2[profile])
                    g = rv.LR_GRID_V2[profile]
                    ext_cfgs += candidates(profile, arm, base, ep,
                                           [max(g) * rv.EXTEND_FACTOR ** (i + 1) for i in range(rv.MAX_EXTENSIONS)])
            finals = final_configs(profile, pair, store, lrs) if lrs else [
                c for f in rv.FOLDS_V2[profile] for c in rv.fold_configs(profile, pair, f, None)]
            missing = lambda cs: tuple(c for c in cs if store.get(c) is None)  # noqa: E731
            parts.append(Part(f"{pair}: lr selection (base grids)", missing(sel_cfgs) if sel else tuple(sel_cfgs), k))
            parts.append(Part(f"{pair}: final runs, folds {list(rv.FOLDS_V2[profile])}", missing(finals), k))
            if pair == rv.RANK_CHECK[0]:
                pair_, student, tau = rv.RANK_CHECK
                base, _ = stage_bases(profile, pair_, 2, _placeholder(profile, pair_))[arm_key("distilled", student, tau)]
                full = rv.recipe_v2(pair_, profile).base.distill_train.epochs
                rc = candidates(profile, "rankcheck", base, full, rv.LR_GRID_V2[profile])
                parts.append(Part(f"{pair}: rank-order check at full length", missing(rc), k))
            extra.append(Part(f"{pair}: worst-case edge extensions", tuple(ext_cfgs) if not sel else (), k))
    return parts, extra


def _placeholder(profile: str, pair: str) -> dict[str, float]:
    """Stage-1 rates for enumerating stage 2 before it is recorded: the recipe's own (costs do not depend on them)."""
    return {a: b.train.lr for a, (b, _) in stage_bases(profile, pair, 1).items()}


def dry_run_text(profile: str, n_shards: int = 2, store: ResultStore | None = None) -> str:
    """The design, and per shard the runs still to train and their cost, as the dry run prints it."""
    store = store or ResultStore()
    if n_shards not in SHARDS:
        raise ValueError(f"n_shards must be one of {sorted(SHARDS)}, got {n_shards!r}")
    rates = measured_rates(store)
    parts, extra = todo(profile, n_shards, store)
    lines = [f"invariance recipe {rv.VERSION}, profile {profile!r}: folds {list(rv.FOLDS_V2[profile])}, seeds "
             f"{rv.SEED_OFFSET}+fold (new record keys; v1's untouched)"]
    for pair in PAIRS:
        lines.append(f"  {pair}: {rv.recipe_v2(pair, profile).notes}")
    lines.append(f"  lr grid {list(rv.LR_GRID_V2[profile])}, selection at {rv.SELECT_FRACTION[profile]:g}x the final "
                 f"epochs, up to {rv.MAX_EXTENSIONS} extensions (x{rv.EXTEND_FACTOR:g}) past an edge; rank-order "
                 f"check on {rv.RANK_CHECK[0]} {rv.RANK_CHECK[1]} tau {rv.RANK_CHECK[2]:g}")
    lines.append(f"{n_shards} shard(s); seconds per example-epoch measured from the chapter's records:")
    for m in sorted({_mid(c) for p in parts for c in p.cfgs} | {_mid(c.teacher) for p in parts for c in p.cfgs
                                                                  if c.teacher is not None}):
        lines.append(rate_line(m, rates.get(m), digits=4))
    blocks, total = shard_blocks([Work(len(p.cfgs), p.what, p.seconds(rates), p.shard) for p in parts], n_shards,
                                 width=4)
    for k, block in enumerate(blocks):
        ext = sum(p.seconds(rates) for p in extra if p.shard == k)
        lines += block + [f"  (+ at most {ext / 60:.1f} min if every arm needed both edge extensions)"]
    lines.append(total_line(total))
    return "\n".join(lines)


__all__ = ["dry_run_text", "measured_rates", "run_seconds", "todo"]
