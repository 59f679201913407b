"""Chandrasegaran et al., recipe v3: what a run of the recipe still has to train, per shard, and what it will cost,
from per-image-epoch times measured in the chapter's own records (``wall_time_s`` of runs of the same network).

The estimate counts runs from the recipe, not from the plan, because before the run the common rate and the
matched temperatures are unknown (so are the students' record keys): a student arm is "to do" unless the plan
already resolves it to a recorded run. Per run: rate x epochs x training images, plus an analysis pass (a forward
over the training and test images, a third of a training step per image), rate = the median over recorded final
runs (selection runs only where a model has no final run) of the same model and widths of wall_time_s / (epochs x
images trained). A model with no record has no estimate: the dry run says so instead of guessing. The medians,
the per-run arithmetic and the summary lines are the core's (`kdutils.sweeps.cost`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kdutils.chapters.ls_kd import recipe_v3 as rv3
from kdutils.chapters.ls_kd.plan_v3 import PlanV3, build, shard_of
from kdutils.chapters.ls_kd.recipes import EXPERIMENT
from kdutils.store.store import ResultStore
from kdutils.sweeps.cost import (Rate, RateSamples, Work, rate_line, run_seconds, seconds_per_image_epoch,
                                 shard_blocks, total_line)

FASHION_TEST = 10_000


def _model_id(model: str, kwargs: dict[str, Any]) -> str:
    return f"{model}{json.dumps(kwargs, sort_keys=True) if kwargs else ''}"


def measured_rates(store: ResultStore) -> dict[str, Rate]:
    """{model id: median seconds per image-epoch} over the chapter's recorded runs that trained (selection runs:
    few epochs, so their evaluation weighs more; a fallback only)."""
    samples: RateSamples[str] = RateSamples()
    for rec in store.records(EXPERIMENT):
        cfg, n_train = rec.get("config", {}), rec.get("n_train")
        if not n_train or rec.get("status") == "diverged":
            continue
        images = float(n_train) - float(cfg.get("data", {}).get("val_size") or 0)
        samples.add(_model_id(cfg.get("model", "?"), cfg.get("model_kwargs") or {}),
                    seconds_per_image_epoch(rec.get("wall_time_s"), cfg.get("train", {}).get("epochs"), images),
                    fallback=str(cfg.get("role", "")).startswith("select:"))
    return samples.medians()


@dataclass(frozen=True)
class Item:
    """A group of runs still to do: what, how many, each one's epochs and images, on which shard."""

    what: str
    model: str
    count: int
    epochs: int
    images: int
    analysed: bool
    shard: int

    def seconds(self, rates: dict[str, Rate]) -> float:
        got = rates.get(self.model)
        rate = float("nan") if got is None else got.seconds
        return self.count * run_seconds(rate, self.epochs * self.images,
                                        self.images + FASHION_TEST if self.analysed else 0)

    def describe(self) -> str:
        return (f"{self.what} ({self.model}, {self.epochs} epochs on {self.images:,} images"
                f"{', + analysis' if self.analysed else ''})")


def todo(profile: str, n_shards: int = 2, store: ResultStore | None = None) -> list[Item]:
    """Every run recipe v3 still needs at ``profile``, grouped by kind and shard."""
    store = store or ResultStore()
    r = rv3.recipe_v3(profile)
    p: PlanV3 = build(profile, store)
    n_train = r.n_train or 60_000
    t_model = _model_id(r.teacher_model, dict(rv3._kwargs(r.teacher_kwargs)))
    s_model = _model_id(r.student_model, dict(rv3._kwargs(r.student_kwargs)))
    items: list[Item] = []
    for k, ls in enumerate(r.ls_values):  # each shard selects its share of the LS values' rates (plan_v3)
        missing = [c for c in rv3.teacher_selection(profile, ls) if store.get(c) is None]
        if missing:
            items.append(Item(f"teacher selection LS {ls:g}", t_model, len(missing), r.select_teacher_epochs,
                              n_train - r.val_size, False, k % n_shards))
    recorded = {u.cfg.key() for u in p.units if store.get(u.cfg) is not None}
    for i in r.teacher_seeds:
        k = shard_of(i, n_shards, r.teacher_seeds)
        n_t = sum(1 for ls in r.ls_values if not any(  # a recorded teacher without its checkpoint is retrained
            u.kind == "teacher" and u.ls == ls and u.pair == i and u.cfg.key() in recorded
            and store.checkpoint_path(u.cfg).exists() for u in p.units))
        if n_t:
            items.append(Item(f"teachers of pair {i}", t_model, n_t, r.teacher_epochs, n_train, True, k))
        n_arms = len(r.ls_values) * len(r.taus) + len(r.match_taus)  # matched arms assumed outside the tau grid
        done = sum(1 for u in p.units if u.kind == "student" and u.pair == i and u.cfg.key() in recorded)
        n_s = n_arms * len(r.student_seeds) - done
        if n_s > 0:
            items.append(Item(f"students of pair {i}", s_model, n_s, r.student_epochs, n_train, True, k))
    if p.common_lr is None:
        items.append(Item("common-rate selection", s_model, len(r.student_lrs), r.select_epochs,
                          n_train - r.val_size, False, 0))
    done_alone = {u.seed for u in p.units if u.kind == "alone" and u.cfg.key() in recorded}
    for k in range(n_shards):
        n_alone = sum(1 for x, s in enumerate(r.alone_seeds) if x % n_shards == k and s not in done_alone)
        if n_alone:
            items.append(Item("student alone", s_model, n_alone, r.student_epochs, n_train, True, k))
    return items


def dry_run_text(profile: str, n_shards: int = 2, store: ResultStore | None = None) -> str:
    """The plan and its cost, per shard, as the dry run prints it."""
    store = store or ResultStore()
    rates = measured_rates(store)
    items = todo(profile, n_shards, store)
    r = rv3.recipe_v3(profile)
    lines = [f"LS-KD recipe {rv3.VERSION}, profile {profile!r}: {r.notes}",
             f"teacher seeds {list(r.teacher_seeds)} per LS value {list(r.ls_values)}; student seeds "
             f"{list(r.student_seeds)} per teacher; tau {[float(t) for t in r.taus]} plus the matched-entropy arms of "
             f"tau {[float(t) for t in r.match_taus]}; student rate grid {list(r.student_lrs)} (one common rate)",
             f"{n_shards} shard(s); per-image-epoch times measured from the chapter's records:"]
    for model in sorted({it.model for it in items}):
        lines.append(rate_line(model, rates.get(model), missing="NO RECORD: no estimate (run a pilot first)"))
    blocks, total = shard_blocks([Work(it.count, it.describe(), it.seconds(rates), it.shard) for it in items],
                                 n_shards)
    lines += [line for block in blocks for line in block]
    lines.append(total_line(total))
    for earlier in rv3.EARLIER_V3.get(profile, ())[-1:]:
        from kdutils.chapters.ls_kd.claims import MIN_SAME_TAU
        from kdutils.chapters.ls_kd.power_v3 import power_lines

        lines += power_lines(earlier, r, store, MIN_SAME_TAU)
    return "\n".join(lines)


__all__ = ["Item", "dry_run_text", "measured_rates", "todo"]
