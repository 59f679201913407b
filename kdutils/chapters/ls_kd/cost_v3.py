"""Chandrasegaran et al., recipe v3: what a run of the recipe still has to train, per shard, and what it will cost,
from per-image-epoch times measured in the chapter's own records (``wall_time_s`` of runs of the same network).

The estimate counts runs from the recipe, not from the plan, because before the run the common rate and the
matched temperatures are unknown (so are the students' record keys): a student arm is "to do" unless the plan
already resolves it to a recorded run. Per run: rate x epochs x training images, plus an analysis pass (a forward
over the training and test images, a third of a training step per image), rate = the median over recorded final runs (selection runs
only where a model has no final run) of the same model and widths of wall_time_s / (epochs x images trained). A model with no record has no estimate: the
dry run says so instead of guessing.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from statistics import median
from typing import Any

from kdutils.chapters.ls_kd import recipe_v3 as rv3
from kdutils.chapters.ls_kd.plan_v3 import PlanV3, build, shard_of
from kdutils.chapters.ls_kd.recipes import EXPERIMENT
from kdutils.store.store import ResultStore

FASHION_TEST = 10_000
FORWARD_SHARE = 1.0 / 3.0  # a forward pass costs about a third of a training step (forward + backward)


def _model_id(model: str, kwargs: dict[str, Any]) -> str:
    return f"{model}{json.dumps(kwargs, sort_keys=True) if kwargs else ''}"


def measured_rates(store: ResultStore) -> dict[str, dict[str, float]]:
    """{model id: {"s_per_image_epoch": median, "runs": n}} over the chapter's recorded runs that trained."""
    out: dict[str, list[float]] = {}
    short: dict[str, list[float]] = {}  # selection runs: few epochs, so their evaluation weighs more; fallback only
    for rec in store.records(EXPERIMENT):
        cfg, wall, n_train = rec.get("config", {}), rec.get("wall_time_s"), rec.get("n_train")
        epochs = cfg.get("train", {}).get("epochs")
        if not wall or not epochs or not n_train or rec.get("status") == "diverged":
            continue
        images = float(n_train) - float(cfg.get("data", {}).get("val_size") or 0)
        if images <= 0:
            continue
        key = _model_id(cfg.get("model", "?"), cfg.get("model_kwargs") or {})
        into = short if str(cfg.get("role", "")).startswith("select:") else out
        into.setdefault(key, []).append(float(wall) / (float(epochs) * images))
    rates = {k: {"s_per_image_epoch": median(v), "runs": len(v)} for k, v in short.items()}
    rates.update({k: {"s_per_image_epoch": median(v), "runs": len(v)} for k, v in out.items()})
    return rates


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

    def seconds(self, rates: dict[str, dict[str, float]]) -> float:
        rate = rates.get(self.model, {}).get("s_per_image_epoch")
        if rate is None:
            return math.nan
        train = self.epochs * self.images * rate
        extra = (self.images + FASHION_TEST) * rate * FORWARD_SHARE if self.analysed else 0.0
        return self.count * (train + extra)


def todo(profile: str, n_shards: int = 2, store: ResultStore | None = None) -> list[Item]:
    """Every run recipe v3 still needs at ``profile``, grouped by kind and shard."""
    store = store or ResultStore()
    r = rv3.recipe_v3(profile)
    p: PlanV3 = build(profile, store)
    n_train = r.n_train or 60_000
    t_model = _model_id(r.teacher_model, dict(rv3._kwargs(r.teacher_kwargs)))
    s_model = _model_id(r.student_model, dict(rv3._kwargs(r.student_kwargs)))
    items: list[Item] = []
    for ls in r.ls_values:
        missing = [c for c in rv3.teacher_selection(profile, ls) if store.get(c) is None]
        if missing:
            items.append(Item(f"teacher selection LS {ls:g}", t_model, len(missing), r.select_teacher_epochs,
                              n_train - r.val_size, False, 0))
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
        got = rates.get(model)
        lines.append(f"  {model}: " + (f"{1e3 * got['s_per_image_epoch']:.3f} ms (median of {got['runs']} runs)"
                                       if got else "NO RECORD: no estimate (run a pilot first)"))
    total = 0.0
    for k in range(n_shards):
        mine = [it for it in items if it.shard == k]
        secs = sum(it.seconds(rates) for it in mine)
        total += secs
        lines.append(f"shard {k}/{n_shards}: {sum(it.count for it in mine)} runs, about {secs / 3600:.2f} h of one "
                     "thread")
        for it in mine:
            lines.append(f"  {it.count:3d} x {it.what} ({it.model}, {it.epochs} epochs on {it.images:,} images"
                         f"{', + analysis' if it.analysed else ''}): {it.seconds(rates) / 60:.1f} min")
    lines.append(f"total: about {total / 3600:.2f} core-hours" if math.isfinite(total) else
                 "total: unknown (a model without a measured rate)")
    return "\n".join(lines)


__all__ = ["Item", "dry_run_text", "measured_rates", "todo"]
